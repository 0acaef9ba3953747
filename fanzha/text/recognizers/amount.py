"""Money amounts (¥1,000 / 1000元 / 3.5万元 / 一万元 / 500u); value = amount in the currency, decimal."""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import Recognizer, compile_fast, has_digit, make_indicator
from fanzha.text.result import AttrValue, Indicator

_PREFIX = r"(?P<pre>¥|￥|rmb|cny|人民币|\$|usdt|usd)"
# Possessive: a digit run that is not followed by a unit must fail at once, not retry every shorter run.
_NUM = r"(?P<num>[0-9]{1,3}(?:,[0-9]{3})++(?:\.[0-9]++)?(?![0-9])|[0-9]++(?:\.[0-9]++)?)"
_MULT = r"(?P<mult>百万|千万|万|千|百|亿|w(?![a-z])|k(?![a-z]))"
_SUFFIX = r"(?P<suf>元|块钱|块|人民币|rmb|usdt|u(?![a-z盘])|美元|美金|刀|usd(?!t))"
# Without a currency prefix a unit must follow (checked in the regex so bare numbers cost nothing).
_UNIT_FOLLOWS = r"(?(pre)|(?=\s*(?:[万千百亿wk元块刀美u]|人民币|rmb)))"
_AMOUNT = compile_fast(
    "0-9¥￥$rcu人",
    rf"(?:{_PREFIX}\s*)?(?<![0-9.])(?<![0-9],){_NUM}{_UNIT_FOLLOWS}\s*{_MULT}?\s*{_SUFFIX}?",
)
_CN_AMOUNT = re.compile(r"(?P<cn>[零〇一二两三四五六七八九十百千万亿]+)\s*(?P<suf>元|块钱|块)")
# Something that can only be part of an amount: a unit right after a digit, a currency sign or word.
_GATE = compile_fast(
    "0-9¥￥$元块rcu人", r"[0-9] ?(?:[万千百亿wk元块刀美u]|人民币|rmb)|[¥￥$元块]|rmb|cny|人民币|usd"
)
# A bare "3万" followed by one of these counts people, steps or years, not money.
_NOT_MONEY_NEXT = frozenset("人次字步粉名条个年份平米户家位倍辆台张公斤里")

_MULTIPLIERS = {"百万": 1_000_000, "千万": 10_000_000, "万": 10_000, "千": 1_000, "百": 100,
                "亿": 100_000_000, "w": 10_000, "k": 1_000}
_CURRENCY = {
    "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "人民币": "CNY", "元": "CNY", "块": "CNY",
    "块钱": "CNY", "$": "USD", "usd": "USD", "美元": "USD", "美金": "USD", "刀": "USD",
    "usdt": "USDT", "u": "USDT",
}
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_SMALL = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}


def chinese_to_int(s: str) -> int | None:
    """Parse a Chinese numeral ("三千五百", "一亿五千万"); digit-only runs ("一二三") read digit by digit."""
    if all(c in _CN_DIGITS for c in s):
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    total = section = number = 0
    for c in s:
        if c in _CN_DIGITS:
            number = _CN_DIGITS[c]
        elif c in _CN_SMALL:
            section += (number or 1) * _CN_SMALL[c]
            number = 0
        elif c in _CN_BIG:
            section += number
            number = 0
            if section == 0 and total == 0:
                return None  # "万元" alone: no quantity
            total = (total + section) * _CN_BIG[c] if c == "亿" else total + section * _CN_BIG[c]
            section = 0
    return total + section + number


@functools.lru_cache(maxsize=4096)
def amount_value(num: str, mult: str | None) -> str:
    """Decimal string of `num` (may have thousands commas) times the multiplier word."""
    value = Decimal(num.replace(",", ""))
    if mult:
        value *= _MULTIPLIERS[mult]
    return format(value.normalize(), "f")


class AmountRecognizer(Recognizer):
    kind = "amount"
    priority = 1

    @staticmethod
    def gate(text: str) -> bool:
        return "元" in text or "块" in text or has_digit(text)

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        out: list[Indicator] = []
        if _GATE.search(text) is None:
            return out
        for m in _AMOUNT.finditer(text) if has_digit(text) else ():
            pre, mult, suf = m.group("pre"), m.group("mult"), m.group("suf")
            if not (pre or suf):
                if mult not in ("万", "亿", "w", "百万", "千万"):
                    continue
                end = m.end()
                if end < len(text) and text[end] in _NOT_MONEY_NEXT:
                    continue
                score, why = 0.5, "金额（万/亿为单位）"
            else:
                score, why = 0.8, "金额"
            value = amount_value(m.group("num"), mult)
            currency = _CURRENCY[suf or pre or "元"]
            start, end = m.start(), m.end()
            # Trailing spaces the optional groups let through do not belong to the amount.
            while end > start and text[end - 1] == " ":
                end -= 1
            attrs: dict[str, AttrValue] = {"currency": currency}
            out.append(make_indicator(norm, self.kind, start, end, value, score,
                                      f"{why}：{value} {currency}", attrs))
        for m in _CN_AMOUNT.finditer(text) if "元" in text or "块" in text else ():
            if m.start() and text[m.start() - 1] in "0123456789.":
                continue  # "5千万元" is the numeric pattern's
            n = chinese_to_int(m.group("cn"))
            if not n:
                continue
            value_s = str(n)
            out.append(make_indicator(norm, self.kind, m.start(), m.end(), value_s, 0.75,
                                      f"金额（中文数字）：{value_s} CNY", {"currency": "CNY"}))
        return out
