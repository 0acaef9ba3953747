"""Recogniser base (Presidio-style): declared patterns, context words, validation, scored results."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple

from fanzha.text.normalize import NormalizedText
from fanzha.text.result import AttrValue, Indicator

Gate = Callable[[str], bool]

_ANY_DIGIT = re.compile(rb"[0-9]")
# (text, answer) of the last has_digit() call: the digit recognisers' gates ask in a row about one text.
_last_digit_check: tuple[str | None, bool] = (None, False)
# (text, ascii_part(text)) of the last call, for the same reason.
_last_ascii: tuple[str | None, bytes] = (None, b"")
# Words right before a number that say it is an order/serial number, not a phone or a card.
NEG_NUMBER_CONTEXT = re.compile(r"订单|单号|编号|流水|工号|学号|批次|序列号|条码|编码|合同号|票号|快递号")
NEG_NUMBER_WINDOW = 6


def ascii_part(text: str) -> bytes:
    """The ASCII characters of `text` in order, the others dropped: a few bytes for most Chinese messages.

    A match of a pattern made of ASCII characters only (no look-arounds) is a run of ASCII characters of
    the text, so it is a substring of this too: searching these few bytes first is an exact pre-check that
    spares most texts the regex scan over all their characters (encoding costs ~0.1 us, a scan ~0.3 us).
    """
    global _last_ascii
    last = _last_ascii
    if last[0] is text:
        return last[1]
    part = text.encode("ascii", "ignore")
    _last_ascii = (text, part)  # one tuple store: safe to share between threads
    return part


def has_digit(text: str) -> bool:
    """Whether `text` has an ASCII digit: the shared prefilter of the digit-based recognisers."""
    global _last_digit_check
    last = _last_digit_check
    if last[0] is text:
        return last[1]
    found = _ANY_DIGIT.search(ascii_part(text)) is not None  # the same digits as the text's
    _last_digit_check = (text, found)  # one tuple store: safe to share between threads
    return found


# 16+ characters of digits and separators: most texts with digits stop at this cheap check.
_LONG_NUMBER = re.compile(r"[0-9][0-9 \-]{15}")
_LONG_NUMBER_ASCII = re.compile(rb"[0-9][0-9 \-]{15}")  # the pre-check on ascii_part()


def has_long_number(text: str) -> bool:
    """A digit followed by 15 more digits or separators: in every bank card number (16+ digits, maybe
    grouped) and every ID number (17 digits and a check character). The shared gate of both recognisers,
    so the registry runs it once per text."""
    return (
        has_digit(text)
        and _LONG_NUMBER_ASCII.search(ascii_part(text)) is not None
        and _LONG_NUMBER.search(text) is not None
    )


def compile_fast(first_chars: str, pattern: str) -> re.Pattern[str]:
    """Compile `pattern` behind a lookahead on its possible first characters.

    CPython's regex engine scans quickly for a start only when the pattern begins with a known character
    set; a leading lookbehind or optional group makes it try every position (3–4x slower on an SMS).
    """
    return re.compile(f"(?=[{first_chars}])(?:{pattern})")


def any_word_regex(words: Iterable[str]) -> re.Pattern[str]:
    """A regex whose `search` tells whether any of `words` occurs (for gates; the match itself is the
    shortest word at the first position where one starts).

    Shaped as a trie: a flat alternation makes `re` try every word at each candidate position, the
    trie one character per level; and where a word ends, longer ones need not be tried.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return re.compile(emit(trie) if trie else "(?!)")  # no words: never matches


class ContextWords:
    """Words that, found shortly before a match, make it more likely to be what we think.

    `window` counts characters of the normalised text before the match start.
    """

    __slots__ = ("boost", "regex", "window")

    def __init__(self, words: Iterable[str], window: int = 12, boost: float = 0.3) -> None:
        # Longest first so the reported word is the most specific one.
        alts = sorted({w.lower() for w in words}, key=len, reverse=True)
        self.regex = re.compile("|".join(map(re.escape, alts))) if alts else None
        self.window = window
        self.boost = boost

    def find(self, text: str, start: int, end: int | None = None) -> str | None:
        """A context word in the window before `start` (or, if `end` is given, just after `end`)."""
        if self.regex is None:
            return None
        m = self.regex.search(text, max(0, start - self.window), start)
        if m is None and end is not None:
            m = self.regex.search(text, end, end + self.window // 2)
        return m.group(0) if m else None

    def apply(self, score: float, text: str, start: int, end: int | None = None) -> tuple[float, str | None]:
        word = self.find(text, start, end)
        if word is None:
            return score, None
        return min(1.0, score + self.boost), word


def make_indicator(norm: NormalizedText, kind: str, start: int, end: int, value: str, score: float,
                   explanation: str, attributes: dict[str, AttrValue] | None = None) -> Indicator:
    """Build an indicator from a span of `norm.text`, mapping it back to the original text."""
    ostart, oend = norm.span(start, end)
    return Indicator(kind, value, norm.original[ostart:oend], ostart, oend, round(score, 3), explanation,
                     attributes or {})


def original_slice(norm: NormalizedText, start: int, end: int) -> str:
    """Original text behind a span of `norm.text` (needed where case matters, e.g. base58)."""
    ostart, oend = norm.span(start, end)
    return norm.original[ostart:oend]


class Recognizer(ABC):
    """One kind of 涉诈要素. `gate` is a cheap prefilter; `scan` does the work.

    `priority` breaks ties in overlap resolution (higher = more specific); a non-`exclusive`
    recogniser reports phrases that may coexist with entities overlapping them.
    """

    kind: ClassVar[str]
    priority: ClassVar[int] = 0
    exclusive: ClassVar[bool] = True
    gate: ClassVar[Gate | None] = None

    def analyze(self, norm: NormalizedText) -> list[Indicator]:
        gate = self.gate
        if gate is not None and not gate(norm.text):
            return []
        return self.scan(norm)

    @abstractmethod
    def scan(self, norm: NormalizedText) -> list[Indicator]:
        """Find indicators in `norm.text`; called only when the gate passed."""


class Pattern(NamedTuple):
    """A declared pattern: what to look for and how much a bare match is worth."""

    name: str
    regex: re.Pattern[str]
    score: float


class Validated(NamedTuple):
    """What `validate` makes of a match; `score` overrides the pattern's when set."""

    value: str
    explanation: str
    attributes: dict[str, AttrValue]
    score: float | None = None


class PatternRecognizer(Recognizer):
    """Presidio-style recogniser: declared `patterns`, `context` words, and a `validate` step."""

    patterns: ClassVar[tuple[Pattern, ...]] = ()
    context: ClassVar[ContextWords | None] = None

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        out: list[Indicator] = []
        for pattern in self.patterns:
            for m in pattern.regex.finditer(text):
                v = self.validate(norm, m, pattern)
                if v is None:
                    continue
                score = pattern.score if v.score is None else v.score
                why = v.explanation
                if self.context is not None:
                    score, word = self.context.apply(score, text, m.start())
                    if word:
                        why += f"（前有“{word}”）"
                out.append(make_indicator(norm, self.kind, m.start(), m.end(), v.value, score, why,
                                          v.attributes))
        return out

    @abstractmethod
    def validate(self, norm: NormalizedText, m: re.Match[str], pattern: Pattern) -> Validated | None:
        """Checksum/plausibility check of one match; None rejects it."""
