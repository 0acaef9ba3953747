"""Masking of personal data (个人信息保护法): phone numbers, ID numbers, bank cards, names.

Used for roles that do not need the raw values and for every log line.
"""

from __future__ import annotations

import logging
import re

_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<!\d)(\d{4})(?:[ -]?\d){8,11}([ -]?\d{4})(?!\d)")
_PHONE = re.compile(r"(?<!\d)(\+?86[ -]?)?(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?!\d)")


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{value[:3] if value.startswith('+') else digits[:3]}****{digits[-4:]}"


def mask_card(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"{digits[:4]}{'*' * max(len(digits) - 8, 4)}{digits[-4:]}" if len(digits) > 8 else "****"


def mask_id(value: str) -> str:
    return f"{value[:6]}********{value[-4:]}" if len(value) >= 15 else "*" * len(value)


def mask_name(value: str) -> str:
    return value[:1] + "*" * max(len(value) - 1, 1) if value else value


def mask_value(kind: str, value: str) -> str:
    """Mask an indicator value of the given kind; kinds that are not personal data pass through."""
    if kind == "phone":
        return mask_phone(value)
    if kind in ("bank_card", "bank_account"):
        return mask_card(value)
    if kind == "id_card":
        return mask_id(value)
    return value


def mask_text(text: str) -> str:
    """Mask every ID number, card number and mobile number inside free text."""
    text = _ID.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _CARD.sub(lambda m: f"{m.group(1)}********{m.group(2).strip(' -')}", text)
    return _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)


class MaskingFilter(logging.Filter):
    """Rewrites each record's message so personal data never reaches a log sink raw."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True
