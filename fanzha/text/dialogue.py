"""Call transcripts: scored as a whole and turn by turn, so a live call can be warned about early."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from fanzha.text.detector import Detector, InvalidInput
from fanzha.text.result import Detection

Speaker = Literal["caller", "callee"]
SPEAKERS: tuple[str, ...] = ("caller", "callee")
TURN_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Speaker
    text: str


def parse_turns(raw: object) -> list[Turn]:
    """Validate `[{"speaker": "caller"|"callee", "text": str}, …]` and return turns, or raise InvalidInput."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("turns must be a non-empty list")
    turns = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"turn {i} must be an object with speaker and text")
        speaker, text = item.get("speaker"), item.get("text")
        if speaker not in SPEAKERS:
            raise InvalidInput(f"turn {i}: speaker must be 'caller' or 'callee', got {speaker!r}")
        if not isinstance(text, str):
            raise InvalidInput(f"turn {i}: text must be a string")
        turns.append(Turn(speaker, text))  # type: ignore[arg-type]
    return turns


def transcript(turns: Iterable[Turn]) -> str:
    """The text a dialogue is scored on (the same form the model was trained on)."""
    return TURN_SEPARATOR.join(t.text for t in turns)


class DialogueSession:
    """A call in progress: `add_turn` returns the result for the call so far."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.turns: list[Turn] = []
        self.first_alert_turn: int | None = None
        self.result: Detection | None = None

    def add_turn(self, speaker: Speaker, text: str) -> Detection:
        if speaker not in SPEAKERS:
            raise InvalidInput(f"speaker must be 'caller' or 'callee', got {speaker!r}")
        if not isinstance(text, str):
            raise InvalidInput("turn text must be a string")
        self.turns.append(Turn(speaker, text))
        full = transcript(self.turns)
        if not full.strip():
            raise InvalidInput("the dialogue has no text yet")
        detection = self.detector.detect(full)
        turn = len(self.turns) - 1
        if self.first_alert_turn is None and detection.verdict == "fraud":
            self.first_alert_turn = turn
        self.result = _localise(detection, self.turns, turn, self.first_alert_turn)
        return self.result


def _localise(d: Detection, turns: list[Turn], turn: int, first_alert: int | None) -> Detection:
    """Re-express spans of the joined transcript as (turn, offset within that turn)."""
    starts = []
    pos = 0
    for t in turns:
        starts.append(pos)
        pos += len(t.text) + len(TURN_SEPARATOR)

    def where(start: int, end: int) -> tuple[int, int, int]:
        k = bisect.bisect_right(starts, start) - 1
        return k, start - starts[k], min(end, starts[k] + len(turns[k].text)) - starts[k]

    evidence = []
    for e in d.evidence:
        k, s, t = where(e.start, e.end)
        evidence.append(replace(e, turn=k, start=s, end=t))
    indicators = []
    for ind in d.indicators:
        k, s, t = where(ind.start, ind.end)
        indicators.append(replace(ind, turn=k, start=s, end=t))
    return replace(d, evidence=evidence, indicators=indicators, turn=turn, first_alert_turn=first_alert)


def detect_dialogue(detector: Detector, turns: list[Turn]) -> Detection:
    """Score a whole transcript; `first_alert_turn` tells how early the fraud became visible."""
    session = DialogueSession(detector)
    for t in turns:
        session.add_turn(t.speaker, t.text)
    assert session.result is not None
    return session.result
