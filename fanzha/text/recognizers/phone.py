"""Phone numbers: mainland mobile/landline, virtual operators, foreign, 400/800 and short service numbers."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    NEG_NUMBER_CONTEXT,
    NEG_NUMBER_WINDOW,
    ContextWords,
    Recognizer,
    ascii_part,
    compile_fast,
    make_indicator,
)
from fanzha.text.recognizers.knowledge import brand_data
from fanzha.text.result import AttrValue, Indicator

# No digit (nor "digit + one separator") may touch a match: keeps us out of cards, IDs and order numbers.
_LB = r"(?<![0-9])(?<![0-9][ \-])"
_LA = r"(?![0-9])(?![ \-][0-9])"
# A short number followed by a unit is a quantity ("12000元", "110年"), not a phone.
_UNIT_LA = r"(?!\.[0-9]|[ ]?(?:元|块|万|千|百|亿|%|年|月|日|号|岁|米|个|人|次|分|秒|小时|天|w|k))"
_PHONE = compile_fast(
    "0-9+(",
    _LB
    + r"(?:(?P<intl>(?:\+|00)[1-9](?:[ \-]?[0-9]){6,16})"
    + r"|(?P<cn86>86[ \-]?1[3-9][0-9](?:[ \-]?[0-9]){8})"
    + r"|(?P<mobile>1[3-9][0-9](?:[ \-]?[0-9]){8})"
    + r"|(?P<landline>(?:\(0[1-9][0-9]{1,2}\)|0[1-9][0-9]{1,2})[ \-]?[1-9](?:[ \-]?[0-9]){6,7})"
    + r"|(?P<service>[48]00(?:[ \-]?[0-9]){7})"
    + r"|(?P<short>(?:9[56][0-9]{3}|1[0-2][0-9]{3}|95[0-9]{4}|11[09]|12[02])(?![0-9])" + _UNIT_LA + "))"
    + _LA
)
# Every alternative above contains 7 digits (single separators allowed between them), or starts a short
# number with 1[0-2] or 9[56]; all of a match is ASCII, so searching ascii_part() for this is an exact
# pre-check. It spares the scan of texts whose digits are a date, a price or a count.
_PHONE_ASCII = re.compile(rb"[0-9](?:[ \-]?[0-9]){6}|1[0-2]|9[56]")
_NON_DIGIT = re.compile(r"[^0-9+]")
_VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")
_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

_CONTEXT = ContextWords(
    ["电话", "手机", "联系", "致电", "拨打", "热线", "客服", "来电", "回电", "号码", "呼叫", "打给",
     "tel", "call", "phone", "报警", "咨询"],
    window=10, boost=0.15,
)
# Short numbers are everywhere (prices, codes): without one of these nearby they are not phones.
_SHORT_CONTEXT = ContextWords(
    ["电话", "致电", "拨打", "热线", "客服", "来电", "回电", "呼叫", "报警", "咨询", "联系", "打",
     "call", "tel"],
    window=8, boost=0.2,
)
# Short numbers after these are codes or sums, whatever list they are on ("金额12345", "验证码10086").
_NOT_PHONE_CONTEXT = re.compile(
    r"验证码|校验码|动态码|密码|口令|取件码|提取码|code|金额|余额|转账|汇款|合计|共计|共|约|价格|积分|充值|提现"
    r"|支付|付款|收款|奖金|工资|第"
)


class Parsed(NamedTuple):
    e164: str
    type: str
    region: str


@functools.lru_cache(maxsize=8192)
def parse_phone(digits: str) -> Parsed | None:
    """Validate with phonenumbers (slow, hence cached by the digit string); None when invalid."""
    try:
        num = phonenumbers.parse(digits, "CN")
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    region = phonenumbers.region_code_for_number(num) or "ZZ"
    kind = _TYPE_NAMES.get(phonenumbers.number_type(num), "unknown")
    return Parsed(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), kind, region)


class PhoneRecognizer(Recognizer):
    kind = "phone"
    priority = 2

    @staticmethod
    def gate(text: str) -> bool:
        return _PHONE_ASCII.search(ascii_part(text)) is not None

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        text = norm.text
        out: list[Indicator] = []
        for m in _PHONE.finditer(text):
            start, end = m.span()
            if NEG_NUMBER_CONTEXT.search(text, max(0, start - NEG_NUMBER_WINDOW), start):
                continue
            group = m.lastgroup
            raw = m.group(0)
            ind = (self._short(norm, start, end, raw) if group == "short"
                   else self._long(norm, start, end, raw, group))
            if ind is not None:
                out.append(ind)
        return out

    def _long(self, norm: NormalizedText, start: int, end: int, raw: str,
              group: str | None) -> Indicator | None:
        digits = _NON_DIGIT.sub("", raw)
        if group == "intl" and digits.startswith("00"):
            digits = "+" + digits[2:]
        elif group == "cn86":
            digits = "+" + digits
        parsed = parse_phone(digits)
        if parsed is None:
            return None
        attrs: dict[str, AttrValue] = {"type": parsed.type, "region": parsed.region}
        national = digits[3:] if digits.startswith("+86") else digits
        if parsed.region != "CN":
            score, why = 0.8, f"境外号码（{parsed.region}）"
            attrs["foreign"] = True
        elif group == "service" or parsed.type in ("toll_free", "shared_cost", "uan"):
            score, why = 0.7, f"{national[:3]}客服/服务号码"
            attrs["service"] = True
            brand = brand_data().service_numbers.get(national)
            if brand is not None:
                attrs["brand"] = brand.key
                why += f"（{brand.name}）"
        elif parsed.type == "mobile":
            score, why = 0.85, "中国大陆手机号"
            if national.startswith(_VIRTUAL_PREFIXES):
                attrs["virtual"] = True
                why = f"虚拟运营商号段（{national[:3]}）手机号"
        else:
            score, why = 0.7, "固定电话（带区号）"
        score, word = _CONTEXT.apply(score, norm.text, start)
        if word:
            why += f"，前有“{word}”"
        return make_indicator(norm, self.kind, start, end, parsed.e164, score, why, attrs)

    def _short(self, norm: NormalizedText, start: int, end: int, raw: str) -> Indicator | None:
        text = norm.text
        if _NOT_PHONE_CONTEXT.search(text, max(0, start - 6), start):
            return None
        data = brand_data()
        official = data.official_numbers.get(raw)
        brand = data.service_numbers.get(raw)
        known = official is not None or brand is not None
        word = _SHORT_CONTEXT.find(text, start, end)
        if word is None and (len(raw) == 3 or not known):
            return None
        attrs: dict[str, AttrValue] = {"type": "short_code", "region": "CN", "service": True}
        if official is not None:
            attrs["official"] = True
            why = f"官方号码（{official}）"
            score = 0.6
        elif brand is not None:
            attrs["brand"] = brand.key
            why = f"{brand.name}客服号码"
            score = 0.6
        else:
            why = "短号服务号码"
            score = 0.45
        if word is not None:
            score = min(1.0, score + _SHORT_CONTEXT.boost)
            why += f"，附近有“{word}”"
        return make_indicator(norm, self.kind, start, end, raw, score, why, attrs)
