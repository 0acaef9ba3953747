"""Load and validate the fraud typology: one YAML file per fraud type plus generic signals.
A new keyword or pattern is a data change in `knowledge/typology/`; this module only checks it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

# Canonical order: the rules engine's feature vector follows it, so it must stay stable.
FRAUD_TYPE_CODES: tuple[str, ...] = (
    "impersonate_police",
    "impersonate_customer_service",
    "impersonate_acquaintance",
    "fake_loan",
    "fake_credit_repair",
    "brushing_rebate",
    "fake_investment",
    "romance_scam",
    "fake_shopping",
    "game_trading",
    "prize_lottery",
    "billing_arrears",
    "refund_subsidy",
    "kidnapping_emergency",
    "phishing_account",
    "sextortion",
    "card_trafficking",
    "gambling",
    "other_fraud",
)

TYPOLOGY_DIR = Path(__file__).resolve().parent / "typology"
SIGNALS_FILE = "_signals.yaml"
# Patterns run on normalised text; DOTALL so that ".{0,10}" may span a line break between dialogue turns.
REGEX_FLAGS = re.DOTALL
MIN_WEIGHT, MAX_WEIGHT = 0.1, 1.0
_ID_RE = re.compile(r"[a-z0-9_]+")

SignalKind = Literal["risk", "legitimacy"]


class TypologyError(ValueError):
    """Bad typology data; the message names the file and the offending entry."""


@dataclass(frozen=True, slots=True)
class Keyword:
    term: str
    weight: float
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regex on normalised text.

    `requires`: literals of which every match contains at least one. Optional: the rules engine
    derives them from the regex; give them only where it cannot (it then trusts them blindly).
    """

    id: str
    pattern: str
    weight: float
    description: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Signal:
    """A generic signal not tied to one fraud type: exactly one of `term` and `pattern` is set.

    Risk signals have positive weights; legitimacy signals (publicity, official reminders, news)
    negative ones.
    """

    id: str
    kind: SignalKind
    weight: float
    description: str
    term: str | None = None
    pattern: str | None = None
    requires: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FraudType:
    code: str
    name: str
    description: str
    typical_script: str
    keywords: tuple[Keyword, ...]
    patterns: tuple[Pattern, ...]
    advice: str
    teleantifraud_labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Typology:
    """All fraud types (in canonical order) and the generic signals."""

    types: Mapping[str, FraudType]
    signals: tuple[Signal, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.types)

    def get(self, code: str) -> FraudType:
        try:
            return self.types[code]
        except KeyError:
            raise KeyError(f"unknown fraud type code: {code!r}") from None

    def name(self, code: str) -> str:
        return self.get(code).name

    def advice(self, code: str) -> str:
        return self.get(code).advice

    def label_map(self) -> dict[str, str]:
        """TeleAntiFraud dialogue labels -> fraud type code (ambiguous labels are absent)."""
        return {label: t.code for t in self.types.values() for label in t.teleantifraud_labels}


def load_typology(path: Path | None = None) -> Typology:
    """Load `<code>.yaml` files and `_signals.yaml` from `path` (default: the bundled typology)."""
    root = Path(path) if path is not None else TYPOLOGY_DIR
    if not root.is_dir():
        raise TypologyError(f"{root}: typology directory not found")
    found: dict[str, FraudType] = {}
    for file in sorted(root.glob("*.yaml")):
        if file.name == SIGNALS_FILE:
            continue
        ft = _parse_type(file, _read(file))
        if ft.code in found:
            raise TypologyError(f"{file.name}: duplicate fraud type code {ft.code!r}")
        found[ft.code] = ft
    missing = set(FRAUD_TYPE_CODES) - set(found)
    extra = set(found) - set(FRAUD_TYPE_CODES)
    if missing or extra:
        raise TypologyError(
            f"{root}: fraud type codes must be exactly the known set; "
            f"missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    types = {code: found[code] for code in FRAUD_TYPE_CODES}
    labels: dict[str, str] = {}
    for ft in types.values():
        for label in ft.teleantifraud_labels:
            if label in labels:
                raise TypologyError(
                    f"{ft.code}.yaml: teleantifraud label {label!r} already mapped to {labels[label]!r}"
                )
            labels[label] = ft.code
    signals_file = root / SIGNALS_FILE
    if not signals_file.is_file():
        raise TypologyError(f"{signals_file}: signals file not found")
    return Typology(types=types, signals=_parse_signals(signals_file, _read(signals_file)))


# The C loader is the same safe subset as yaml.safe_load, ~8x faster on these files.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(file: Path) -> dict[str, Any]:
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise TypologyError(f"{file.name}: cannot read YAML: {e}") from e
    if not isinstance(data, dict):
        raise TypologyError(f"{file.name}: top level must be a mapping, got {type(data).__name__}")
    return data


class _Ctx:
    """Field access with error messages that name the file and the path inside it."""

    def __init__(self, file: Path, data: Mapping[str, Any], where: str = "") -> None:
        self.file, self.data, self.where = file, data, where

    def fail(self, msg: str) -> TypologyError:
        loc = f" {self.where}" if self.where else ""
        return TypologyError(f"{self.file.name}:{loc} {msg}")

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"field {key!r} must be a non-empty string")
        return value.strip()

    def req_text(self, key: str) -> str:
        value = self.text(key)
        assert value is not None
        return value

    def weight(self, lo: float = MIN_WEIGHT, hi: float = MAX_WEIGHT) -> float:
        value = self.data.get("weight")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"field 'weight' must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(f"weight {value} outside [{lo}, {hi}]")
        return float(value)

    def items(self, key: str, *, optional: bool = False) -> list[_Ctx]:
        value = self.data.get(key)
        if value is None and optional:
            return []
        if not isinstance(value, list):
            raise self.fail(f"field {key!r} must be a list")
        out = []
        for i, item in enumerate(value):
            sub = _Ctx(self.file, {}, f"{key}[{i}]")
            if not isinstance(item, dict):
                raise sub.fail("must be a mapping")
            sub.data = item
            out.append(sub)
        return out

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"field {key!r} must be a list of non-empty strings")
        return tuple(value)

    def regex(self, key: str = "pattern") -> str:
        pattern = self.req_text(key)
        try:
            compiled = re.compile(pattern, REGEX_FLAGS)
        except re.error as e:
            raise self.fail(f"pattern {pattern!r} does not compile: {e}") from e
        if compiled.match(""):
            raise self.fail(f"pattern {pattern!r} matches the empty string")
        return pattern

    def ident(self) -> str:
        value = self.req_text("id")
        if not _ID_RE.fullmatch(value):
            raise self.fail(f"id {value!r} must match [a-z0-9_]+")
        return value

    def term(self) -> str:
        term = self.req_text("term")
        # Keywords match normalised text, which has lower-case ASCII.
        if term != term.lower():
            raise self.fail(f"term {term!r} must be lower-case (terms match normalised text)")
        return term


def _parse_type(file: Path, data: dict[str, Any]) -> FraudType:
    top = _Ctx(file, data)
    code = top.req_text("code")
    if file.stem != code:
        raise top.fail(f"code {code!r} must equal the file name stem {file.stem!r}")
    keywords: list[Keyword] = []
    seen_terms: set[str] = set()
    for kc in top.items("keywords"):
        kw = Keyword(kc.term(), kc.weight(), kc.text("description", optional=True))
        if kw.term in seen_terms:
            raise kc.fail(f"duplicate term {kw.term!r}")
        seen_terms.add(kw.term)
        keywords.append(kw)
    patterns: list[Pattern] = []
    seen_ids: set[str] = set()
    for pc in top.items("patterns"):
        p = Pattern(pc.ident(), pc.regex(), pc.weight(), pc.req_text("description"), pc.strings("requires"))
        if p.id in seen_ids:
            raise pc.fail(f"duplicate pattern id {p.id!r}")
        seen_ids.add(p.id)
        patterns.append(p)
    if not keywords and not patterns:
        raise top.fail("a fraud type needs keywords or patterns")
    return FraudType(
        code=code,
        name=top.req_text("name"),
        description=top.req_text("description"),
        typical_script=top.req_text("typical_script"),
        keywords=tuple(keywords),
        patterns=tuple(patterns),
        advice=top.req_text("advice"),
        teleantifraud_labels=top.strings("teleantifraud_labels"),
    )


def _parse_signals(file: Path, data: dict[str, Any]) -> tuple[Signal, ...]:
    top = _Ctx(file, data)
    signals: list[Signal] = []
    seen: set[str] = set()
    kinds: tuple[tuple[SignalKind, float, float], ...] = (
        ("risk", MIN_WEIGHT, MAX_WEIGHT),
        ("legitimacy", -MAX_WEIGHT, -MIN_WEIGHT),
    )
    for kind, lo, hi in kinds:
        for sc in top.items(kind):
            sid = sc.ident()
            if sid in seen:
                raise sc.fail(f"duplicate signal id {sid!r}")
            seen.add(sid)
            has_term, has_pattern = "term" in sc.data, "pattern" in sc.data
            if has_term == has_pattern:
                raise sc.fail("a signal needs exactly one of 'term' and 'pattern'")
            signals.append(
                Signal(
                    id=sid,
                    kind=kind,
                    weight=sc.weight(lo, hi),
                    description=sc.req_text("description"),
                    term=sc.term() if has_term else None,
                    pattern=sc.regex() if has_pattern else None,
                    requires=sc.strings("requires"),
                )
            )
    if not signals:
        raise top.fail("no signals defined under 'risk' or 'legitimacy'")
    return tuple(signals)
