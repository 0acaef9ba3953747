"""Crypto wallet addresses: TRON and BTC (base58check / bech32 verified), ETH (pattern only, no keccak)."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    Pattern,
    PatternRecognizer,
    Validated,
    ascii_part,
    compile_fast,
    original_slice,
)

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONSTS = (1, 0x2BC830A3)  # bech32 (segwit v0) and bech32m (taproot)


def _b58check_payload(s: str) -> bytes | None:
    """Decoded payload when `s` is valid base58check, else None."""
    n = 0
    for c in s:
        i = _B58_INDEX.get(c)
        if i is None:
            return None
        n = n * 58 + i
    pad = len(s) - len(s.lstrip("1"))
    raw = b"\0" * pad + n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(raw) < 5:
        return None
    payload, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != check:
        return None
    return payload


@functools.lru_cache(maxsize=2048)
def valid_base58_address(s: str, versions: bytes) -> bool:
    payload = _b58check_payload(s)
    return payload is not None and len(payload) == 21 and payload[0] in versions


@functools.lru_cache(maxsize=2048)
def valid_bech32(addr: str) -> bool:
    hrp, _, data = addr.lower().rpartition("1")
    if hrp != "bc" or len(data) < 7:
        return False
    values = [*(ord(x) >> 5 for x in hrp), 0, *(ord(x) & 31 for x in hrp), *map(_BECH32_CHARSET.index, data)]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _BECH32_GEN[i]
    return chk in _BECH32_CONSTS


_LONG_TOKEN = re.compile(r"[0-9a-z]{26}")
_LONG_TOKEN_ASCII = re.compile(rb"[0-9a-z]{26}")  # exact pre-check on ascii_part(): most texts stop here


def _token(first_chars: str, pattern: str) -> re.Pattern[str]:
    # Lower-case classes because normalisation lower-cases ASCII; checksums are verified on the original.
    return compile_fast(first_chars, rf"(?<![0-9a-z]){pattern}(?![0-9a-z])")


class WalletRecognizer(PatternRecognizer):
    kind = "wallet"
    priority = 5
    patterns = (
        Pattern("tron", _token("t", r"t[1-9a-z]{33}"), 0.95),
        Pattern("eth", _token("0", r"0x[0-9a-f]{40}"), 0.85),
        Pattern("bech32", _token("b", r"bc1[02-9ac-hj-np-z]{11,71}"), 0.95),
        Pattern("btc", _token("13", r"[13][1-9a-z]{25,33}"), 0.95),
    )

    @staticmethod
    def gate(text: str) -> bool:
        return _LONG_TOKEN_ASCII.search(ascii_part(text)) is not None and _LONG_TOKEN.search(text) is not None

    def validate(self, norm: NormalizedText, m: re.Match[str], pattern: Pattern) -> Validated | None:
        if pattern.name == "eth":  # EIP-55 needs keccak, which hashlib lacks: pattern only
            return Validated(m.group(0), "以太坊(ERC20)钱包地址", {"chain": "ETH"})
        if pattern.name == "bech32":
            if not valid_bech32(m.group(0)):
                return None
            return Validated(m.group(0), "比特币钱包地址（bech32校验通过）", {"chain": "BTC"})
        # Base58 is case-sensitive: check the original characters, not the lower-cased ones.
        orig = unicodedata.normalize("NFKC", original_slice(norm, m.start(), m.end()))
        if pattern.name == "tron":
            if not valid_base58_address(orig, b"\x41"):
                return None
            return Validated(orig, "波场(TRC20)钱包地址（校验通过）", {"chain": "TRON"})
        if not valid_base58_address(orig, b"\x00\x05"):
            return None
        return Validated(orig, "比特币钱包地址（校验通过）", {"chain": "BTC"})
