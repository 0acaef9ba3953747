"""Request and response shapes of the detection API; results reuse the library's `Detection` dataclass,
so the API's JSON, the CLI's JSON and the Python objects cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fanzha.intel.matcher import Match
from fanzha.text.result import Detection

# A dialogue is re-scored after every turn, so its cost grows with the square of its length.
MAX_TURNS = 200
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = (-(2**63), 2**64 - 1)


def scrub(text: str) -> str:
    """Lone surrogates (JSON allows an unpaired "\\ud800" escape) become U+FFFD: they cannot be written
    back as UTF-8, and replacing one character by one keeps every span offset of the result valid."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def json_safe(value: Any) -> Any:
    """A parsed JSON value that can be written back: strings scrubbed, integers beyond 64 bits as text."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        return str(value)
    return value


Text = Annotated[str, AfterValidator(scrub)]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: Literal["caller", "callee"]
    text: Text


class Recipient(BaseModel):
    """The person who received the message: with it, a fraud verdict raises a warning task (预警)."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=32, examples=["13800138000"])
    region_code: str = Field(pattern=r"^\d{6}$", description="行政区划代码 (GB/T 2260)", examples=["330106"])


class DetectIn(BaseModel):
    """One message (`text`) or one call transcript (`turns`)."""

    # Unknown fields are refused: a misspelt "recipent" must not silently skip the warning.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "【工商银行】您的账户存在异常，请立即登录 http://icbc-verify.top"}]
        },
    )

    text: Text | None = None
    turns: list[TurnIn] | None = Field(default=None, min_length=1, max_length=MAX_TURNS)
    recipient: Recipient | None = None
    amount: float = Field(default=0, ge=0, le=1e12, description="amount at stake (元), sets the priority")

    @model_validator(mode="after")
    def _text_or_turns(self) -> DetectIn:
        if (self.text is None) == (self.turns is None):
            raise ValueError("give either text or turns")
        return self


BATCH_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"description": "echoed back with the result"},
        "text": {"type": "string"},
        "turns": {"type": "array", "items": TurnIn.model_json_schema()},
    },
}


class BatchIn(BaseModel):
    """Items are checked one by one, so a bad item becomes an error result instead of failing the batch."""

    items: Annotated[list[Any], AfterValidator(json_safe)] = Field(
        json_schema_extra={"items": BATCH_ITEM_SCHEMA}
    )


@dataclass(frozen=True, slots=True)
class WatchlistHit(Match):
    """A watchlist entry, or an allow-list entry (`allowlisted`), that applies to a value of the text;
    `indicator` is that value (an entry can be broader: "evil.com" for a link to a.evil.com/x)."""

    indicator: str = ""


@dataclass(slots=True)
class DetectOut(Detection):
    """A `Detection` plus what the service adds: watchlist hits and the warning it raised, if any."""

    watchlist_hits: list[WatchlistHit] = field(default_factory=list)
    warning_id: Annotated[int | None, Field(description="the warning task raised for the recipient")] = None
    warning_merged: Annotated[bool | None, Field(description="merged into the person's open task")] = None


@dataclass(slots=True)
class BatchDetection(Detection):
    """A batch result: the item's `id` followed by the fields of its `Detection` and its watchlist hits."""

    id: Any = None
    watchlist_hits: list[WatchlistHit] = field(default_factory=list)


class BatchError(BaseModel):
    """An item that cannot be examined: `line` is its 1-based position in `items`."""

    id: Any = None
    line: int
    error: str


class BatchOut(BaseModel):
    results: list[BatchDetection | BatchError]
