"""In-memory watchlist index: exact, domain-suffix and URL-prefix matching with allow-list override.

Built for ten million entries: the bulk lives in sorted numpy arrays (about 80 bytes an entry), and
changes made after the build go to a small dict that is folded in when it grows.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
import unicodedata
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import ahocorasick
import numpy as np
import yaml

from fanzha.intel.watchlist import InvalidIndicator, WatchlistItem, normalize_value

if TYPE_CHECKING:
    from fanzha.text.result import Indicator

KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "knowledge"
ALLOWLIST_FILE = KNOWLEDGE_DIR / "allowlist.yaml"
BRANDS_FILE = KNOWLEDGE_DIR / "brands.yaml"  # official numbers and brand domains, declared once there
BUILTIN_SOURCE = "allowlist"
NEVER = math.inf
# Kinds scanned in free text: app names by Aho-Corasick (they need no word boundary in Chinese text),
# ASCII IDs by token look-up, which finds the same IDs without an automaton of millions of strings.
NAME_KINDS = ("app",)
_GLUED_CUES = (("qq", "qq"), ("vx", "wechat"), ("wx", "wechat"), ("tg", "telegram"))
_TOKEN = re.compile(r"(?<![a-z0-9_\-@])@?[a-z0-9][a-z0-9_\-]{3,39}(?![a-z0-9_\-])")


@dataclass(frozen=True, slots=True)
class Match:
    """One watchlist or allow-list entry that applies to a checked value."""

    entry_id: int | None  # None for the bundled allow-list
    kind: str
    value: str  # the entry's value: "evil.com" when a.b.evil.com was checked
    fraud_type: str | None
    confidence: float
    source: str
    allowlisted: bool
    label: str | None = None  # what an allow-listed value is ("反诈预警劝阻专线")

    @property
    def status(self) -> str:
        """The entry status this match stands for ("whitelisted" or "active")."""
        return "whitelisted" if self.allowlisted else "active"


Verdict = Literal["fraud", "allowlisted", "unknown"]


def verdict(matches: Iterable[Match]) -> Verdict:
    """"fraud" when a listed entry applies, "allowlisted" when only official ones do, else "unknown"."""
    found = list(matches)
    if any(not m.allowlisted for m in found):
        return "fraud"
    return "allowlisted" if found else "unknown"


class Row(NamedTuple):
    """What the index keeps of an entry (no notes, no reporters)."""

    entry_id: int | None
    kind: str
    value: str
    fraud_type: str | None = None
    source: str = "analyst"
    confidence: float = 0.8
    allowlisted: bool = False
    expires_at: datetime | None = None
    label: str | None = None


class _Rec(NamedTuple):
    entry_id: int | None
    fraud_type: str | None
    source: str
    confidence: float
    allowlisted: bool
    expires: float  # epoch seconds, inf = never
    label: str | None


def _key(kind: str, value: str) -> str:
    return f"{kind}\x00{value}"


def _epoch(at: datetime | None) -> float:
    if at is None:
        return NEVER
    # Stored times are naive UTC.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


_HASH_OFFSET = 1 << 63  # hash() is a signed 64-bit int: adding this orders it as unsigned
_CODE_MASK = (1 << 24) - 1  # string codes of fraud type and source, packed with the allow-list flag
_SOURCE_SHIFT, _ALLOW_SHIFT = 24, 48


class _Table:
    """Immutable table: keys found by their (per-process) hash in a sorted array, then compared.

    A directory on the hashes' top bits (about one key per bucket) gives each look-up the few positions
    to compare: two reads of the directory and one or two of the hashes, where a binary search over ten
    million hashes made 24 reads, most of them cache misses.
    """

    def __init__(self, rows: Iterable[Row]) -> None:
        # array.array while collecting: a Python list of ten million ints would cost gigabytes.
        hashes, starts, ids = array("q"), array("q"), array("q")
        conf, expires = array("f"), array("d")
        ftype, source, allow = array("I"), array("I"), array("B")
        self.names: list[tuple[str, str]] = []
        self._strings: list[str | None] = [None]
        codes: dict[str | None, int] = {None: 0}
        blob = bytearray()
        for r in rows:
            key = _key(r.kind, r.value)
            hashes.append(hash(key))
            starts.append(len(blob))
            blob += key.encode()
            ids.append(-1 if r.entry_id is None else r.entry_id)
            conf.append(r.confidence)
            for value, target in ((r.fraud_type, ftype), (r.source, source)):
                code = codes.get(value)
                if code is None:
                    code = codes[value] = len(self._strings)
                    self._strings.append(value)
                target.append(code)
            allow.append(r.allowlisted)
            expires.append(_epoch(r.expires_at))
            if r.kind in NAME_KINDS:
                self.names.append((r.kind, r.value))
        starts.append(len(blob))
        if len(self._strings) > _CODE_MASK:
            raise ValueError("more distinct fraud types and sources than the index can code")
        # numpy sorts; array.array serves look-ups (item access on it is several times faster).
        # What a hit reads sits in pairs, so it costs three cache lines besides its hash and key bytes:
        # span = [start, end) of the key in blob, rec = [entry id, codes], vals = [confidence, expiry].
        order = np.argsort(np.frombuffer(hashes, dtype=np.int64), kind="stable")
        self.hashes = _sorted(hashes, order)
        begin = np.frombuffer(starts, dtype=np.int64)
        self.span = _pairs(begin[:-1][order], begin[1:][order])
        packed = (np.frombuffer(ftype, dtype=np.uint32).astype(np.int64)
                  | np.frombuffer(source, dtype=np.uint32).astype(np.int64) << _SOURCE_SHIFT
                  | np.frombuffer(allow, dtype=np.uint8).astype(np.int64) << _ALLOW_SHIFT)
        self.rec = _pairs(np.frombuffer(ids, dtype=np.int64)[order], packed[order])
        # Confidence is kept as float32 and answered rounded to 4 places: round each distinct value once.
        distinct, which = np.unique(np.frombuffer(conf, dtype=np.float32), return_inverse=True)
        rounded = np.array([round(float(c), 4) for c in distinct], dtype=np.float64)
        self.vals = _pairs(rounded[which.reshape(-1)][order], np.frombuffer(expires, dtype=np.float64)[order])
        self.blob = bytes(blob)
        # Bucket b holds the hashes whose top `bits` bits (as unsigned) are b: positions dir[b]:dir[b + 1].
        bits = max(1, (len(self.hashes) - 1).bit_length() - 1)
        self.shift = 64 - bits
        top = (np.frombuffer(self.hashes, dtype=np.uint64) ^ np.uint64(_HASH_OFFSET)) >> np.uint64(self.shift)
        bounds = np.searchsorted(top, np.arange((1 << bits) + 1, dtype=np.uint64), side="left")
        self.dir = array("q" if len(self.hashes) >= 2**31 else "i")
        self.dir.frombytes(bounds.astype(np.int64 if self.dir.typecode == "q" else np.int32).tobytes())

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, key: str) -> _Rec | None:
        h = hash(key)
        hashes = self.hashes
        b = (h + _HASH_OFFSET) >> self.shift
        i, end = self.dir[b], self.dir[b + 1]
        while i < end and hashes[i] < h:
            i += 1
        encoded: bytes | None = None
        while i < end and hashes[i] == h:
            encoded = encoded or key.encode()
            j = 2 * i
            span = self.span
            if self.blob[span[j]:span[j + 1]] == encoded:
                rec, vals, strings = self.rec, self.vals, self._strings
                entry_id, codes = rec[j], rec[j + 1]
                return _Rec(
                    None if entry_id < 0 else entry_id,
                    strings[codes & _CODE_MASK],
                    strings[codes >> _SOURCE_SHIFT & _CODE_MASK] or "",
                    vals[j],
                    bool(codes >> _ALLOW_SHIFT),
                    vals[j + 1],
                    None,
                )
            i += 1
        return None

    def rows(self) -> Iterable[tuple[str, _Rec]]:
        span = self.span
        for i in range(len(self.hashes)):
            key = self.blob[span[2 * i]:span[2 * i + 1]].decode()
            rec = self.find(key)
            if rec is not None:
                yield key, rec


def _sorted(values: array, order: np.ndarray) -> array:  # type: ignore[type-arg]
    out = array(values.typecode)
    out.frombytes(np.frombuffer(values, dtype=values.typecode)[order].tobytes())
    return out


def _pairs(first: np.ndarray, second: np.ndarray) -> array:  # type: ignore[type-arg]
    """One array holding first[i], second[i] at 2i, 2i + 1 (int64 or float64)."""
    both = np.empty(2 * len(first), dtype=first.dtype)
    both[0::2], both[1::2] = first, second
    out = array("d" if both.dtype == np.float64 else "q")
    out.frombytes(both.tobytes())
    return out


_REMOVED = _Rec(None, None, "", 0.0, False, -NEVER, None)


class _State(NamedTuple):
    table: _Table
    overlay: dict[str, _Rec]  # changes since the table was built; _REMOVED marks a removal


class WatchlistIndex:
    """Answers "is this value listed?" in microseconds; safe for concurrent readers and writers."""

    def __init__(self, rows: Iterable[Row] = (), *, builtin_allowlist: bool = True) -> None:
        self._state = _State(_Table(rows), {})
        self._builtin: dict[str, _Rec] = dict(_builtin_records()) if builtin_allowlist else {}
        self._lock = threading.Lock()
        self._automaton: ahocorasick.Automaton | None = None
        self._extra_names: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        table, overlay = self._state
        n = len(table)
        for key, rec in overlay.items():
            n += (rec is not _REMOVED) - (table.find(key) is not None)
        return n

    # -- changes -------------------------------------------------------------------------------------

    def add(self, row: Row | WatchlistItem) -> None:
        """Add or replace an entry (after an upsert, or an allow-listing); an expired item is removed."""
        if isinstance(row, WatchlistItem):
            if row.status == "expired":
                self.remove(row.kind, row.value)
                return
            row = Row(None, row.kind, row.value, row.fraud_type, row.source, row.confidence,
                      row.status == "whitelisted", row.expires_at)
        rec = _Rec(row.entry_id, row.fraud_type, row.source, row.confidence, row.allowlisted,
                   _epoch(row.expires_at), row.label)
        self._put(_key(row.kind, row.value), rec)
        if row.kind in NAME_KINDS:
            self._extra_names.add((row.kind, row.value))
            self._automaton = None

    def remove(self, kind: str, value: str) -> None:
        """Forget an entry (expired, or no longer listed); the bundled allow-list stays."""
        self._put(_key(kind, value), _REMOVED)

    def _put(self, key: str, rec: _Rec) -> None:
        with self._lock:
            table, overlay = self._state
            overlay[key] = rec
            # Fold the overlay in when it rivals the table: amortised O(1) per change.
            if len(overlay) > max(100_000, len(table)):
                self._state = _State(_Table(self._merged(table, overlay)), {})

    @staticmethod
    def _merged(table: _Table, overlay: dict[str, _Rec]) -> Iterable[Row]:
        for key, rec in table.rows():
            if key not in overlay:
                yield _row(key, rec)
        for key, rec in overlay.items():
            if rec is not _REMOVED:
                yield _row(key, rec)

    # -- look-ups ------------------------------------------------------------------------------------

    def match(self, kind: str, value: str) -> list[Match]:
        """Entries that apply to `value` (raw; normalised here). Raises InvalidIndicator for bad values."""
        return self.match_normalized(kind, normalize_value(kind, value))

    def match_normalized(self, kind: str, value: str) -> list[Match]:
        """Entries that apply to an already normalised value, most specific first.

        The most specific entry decides: an allow-list entry overrides active entries of the same or a
        broader scope (95588, or a.evil.gov.cn under gov.cn), while an active entry narrower than any
        allow-list entry still matches (a phishing form docs.qq.com/form/x under the allow-listed qq.com).
        """
        table, overlay = self._state
        builtin = self._builtin
        found: list[tuple[tuple[int, int], str, str, _Rec]] = []
        find = table.find
        now = 0.0
        for rank, ckind, cvalue, key in _candidates(kind, value):
            rec = overlay.get(key) if overlay else None
            if rec is None:
                rec = find(key)
            if rec is not None:
                now = now or time.time()
                if rec.expires > now:  # _REMOVED has expired at -inf
                    found.append((rank, ckind, cvalue, rec))
            if key in builtin:
                found.append((rank, ckind, cvalue, builtin[key]))
        if not found:
            return []
        if len(found) == 1:
            rank, ckind, cvalue, rec = found[0]
            return [Match(rec.entry_id, ckind, cvalue, rec.fraud_type, rec.confidence, rec.source,
                          rec.allowlisted, rec.label)]
        allow_rank = max((f[0] for f in found if f[3].allowlisted), default=None)
        if allow_rank is not None:
            narrower = [f for f in found if not f[3].allowlisted and f[0] > allow_rank]
            found = narrower or [f for f in found if f[3].allowlisted]
        found.sort(key=lambda f: f[0], reverse=True)
        return [
            Match(rec.entry_id, ckind, cvalue, rec.fraud_type, rec.confidence, rec.source, rec.allowlisted,
                  rec.label)
            for _, ckind, cvalue, rec in found
        ]

    def match_indicator(self, indicator: Indicator) -> list[Match]:
        """Entries for an indicator found by the text detector ([] for kinds no watchlist holds)."""
        kind, value = indicator.kind, indicator.value
        if kind == "email":
            kind, value = "domain", str(indicator.attributes.get("domain") or value.rpartition("@")[2])
        checks = _INDICATOR_KINDS.get(kind, ())
        out: list[Match] = []
        for wkind in checks:
            try:
                out.extend(self.match(wkind, value))
            except InvalidIndicator:
                continue
        return out

    def scan_text(self, text: str) -> list[Match]:
        """Listed app names and IM IDs anywhere in free text (e.g. a chat transcript), once each."""
        norm = unicodedata.normalize("NFKC", text).lower()
        seen: set[tuple[str, str]] = set()
        out: list[Match] = []
        for kind, value in self._names_in(norm):
            if (kind, value) not in seen:
                seen.add((kind, value))
                out.extend(self.match_normalized(kind, value))
        return out

    def _names_in(self, norm: str) -> Iterable[tuple[str, str]]:
        automaton = self._automaton or self._build_automaton()
        if len(automaton):
            for last, (kind, value) in automaton.iter(norm):
                start, end = last + 1 - len(value), last + 1
                if (_word_char(norm, start - 1) and _word_char(norm, start)) or (
                    _word_char(norm, end) and _word_char(norm, end - 1)
                ):
                    continue  # "zoom" inside "zoomed"
                yield kind, value
        for m in _TOKEN.finditer(norm):
            token = m.group(0)
            if token.startswith("@"):
                yield "telegram", token
                continue
            yield "wechat", token
            yield "telegram", "@" + token
            if token.isdigit():
                yield "qq", token
                continue
            # A cue glued to the ID ("qq88886666", "vxkf_8888"): the ID is the rest.
            for cue, kind in _GLUED_CUES:
                if token.startswith(cue) and len(token) > len(cue) + 4:
                    yield kind, ("@" if kind == "telegram" else "") + token[len(cue):]

    def _build_automaton(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        names = {*self._state.table.names, *self._extra_names}
        for key in self._builtin:
            kind, value = key.split("\x00", 1)
            if kind in NAME_KINDS:
                names.add((kind, value))
        for kind, value in names:
            automaton.add_word(value, (kind, value))
        if names:
            automaton.make_automaton()
        self._automaton = automaton
        return automaton


_INDICATOR_KINDS: dict[str, tuple[str, ...]] = {
    "phone": ("phone",),
    "url": ("url",),
    "domain": ("domain",),
    "bank_card": ("bank_card", "payment_account"),
    "payment_account": ("payment_account",),
    "qq": ("qq",),
    "wechat": ("wechat",),
    "telegram": ("telegram",),
    "app": ("app",),
    "wallet": ("wallet",),
    "ip": ("ip",),
}


def _word_char(text: str, i: int) -> bool:
    if i < 0 or i >= len(text):
        return False
    c = text[i]
    return c.isascii() and (c.isalnum() or c == "_")


def _is_ip(host: str) -> bool:
    return host.startswith("[") or host.replace(".", "").isdigit()


_Candidate = tuple[tuple[int, int], str, str, str]  # (specificity, kind, value, index key)


def _domains(out: list[_Candidate], host: str, labels: int) -> None:
    """a.b.evil.com → a.b.evil.com, b.evil.com, evil.com (never the bare TLD), as domain candidates."""
    i = 0
    while labels >= 2:
        suffix = host[i:] if i else host
        out.append(((labels, 0), "domain", suffix, "domain\x00" + suffix))
        i = host.index(".", i) + 1
        labels -= 1


def _candidates(kind: str, value: str) -> list[_Candidate]:
    """(specificity, kind, value, key) of every entry that could apply; larger specificity = narrower.

    A list built with slicing and counting, not a generator of splits: a URL check makes half a dozen.
    """
    out: list[_Candidate] = []
    if kind == "url":
        cut = value.find("/")
        host_port = value if cut < 0 else value[:cut]
        if host_port.startswith("["):
            host = host_port[: host_port.index("]") + 1]
        else:
            colon = host_port.find(":")
            host = host_port if colon < 0 else host_port[:colon]
        ip = _is_ip(host)
        full = 128 if ip else host.count(".") + 1
        # URL entries match at path-segment boundaries: evil.com/a matches evil.com/a/b, not evil.com/ab.
        base = 1 - len(host_port)
        prefix = value
        while True:
            out.append(((full, base + len(prefix)), "url", prefix, "url\x00" + prefix))
            cut = prefix.rfind("/")
            if cut < 0:
                break
            prefix = prefix[:cut]
        if ip:
            address = host.strip("[]")
            out.append(((full, 0), "ip", address, "ip\x00" + address))
        else:
            _domains(out, host, full)
    elif kind == "domain":
        labels = value.count(".") + 1
        out.append(((labels, 1), "url", value, "url\x00" + value))
        _domains(out, value, labels)
    else:
        out.append(((0, 0), kind, value, f"{kind}\x00{value}"))
    return out


def _row(key: str, rec: _Rec) -> Row:
    kind, value = key.split("\x00", 1)
    expires = None if rec.expires == NEVER else datetime.fromtimestamp(rec.expires, UTC).replace(tzinfo=None)
    return Row(rec.entry_id, kind, value, rec.fraud_type, rec.source, rec.confidence, rec.allowlisted,
               expires, rec.label)


@functools.cache
def _builtin_records() -> tuple[tuple[str, _Rec], ...]:
    """The bundled allow-list (allowlist.yaml plus the official numbers and domains of brands.yaml)."""
    data = _yaml(ALLOWLIST_FILE)
    brands = _yaml(BRANDS_FILE)
    entries: list[tuple[str, str, str]] = [
        ("phone", str(number), str(label)) for number, label in brands["official_numbers"].items()
    ]
    for brand in brands["brands"].values():
        name = str(brand["name"])
        entries += [("phone", str(n), f"{name}客服") for n in brand.get("service_numbers") or ()]
        entries += [("domain", str(d), name) for d in brand["domains"]]
    for kind, values in data.items():
        entries += [(str(kind), str(value), str(label)) for value, label in values.items()]
    out: dict[str, _Rec] = {}
    for kind, raw, label in entries:
        try:
            value = normalize_value(kind, raw)
        except InvalidIndicator as exc:
            raise ValueError(f"allow-list ({ALLOWLIST_FILE.name} or {BRANDS_FILE.name}): {exc}") from exc
        out.setdefault(_key(kind, value), _Rec(None, None, BUILTIN_SOURCE, 1.0, True, NEVER, label))
    return tuple(out.items())


def _yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
