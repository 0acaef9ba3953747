"""Apps scams steer victims to (remote control, meetings, payment, crypto, chat, loans), via Aho-Corasick."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import ahocorasick

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import Recognizer, any_word_regex, make_indicator
from fanzha.text.recognizers.knowledge import load_yaml
from fanzha.text.result import Indicator

_CATEGORY_NAMES = {
    "remote_control": "远程控制/屏幕共享",
    "meeting": "视频会议",
    "payment": "支付",
    "crypto_exchange": "虚拟货币交易",
    "chat": "聊天通讯",
    "loan": "借贷",
}


class AppEntry(NamedTuple):
    alias: str
    name: str
    category: str
    score: float
    deny_prev: str
    deny_next: str
    ascii: bool


@functools.cache
def _automaton() -> ahocorasick.Automaton:
    auto = ahocorasick.Automaton()
    for name, entry in load_yaml("apps.yaml").items():
        for alias in entry["aliases"]:
            alias = str(alias).lower()
            auto.add_word(alias, AppEntry(
                alias, str(name), str(entry["category"]), float(entry.get("score", 0.8)),
                str(entry.get("deny_prev", "")), str(entry.get("deny_next", "")), alias.isascii(),
            ))
    auto.make_automaton()
    return auto


@functools.cache
def _alias_regex() -> re.Pattern[str]:
    return any_word_regex(_automaton().keys())


def _has_alias(text: str) -> bool:
    """Gate: does any alias occur? One `re` scan (~0.6 µs on an SMS) answers for the ~95% of messages
    that name no app; the automaton pass and its Python loop cost ~1.5 µs."""
    return _alias_regex().search(text) is not None


def _is_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


class AppRecognizer(Recognizer):
    kind = "app"
    priority = 1
    gate = staticmethod(_has_alias)

    def __init__(self) -> None:
        self._auto = _automaton()

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        found: list[tuple[int, int, AppEntry]] = []
        for last, entry in self._auto.iter(text):
            start, end = last + 1 - len(entry.alias), last + 1
            before = text[start - 1] if start else ""
            after = text[end] if end < len(text) else ""
            if entry.ascii and (_is_word_char(before) or _is_word_char(after)):
                # "zoom" inside "zoomed" — unless normalisation produced the word from Chinese
                # ("加飞机abc" → "加telegramabc"): then the span changed length and letters may touch it.
                ostart, oend = norm.span(start, end)
                if oend - ostart == end - start:
                    continue
            if (before and before in entry.deny_prev) or (after and after in entry.deny_next):
                continue  # the ordinary word: 坐飞机, 有信心, 举世瞩目
            found.append((start, end, entry))
        if not found:
            return []
        # Longest alias wins where aliases overlap ("纸飞机" over "飞机").
        found.sort(key=lambda f: (f[0], f[0] - f[1]))
        out: list[Indicator] = []
        last_end = -1
        for start, end, entry in found:
            if start < last_end:
                continue
            last_end = end
            why = f"{_CATEGORY_NAMES.get(entry.category, entry.category)}类应用：{entry.name}"
            out.append(make_indicator(norm, self.kind, start, end, entry.name, entry.score, why,
                                      {"category": entry.category}))
        return out
