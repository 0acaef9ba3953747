"""Apply fraudsters' evasions to clean text, to measure how much recall survives them.

The reverse of `normalize`: variant spellings, separators inside key terms, full-width and mixed-case
ASCII, traditional characters and phone numbers written in Chinese digits. Deterministic given `rng`.
"""

from __future__ import annotations

import random
import re
from itertools import pairwise
from typing import Any

import opencc

from fanzha.text.normalize import VARIANTS

_S2T = opencc.OpenCC("s2t")

# Separators fraudsters put inside words; each is removed by normalize() between CJK characters.
_SEPARATORS = (" ", "  ", "-", ".", "*", "★", "☆", "·", "~", "|", "/", "_", "♥", "❤️", "\u200b")
_EMOJI = ("😀", "🔥", "💰", "👉", "✨", "🎁", "💕", "🌹", "😊", "🧧")
_DIGIT_STYLES = (
    "零一二三四五六七八九",
    "〇一二三四五六七八九",
    "零壹贰叁肆伍陆柒捌玖",
    "洞幺两三四五六拐八勾",  # radio style
)
_FOLD_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_DIGIT_RUN_RE = re.compile(r"[0-9]{5,}")
# Key terms are the canonical forms that have variants; longest first so 安全账户 beats 账户.
_TERM_RE = re.compile(
    "|".join(re.escape(c) for c in sorted(VARIANTS, key=len, reverse=True)), flags=re.IGNORECASE
)


def _probability(level: int) -> float:
    """Chance each evasion is applied: 0 at level 0, 0.3 / 0.6 / 0.9 at levels 1-3, 1.0 above."""
    if level <= 0:
        return 0.0
    return 0.3 * level if level <= 3 else 1.0


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or ch >= "\U00020000"


def _is_word(ch: str) -> bool:
    return _is_cjk(ch) or (ch.isascii() and ch.isalpha())


def _context_ok(spec: dict[str, Any], before: str, after: str) -> bool:
    """Same context rules as variants.yaml; `before`/`after` is the lower-cased text around the term."""
    if (a := spec.get("after")) and not any(before.endswith(x) for x in a):
        return False
    if any(before.endswith(x) for x in spec.get("not_after", ())):
        return False
    if (b := spec.get("before")) and not any(after.startswith(x) for x in b):
        return False
    return not any(after.startswith(x) for x in spec.get("not_before", ()))


def _boundary_ok(variant: str, before: str, after: str) -> bool:
    # normalize() refuses Latin variants glued to other Latin text ("vxabc"), so do not produce them.
    if variant[0].isascii() and before and before.isascii() and (before.isalnum() or before in "._@/-"):
        return False
    nxt = after[:1]
    return not (variant[-1].isascii() and nxt.isascii() and nxt != "" and (nxt.isalpha() or nxt in "@."))


def _pick_variant(rng: random.Random, canonical: str, before: str, after: str, emitted: str) -> str | None:
    """A variant whose context rules hold in the original text (`before`/`after`) and that will not
    be glued to Latin text already emitted (an earlier term may have become "wechat")."""
    options = [v for v, spec in VARIANTS[canonical] if _context_ok(spec, before, after)]
    options = [v for v in options if _boundary_ok(v, emitted, after)]
    return rng.choice(options) if options else None


def _scramble_ascii(rng: random.Random, s: str, p: float) -> str:
    """Random upper-case and full-width forms for ASCII letters and digits."""
    out = []
    for ch in s:
        if ch.isascii() and ch.isalnum():
            if ch.isalpha() and rng.random() < p:
                ch = ch.upper()
            if rng.random() < p / 2:
                ch = chr(ord(ch) + 0xFEE0)
        out.append(ch)
    return "".join(out)


def _insert_separators(rng: random.Random, term: str, p: float) -> str:
    sep = rng.choice(_SEPARATORS + _EMOJI)
    out = [term[0]]
    for prev, ch in pairwise(term):
        # Only where normalize() can undo it: CJK on one side, CJK or a Latin letter on the other.
        if (_is_cjk(prev) or _is_cjk(ch)) and _is_word(prev) and _is_word(ch) and rng.random() < p:
            out.append(sep if rng.random() < 0.7 else rng.choice(_SEPARATORS + _EMOJI))
        out.append(ch)
    return "".join(out)


def _digits_to_chinese(rng: random.Random, text: str, p: float) -> str:
    def repl(m: re.Match[str]) -> str:
        if rng.random() >= p:
            return m.group()
        style = rng.choice(_DIGIT_STYLES)
        return "".join(style[int(d)] for d in m.group())

    return _DIGIT_RUN_RE.sub(repl, text)


def obfuscate(text: str, rng: random.Random, level: int = 2) -> str:
    """Disguise the key terms and numbers in `text` like an evasive fraud message would.

    Level 0 returns `text` unchanged; higher levels apply more evasions with higher probability.
    """
    p = _probability(level)
    if p == 0 or not text:
        return text
    traditional = rng.random() < p / 2
    pieces: list[str] = []
    pos = 0
    for m in _TERM_RE.finditer(text):
        pieces.append(_plain(rng, text[pos : m.start()], p, traditional))
        term = m.group()
        if rng.random() < p:
            # A short window is enough for the context rules and keeps long texts linear.
            before = text[max(0, m.start() - 8) : m.start()].lower()
            after = text[m.end() : m.end() + 8].lower()
            emitted = next((x[-1] for x in reversed(pieces) if x), "").translate(_FOLD_WIDTH).lower()
            term = _pick_variant(rng, term.lower(), before, after, emitted) or term
        if traditional:
            term = _S2T.convert(term)
        term = _scramble_ascii(rng, term, p)
        if rng.random() < p:
            term = _insert_separators(rng, term, p)
        pieces.append(term)
        pos = m.end()
    pieces.append(_plain(rng, text[pos:], p, traditional))
    return "".join(pieces)


def _plain(rng: random.Random, segment: str, p: float, traditional: bool) -> str:
    """Text between key terms: numbers, script and width only; its words are left readable."""
    if not segment:
        return segment
    segment = _digits_to_chinese(rng, segment, p)
    if traditional:
        segment = _S2T.convert(segment)
    if rng.random() < p / 2:
        segment = _scramble_ascii(rng, segment, p)
    return segment


__all__ = ["obfuscate"]
