"""PRC resident ID numbers (18 characters, last may be X), checked for checksum and birth date."""

from __future__ import annotations

import datetime
import functools
import re
from typing import NamedTuple

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    ContextWords,
    Pattern,
    PatternRecognizer,
    Validated,
    compile_fast,
    has_long_number,
)
from fanzha.text.result import AttrValue, Indicator


class RicInfo(NamedTuple):
    birth_date: datetime.date
    province: str | None
    county: str | None


@functools.lru_cache(maxsize=4096)
def ric_info(number: str) -> RicInfo | None:
    """Checksum + plausible birth date (stdnum's checks); birthplace when the code is known. Cached."""
    number = number.upper()
    if len(number) != 18 or not number[:17].isdigit() or ric.calc_check_digit(number) != number[17]:
        return None
    try:
        born = ric.get_birth_date(number)
    except ValidationError:
        return None
    if not datetime.date(1900, 1, 1) <= born <= datetime.date.today():
        return None
    try:
        place = ric.get_birth_place(number)
    except ValidationError:
        # Unknown region codes still belong to an ID-shaped, checksum-valid number: keep it, say less.
        return RicInfo(born, None, None)
    return RicInfo(born, place.get("province"), place.get("county"))


def valid_ric(number: str) -> bool:
    return ric_info(number) is not None


_LONG_RUN = re.compile(r"[0-9]{17}")


class IdCardRecognizer(PatternRecognizer):
    kind = "id_card"
    priority = 5
    gate = staticmethod(has_long_number)  # 17 digits in a row contain such a run
    patterns = (Pattern("ric18", compile_fast(
        "1-9", r"(?<![0-9a-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{9}[0-9x](?![0-9a-z])"
    ), 0.9),)
    context = ContextWords(["身份证", "证件号", "身份号", "公民身份", "户籍", "实名"], window=12, boost=0.1)

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        if _LONG_RUN.search(norm.text) is None:
            return []
        return super().scan(norm)

    def validate(self, norm: NormalizedText, m: re.Match[str], pattern: Pattern) -> Validated | None:
        value = m.group(0).upper()
        info = ric_info(value)
        if info is None:
            return None
        # Never the full number in the explanation: it is shown to people and logged.
        attrs: dict[str, AttrValue] = {
            "region_code": value[:6],
            "birth_date": info.birth_date.isoformat(),
            "gender": "male" if int(value[16]) % 2 else "female",
        }
        if info.province:
            attrs["province"] = info.province
            attrs["county"] = info.county
            return Validated(value, "居民身份证号（校验位与出生日期有效）", attrs)
        return Validated(value, "居民身份证号（校验位有效，地区码未知）", attrs, 0.75)
