"""Normalisation that undoes common evasions while keeping a map back to the original text."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import opencc
import yaml


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


VARIANTS_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "variants.yaml"

# --- character classes ------------------------------------------------------------------------------

Ranges = list[tuple[int, int]]


def _ranges(spec: str, singles: str = "") -> Ranges:
    """Parse "a-zA" style range notation (no escapes) plus a string of single characters."""
    out: Ranges = [(ord(c), ord(c)) for c in singles]
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.append((ord(spec[i]), ord(spec[i + 2])))
            i += 3
        else:
            out.append((ord(spec[i]), ord(spec[i])))
            i += 1
    return out


def _class(ranges: Ranges, gate: bool = False) -> str:
    """A regex character class. `gate=True` gives a superset for a quick first check: `re` tests
    astral ranges one by one after its BMP bitmap, so they are folded into one plane-wide range."""
    if gate and any(hi > 0xFFFF for _, hi in ranges):
        ranges = [r for r in ranges if r[1] <= 0xFFFF] + [(0x10000, 0x10FFFF)]
    merged: Ranges = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    ranges = merged
    parts = [re.escape(chr(lo)) + ("" if lo == hi else "-" + re.escape(chr(hi))) for lo, hi in ranges]
    return "[" + "".join(parts) + "]"


_CJK = _ranges("\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f")

# Invisible or meaningless code points, removed everywhere. Lone surrogates are dropped too: they are
# not text, and opencc/UTF-8 encoders downstream would raise on them.
_DELETE = _ranges(
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    # generic combining marks (zalgo strokes over 微̶信, keycap U+20E3); script-specific marks are kept
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\ud800-\udfff"
)

# Characters that can be dropped between two CJK characters (or CJK and a Latin letter) without losing
# meaning. Sentence punctuation (,;:!?。，、…), brackets and quotes are deliberately absent, as are
# newlines, so sentences and lines are never glued together.
_SEP = _ranges(
    "\t\u00a0\u1680\u2000-\u200a\u202f\u205f"
    "\u00a1-\u00a9\u00ac\u00ae-\u00b1\u00b4\u00b6-\u00b8\u00bf\u00d7\u00f7"
    "\u2010-\u2017\u2020-\u2025\u2027\u2030-\u2038\u203b\u203d-\u2046\u204a-\u205e"
    "\u20a0-\u20cf\u2100-\u214f\u2190-\u27bf\u27c0-\u27ff\u2900-\u2bff\u2e00-\u2e7f"
    "\u3003\u3004\u3012\u3013\u301c\u3020\u3030\u3036\u3037\u303d-\u303f\u30fb\u30fc\u3297\u3299"
    "\ufe31-\ufe34\ufe4d-\ufe4f\uffe8-\uffee\ufffc\ufffd"
    "\U0001f000-\U0001fbff",
    singles=" -_.*~^|/\\+=#@&$%`",
)

_DELETE_GATE_RE = re.compile(_class(_DELETE, gate=True))
_DELETE_RE = re.compile(f"{_class(_DELETE)}+")
_SEP_GATE_RE = re.compile(_class(_SEP, gate=True))
# Starting on the separator (not on the word before it) lets `re` skip ahead with its first-character
# set; the look-behind after the first character anchors matches to the start of a run, and the
# possessive `*+` keeps adversarial input (a megabyte of spaces) linear.
_S, _C, _W = _class(_SEP), _class(_CJK), _class([*_CJK, (ord("a"), ord("z"))])
_SEP_RE = re.compile(f"{_S}(?<={_C}.){_S}*+(?={_W})|{_S}(?<=[a-z].){_S}*+(?={_C})")

# --- 1:1 character table: full-width/half-width, enclosed digits and letters, ASCII lower-case -----


def _one_to_one_table() -> dict[int, str]:
    table: dict[int, str] = {cp: chr(cp + 32) for cp in range(ord("A"), ord("Z") + 1)}
    table[0x3000] = " "
    table[0x85] = "\n"
    table[0x2028] = "\n"
    table[0x2029] = "\n"
    # NFKC folds full-width forms (Ａ１！), small/vertical forms (﹐︰), math alphanumerics (𝐀𝟏) and
    # circled/squared letters (ⓐ🅰) to ASCII; keep only the 1:1 results so offsets stay trivial.
    nfkc_ranges = [
        (0xFE10, 0xFE19), (0xFE30, 0xFE4F), (0xFE50, 0xFE6B), (0xFF01, 0xFF65), (0xFFE0, 0xFFEE),
        (0x2070, 0x209F), (0x2460, 0x24FF), (0x1D400, 0x1D7FF), (0x1F100, 0x1F1FF),
    ]
    for lo, hi in nfkc_ranges:
        for cp in range(lo, hi + 1):
            folded = unicodedata.normalize("NFKC", chr(cp))
            if len(folded) == 1 and folded != chr(cp):
                table[cp] = folded.lower() if folded.isascii() else folded
    # Digits NFKC leaves alone or expands: ⑴ → "(1)", ❶ and ➀ are dingbats.
    for lo, hi in [(0x00B2, 0x00B9), (0x2460, 0x24FF), (0x2776, 0x2793)]:
        for cp in range(lo, hi + 1):
            d = unicodedata.digit(chr(cp), None)
            if d is not None:
                table[cp] = str(d)
    # Make the table idempotent: a value must not itself be translated again.
    for cp, value in list(table.items()):
        if len(value) == 1 and ord(value) in table and ord(value) != cp:
            table[cp] = table[ord(value)]
        if table[cp] == chr(cp):
            del table[cp]
    return table


_ONE_TO_ONE = _one_to_one_table()
# str.translate costs ~60 ns per character on non-ASCII text, so only the runs that need it are
# translated.
_ONE_TO_ONE_KEYS = [(cp, cp) for cp in sorted(_ONE_TO_ONE)]
# A superset class is fine here: translate() leaves characters outside the table unchanged.
_ONE_TO_ONE_RUN_RE = re.compile(_class(_ONE_TO_ONE_KEYS, gate=True) * 2 + "*")
# The same table keyed by one-character strings (values are never empty, so `or` falls through only for
# longer runs and characters of the superset class outside the table).
_ONE_TO_ONE_CHARS = {chr(cp): value for cp, value in _ONE_TO_ONE.items()}


def _fold(t: str) -> str:
    if t.isascii():  # the table maps only A-Z inside ASCII
        return t.lower()
    # Replacing each distinct run is cheaper than a callback per match. Longest first: a short run
    # ("AN") can occur inside a longer one ("ZHUAN"), and replacing it first would hide the long one.
    # Translated output never contains table keys, so later, shorter runs cannot hit it.
    found = _ONE_TO_ONE_RUN_RE.findall(t)
    if not found:
        return t
    if len(found) == 1:  # one run (often a lone "，"): no set, no sort
        run = found[0]
        return t.replace(run, _ONE_TO_ONE_CHARS.get(run) or run.translate(_ONE_TO_ONE))
    runs = set(found)
    if len(runs) > 16:  # each replace() is a full pass: past a few runs one translate() is cheaper
        return t.translate(_ONE_TO_ONE)
    for run in sorted(runs, key=len, reverse=True) if len(runs) > 1 else runs:
        # Most runs are one full-width punctuation mark: a dict lookup instead of translate().
        t = t.replace(run, _ONE_TO_ONE_CHARS.get(run) or run.translate(_ONE_TO_ONE))
    return t


# --- traditional → simplified ------------------------------------------------------------------------

_T2S = opencc.OpenCC("t2s")


def _traditional_chars() -> tuple[Ranges, set[str]]:
    """Characters t2s changes on their own, and those whose result t2s changes again (薴 → 苧 → 苎).

    Converting one newline-separated string is ~100x faster than a call per character, and the
    newlines stop phrase rules from firing.
    """
    chars = [chr(cp) for lo, hi in _CJK for cp in range(lo, hi + 1)]
    converted = _T2S.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # opencc changed shape: treat every CJK char as a candidate
        return _CJK, set()
    changed = {c: s for c, s in zip(chars, converted, strict=True) if c != s}
    return [(ord(c), ord(c)) for c in changed], {s for s in changed.values() if s in changed}


# _traditional_chars() converts ~100,000 characters: a tenth of the detector's load time. Its result
# depends only on the OpenCC version and _CJK, so it is shipped precomputed for the installed version
# (`python -m fanzha.text.normalize` rewrites the file); any other version computes it at import.
TRAD_CACHE_PATH = VARIANTS_PATH.with_name("t2s_chars.json")


def _trad_cache_key() -> str:
    return f"opencc {getattr(opencc, '__version__', '?')} cjk {_CJK!r}"


def _cached_traditional_chars(path: Path = TRAD_CACHE_PATH) -> tuple[Ranges, set[str]]:
    try:
        data = json.loads(path.read_bytes())
        if data["key"] == _trad_cache_key():
            return [(cp, cp) for cp in data["trad"]], set(data["chained"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return _traditional_chars()


def write_trad_cache(path: Path = TRAD_CACHE_PATH) -> None:
    trad, chained = _traditional_chars()
    assert all(lo == hi for lo, hi in trad)
    data = {"key": _trad_cache_key(), "trad": [lo for lo, _ in trad], "chained": sorted(chained)}
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


# Only call opencc when a traditional character is present: it is the slowest step, and on pure
# simplified text its phrase table would even rewrite correct words (打坏 → 打坯).
_TRAD, _TRAD_CHAINED = _cached_traditional_chars()
_TRAD_GATE_RE = re.compile(_class(_TRAD, gate=True))
# `re` checks astral ranges one by one, and thousands of astral traditional characters (Ext. B) make
# an exact class crawl; BMP characters go through a bitmap class, astral ones through a set.
_TRAD_BMP_RE = re.compile(_class([r for r in _TRAD if r[1] <= 0xFFFF]))
_TRAD_ASTRAL = {chr(lo) for lo, hi in _TRAD if hi > 0xFFFF for lo in range(lo, hi + 1)}
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
_CHAINED_RE = re.compile(_class([(ord(c), ord(c)) for c in _TRAD_CHAINED])) if _TRAD_CHAINED else None


def _has_traditional(t: str) -> bool:
    m = _TRAD_GATE_RE.search(t)
    if m is None:
        return False
    if m.group() <= "\uffff":
        return True
    # The gate also fires on any astral character (emoji): look closer only then.
    return _TRAD_BMP_RE.search(t, m.end()) is not None or not _TRAD_ASTRAL.isdisjoint(
        _ASTRAL_RE.findall(t, m.start())
    )


@lru_cache(maxsize=8192)
def _t2s_char(ch: str) -> str:
    out = _T2S.convert(ch)
    return out if len(out) == 1 else ch


def _to_simplified(t: str) -> str:
    for _ in range(3):  # a second round only for chains (薴 → 苧 → 苎), so normalize() is idempotent
        out = _T2S.convert(t)
        if len(out) != len(t):  # a phrase rule changed length: convert char by char to keep offsets
            out = _TRAD_GATE_RE.sub(lambda m: _t2s_char(m.group()), t)
        if out == t or _CHAINED_RE is None or _CHAINED_RE.search(out) is None:
            return out
        t = out
    return t


# --- variants (homophones, pinyin, look-alikes) -------------------------------------------------------


def _norm_term(s: str) -> str:
    return _T2S.convert(str(s).translate(_ONE_TO_ONE))


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _variant_assertions(v: str, spec: dict[str, Any]) -> str:
    """Context checks for one variant, placed after it: look-behinds span the variant itself."""
    n = "." * len(v)
    out = []
    if _is_ascii_alnum(v[0]):  # not inside a Latin word, a domain or an e-mail address
        out.append(rf"(?<![a-z0-9._@/\-]{n})")
    if after := [_norm_term(a) for a in spec.get("after", ())]:
        out.append("(?:" + "|".join(f"(?<={re.escape(a)}{n})" for a in after) + ")")
    out += [f"(?<!{re.escape(_norm_term(a))}{n})" for a in spec.get("not_after", ())]
    if _is_ascii_alnum(v[-1]):
        out.append(r"(?![a-z@])(?!\.[a-z0-9])")
    if before := [_norm_term(b) for b in spec.get("before", ())]:
        out.append("(?=" + "|".join(re.escape(b) for b in before) + ")")
    if not_before := [_norm_term(b) for b in spec.get("not_before", ())]:
        out.append("(?!" + "|".join(re.escape(b) for b in not_before) + ")")
    return "".join(out)


def _trie_regex(entries: list[tuple[str, str]]) -> str:
    """One regex for many literals with per-literal trailing assertions, shaped as a trie.

    A flat alternation makes `re` test every branch at each candidate position; the trie tests one
    character per level. Longer continuations come before the end of a shorter word (longest match).
    """
    trie: dict[str, Any] = {}
    for word, assertion in entries:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node.setdefault("", []).append(assertion)

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in node.items() if ch]
        if "" in node:
            ends = node[""]
            alts.append("" if "" in ends else "(?:" + "|".join(ends) + ")")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie)


def load_variants(path: Path = VARIANTS_PATH) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Read variants.yaml as {canonical: [(variant, context), ...]}, both already normalised."""
    # The C loader: same objects as yaml.safe_load, several times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for canonical, variants in raw.items():
        items = []
        for item in variants:
            spec = dict(item) if isinstance(item, dict) else {"v": item}
            items.append((_norm_term(spec.pop("v")), spec))
        out[_norm_term(canonical)] = items
    return out


def _compile_variants(
    variants: dict[str, list[tuple[str, dict[str, Any]]]],
) -> tuple[re.Pattern[str], dict[str, str]]:
    to_canonical: dict[str, str] = {}
    entries: list[tuple[str, str]] = []
    for canonical, items in variants.items():
        if len(canonical) < 2:
            raise ValueError(f"canonical form {canonical!r} must be at least 2 characters")
        for v, spec in items:
            if to_canonical.setdefault(v, canonical) != canonical:
                raise ValueError(f"variant {v!r} maps to both {to_canonical[v]!r} and {canonical!r}")
            entries.append((v, _variant_assertions(v, spec)))
    return re.compile(_trie_regex(entries)), to_canonical


VARIANTS = load_variants()
_VARIANT_RE, _VARIANT_TO_CANONICAL = _compile_variants(VARIANTS)

# --- Chinese-written digit runs -------------------------------------------------------------------------

_CN_DIGITS = {
    "0": "零〇洞",
    "1": "一幺壹",
    "2": "二两贰",
    "3": "三叁",
    "4": "四肆",
    "5": "五伍",
    "6": "六陆",
    "7": "七柒拐",
    "8": "八捌",
    "9": "九玖勾",
}
_CN_DIGIT_TABLE = str.maketrans({c: d for d, cs in _CN_DIGITS.items() for c in cs})
_CN_DIGIT_CHARS = "".join(_CN_DIGITS.values())
# Cheap pre-check: three Chinese digits inside one digit run (ordinary text has "一个", not "一三八").
_CN_DIGIT_GATE_RE = re.compile(f"[{_CN_DIGIT_CHARS}][0-9]*[{_CN_DIGIT_CHARS}][0-9]*[{_CN_DIGIT_CHARS}]")
_CN_RUN_RE = re.compile(f"[0-9{_CN_DIGIT_CHARS}]{{5,}}+")
_CN_DIGIT_COUNT_RE = re.compile(f"[{_CN_DIGIT_CHARS}]")


def _cn_run(m: re.Match[str]) -> str:
    run = m.group()
    # Needs ≥3 Chinese digits so "2000一次性" or "第10000一" are left alone; "一三八一二三四五六七八" and
    # "138一二三四5678" are phone numbers. Runs of pure Chinese digits always have ≥5.
    if len(_CN_DIGIT_COUNT_RE.findall(run)) >= 3:
        return run.translate(_CN_DIGIT_TABLE)
    return run


# --- editing with offsets -------------------------------------------------------------------------------

Edit = tuple[int, int, str]


def _apply(t: str, offs: Sequence[int] | None, edits: Iterable[Edit]) -> tuple[str, list[int]]:
    """Apply sorted, non-overlapping (start, end, replacement) edits and compose the offset map.

    A same-length replacement maps 1:1; otherwise the first output char maps to the first source char
    and the last to the last one (interpolated between), so span() of the replacement covers its source.
    """
    src: Sequence[int] = range(len(t) + 1) if offs is None else offs
    parts: list[str] = []
    out: list[int] = []
    pos = 0
    for s, e, r in edits:
        parts.append(t[pos:s])
        out.extend(src[pos:s])
        if r:
            parts.append(r)
            n, m = e - s, len(r)
            if m == n:
                out.extend(src[s:e])
            elif m == 1:
                out.append(src[s])
            else:
                out.extend(src[s + i * (n - 1) // (m - 1)] for i in range(m))
        pos = e
    parts.append(t[pos:])
    out.extend(src[pos:])
    return "".join(parts), out


def _delete(t: str, offs: list[int] | None, spans: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """Remove sorted, non-overlapping spans and compose the offset map."""
    parts = []
    pos = 0
    for s, e in spans:
        parts.append(t[pos:s])
        pos = e
    parts.append(t[pos:])
    if len(spans) <= 32:
        # Few spans (the usual case): `del` on a list slice is a memmove, cheaper than rebuilding.
        out = list(range(len(t) + 1)) if offs is None else offs
        for s, e in reversed(spans):
            del out[s:e]
    else:
        # Many spans: each memmove is O(n), so rebuild linearly instead (1 MB of "刷 单 ").
        src: Sequence[int] = range(len(t) + 1) if offs is None else offs
        out, pos = [], 0
        for s, e in spans:
            out.extend(src[pos:s])
            pos = e
        out.extend(src[pos:])
    return "".join(parts), out


def _remove_separators(t: str, offs: list[int] | None) -> tuple[str, list[int] | None]:
    if _SEP_GATE_RE.search(t) is None:
        return t, offs
    spans = [m.span() for m in _SEP_RE.finditer(t)]
    return _delete(t, offs, spans) if spans else (t, offs)


def _replace_variants(t: str, offs: list[int] | None) -> tuple[str, list[int] | None]:
    # A second round is needed only when a replacement completes another variant's context
    # (飞机帐号: 帐号 → 账号 makes 飞机 → telegram apply); it keeps normalize() idempotent.
    for _ in range(3):
        first = _VARIANT_RE.search(t)
        if first is None:
            break
        edits = [
            (m.start(), m.end(), _VARIANT_TO_CANONICAL[m.group()])
            for m in _VARIANT_RE.finditer(t, first.start())
        ]
        if offs is None and all(e - s == len(r) for s, e, r in edits):
            # Same-length swaps (转帐 → 转账) keep the identity map: splice the string only.
            parts, pos = [], 0
            for s, e, r in edits:
                parts += (t[pos:s], r)
                pos = e
            parts.append(t[pos:])
            t = "".join(parts)
        else:
            t, offs = _apply(t, offs, edits)
        # A Latin variant that became CJK (vx → 微信) may now border a removable separator.
        t, offs = _remove_separators(t, offs)
    return t, offs


# --- public API -------------------------------------------------------------------------------------------

_object_new = object.__new__
_set_original = NormalizedText.original.__set__  # type: ignore[attr-defined]
_set_text = NormalizedText.text.__set__  # type: ignore[attr-defined]
_set_offsets = NormalizedText.offsets.__set__  # type: ignore[attr-defined]


def _new_normalized(original: str, text: str, offsets: tuple[int, ...] | None) -> NormalizedText:
    """NormalizedText(original, text, offsets), built through its slots: the frozen dataclass __init__
    sets each field through object.__setattr__, which made it a twentieth of normalize() (same object)."""
    obj = _object_new(NormalizedText)
    _set_original(obj, original)
    _set_text(obj, text)
    _set_offsets(obj, offsets)
    return obj



def normalize(text: str) -> NormalizedText:
    """Undo evasions: width/case folding, invisible chars, separators inside words, traditional
    characters, variant spellings of key terms and phone numbers written in Chinese digits.

    Lone surrogates, control characters (except tab, CR and LF) and zero-width characters are
    dropped. Every step is gated by a cheap character-class search, so clean text costs a few scans.
    """
    t = _fold(text)
    offs: list[int] | None = None
    if _DELETE_GATE_RE.search(t) is not None and _DELETE_RE.search(t) is not None:
        t, offs = _delete(t, None, [m.span() for m in _DELETE_RE.finditer(t)])
    if t.isascii():  # no CJK: only Latin variants (vx, zfb) can apply
        t, offs = _replace_variants(t, offs)
    else:
        t, offs = _remove_separators(t, offs)
        if _has_traditional(t):
            t = _to_simplified(t)
        t, offs = _replace_variants(t, offs)
        if _CN_DIGIT_GATE_RE.search(t) is not None:
            t = _CN_RUN_RE.sub(_cn_run, t)
    return _new_normalized(text, t, None if offs is None else tuple(offs))


__all__ = ["VARIANTS", "VARIANTS_PATH", "NormalizedText", "load_variants", "normalize"]

if __name__ == "__main__":
    write_trad_cache()
    print(f"wrote {TRAD_CACHE_PATH}")
