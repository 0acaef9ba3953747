"""Warning tasks (预警劝阻) as pure rules: validation, priority, deadlines, dedupe keys and statistics."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fanzha.intel.watchlist import InvalidIndicator, normalize_value
from fanzha.privacy import mask_card, mask_name, mask_phone

SOURCES = ("detection", "watchlist", "partner")
STATUSES = ("open", "closed")
OUTCOMES = ("dissuaded", "already_defrauded", "unreachable", "false_alarm")
OUTCOME_NAMES = {
    "dissuaded": "劝阻成功",
    "already_defrauded": "已被骗",
    "unreachable": "无法联系",
    "false_alarm": "误报",
}
CONTACT_METHODS = ("phone", "visit", "sms", "video")
# Outcomes that mean someone spoke with the person (counted in the dissuasion rate's denominator).
REACHED_OUTCOMES = ("dissuaded", "already_defrauded")

# Priority table (1 = most urgent): a risk band gives the base, a large sum at stake makes it more urgent.
RISK_BANDS = ((90, 2), (75, 3), (50, 4), (0, 5))  # risk ≥ threshold → base priority
AMOUNT_BANDS = ((50_000, 2), (5_000, 1), (0, 0))  # amount (元) ≥ threshold → steps more urgent
MIN_DUE_MINUTES = 5
MAX_DETAIL_ENTRIES = 50  # merged detail is kept bounded: the newest signals win
_REGION = re.compile(r"^\d{6}$")
_ACCOUNT_NOISE = re.compile(r"[\s\-]+")


class InvalidWarning(ValueError):
    """A warning request that cannot become a task."""


@dataclass(slots=True)
class WarningRequest:
    """A request to contact a person now; validated and normalised on construction."""

    region_code: str
    source: str
    risk: int
    person_phone: str | None = None
    person_account: str | None = None
    person_name: str | None = None
    fraud_type: str | None = None
    amount_at_stake: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.region_code, str) or not _REGION.match(self.region_code):
            raise InvalidWarning("region_code must be 6 digits (GB/T 2260 行政区划代码)")
        if self.source not in SOURCES:
            raise InvalidWarning(f"source must be one of {', '.join(SOURCES)}")
        if isinstance(self.risk, bool) or not isinstance(self.risk, int) or not 0 <= self.risk <= 100:
            raise InvalidWarning("risk must be an integer from 0 to 100")
        amount = self.amount_at_stake
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount < float("inf"):
            raise InvalidWarning("amount_at_stake must be a number ≥ 0")
        self.amount_at_stake = float(amount)
        if self.person_phone:
            try:
                self.person_phone = normalize_value("phone", self.person_phone)
            except InvalidIndicator as exc:
                raise InvalidWarning(f"person_phone: {exc}") from exc
            if not self.person_phone.startswith("+"):
                # Service lines (110, 95588, 400 numbers) normalise to bare digits: nobody to visit there.
                raise InvalidWarning("person_phone must be a person's number, not a service line")
        if self.person_account:
            self.person_account = normalize_account(self.person_account)
        if not self.person_phone and not self.person_account:
            raise InvalidWarning("a warning needs person_phone or person_account to reach the person")
        self.person_phone = self.person_phone or None
        self.person_account = self.person_account or None
        self.person_name = (self.person_name or "").strip() or None
        if not isinstance(self.detail, dict):
            raise InvalidWarning("detail must be an object")

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.person_phone, self.person_account)


def masked_person(phone: str | None, account: str | None, name: str | None) -> dict[str, str | None]:
    """The person's phone, account and name as shown to those who do not need them raw."""
    return {
        "person_phone": mask_phone(phone) if phone else None,
        "person_account": mask_card(account) if account else None,
        "person_name": mask_name(name) if name else None,
    }


def normalize_account(raw: str) -> str:
    """Bank or payment account as the person's identity: separators dropped, letters lower-cased."""
    value = _ACCOUNT_NOISE.sub("", raw).lower()
    if not value or len(value) > 64:
        raise InvalidWarning("person_account must have 1 to 64 characters")
    return value


def dedupe_key(phone: str | None, account: str | None) -> str:
    """One person, one open task: the phone wins over the account because it is how we reach them."""
    if phone:
        return f"phone:{phone}"
    if account:
        return f"account:{account}"
    raise InvalidWarning("a warning needs person_phone or person_account")


def priority(risk: int, amount: float) -> int:
    """1 (most urgent) … 5 from risk and amount at stake; see docs/warnings.md for the table."""
    base = next(p for threshold, p in RISK_BANDS if risk >= threshold)
    bump = next(steps for threshold, steps in AMOUNT_BANDS if amount >= threshold)
    return max(1, base - bump)


def due_minutes(prio: int, base_minutes: int) -> int:
    """Priority 1 must be contacted in a third of the usual time: money is about to leave."""
    if prio == 1:
        return max(MIN_DUE_MINUTES, base_minutes // 3)
    return base_minutes


def due_at(now: datetime, prio: int, base_minutes: int) -> datetime:
    return now + timedelta(minutes=due_minutes(prio, base_minutes))


def covering_regions(region_code: str) -> tuple[str, ...]:
    """Region codes whose area contains `region_code`, most specific first (district, city, province)."""
    codes = (region_code, region_code[:4] + "00", region_code[:2] + "0000")
    return tuple(dict.fromkeys(codes))


def escalated_priority(prio: int) -> int:
    return max(1, prio - 1)


def merged_detail(
    existing: Mapping[str, Any] | None, incoming: Mapping[str, Any], at: datetime
) -> dict[str, Any]:
    """The task's detail keeps every signal that raised or merged into it, newest last, bounded."""
    current = dict(existing or {})
    signals = list(current.get("signals", []))
    signals.append({"at": at.isoformat(timespec="seconds"), **incoming})
    current["signals"] = signals[-MAX_DETAIL_ENTRIES:]
    return current


def warning_from_detection(
    detection: Any, recipient_phone: str, region_code: str, amount: float = 0
) -> WarningRequest | None:
    """The warning to raise for a person who received a detected message, or None if it does not warrant one.

    A warning is raised when the verdict is fraud or the message carries an indicator on the watchlist;
    `detection` is the detection API's answer (`watchlist_hits` beside the `Detection` fields) as an
    object or a dict; a plain `Detection` has no hits and counts by its verdict.
    """
    verdict = _field(detection, "verdict")
    hits = watchlist_hits(detection)
    if verdict != "fraud" and not hits:
        return None
    risk = int(_field(detection, "risk") or 0)
    if hits:
        # A known fraud indicator is evidence by itself, even if the wording looked harmless.
        risk = max(risk, max(round(float(h.get("confidence", 0.8)) * 100) for h in hits))
    detail = {
        "verdict": verdict,
        "risk": _field(detection, "risk"),
        "fraud_type": _field(detection, "fraud_type"),
        "model_version": _field(detection, "model_version"),
        "evidence": [_field(e, "rule") for e in (_field(detection, "evidence") or [])],
        "watchlist_hits": hits,
    }
    return WarningRequest(
        region_code=region_code,
        source="watchlist" if hits else "detection",
        risk=min(100, risk),
        person_phone=recipient_phone,
        fraud_type=_field(detection, "fraud_type") or _first(hits, "fraud_type"),
        amount_at_stake=amount,
        detail=detail,
    )


def watchlist_hits(detection: Any) -> list[dict[str, Any]]:
    """The detection's watchlist matches that count against the sender; allow-listed ones (96110) do not."""
    out = []
    for hit in _field(detection, "watchlist_hits") or []:
        d = _as_dict(hit)
        if not d.get("allowlisted"):
            out.append({k: d.get(k) for k in ("kind", "value", "fraud_type", "source", "confidence")})
    return out


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _first(items: list[dict[str, Any]], key: str) -> Any:
    return next((i[key] for i in items if i.get(key)), None)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "model_dump"):
        return dict(obj.model_dump())
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"cannot read a watchlist hit from {type(obj).__name__}")


@dataclass(slots=True, frozen=True)
class WarningFacts:
    """What the statistics need to know about one warning."""

    created_at: datetime
    region_code: str
    status: str
    outcome: str | None
    first_contact_at: datetime | None
    reached: bool
    escalated: bool


@dataclass(slots=True)
class WarningStats:
    """Volume, speed and effect of the warning work in a period (the `stats` answer of API and CLI)."""

    date_from: date
    date_to: date
    region_prefix: str | None
    total: int
    open: int
    closed: int
    escalated: int
    by_day_region: list[dict[str, Any]]
    by_outcome: dict[str, int]
    contacted: int
    median_minutes_to_first_contact: float | None
    reached_closed: int
    dissuasion_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date_from"], d["date_to"] = self.date_from.isoformat(), self.date_to.isoformat()
        return d


def summarize(
    facts: Iterable[WarningFacts], date_from: date, date_to: date, region_prefix: str | None = None
) -> WarningStats:
    """Statistics over warnings created in [date_from, date_to].

    The dissuasion rate is dissuaded / closed tasks whose person was reached (a reached contact, or an
    outcome that implies one); false alarms are left out, since there was nobody to dissuade.
    """
    rows = list(facts)
    per_day_region = Counter((f.created_at.date().isoformat(), f.region_code) for f in rows)
    outcomes = Counter(f.outcome for f in rows if f.status == "closed")
    minutes = [(f.first_contact_at - f.created_at).total_seconds() / 60 for f in rows if f.first_contact_at]
    reached_closed = [
        f
        for f in rows
        if f.status == "closed"
        and f.outcome != "false_alarm"
        and (f.reached or f.outcome in REACHED_OUTCOMES)
    ]
    dissuaded = sum(1 for f in reached_closed if f.outcome == "dissuaded")
    return WarningStats(
        date_from=date_from,
        date_to=date_to,
        region_prefix=region_prefix,
        total=len(rows),
        open=sum(1 for f in rows if f.status == "open"),
        closed=sum(1 for f in rows if f.status == "closed"),
        escalated=sum(1 for f in rows if f.escalated),
        by_day_region=[
            {"day": day, "region_code": region, "count": n}
            for (day, region), n in sorted(per_day_region.items())
        ],
        by_outcome={o: outcomes.get(o, 0) for o in OUTCOMES},
        contacted=len(minutes),
        median_minutes_to_first_contact=round(statistics.median(minutes), 1) if minutes else None,
        reached_closed=len(reached_closed),
        dissuasion_rate=round(dissuaded / len(reached_closed), 4) if reached_closed else None,
    )
