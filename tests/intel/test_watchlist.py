"""Normalisation of watchlist values: every spelling of one indicator becomes one key."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanzha.intel.watchlist import KINDS, InvalidIndicator, normalize_value


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138-1234-5678",
        "008613812345678",
        "13812345678",
        "8613812345678",
        "(+86) 138 1234 5678",
        "１３８１２３４５６７８",
    ],
)
def test_mainland_mobile_spellings_become_one_e164_number(raw):
    assert normalize_value("phone", raw) == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("110", "110"),
        ("96110", "96110"),
        ("95588", "95588"),
        ("12381", "12381"),
        ("10086", "10086"),
        ("400-123-4567", "4001234567"),
        ("+86 400 123 4567", "4001234567"),
        ("106912345678", "106912345678"),
    ],
)
def test_service_numbers_keep_their_digits(raw, expected):
    assert normalize_value("phone", raw) == expected


def test_landlines_and_foreign_numbers_become_e164():
    assert normalize_value("phone", "010-12345678") == "+861012345678"
    assert normalize_value("phone", "+1 650-253-0000") == "+16502530000"
    assert normalize_value("phone", "00852 9123 4567") == "+85291234567"


_PREFIX = st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "(+86)"])
_SEP = st.sampled_from(["", " ", "-"])
_MOBILE = st.sampled_from(["138", "139", "150", "177", "186", "199", "166", "170"]).flatmap(
    lambda p: st.text("0123456789", min_size=8, max_size=8).map(lambda rest: p + rest)
)


@given(prefix=_PREFIX, sep=_SEP, number=_MOBILE)
def test_any_written_form_of_a_mobile_number_normalises_like_its_bare_digits(prefix, sep, number):
    written = prefix + number[:3] + sep + number[3:7] + sep + number[7:]
    assert normalize_value("phone", written) == normalize_value("phone", number) == "+86" + number


@given(st.text(max_size=30))
def test_phone_normalisation_either_succeeds_idempotently_or_raises_invalid_indicator(raw):
    try:
        value = normalize_value("phone", raw)
    except InvalidIndicator:
        return
    assert normalize_value("phone", value) == value


@pytest.mark.parametrize("raw", ["1234", "99", "abc", "+86 138", "1381234567"])
def test_impossible_phone_numbers_are_refused(raw):
    with pytest.raises(InvalidIndicator):
        normalize_value("phone", raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://Evil.COM/Login/?session=1#top", "evil.com/Login"),
        ("evil.com/", "evil.com"),
        ("http://evil.com:443/a", "evil.com/a"),
        ("evil.com:8080/a/", "evil.com:8080/a"),
        ("http://例子.中国/路径", "xn--fsqu00a.xn--fiqs8s/%E8%B7%AF%E5%BE%84"),
        ("http://1.2.3.4/x", "1.2.3.4/x"),
    ],
)
def test_urls_lose_scheme_query_fragment_and_trailing_slash_but_keep_path_case(raw, expected):
    assert normalize_value("url", raw) == expected


def test_domains_are_lower_case_hosts_with_idn_as_punycode():
    assert normalize_value("domain", "WWW.Evil.COM.") == "www.evil.com"
    assert normalize_value("domain", "*.evil.com") == "evil.com"
    assert normalize_value("domain", "https://a.evil.com/x") == "a.evil.com"
    idn = normalize_value("domain", "工商银行.COM")
    assert idn.startswith("xn--") and idn.encode("ascii").decode("idna") == "工商银行.com"


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("domain", "1.2.3.4"),
        ("domain", "localhost"),
        ("url", "not a url"),
        ("url", "http://"),
        ("domain", "-bad.com"),
        ("domain", "a..com"),
    ],
)
def test_hosts_that_are_not_domain_names_are_refused(kind, raw):
    with pytest.raises(InvalidIndicator):
        normalize_value(kind, raw)


def test_bank_cards_must_pass_luhn():
    assert normalize_value("bank_card", "6222 0200 0000 0000 000") == "6222020000000000000"
    with pytest.raises(InvalidIndicator, match="Luhn"):
        normalize_value("bank_card", "6222020000000000001")
    with pytest.raises(InvalidIndicator, match="digits"):
        normalize_value("bank_card", "6222-0200-abcd")


def test_ids_and_names_normalise_to_their_canonical_case():
    assert normalize_value("payment_account", "2088 1234 5678") == "208812345678"
    assert normalize_value("qq", " 12345678 ") == "12345678"
    assert normalize_value("wechat", "Scam_Boss1") == "scam_boss1"
    assert normalize_value("telegram", "https://t.me/Scam_Boss") == "@scam_boss"
    assert normalize_value("app", "  ＴｏＤｅｓｋ ") == "todesk"
    assert normalize_value("ip", " ::FFFF:0102:0304 ") == "::ffff:102:304"


def test_wallets_keep_base58_case_and_lower_case_hex():
    tron = "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"
    assert normalize_value("wallet", f" {tron} ") == tron
    eth = "0x52908400098527886E0F7030069857D2E4169EE7"
    assert normalize_value("wallet", eth) == eth.lower()
    with pytest.raises(InvalidIndicator, match="wallet"):
        normalize_value("wallet", "TLa2f6VPqDgRE67v")


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("qq", "0123456"),
        ("qq", "1234"),
        ("wechat", "ab"),
        ("ip", "999.1.1.1"),
        ("telegram", "@ab"),
        ("app", "x" * 65),
    ],
)
def test_malformed_values_raise_invalid_indicator_with_a_message(kind, raw):
    with pytest.raises(InvalidIndicator) as info:
        normalize_value(kind, raw)
    assert str(info.value)


def test_unknown_kinds_and_empty_values_are_refused():
    with pytest.raises(InvalidIndicator, match="unknown kind"):
        normalize_value("email", "a@b.cn")
    for kind in KINDS:
        with pytest.raises(InvalidIndicator, match="empty"):
            normalize_value(kind, "  ")


@given(kind=st.sampled_from(KINDS), raw=st.text(max_size=80))
def test_normalisation_never_fails_with_anything_but_invalid_indicator(kind, raw):
    try:
        value = normalize_value(kind, raw)
    except InvalidIndicator:
        return
    assert normalize_value(kind, value) == value


def _split_both(raw: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """split_url with its regular-expression fast path and with urlsplit only: result or error message."""
    import re

    from fanzha.intel import watchlist

    def run() -> object:
        try:
            return watchlist.split_url(raw)
        except InvalidIndicator as exc:
            return ("error", str(exc))

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(watchlist, "_PLAIN_URL", re.compile(r"(?!)"))  # never matches: always urlsplit
        slow = run()
    return fast, slow


_URL_EDGES = [
    "https://Evil.COM/Login/?s=1#top", "evil.com", "//evil.com/a", "HTTP://a.b.c:8080/x", "http://a.com:80/x",
    "http://a.com:443", "http://a.com:65535/p", "http://a.com:65536/p", "http://a.com:99999", "http://a.com:/x",
    "http://a.com:0/x", "http://a.com:080/x", "a.com:8080", "http://a.com#x/y?z", "http://a.com?x/y#z",
    "http://a.com/%e4%b8%ad/", "http://a.com/a//b//", "http://user@a.com/x", "http://[::1]:8080/x",
    "http://1.2.3.4/x", "http://a..com/x", "http://.a.com/x", "http://a.com./x", "http://-a.com",
    "ftp://a.com/x", "a+b://a.com/x", "1http://a.com", "http://a.com/x://y", "a.com/x://y", "http://a_b.com",
    "http://a.com\\x", "http://a.com/\\x", "http://a.com:8080:90/x", "http://a.com/中文", "http://例子.中国/x",
    "http://a.com/x;p=1", "https://t.cn/AbCd", "http://a.com?", "http://a.com#", "http://a", "http://a.1",
]


@pytest.mark.parametrize("raw", _URL_EDGES)
def test_url_fast_path_agrees_with_urlsplit_on_edge_cases(raw, monkeypatch):
    fast, slow = _split_both(raw, monkeypatch)
    assert fast == slow


@given(st.text(alphabet="aB0.-_:/?#@[]%\\+;=~ !中", max_size=30))
def test_url_fast_path_agrees_with_urlsplit_on_any_text(tail):
    with pytest.MonkeyPatch.context() as monkeypatch:
        for raw in (tail, "http://" + tail, "a.com" + tail, "https://x.a.com" + tail):
            fast, slow = _split_both(raw, monkeypatch)
            assert fast == slow, raw
