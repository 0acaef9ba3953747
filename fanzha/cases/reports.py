"""Public reports (我要举报): validation of a tip-off and the summary of its detection that is stored."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from fanzha.intel.watchlist import KINDS, InvalidIndicator, normalize_value

STATUSES = ("pending", "accepted", "rejected")
DECISIONS = ("accept", "reject")
MAX_TEXT_CHARS = 20_000
_REGION = re.compile(r"^\d{6}$")
_FRAUD_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class InvalidReport(ValueError):
    """A report that cannot be accepted as given."""


@dataclass(slots=True)
class ReportRequest:
    """One tip-off from the public; `value` is normalised on construction so duplicates meet."""

    kind: str
    value: str
    fraud_type: str | None = None
    message_text: str = ""
    screenshot_text: str = ""
    region_code: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidReport(f"kind must be one of {', '.join(KINDS)}")
        try:
            self.value = normalize_value(self.kind, self.value)
        except InvalidIndicator as exc:
            raise InvalidReport(f"value: {exc}") from exc
        self.fraud_type = check_fraud_type(self.fraud_type)
        if self.region_code is not None and not _REGION.match(self.region_code):
            raise InvalidReport("region_code must be 6 digits (GB/T 2260 行政区划代码)")
        for name in ("message_text", "screenshot_text"):
            if len(getattr(self, name)) > MAX_TEXT_CHARS:
                raise InvalidReport(f"{name} is longer than {MAX_TEXT_CHARS} characters")

    def text_to_examine(self) -> str:
        """What the detector reads: the message and the text recognised in its screenshots."""
        return "\n".join(t for t in (self.message_text, self.screenshot_text) if t.strip())


def check_fraud_type(fraud_type: str | None, known: Collection[str] | None = None) -> str | None:
    """Fraud type codes are stable snake_case (e.g. impersonate_police), one of `known` when given."""
    if fraud_type is None or fraud_type == "":
        return None
    if not _FRAUD_TYPE.match(fraud_type) or (known is not None and fraud_type not in known):
        raise InvalidReport("fraud_type must be a known fraud type code such as impersonate_police")
    return fraud_type


def detection_summary(detection: Any) -> dict[str, Any]:
    """The part of a detection worth keeping with a report: enough to rank and review, no long evidence."""
    return {
        "verdict": detection.verdict,
        "risk": detection.risk,
        "fraud_type": detection.fraud_type,
        "fraud_type_name": detection.fraud_type_name,
        "model_version": detection.model_version,
        "rules": [e.rule for e in detection.evidence],
        "indicators": [{"kind": i.kind, "value": i.value} for i in detection.indicators],
    }
