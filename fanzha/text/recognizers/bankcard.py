"""Bank card numbers: 16–19 digits (optionally in groups of 4), Luhn-checked, never an ID number."""

from __future__ import annotations

import functools
import re

from stdnum import luhn

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    NEG_NUMBER_CONTEXT,
    NEG_NUMBER_WINDOW,
    ContextWords,
    Pattern,
    PatternRecognizer,
    Validated,
    compile_fast,
    has_long_number,
)
from fanzha.text.recognizers.idcard import valid_ric


def _bounded(pattern: str) -> re.Pattern[str]:
    """No digit or letter may touch the number, not even across one separator (parts of longer numbers)."""
    return compile_fast("0-9", rf"(?<![0-9a-z])(?<![0-9][ \-]){pattern}(?![0-9a-z])(?![ \-][0-9])")


_SEP = re.compile(r"[ \-]")


def _network(digits: str) -> str:
    """Card network from the leading digits (public IIN ranges), no bank-level BIN table."""
    if digits.startswith(("62", "81")):
        return "unionpay"
    if digits[0] == "4":
        return "visa"
    two, four = int(digits[:2]), int(digits[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (34, 37):
        return "amex"
    return "other"


@functools.lru_cache(maxsize=4096)
def _luhn_ok(digits: str) -> bool:
    return luhn.is_valid(digits)


class BankCardRecognizer(PatternRecognizer):
    kind = "bank_card"
    priority = 4
    gate = staticmethod(has_long_number)
    patterns = (
        Pattern("contiguous", _bounded(r"[0-9]{16,19}"), 0.6),
        Pattern("groups_of_4", _bounded(r"[0-9]{4}(?:[ \-][0-9]{4}){3}(?:[ \-]?[0-9]{1,3})?"), 0.6),
        Pattern("bin_then_rest", _bounded(r"[0-9]{6}[ \-][0-9]{10,13}"), 0.6),
    )
    context = ContextWords(
        ["卡号", "银行卡", "账号", "账户", "尾号", "储蓄卡", "信用卡", "借记卡", "收款", "转入", "汇款"],
        window=12, boost=0.3,
    )

    def validate(self, norm: NormalizedText, m: re.Match[str], pattern: Pattern) -> Validated | None:
        digits = _SEP.sub("", m.group(0))
        if not 16 <= len(digits) <= 19 or not _luhn_ok(digits):
            return None
        if len(digits) == 18 and valid_ric(digits):
            return None  # an all-digit ID number can pass Luhn too
        start = m.start()
        if NEG_NUMBER_CONTEXT.search(norm.text, max(0, start - NEG_NUMBER_WINDOW), start):
            return None
        network = _network(digits)
        return Validated(digits, f"{len(digits)}位银行卡号（Luhn校验通过）",
                         {"network": network, "length": len(digits)},
                         None if network != "other" else 0.45)
