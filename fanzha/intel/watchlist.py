"""Watchlist vocabulary and value normalisation, shared by import, matching, lookup and reports."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

import phonenumbers
from phonenumbers import NumberParseException
from stdnum import luhn

KINDS = (
    "phone", "url", "domain", "bank_card", "payment_account", "qq", "wechat", "telegram", "app", "wallet",
    "ip",
)
SOURCES = ("report", "case", "partner", "analyst", "detection")
STATUSES = ("active", "whitelisted", "expired")
MAX_VALUE_LENGTH = 512  # the width of watchlist.value


class InvalidIndicator(ValueError):
    """A value that cannot be a watchlist entry of the given kind."""


@dataclass(slots=True)
class WatchlistItem:
    """One entry as imported or upserted; `value` is already normalised."""

    kind: str
    value: str
    fraud_type: str | None = None
    source: str = "analyst"
    confidence: float = 0.8
    status: str = "active"
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires_at: datetime | None = None
    note: str = ""
    report_count: int = 0


_PHONE_SEPARATORS = re.compile(r"[\s\-().·]")
# Service lines keep their bare digits: 110/96110/95588-style short codes, 400/800 hotlines, 106 SMS ports.
_SERVICE = re.compile(r"1[12]\d|[19]\d{4,5}|[48]00\d{7}|106\d{5,17}")
_CN_MOBILE = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)
_CN_PREFIX = re.compile(r"(?:\+|00)?86(?=\d{11}$)|(?:\+|00)86(?=\d)")


def _phone(raw: str) -> str:
    compact = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    national = _CN_PREFIX.sub("", compact, count=1)
    if national.isdigit():
        if _SERVICE.fullmatch(national):
            return national
        # Fast path, same answer as phonenumbers.is_valid_number for mainland mobiles, at a tenth of the cost.
        if len(national) == 11 and _CN_MOBILE.fullmatch(national):
            return "+86" + national
    try:
        number = phonenumbers.parse(compact, "CN")
    except NumberParseException as exc:
        raise InvalidIndicator(f"not a phone number: {raw!r} ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIndicator(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_SPACE = re.compile(r"\s")
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_LABEL = r"[a-z0-9_](?:[a-z0-9\-_]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


def _host(raw: str) -> str:
    """Lower-case ASCII host name (IDN → punycode) or canonical IP address."""
    host = raw.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host[-1:].isdigit() or ":" in host:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidIndicator(f"not a valid internationalised host name: {raw!r}") from None
    if not _HOSTNAME.fullmatch(host) or host.rpartition(".")[2].isdigit():
        raise InvalidIndicator(f"not a host name (need at least name.tld): {raw!r}")
    if len(host) > 253:
        raise InvalidIndicator("host name longer than 253 characters")
    return host


# scheme://host[:port] then path, query, fragment; what urlsplit reads from such a URL (host name and port
# as its .hostname and .port, path up to the first "?" or "#") is the groups.
_PLAIN_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://([A-Za-z0-9._\-]+)(?::([0-9]{1,5}))?(/[^?#]*)?(?:[?#].*)?")


def _urlsplit(text: str, raw: str) -> tuple[str, int | None, str]:
    """(host name, port, path) by urlsplit, for any URL."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidIndicator(f"not a URL: {raw!r} ({exc})") from None
    if not parts.hostname:
        raise InvalidIndicator(f"URL without a host: {raw!r}")
    return parts.hostname, port, parts.path


def split_url(raw: str) -> tuple[str, str]:
    """(host[:port], path) of a URL with or without scheme; query and fragment dropped, no trailing "/"."""
    text = unicodedata.normalize("NFKC", raw.strip())
    if not text or _SPACE.search(text):
        raise InvalidIndicator(f"not a URL: {raw!r}")
    if "://" not in text:
        text = "http://" + text.removeprefix("//")
    # The common URL (printable ASCII, scheme, plain host name, maybe a port) is taken apart by one regular
    # expression; it gives what urlsplit gives for these, and everything else goes through urlsplit.
    plain = _PLAIN_URL.fullmatch(text) if text.isascii() and text.isprintable() else None
    if plain is not None and (plain[2] is None or len(plain[2]) < 5 or int(plain[2]) <= 65535):
        hostname, port, path = plain[1].lower(), None if plain[2] is None else int(plain[2]), plain[3] or ""
    else:
        hostname, port, path = _urlsplit(text, raw)
    host = _host(hostname)
    if ":" in host:
        host = f"[{host}]"
    # Default ports say nothing; any other port is part of where the victim is sent.
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    # Non-ASCII path characters are percent-encoded and escapes upper-cased: one spelling per path.
    if not path.isascii():
        path = quote(path, safe="/:@!$&'()*+,;=-._~%")
    if "%" in path:
        path = _ESCAPE.sub(lambda m: m.group(0).upper(), path)
    return host, path.rstrip("/")


def _url(raw: str) -> str:
    host, path = split_url(raw)
    return host + path


def _domain(raw: str) -> str:
    text = raw.strip()
    if "/" in text:
        text = split_url(text)[0]
    text = text.removeprefix("*.")
    if text.count(":") == 1:
        text = text.split(":")[0]  # a port says nothing about the domain
    host = _host(text)
    if not host[-1].isalpha():
        raise InvalidIndicator(f"an IP address is kind 'ip', not 'domain': {raw!r}")
    return host


def _digits(raw: str, what: str) -> str:
    digits = re.sub(r"[\s\-]", "", raw)
    if not digits.isdigit() or not digits.isascii():
        raise InvalidIndicator(f"{what} must contain only digits (spaces and dashes allowed): {raw!r}")
    return digits


def _bank_card(raw: str) -> str:
    digits = _digits(raw, "a bank card number")
    if not 12 <= len(digits) <= 19:
        raise InvalidIndicator(f"a bank card number has 12 to 19 digits, not {len(digits)}: {raw!r}")
    if not luhn.is_valid(digits):
        raise InvalidIndicator(f"bank card number fails the Luhn check: {raw!r}")
    return digits


def _payment_account(raw: str) -> str:
    digits = _digits(raw, "a payment account")
    if not 6 <= len(digits) <= 34:
        raise InvalidIndicator(f"a payment account has 6 to 34 digits, not {len(digits)}: {raw!r}")
    return digits


def _qq(raw: str) -> str:
    digits = raw.strip()
    if not re.fullmatch(r"[1-9][0-9]{4,10}", digits):
        raise InvalidIndicator(f"a QQ number has 5 to 11 digits and does not start with 0: {raw!r}")
    return digits


def _wechat(raw: str) -> str:
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    # Account IDs (6–20 chars, letter first), the phone or QQ number bound as ID, and wxid_ internal IDs.
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{4,39}", value):
        raise InvalidIndicator(f"not a WeChat ID (5–40 letters, digits, '_' or '-'): {raw!r}")
    return value


def _telegram(raw: str) -> str:
    value = unicodedata.normalize("NFKC", raw).strip().lower().removeprefix("https://").removeprefix("t.me/")
    value = value.removeprefix("@")
    if not re.fullmatch(r"[a-z][a-z0-9_]{4,31}", value):
        raise InvalidIndicator(f"not a Telegram username (5–32 letters, digits or '_'): {raw!r}")
    return "@" + value


def _app(raw: str) -> str:
    value = " ".join(unicodedata.normalize("NFKC", raw).lower().split())
    if not value or len(value) > 64:
        raise InvalidIndicator(f"an app name has 1 to 64 characters: {raw!r}")
    return value


_WALLET = re.compile(
    r"(?P<tron>T[1-9A-HJ-NP-Za-km-z]{33})|(?P<eth>0[xX][0-9a-fA-F]{40})"
    r"|(?P<bech32>(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71})|(?P<btc>[13][1-9A-HJ-NP-Za-km-z]{25,33})"
)


def _wallet(raw: str) -> str:
    value = raw.strip()
    m = _WALLET.fullmatch(value)
    if m is None:
        raise InvalidIndicator(f"not a TRON, ETH or BTC wallet address: {raw!r}")
    # Hex and bech32 addresses are case-insensitive (ETH mixed case is only a checksum); base58 is not.
    return value.lower() if m.lastgroup in ("eth", "bech32") else value


def _ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip().strip("[]")))
    except ValueError:
        raise InvalidIndicator(f"not an IPv4 or IPv6 address: {raw!r}") from None


_NORMALIZERS = {
    "phone": _phone,
    "url": _url,
    "domain": _domain,
    "bank_card": _bank_card,
    "payment_account": _payment_account,
    "qq": _qq,
    "wechat": _wechat,
    "telegram": _telegram,
    "app": _app,
    "wallet": _wallet,
    "ip": _ip,
}


def normalize_value(kind: str, raw: str) -> str:
    """Canonical form of a value, so "+86 138-1234-5678", "008613812345678" and "13812345678" match.

    phone: E.164, except service lines (110, 96110, 95588, 400/800 numbers, 106 SMS ports): bare digits.
    url: lower-case host (punycode, non-default port kept) + path as written, without scheme, query,
    fragment or trailing "/". domain: lower-case full host. bank_card (Luhn-checked) and payment_account:
    digits. qq: 5–11 digits. wechat: lower-case. telegram: "@handle" lower-case. app: NFKC lower-case.
    wallet: trimmed (ETH/bech32 lower-cased). ip: canonical ipaddress form.
    """
    fn = _NORMALIZERS.get(kind)
    if fn is None:
        raise InvalidIndicator(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidIndicator(f"empty {kind} value")
    if len(raw) > 2 * MAX_VALUE_LENGTH:
        raise InvalidIndicator(f"{kind} value longer than {MAX_VALUE_LENGTH} characters")
    value = fn(raw)
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidIndicator(f"{kind} value longer than {MAX_VALUE_LENGTH} characters")
    return value
