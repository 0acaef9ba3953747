"""Bare IPv4 addresses (not part of a URL): kind "ip"."""

from __future__ import annotations

import re

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    ContextWords,
    Pattern,
    PatternRecognizer,
    Validated,
    ascii_part,
    compile_fast,
)

_DIGIT_DOT_DIGIT = re.compile(rb"[0-9]\.[0-9]")


class IpRecognizer(PatternRecognizer):
    kind = "ip"
    priority = 2
    # Not glued to letters, digits or dots ("v1.2.3.4", "1.2.3.4.5"); with a port or path it is a URL.
    # Version numbers look the same ("1.2.3.4"): without context the score stays low.
    patterns = (Pattern("ipv4", compile_fast(
        "0-9", r"(?<![0-9a-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9a-z]|\.[0-9a-z]|:[0-9]|/)"
    ), 0.5),)
    context = ContextWords(["ip", "服务器", "地址", "访问", "登录", "登陆", "连接", "输入"],
                           window=10, boost=0.3)

    @staticmethod
    def gate(text: str) -> bool:
        # Exact pre-check: the match is ASCII, so its "digit.digit" is in ascii_part() too.
        return "." in text and _DIGIT_DOT_DIGIT.search(ascii_part(text)) is not None

    def validate(self, norm: NormalizedText, m: re.Match[str], pattern: Pattern) -> Validated | None:
        ip = m.group(0)
        parts = ip.split(".")
        if any(int(p) > 255 or (len(p) > 1 and p[0] == "0") for p in parts):
            return None
        private = parts[0] in ("10", "127") or ip.startswith("192.168.")
        return Validated(ip, "IPv4地址", {"private": private})
