"""fanzha 反诈: recognise, warn about and stop telecom and online fraud.

`fanzha.detect(text)` and `fanzha.detect_dialogue(turns)` use a detector built once from the bundled
typology and model; build your own `fanzha.text.detector.Detector` to use other settings.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanzha.text.detector import Detector
    from fanzha.text.result import Detection

__version__ = "0.1.0"
__all__ = ["default_detector", "detect", "detect_dialogue"]


@cache
def default_detector() -> Detector:
    from fanzha.text.detector import Detector

    return Detector.from_settings()


def detect(text: str) -> Detection:
    """Examine one message (SMS, chat message, any text)."""
    return default_detector().detect(text)


def detect_dialogue(turns: list[dict[str, str]]) -> Detection:
    """Examine a call transcript `[{"speaker": "caller"|"callee", "text": …}, …]` as a whole."""
    from fanzha.text.dialogue import detect_dialogue as run
    from fanzha.text.dialogue import parse_turns

    return run(default_detector(), parse_turns(turns))
