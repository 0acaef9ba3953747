"""Requests to hand over a verification code (报一下验证码/念一下收到的数字), not the code notices."""

from __future__ import annotations

import re

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import Recognizer, compile_fast, make_indicator
from fanzha.text.result import Indicator

_PUNCT = ",.;!?。，；！？"
_CODE_STRONG = r"短信验证码|验证码|校验码|动态码|确认码|安全码|动态密码|随机码|短信码|提取码"
_CODE_WEAK = rf"(?:收到|短信|手机)[^{_PUNCT}]{{0,5}}?数字|(?:那|这)(?:串|几个|几位)数字?"
# Code words are found first (one fast scan); the verbs are then looked for right before or after.
_CODE_WORD = compile_fast("短验校动确安随提收手那这", rf"(?P<strong>{_CODE_STRONG})|{_CODE_WEAK}")
_GAP = 6
# Verb before the code: the imperative itself is the request ("报一下验证码").
_ASK_BEFORE = (r"告诉我|告诉一下|告诉下|报一下|报给我|报个|报下|报出|念一下|念给我|念下|念出"
               r"|读一下|读给我|读下|读出|说一下|说下|说出|提供一下|提供|转发给我|发给我|发我|发一下"
               r"|截图给我|截图发我")
# Verb after the code: needs a recipient or a question, since notices also say "验证码…发送".
_ASK_AFTER = (r"发给我|发我|发过来|告诉我|报给我|报一下|报下|念一下|念给我|念下|读一下|读给我|说一下"
              r"|给我看|给我|转发给我|截图给我|报出来|念出来|读出来|是多少|多少")
_BEFORE = re.compile(rf"(?:{_ASK_BEFORE})[^{_PUNCT}]{{0,{_GAP}}}$")  # searched up to the code word
_AFTER = re.compile(rf"[^{_PUNCT}]{{0,{_GAP}}}?(?:{_ASK_AFTER})")  # matched right after it
_BEFORE_WINDOW = 4 + _GAP  # longest verb + gap
_AFTER_WINDOW = _GAP + 4
# Warnings use the same words: "请勿将验证码告诉他人", "客服不会要求您提供验证码".
_NEGATION = re.compile(r"勿|不要|别|不会|不能|不得|不可|严禁|禁止|谨防|绝不|任何人|切记|防止|以免|谨慎")
_CLAUSE_END = re.compile(f"[{_PUNCT}]")
_SCOPE = 12


def _code_words(text: str) -> list[re.Match[str]]:
    """Code words, looked for only just before each 码/数字 (str.find is far cheaper than a regex scan)."""
    found: list[re.Match[str]] = []
    for needle, back in (("码", 5), ("数字", 9)):
        i = text.find(needle)
        while i >= 0:
            m = _CODE_WORD.search(text, max(0, i - back), i + len(needle))
            if m is not None and m.end() == i + len(needle):
                found.append(m)
            i = text.find(needle, i + 1)
    if len(found) > 1:
        found.sort(key=lambda m: m.start())
    return found


class VerificationCodeRequestRecognizer(Recognizer):
    kind = "verification_code_request"
    priority = 0
    exclusive = False

    @staticmethod
    def gate(text: str) -> bool:
        return "码" in text or "数字" in text

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        out: list[Indicator] = []
        last_end = 0
        for m in _code_words(text):
            s, e = m.span()
            before = _BEFORE.search(text, max(last_end, s - _BEFORE_WINDOW), s)
            if before is not None:
                start, end = before.start(), e
            else:
                after = _AFTER.match(text, e, e + _AFTER_WINDOW)
                if after is None:
                    continue
                start = s - 1 if s > last_end and text[s - 1] == "把" else s
                end = after.end()
            if self._negated(text, start, end):
                continue
            last_end = end
            strong = m.group("strong") is not None
            why = "索要验证码：要求对方告知/转发收到的验证码" if strong else "索要短信中的数字（疑似验证码）"
            out.append(make_indicator(norm, self.kind, start, end, text[start:end], 0.85 if strong else 0.65,
                                      why, {"code_word": m.group(0)}))
        return out

    @staticmethod
    def _negated(text: str, start: int, end: int) -> bool:
        """A negation in the same clause before or inside the phrase turns it into a warning."""
        clause_start = max(0, start - _SCOPE)
        for b in _CLAUSE_END.finditer(text, clause_start, start):
            clause_start = b.end()
        return _NEGATION.search(text, clause_start, end) is not None
