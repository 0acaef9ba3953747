"""Normalisation that undoes common evasions while keeping a map back to the original text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """`text` is the normalised form of `original`.

    `offsets[i]` is the index in `original` of the character that produced `text[i]`;
    `offsets[len(text)]` is `len(original)`. `None` means the identity map (same length, 1:1).
    """

    original: str
    text: str
    offsets: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of `text` to the covering span of `original`."""
        if self.offsets is None:
            return start, end
        if end <= start:
            o = self.offsets[start]
            return o, o
        return self.offsets[start], self.offsets[end - 1] + 1


def normalize(text: str) -> NormalizedText:
    """Placeholder identity normalisation; replaced by the full implementation."""
    return NormalizedText(text, text.lower(), None)
