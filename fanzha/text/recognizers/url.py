"""URLs (with or without scheme, short links, IP hosts, punycode) with brand look-alike checks; emails."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, NamedTuple

from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import (
    ContextWords,
    Recognizer,
    ascii_part,
    compile_fast,
    make_indicator,
    original_slice,
)
from fanzha.text.recognizers.knowledge import brand_data
from fanzha.text.result import AttrValue, Indicator

if TYPE_CHECKING:
    import tldextract

_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9\-]{1,59})"
_IPV4 = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
_PATH_CHARS = r"[a-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
# ASCII-only on purpose: Chinese text glued to a link ("点击abc.com领取") must end the match.
_URL = compile_fast(
    "a-z0-9",
    r"(?<![a-z0-9@.\-_])"
    r"(?P<scheme>(?:https?|ftp)://)?"
    rf"(?P<host>{_IPV4}|(?:{_LABEL}\.)+{_TLD})"
    r"(?P<port>:[0-9]{1,5})?"
    rf"(?P<path>[/?#]{_PATH_CHARS}*)?"
    r"(?![a-z0-9\-_@])"
)
_EMAIL = compile_fast(
    "a-z0-9._%+\\-",
    rf"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]{{1,64}}@(?P<host>(?:{_LABEL}\.)+{_TLD})(?![a-z0-9\-])"
)
# A host has a letter or digit, a dot and a letter or digit in a row (label + TLD, or IPv4), all ASCII like
# the whole match: searching ascii_part() for it is an exact pre-check after the "." gate (most dots in
# messages end a sentence or sit in a price).
_HOST_ASCII = re.compile(rb"[a-z0-9]\.[a-z0-9]")
_TRAILING = ".,;:!?'\")]}"
# Suffixes that are real TLDs but far more often file names ("readme.md", "setup.py").
_FILE_LIKE = frozenset({"zip", "mov", "py", "md", "sh", "rs", "pl", "pm", "ps"})
_HOMOGLYPHS = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"})
_TOKEN_SPLIT = re.compile(r"[\-_.]")

_CONTEXT = ContextWords(
    ["链接", "网址", "网站", "网页", "点击", "登录", "登陆", "访问", "打开", "复制", "浏览器", "下载",
     "link", "官网"],
    window=12, boost=0.1,
)


class HostInfo(NamedTuple):
    domain: str  # registered domain ("icbc-vip.com"); empty when not under a public suffix
    label: str  # the label under the suffix ("icbc-vip")
    subdomain: str
    suffix: str


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # Imported on first use: tldextract pulls in requests (~25 ms), which loading the detector can skip.
    import tldextract

    # Empty URL list + no cache dir = the snapshot bundled with tldextract; never touches the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=8192)
def host_info(host: str) -> HostInfo:
    r = _extractor()(host)
    domain = f"{r.domain}.{r.suffix}" if r.domain and r.suffix else ""
    return HostInfo(domain, r.domain, r.subdomain, r.suffix)


class _BrandIndex:
    """Brand keywords split by how they are matched (substring vs whole token)."""

    def __init__(self) -> None:
        data = brand_data()
        self.long: list[tuple[str, str]] = []
        self.short: dict[str, str] = {}
        for brand in data.brands.values():
            for kw in (*brand.keywords, *brand.service_numbers):
                if len(kw) >= 4:
                    self.long.append((kw, brand.key))
                else:
                    self.short[kw] = brand.key
        self.long.sort(key=lambda p: len(p[0]), reverse=True)
        self.official = data.official_domains

    def match(self, labels: str) -> str | None:
        # The labels as written first, then with homoglyphs undone. (This was a set, whose order depends on
        # the process's string-hash seed: "10086icbc-vip.com" imitated 中国移动 or 工商银行 by chance.)
        variants = [labels]
        if any(c.isalpha() for c in labels):
            undone = labels.translate(_HOMOGLYPHS).replace("rn", "m").replace("vv", "w")
            if undone != labels:
                variants.append(undone)
        for v in variants:
            for kw, brand in self.long:
                if kw in v:
                    return brand
            for tok in _TOKEN_SPLIT.split(v):
                brand = self.short.get(tok)
                if brand is not None:
                    return brand
        return None


@functools.cache
def _brand_index() -> _BrandIndex:
    return _BrandIndex()


@functools.lru_cache(maxsize=8192)
def lookalike_of(host: str) -> str | None:
    """Brand key whose look-alike `host` is, or None (official domains and their subdomains are not)."""
    info = host_info(host)
    if not info.domain:
        return None
    index = _brand_index()
    if info.domain in index.official:
        return None
    labels = f"{info.subdomain}.{info.label}" if info.subdomain else info.label
    return index.match(labels)


def _punycode_to_unicode(host: str) -> str | None:
    try:
        return host.encode("ascii").decode("idna")
    except UnicodeError:
        return None


def _valid_ip(host: str) -> bool:
    return all(int(part) <= 255 for part in host.split("."))


class HostProfile(NamedTuple):
    """Everything about a host that does not depend on where it appears (cached per host)."""

    attrs: dict[str, AttrValue]
    notes: str
    short_link: bool
    file_like: bool


@functools.lru_cache(maxsize=8192)
def host_profile(host: str) -> HostProfile | None:
    """None when `host` is not under a public suffix."""
    info = host_info(host)
    if not info.domain:
        return None
    data = brand_data()
    short = info.domain in data.short_link_domains
    attrs: dict[str, AttrValue] = {
        "host": host, "is_ip": False, "domain": info.domain, "suffix": info.suffix, "is_short_link": short,
        "punycode": "xn--" in host, "risky_tld": False,
    }
    notes: list[str] = []
    if short:
        notes.append("短链接，真实地址被隐藏")
    if "xn--" in host:
        uni = _punycode_to_unicode(host)
        if uni is not None:
            attrs["unicode_host"] = uni
        notes.append("punycode国际化域名，可能为形近仿冒")
    brand = lookalike_of(host)
    if brand is not None:
        attrs["lookalike_of"] = brand
        notes.append(f"仿冒“{data.brands[brand].name}”的域名")
    if info.suffix.rsplit(".", 1)[-1] in data.risky_suffixes:
        attrs["risky_tld"] = True
        notes.append(f"高风险后缀.{info.suffix}")
    return HostProfile(attrs, "：" + "；".join(notes) if notes else "", short, info.suffix in _FILE_LIKE)


class UrlRecognizer(Recognizer):
    kind = "url"
    priority = 3

    @staticmethod
    def gate(text: str) -> bool:
        return "." in text and _HOST_ASCII.search(ascii_part(text)) is not None

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        out: list[Indicator] = []
        for m in _URL.finditer(norm.text):
            ind = self._one(norm, m)
            if ind is not None:
                out.append(ind)
        return out

    def _one(self, norm: NormalizedText, m: re.Match[str]) -> Indicator | None:
        start, end = m.span()
        scheme, host, port, path = m.group("scheme", "host", "port", "path")
        if path:
            stripped = path.rstrip(_TRAILING)
            end -= len(path) - len(stripped)
            path = stripped
        attrs: dict[str, AttrValue]
        if host[-1].isdigit():  # the TLD alternative is alphabetic, so this is the IPv4 one
            # A bare IP is the ip recogniser's business; here only IPs used as a web address.
            if not _valid_ip(host) or not (scheme or port or path):
                return None
            attrs = {"host": host, "is_ip": True, "domain": host, "suffix": "", "is_short_link": False,
                     "punycode": False, "risky_tld": False}
            score, why = 0.85, "以IP地址直接访问的网址"
        else:
            profile = host_profile(host)
            if profile is None or (profile.file_like and not (scheme or path or port)):
                return None
            attrs = dict(profile.attrs)
            if scheme:
                score, why = 0.9, "网址"
            elif host.startswith("www."):
                score, why = 0.85, "网址（www）"
            elif path:
                score, why = 0.75, "网址（无协议头）"
            else:
                score, why = 0.6, "疑似域名"
            if profile.short_link:
                score = max(score, 0.9)
            why += profile.notes
        if port:
            attrs["port"] = int(port[1:])
        score, word = _CONTEXT.apply(score, norm.text, start)
        if word:
            why += f"（前有“{word}”）"
        value = f"{scheme or ''}{host}{port or ''}{self._path(norm, m.start('path'), path)}"
        return make_indicator(norm, self.kind, start, end, value, score, why, attrs)

    @staticmethod
    def _path(norm: NormalizedText, start: int, path: str | None) -> str:
        """The path as written: normalisation lower-cases it, but short-link paths are case-sensitive."""
        if not path:
            return ""
        orig = original_slice(norm, start, start + len(path))
        return orig if len(orig) == len(path) and orig.lower() == path else path


class EmailRecognizer(Recognizer):
    """Email addresses are reported as their own kind so their domain is never taken for a link."""

    kind = "email"
    priority = 4

    @staticmethod
    def gate(text: str) -> bool:
        return "@" in text

    def scan(self, norm: NormalizedText) -> list[Indicator]:
        out: list[Indicator] = []
        for m in _EMAIL.finditer(norm.text):
            info = host_info(m.group("host"))
            if not info.domain:
                continue
            attrs: dict[str, AttrValue] = {"domain": info.domain, "suffix": info.suffix}
            brand = lookalike_of(m.group("host"))
            why = "电子邮箱地址"
            if brand is not None:
                attrs["lookalike_of"] = brand
                why += f"（域名仿冒“{brand_data().brands[brand].name}”）"
            out.append(make_indicator(norm, self.kind, m.start(), m.end(), m.group(0), 0.8, why, attrs))
        return out
