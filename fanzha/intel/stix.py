"""STIX 2.1 bundles of watchlist entries: export as indicator objects, import ours and plain patterns."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from fanzha.intel.csvio import ParseResult, item_from_fields
from fanzha.intel.watchlist import InvalidIndicator

# Deterministic ids: exporting an entry twice gives the same indicator id, so consumers update, not add.
NAMESPACE = uuid.UUID("6f1f7a52-6c0e-4d38-9f55-0b7f3c1d2e90")
IDENTITY_ID = "identity--" + str(uuid.uuid5(NAMESPACE, "fanzha"))
CREATED = "2025-01-01T00:00:00.000Z"
# Standard cyber-observable types where STIX has one; fanzha's own (x-fanzha-…) where it has not.
OBJECT_TYPES = {
    "url": "url",
    "domain": "domain-name",
    "phone": "x-fanzha-phone",
    "bank_card": "x-fanzha-bank-card",
    "payment_account": "x-fanzha-payment-account",
    "qq": "x-fanzha-qq",
    "wechat": "x-fanzha-wechat",
    "telegram": "x-fanzha-telegram",
    "app": "x-fanzha-app",
    "wallet": "x-fanzha-wallet",
}
KINDS_BY_TYPE = {v: k for k, v in OBJECT_TYPES.items()} | {
    "ipv4-addr": "ip", "ipv6-addr": "ip", "phone-number": "phone",
}
_COMPARISON = re.compile(r"([a-z0-9\-]+):value\s*=\s*'((?:[^'\\]|\\.)*)'")
_GLUE = re.compile(r"[\s\[\]]*(?:OR[\s\[\]]*)?")


def _stamp(at: datetime | None) -> str:
    at = at or datetime.now(UTC).replace(tzinfo=None)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern(kind: str, value: str) -> str:
    if kind == "ip":
        return f"[{'ipv6-addr' if ':' in value else 'ipv4-addr'}:value = '{_quote(value)}']"
    return f"[{OBJECT_TYPES[kind]}:value = '{_quote(value)}']"


def indicator(entry: Any) -> dict[str, Any]:
    """One STIX indicator for an entry with the EntryRow attributes."""
    valid_from = entry.first_seen
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--" + str(uuid.uuid5(NAMESPACE, f"{entry.kind}\x00{entry.value}")),
        "created": _stamp(valid_from),
        "modified": _stamp(entry.last_seen),
        "created_by_ref": IDENTITY_ID,
        "name": f"{entry.kind}: {entry.value}",
        "indicator_types": ["benign"] if entry.status == "whitelisted" else ["malicious-activity"],
        "pattern": pattern(entry.kind, entry.value),
        "pattern_type": "stix",
        "valid_from": _stamp(valid_from),
        "confidence": round(entry.confidence * 100),
        "x_fanzha_kind": entry.kind,
        "x_fanzha_value": entry.value,
        "x_fanzha_confidence": entry.confidence,
        "x_fanzha_status": entry.status,
        "x_fanzha_source": entry.source,
        "x_fanzha_last_seen": _stamp(entry.last_seen),
        "x_fanzha_report_count": entry.report_count,
    }
    if entry.fraud_type:
        obj["x_fanzha_fraud_type"] = entry.fraud_type
    if entry.expires_at is not None and entry.expires_at > valid_from:
        obj["valid_until"] = _stamp(entry.expires_at)
    if entry.status == "expired":
        obj["revoked"] = True
    return obj


def write_bundle(entries: Iterable[Any]) -> Iterator[bytes]:
    """A STIX 2.1 bundle as JSON chunks, streamed so a million entries never sit in memory at once."""
    identity = {
        "type": "identity", "spec_version": "2.1", "id": IDENTITY_ID, "created": CREATED, "modified": CREATED,
        "name": "fanzha 反诈", "identity_class": "system",
    }
    bundle_id = "bundle--" + str(uuid.uuid4())
    yield b'{"type":"bundle","id":"' + bundle_id.encode() + b'","objects":[' + orjson.dumps(identity)
    for entry in entries:
        yield b"," + orjson.dumps(indicator(entry))
    yield b"]}"


def _comparisons(text: str) -> list[tuple[str, str]]:
    """(object type, value) of a pattern made only of `type:value = '…'` comparisons joined by OR."""
    found: list[tuple[str, str]] = []
    pos = 0
    for m in _COMPARISON.finditer(text):
        if not _GLUE.fullmatch(text[pos:m.start()]) or (found and "OR" not in text[pos:m.start()]):
            raise ValueError(f"unsupported pattern (only comparisons joined by OR): {text!r}")
        found.append((m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))))
        pos = m.end()
    if not found or not _GLUE.fullmatch(text[pos:]):
        raise ValueError(f"unsupported pattern (only [type:value = '…'] comparisons joined by OR): {text!r}")
    return found


def read_bundle(data: bytes | str, default_source: str | None = None) -> ParseResult:
    """Items of a STIX bundle's indicators; each bad indicator is an error naming objects[i]."""
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    objects = bundle.get("objects") if isinstance(bundle, dict) else None
    if not isinstance(objects, list) or bundle.get("type") != "bundle":
        raise ValueError('not a STIX bundle: expected {"type": "bundle", "objects": [...]}')
    result = ParseResult()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        result.rows += 1
        where = f"objects[{i}]"
        try:
            result.items.extend(_items(obj, default_source))
        except (InvalidIndicator, ValueError, TypeError) as exc:
            result.error(where, str(exc))
    return result


def _items(obj: dict[str, Any], default_source: str | None) -> list[Any]:
    if obj.get("pattern_type", "stix") != "stix":
        raise ValueError(f"pattern_type {obj.get('pattern_type')!r} is not supported (only stix)")
    if not isinstance(obj.get("pattern"), str):
        raise ValueError("indicator without a pattern")
    confidence = obj.get("x_fanzha_confidence")
    if confidence is None and isinstance(obj.get("confidence"), int | float):
        confidence = obj["confidence"] / 100
    status = obj.get("x_fanzha_status") or ("expired" if obj.get("revoked") else None)
    if status is None and "benign" in (obj.get("indicator_types") or ()):
        status = "whitelisted"
    fields = {
        "fraud_type": obj.get("x_fanzha_fraud_type"),
        "source": obj.get("x_fanzha_source") or default_source,
        "confidence": confidence,
        "status": status,
        "first_seen": obj.get("valid_from"),
        "last_seen": obj.get("x_fanzha_last_seen") or obj.get("modified"),
        "expires_at": obj.get("valid_until"),
        "report_count": obj.get("x_fanzha_report_count"),
        "note": obj.get("description") or "",
    }
    items = []
    for object_type, value in _comparisons(obj["pattern"]):
        kind = KINDS_BY_TYPE.get(object_type)
        if kind is None:
            raise ValueError(f"object type {object_type!r} is not a watchlist kind")
        items.append(item_from_fields({**fields, "kind": kind, "value": value}, default_source))
    return items
