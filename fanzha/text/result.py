"""Result types shared by the library, the CLI and the API: one shape, one serializer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

Verdict = Literal["fraud", "suspicious", "normal"]
AttrValue = str | int | float | bool | None

# The result types below keep a __dict__ (no slots=True) on purpose: orjson serialises a dataclass by reading
# its __dict__ directly, but one with __slots__ through a getattr per field, which took twice as long; the
# JSON is the same (fields in declaration order). Serialising results is a sixth of batch detection.


@dataclass
class Indicator:
    """A fraud-relevant element (涉诈要素) found in a text.

    `value` is the normalised form used for matching (E.164 phone, lower-case domain, digits of a card);
    `text` and the span point into the original input.
    """

    kind: str
    value: str
    text: str
    start: int
    end: int
    score: float
    explanation: str
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    turn: int | None = None


@dataclass
class Evidence:
    """A typology rule or phrase that matched, with its span in the original text."""

    rule: str
    fraud_type: str | None
    text: str
    start: int
    end: int
    weight: float
    description: str
    turn: int | None = None


@dataclass
class Detection:
    """The result of examining one message or dialogue."""

    verdict: Verdict
    risk: int
    fraud_type: str | None
    fraud_type_name: str | None
    evidence: list[Evidence]
    indicators: list[Indicator]
    advice: str | None
    model_version: str
    turn: int | None = None
    first_alert_turn: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self)
