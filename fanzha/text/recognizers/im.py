"""Instant-messaging contacts: QQ numbers, WeChat IDs and Telegram handles, each only with its cue word."""

from __future__ import annotations

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    ContextWords,
    Recognizer,
    any_word_regex,
    compile_fast,
    make_indicator,
)
from fanzha.text.result import Indicator

# A bare 5–11 digit number is anything; it is a QQ number only right after a QQ cue.
_QQ = compile_fast(
    "q扣企",
    r"(?P<cue>(?<![a-z])qq|扣扣|企鹅|(?<![a-z])q(?=\s*[:：号群]))"
    r"\s*(?:群号?|号码?)?\s*(?:[:：=]|是|为)?\s*"
    r"(?P<id>[1-9][0-9]{4,10})(?![0-9])"
)
_WECHAT = compile_fast(
    "微威薇维徽vw",
    r"(?P<cue>微信|威信|薇信|维信|徽信|v信|(?<![a-z])(?:vx|wx|weixin|wechat))"
    r"(?P<sep>\s*(?:(?:号码?|id)\s*(?:[:：]|是|为)?|[:：]|是|为)\s*|\s*)"
    r"(?P<id>[a-z][a-z0-9_\-]{5,19})(?![a-z0-9_\-])"
)
_HANDLE = r"(?P<id>[a-z][a-z0-9_]{4,31})(?![a-z0-9_])(?!\.[a-z])"
# Normalisation drops "@" and spaces between Chinese and Latin ("加飞机 @abc" → "加telegramabc"), so the
# cue may be glued to the handle; a bare "@handle" needs a cue shortly before it.
_TELEGRAM_CUED = compile_fast(
    "飞电t",
    r"(?P<cue>飞机|电报|(?<![a-z])telegram|(?<![a-z])tg(?=\s*[:：@]))"
    r"(?P<sep>\s*(?:号|账号|id|用户名)?\s*[:：]?\s*@?\s*)" + _HANDLE
)
_TELEGRAM_AT = compile_fast("@", r"(?<![a-z0-9_.])@" + _HANDLE)
_TG_CONTEXT = ContextWords(["飞机", "telegram", "tg", "电报", "t.me"], window=15, boost=0.0)
_WECHAT_CUES = ("微信", "vx", "wx", "we", "v信", "威信", "维信", "徽信", "薇信")
# scan() looks for a platform only when one of its words occurs (the "in" checks there), so a text with
# none of them has no indicator: one trie regex scan rejects it. (The first characters alone, as before,
# let through two texts in five, mostly for the 信 of 短信/信息 or a stray t, v or w.)
_CUES = any_word_regex(["q", "扣", "企鹅", *_WECHAT_CUES, "飞机", "电报", "telegram", "tg"])


def _any_in(text: str, needles: tuple[str, ...]) -> bool:
    for n in needles:  # noqa: SIM110 - a plain loop is cheaper than any() over a generator
        if n in text:
            return True
    return False


def _gate(text: str) -> bool:
    return _CUES.search(text) is not None


class ImRecognizer(Recognizer):
    kind = "im"
    priority = 3
    gate = staticmethod(_gate)

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        out: list[Indicator] = []
        if "q" in text or "扣" in text or "企鹅" in text:
            for m in _QQ.finditer(text):
                s, e = m.span("id")
                out.append(make_indicator(norm, "qq", s, e, m.group("id"), 0.85,
                                          f"QQ号（前有“{m.group('cue')}”）", {"platform": "qq"}))
        if _any_in(text, _WECHAT_CUES):
            for m in _WECHAT.finditer(text):
                s, e = m.span("id")
                # Nothing but whitespace between cue and ID is weaker than "微信号:" / "vx:".
                score = 0.6 if not m.group("sep").strip() else 0.85
                out.append(make_indicator(norm, "wechat", s, e, m.group("id"), score,
                                          f"微信号（前有“{m.group('cue')}”）", {"platform": "wechat"}))
        if "飞机" in text or "电报" in text or "telegram" in text or "tg" in text:
            seen: set[int] = set()
            for m in _TELEGRAM_CUED.finditer(text):
                seen.add(m.start("id"))
                score = 0.8 if m.group("sep") else 0.6
                out.append(_telegram(norm, m.start("id"), m.end("id"), score, m.group("cue")))
            if "@" in text:  # a handle glued to a cue was taken above
                for m in _TELEGRAM_AT.finditer(text):
                    word = _TG_CONTEXT.find(text, m.start())
                    if word is not None and m.start("id") not in seen:
                        out.append(_telegram(norm, m.start("id"), m.end("id"), 0.8, word))
        return out


def _telegram(norm: NormalizedText, start: int, end: int, score: float, cue: str) -> Indicator:
    """Telegram handle; the span takes in the "@" of the original even where normalisation dropped it."""
    ind = make_indicator(norm, "telegram", start, end, "@" + norm.text[start:end], score,
                         f"Telegram账号（前有“{cue}”）", {"platform": "telegram"})
    if ind.start > 0 and norm.original[ind.start - 1] in "@＠":
        ind.start -= 1
        ind.text = norm.original[ind.start:ind.end]
        ind.score = max(ind.score, 0.8)  # an explicit "@" is as good as "飞机号:"
    return ind
