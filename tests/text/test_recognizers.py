"""Indicator recognisers: positives, look-alikes that must not fire, spans into the original text."""

from __future__ import annotations

import itertools
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fanzha.text.normalize import NormalizedText, normalize
from fanzha.text.recognizers import default_registry, url
from fanzha.text.recognizers.amount import AmountRecognizer, chinese_to_int
from fanzha.text.recognizers.apps import AppRecognizer
from fanzha.text.recognizers.bankcard import BankCardRecognizer
from fanzha.text.recognizers.base import ContextWords, Recognizer
from fanzha.text.recognizers.idcard import IdCardRecognizer
from fanzha.text.recognizers.im import ImRecognizer
from fanzha.text.recognizers.ip import IpRecognizer
from fanzha.text.recognizers.phone import PhoneRecognizer
from fanzha.text.recognizers.registry import RecognizerRegistry
from fanzha.text.recognizers.url import EmailRecognizer, UrlRecognizer
from fanzha.text.recognizers.vcode import VerificationCodeRequestRecognizer
from fanzha.text.recognizers.wallet import WalletRecognizer
from fanzha.text.result import Indicator

CARD16 = "6222021234567894"  # Luhn-valid
CARD19 = "6217001234567890122"  # Luhn-valid
ID_X = "11010519491231002X"
ID_ALSO_LUHN = "110105199003070068"  # valid ID that happens to pass Luhn too
TRON = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"
ETH = "0x52908400098527886E0F7030069857D2E4169EE7"
BTC_P2PKH = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
BTC_P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
BTC_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

ALL_RECOGNIZERS = default_registry().recognizers


def run(recognizer: Recognizer, text: str) -> list[Indicator]:
    return recognizer.analyze(normalize(text))


def registry(text: str) -> list[Indicator]:
    return default_registry().analyze(normalize(text))


def kinds(indicators: list[Indicator]) -> list[str]:
    return [i.kind for i in indicators]


def one(recognizer: Recognizer, text: str) -> Indicator:
    found = run(recognizer, text)
    assert len(found) == 1, found
    return found[0]


def assert_span_ok(ind: Indicator, original: str) -> None:
    assert 0 <= ind.start < ind.end <= len(original)
    assert ind.text == original[ind.start:ind.end]
    assert 0.0 <= ind.score <= 1.0
    assert ind.explanation


# --- phone ----------------------------------------------------------------------------------------------

PHONE = PhoneRecognizer()


@pytest.mark.parametrize("text", [
    "电话13812345678", "+8613812345678", "+86 138 1234 5678", "0086-13812345678", "8613812345678",
    "138-1234-5678", "138 1234 5678", "(+86)13812345678",
])
def test_phone_mobile_forms_all_give_e164(text: str) -> None:
    ind = one(PHONE, text)
    assert ind.value == "+8613812345678"
    assert ind.attributes["type"] == "mobile"
    assert ind.attributes["region"] == "CN"
    assert_span_ok(ind, text)


def test_phone_span_covers_separators_and_prefix() -> None:
    text = "请拨+86 138-1234-5678谢谢"
    ind = one(PHONE, text)
    assert ind.text == "+86 138-1234-5678"


def test_phone_context_word_raises_score() -> None:
    assert one(PHONE, "联系电话13812345678").score > one(PHONE, "好的13812345678").score


@pytest.mark.parametrize(("text", "e164"), [
    ("010-12345678", "+861012345678"),
    ("0755-12345678", "+8675512345678"),
    ("(0755)12345678", "+8675512345678"),
])
def test_phone_landline_with_area_code(text: str, e164: str) -> None:
    ind = one(PHONE, text)
    assert ind.value == e164
    assert ind.attributes["type"] == "fixed_line"


@pytest.mark.parametrize("prefix", ["170", "171", "162", "165", "167"])
def test_phone_virtual_operator_ranges_flagged(prefix: str) -> None:
    ind = one(PHONE, f"加我{prefix}12345678")
    assert ind.attributes.get("virtual") is True


def test_phone_ordinary_mobile_not_virtual() -> None:
    assert "virtual" not in one(PHONE, "13912345678").attributes


@pytest.mark.parametrize(("text", "region"), [
    ("+852 9123 4567", "HK"),
    ("+63 917 123 4567", "PH"),
    ("00852-91234567", "HK"),
])
def test_phone_foreign_numbers_have_region(text: str, region: str) -> None:
    ind = one(PHONE, text)
    assert ind.attributes["region"] == region
    assert ind.attributes.get("foreign") is True


@pytest.mark.parametrize("text", ["400-123-4567", "4001234567", "800-123-4567"])
def test_phone_400_800_are_service_numbers(text: str) -> None:
    ind = one(PHONE, text)
    assert ind.attributes["service"] is True


@pytest.mark.parametrize("text", ["拨打110报警", "请拨打96110咨询", "打12345投诉", "反诈专线96110"])
def test_phone_official_numbers_marked_official(text: str) -> None:
    ind = one(PHONE, text)
    assert ind.attributes["official"] is True
    assert ind.attributes["service"] is True


def test_phone_bank_service_number_names_brand() -> None:
    ind = one(PHONE, "请致电95588")
    assert ind.attributes["brand"] == "icbc"
    assert ind.attributes["service"] is True


@pytest.mark.parametrize("text", [
    f"卡号{CARD16}", f"卡号{CARD19}", "6222 0212 3456 7894", f"身份证{ID_X}", f"身份证{ID_ALSO_LUHN}",
    "订单号13812345678", "单号：13812345678", "转账12000元", "共95000元", "2024-01-15", "2024年01月15日",
    "20240115", "您的验证码是123456", "验证码12345", "密码是12345", "金额12345", "共10000", "余额95588",
    "v1.2.3", "3.1415926", "第110名",
    "13812345678901", "1381234567",
])
def test_phone_not_reported_in_other_numbers(text: str) -> None:
    assert run(PHONE, text) == []


def test_phone_short_numbers_need_context_or_known_list() -> None:
    assert run(PHONE, "他今年110岁") == []
    assert run(PHONE, "代码95123") == []
    assert kinds(run(PHONE, "客服热线95123")) == ["phone"]


def test_phone_full_width_digits_span_points_into_original() -> None:
    original = "电话：１３８１２３４５６７８。"
    # Contract of NormalizedText: 1:1 folding keeps the identity map.
    norm = NormalizedText(original, "电话:13812345678。", None)
    ind = PHONE.analyze(norm)[0]
    assert ind.value == "+8613812345678"
    assert ind.text == "１３８１２３４５６７８"
    assert (ind.start, ind.end) == (3, 14)


@pytest.mark.skipif(normalize("１").text != "1", reason="normalize() does not fold full-width digits yet")
def test_phone_full_width_digits_through_normalize() -> None:
    original = "１３８１２３４５６７８"
    ind = one(PHONE, original)
    assert ind.value == "+8613812345678"
    assert (ind.start, ind.end, ind.text) == (0, 11, original)


def test_phone_span_maps_through_offsets_when_text_shrinks() -> None:
    original = "电 话 1 3 8 1 2 3 4 5 6 7 8"
    text = "电话138 1234 5678"
    # Hand-built offsets: which original character produced each normalised one.
    offsets = (0, 2, 4, 6, 8, 9, 10, 12, 14, 16, 17, 18, 20, 22, 24, len(original))
    norm = NormalizedText(original, text, offsets)
    ind = PHONE.analyze(norm)[0]
    assert ind.value == "+8613812345678"
    assert (ind.start, ind.end) == (4, 25)
    assert ind.text == original[4:25]


# --- url ------------------------------------------------------------------------------------------------

URL = UrlRecognizer()


@pytest.mark.parametrize(("text", "host"), [
    ("点击https://www.example.com/a?b=1领取", "www.example.com"),
    ("http://example.com", "example.com"),
    ("www.example.com", "www.example.com"),
    ("访问abc-jd.com/x", "abc-jd.com"),
    ("t.cn/A6AbCd", "t.cn"),
    ("url.cn/5xYz", "url.cn"),
    ("dwz.cn/abc", "dwz.cn"),
])
def test_url_forms_with_and_without_scheme(text: str, host: str) -> None:
    ind = one(URL, text)
    assert ind.attributes["host"] == host
    assert_span_ok(ind, text)


def test_url_stops_at_chinese_text() -> None:
    assert one(URL, "点击abc-vip.top/a领取奖励").text == "abc-vip.top/a"


@pytest.mark.parametrize("text", ["t.cn/A6AbCd", "url.cn/5xYz", "dwz.cn/abc"])
def test_url_short_links_flagged(text: str) -> None:
    assert one(URL, text).attributes["is_short_link"] is True


def test_url_short_link_path_keeps_original_case_host_is_lower() -> None:
    ind = one(URL, "戳 HTTPS://T.CN/A6AbCd 查看")
    assert ind.value == "https://t.cn/A6AbCd"


def test_url_ip_with_port() -> None:
    ind = one(URL, "登录 http://192.168.1.1:8080/login")
    assert ind.attributes["is_ip"] is True
    assert ind.attributes["port"] == 8080
    ind = one(URL, "访问 8.8.8.8:8443 下载")
    assert ind.attributes["is_ip"] is True and ind.attributes["port"] == 8443


def test_url_bare_ip_without_port_is_left_to_ip_recognizer() -> None:
    assert run(URL, "地址 8.8.8.8 ") == []
    assert kinds(run(IpRecognizer(), "服务器ip 8.8.8.8")) == ["ip"]


def test_url_punycode_domain() -> None:
    ind = one(URL, "http://xn--fiqs8s.com/login")
    assert ind.attributes["punycode"] is True
    assert ind.attributes["unicode_host"] == "中国.com"


@pytest.mark.parametrize(("text", "brand"), [
    ("icbc-vip.com", "icbc"),
    ("https://www.icbc-vip.com/login", "icbc"),
    ("jd-tk.com", "jd"),
    ("10086-jf.cc", "chinamobile"),
    ("taobao-kf.top/a", "taobao"),
    ("95588.vip", "icbc"),
    ("paypa1.com", "paypal"),
    ("icbc.com.cn.secure-login.top", "icbc"),
])
def test_url_lookalike_domains_name_the_brand(text: str, brand: str) -> None:
    ind = one(URL, text)
    assert ind.attributes["lookalike_of"] == brand
    assert "仿冒" in ind.explanation


@pytest.mark.parametrize("text", ["icbc.com.cn", "www.icbc.com.cn", "jd.com", "https://item.jd.com/1.html",
                                  "10086.cn", "www.10086.cn/x", "taobao.com", "paypal.com"])
def test_url_official_domains_not_flagged(text: str) -> None:
    assert "lookalike_of" not in one(URL, text).attributes


def test_url_risky_tld_attribute() -> None:
    assert one(URL, "abc.top/x").attributes["risky_tld"] is True
    assert one(URL, "abc.com/x").attributes["risky_tld"] is False


@pytest.mark.parametrize("text", ["3.5元", "v1.2", "版本1.2.3", "1.2.3.4", "readme.md", "价格3.5万", "a.b",
                                  "。。。", "...", "vx:abc.123"])
def test_url_not_fired_on_numbers_versions_files(text: str) -> None:
    assert run(URL, text) == []


def test_url_email_domain_is_an_email_not_a_url() -> None:
    text = "发到 first.last@icbc-vip.com 邮箱"
    assert kinds(registry(text)) == ["email"]
    email = one(EmailRecognizer(), text)
    assert email.value == "first.last@icbc-vip.com"
    assert email.attributes["lookalike_of"] == "icbc"


def test_url_tldextract_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    url._extractor.cache_clear()
    url.host_info.cache_clear()
    try:
        assert url.host_info("offline-check.co.uk").domain == "offline-check.co.uk"
    finally:
        url._extractor.cache_clear()
        url.host_info.cache_clear()
        url.host_profile.cache_clear()
        url.lookalike_of.cache_clear()


# --- bank card ------------------------------------------------------------------------------------------

CARD = BankCardRecognizer()


@pytest.mark.parametrize("text", [CARD16, CARD19, "6222 0212 3456 7894", "6222-0212-3456-7894",
                                  "4111111111111111", "6217 0012 3456 7890 122"])
def test_card_luhn_valid_numbers_found(text: str) -> None:
    ind = one(CARD, f"转到 {text} 即可")
    assert ind.value == text.replace(" ", "").replace("-", "")
    assert ind.text == text


def test_card_luhn_invalid_16_digits_not_a_card() -> None:
    assert run(CARD, "卡号6222021234567895") == []


def test_card_context_words_raise_score() -> None:
    assert one(CARD, f"银行卡号{CARD16}").score > one(CARD, f"见 {CARD16}").score


def test_card_network_attribute() -> None:
    assert one(CARD, CARD16).attributes["network"] == "unionpay"
    assert one(CARD, "4111111111111111").attributes["network"] == "visa"


@pytest.mark.parametrize("text", [ID_ALSO_LUHN, ID_X, "13812345678", "订单号6222021234567894", ETH,
                                  "62220212345678941234"])
def test_card_not_fired_on_ids_phones_orders_or_longer_runs(text: str) -> None:
    assert run(CARD, text) == []


def test_card_number_is_not_also_a_phone_in_registry() -> None:
    assert kinds(registry("卡号 6222 0213 8123 4567 收款")) in (["bank_card"], [])
    assert kinds(registry(f"卡号{CARD16}")) == ["bank_card"]


# --- id card --------------------------------------------------------------------------------------------

ID = IdCardRecognizer()


def test_id_valid_number_with_x() -> None:
    ind = one(ID, f"身份证号{ID_X.lower()}")
    assert ind.value == ID_X
    assert ind.attributes["region_code"] == "110105"
    assert ind.attributes["birth_date"] == "1949-12-31"
    assert ID_X not in ind.explanation and ID_X.lower() not in ind.explanation


def test_id_wrong_checksum_rejected() -> None:
    assert run(ID, "身份证11010519491231002Y") == []
    assert run(ID, "身份证110105194912310021") == []


def test_id_impossible_birth_date_rejected() -> None:
    from stdnum.cn import ric

    body = "11010519491331002"  # month 13
    assert run(ID, body + ric.calc_check_digit(body + "0")) == []


def test_id_not_inside_longer_digit_runs() -> None:
    assert run(ID, "9" + ID_ALSO_LUHN) == []


# --- IM contacts ----------------------------------------------------------------------------------------

IM = ImRecognizer()


@pytest.mark.parametrize(("text", "qq"), [
    ("加QQ:123456789", "123456789"),
    ("qq 12345678", "12345678"),
    ("扣扣：12345678", "12345678"),
    ("Q:12345", "12345"),
    ("进qq群 87654321", "87654321"),
])
def test_im_qq_numbers_with_cue(text: str, qq: str) -> None:
    ind = one(IM, text)
    assert (ind.kind, ind.value) == ("qq", qq)
    assert ind.text == qq


def test_im_bare_number_is_not_qq() -> None:
    assert run(IM, "号码12345678") == []


@pytest.mark.parametrize(("text", "wx"), [
    ("微信号abc_123", "abc_123"),
    ("vx:wxid_abc123", "wxid_abc123"),
    ("加V信: Lucky-888", "lucky-888"),
    ("微信：ZhangSan2024", "zhangsan2024"),
])
def test_im_wechat_ids(text: str, wx: str) -> None:
    ind = one(IM, text)
    assert (ind.kind, ind.value) == ("wechat", wx)


@pytest.mark.parametrize("text", ["微信号:123456", "微信:abc", "微信支付成功"])
def test_im_wechat_id_must_start_with_letter_and_be_long_enough(text: str) -> None:
    assert [i for i in run(IM, text) if i.kind == "wechat"] == []


@pytest.mark.parametrize("text", ["飞机@scam_bot01", "telegram: @hello_world", "加飞机 @scam_bot01",
                                  "TG:@abcdef"])
def test_im_telegram_handles_with_context(text: str) -> None:
    ind = next(i for i in run(IM, text) if i.kind == "telegram")
    assert ind.text.startswith("@")
    assert ind.value == ind.text.lower()


def test_im_at_name_without_telegram_context_ignored() -> None:
    assert run(IM, "联系 @someone_here 即可") == []


# --- apps -----------------------------------------------------------------------------------------------

APPS = AppRecognizer()


@pytest.mark.parametrize(("text", "name", "category"), [
    ("下载向日葵", "向日葵", "remote_control"),
    ("安装ToDesk", "ToDesk", "remote_control"),
    ("打开teamviewer", "TeamViewer", "remote_control"),
    ("用anydesk连一下", "AnyDesk", "remote_control"),
    ("开启屏幕共享", "屏幕共享", "remote_control"),
    ("点共享屏幕", "屏幕共享", "remote_control"),
    ("进zoom会议", "Zoom", "meeting"),
    ("下载腾讯会议", "腾讯会议", "meeting"),
    ("下载瞩目", "瞩目", "meeting"),
    ("打开飞书会议", "飞书会议", "meeting"),
    ("用云闪付", "云闪付", "payment"),
    ("注册币安", "币安", "crypto_exchange"),
    ("下载OKX", "OKX", "crypto_exchange"),
    ("火币交易所", "火币", "crypto_exchange"),
    ("下载纸飞机", "Telegram", "chat"),
    ("加飞机", "Telegram", "chat"),
    ("下载telegram", "Telegram", "chat"),
    ("装个蝙蝠聊", "蝙蝠", "chat"),
    ("下载有信打电话", "有信", "chat"),
])
def test_apps_found_with_category(text: str, name: str, category: str) -> None:
    ind = one(APPS, text)
    assert (ind.value, ind.attributes["category"]) == (name, category)
    assert_span_ok(ind, text)


@pytest.mark.parametrize("text", ["坐飞机去北京", "我有信心", "举世瞩目", "zoomed in", "蝙蝠侠",
                                  "有信用卡吗"])
def test_apps_ordinary_words_not_apps(text: str) -> None:
    assert run(APPS, text) == []


# --- amounts --------------------------------------------------------------------------------------------

AMOUNT = AmountRecognizer()


@pytest.mark.parametrize(("text", "value", "currency"), [
    ("¥1,000", "1000", "CNY"),
    ("￥1,000.50", "1000.5", "CNY"),
    ("转1000元", "1000", "CNY"),
    ("先转5万", "50000", "CNY"),
    ("3.5万元", "35000", "CNY"),
    ("一万元", "10000", "CNY"),
    ("两千块钱", "2000", "CNY"),
    ("人民币5000", "5000", "CNY"),
    ("充值500 USDT", "500", "USDT"),
    ("200u", "200", "USDT"),
    ("$300", "300", "USD"),
    ("5千万元", "50000000", "CNY"),
])
def test_amounts_value_in_currency_units(text: str, value: str, currency: str) -> None:
    ind = one(AMOUNT, text)
    assert (ind.value, ind.attributes["currency"]) == (value, currency)


@pytest.mark.parametrize("text", ["3万人参加", "2024年", "千万不要", "13812345678", "v1.2", "第3名"])
def test_amounts_not_fired_on_counts_dates_or_bare_numbers(text: str) -> None:
    assert run(AMOUNT, text) == []


@pytest.mark.parametrize(("cn", "value"), [("三千五百", 3500), ("十万", 100_000), ("一亿五千万", 150_000_000),
                                           ("一二三", 123), ("两千零五", 2005), ("万", None)])
def test_amounts_chinese_numerals(cn: str, value: int | None) -> None:
    assert chinese_to_int(cn) == value


# --- wallets --------------------------------------------------------------------------------------------

WALLET = WalletRecognizer()


@pytest.mark.parametrize(("addr", "chain"), [
    (TRON, "TRON"), (ETH, "ETH"), (BTC_P2PKH, "BTC"), (BTC_P2SH, "BTC"), (BTC_BECH32, "BTC"),
])
def test_wallet_addresses(addr: str, chain: str) -> None:
    ind = one(WALLET, f"转到地址：{addr} 即可")
    assert ind.attributes["chain"] == chain
    assert ind.text == addr


def test_wallet_base58_value_keeps_original_case() -> None:
    assert one(WALLET, TRON).value == TRON


@pytest.mark.parametrize("addr", [TRON[:-1] + "9", BTC_P2PKH[:-1] + "b", BTC_BECH32[:-1] + "p"])
def test_wallet_bad_checksum_rejected(addr: str) -> None:
    assert run(WALLET, addr) == []


def test_wallet_eth_digits_not_a_card_in_registry() -> None:
    assert kinds(registry(ETH)) == ["wallet"]


# --- verification-code requests -------------------------------------------------------------------------

VCODE = VerificationCodeRequestRecognizer()


@pytest.mark.parametrize("text", [
    "把验证码发给我", "把验证码告诉我", "告诉我验证码", "报一下验证码", "你念一下收到的数字",
    "请提供短信码", "验证码是多少", "麻烦把手机上收到的6位数字念一下",
    "我是客服，请提供一下短信验证码，给您退款",
])
def test_vcode_requests_found(text: str) -> None:
    ind = one(VCODE, text)
    assert ind.kind == "verification_code_request"
    assert_span_ok(ind, text)


@pytest.mark.parametrize("text", [
    "您的验证码是123456，请勿泄露", "【工商银行】您的动态码为382910，任何人索要都是诈骗，请勿告诉他人。",
    "请勿将验证码告诉他人", "客服不会要求您提供验证码", "我们已向您发送验证码", "验证码：5678，5分钟内有效",
    "不要把验证码发给任何人",
])
def test_vcode_notices_and_warnings_not_requests(text: str) -> None:
    assert run(VCODE, text) == []


def test_vcode_notice_gives_no_phone_and_no_request() -> None:
    assert registry("您的验证码是123456") == []


# --- ip -------------------------------------------------------------------------------------------------

def test_ip_bare_address_context_raises_score() -> None:
    ip = IpRecognizer()
    assert one(ip, "服务器ip 8.8.8.8").score > one(ip, "见 8.8.8.8 ").score
    assert run(ip, "999.1.1.1") == []
    assert run(ip, "v1.2.3.4") == []


# --- registry -------------------------------------------------------------------------------------------

def test_registry_phone_inside_url_is_not_a_phone() -> None:
    found = registry("请点击https://icbc-vip.com/a?tel=13812345678 处理")
    assert kinds(found) == ["url"]


def test_registry_results_sorted_and_non_overlapping() -> None:
    text = ("加飞机 @scam_bot01 下载向日葵，共享屏幕，把验证码发给我，"
            "先转3.5万元到 6222021234567894，电话13812345678")
    found = registry(text)
    assert [i.start for i in found] == sorted(i.start for i in found)
    expected = {"telegram", "app", "verification_code_request", "amount", "bank_card", "phone"}
    assert expected <= set(kinds(found))
    exclusive = [i for i in found if i.kind != "verification_code_request"]
    for a, b in itertools.pairwise(exclusive):
        assert a.end <= b.start
    for ind in found:
        assert_span_ok(ind, text)


def test_registry_equal_spans_keep_more_specific() -> None:
    found = registry("QQ:13812345678")
    assert kinds(found) == ["qq"]


def test_registry_is_built_once() -> None:
    assert default_registry() is default_registry()
    assert len({type(r) for r in ALL_RECOGNIZERS}) == len(ALL_RECOGNIZERS) >= 10


def test_registry_custom_recognizers() -> None:
    reg = RecognizerRegistry([PhoneRecognizer()])
    assert kinds(reg.analyze(normalize("下载向日葵 13812345678"))) == ["phone"]


def test_context_words_window() -> None:
    ctx = ContextWords(["电话"], window=4, boost=0.2)
    assert ctx.apply(0.5, "电话:12345", 3) == (0.7, "电话")
    assert ctx.apply(0.5, "电话xxxxxx:12345", 9) == (0.5, None)


# --- robustness -----------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from([
    *"0123456789０１２３４５６７８９ -._:/@+()xX,，。：abcdefghijklmnopqrstuvwxyzTQV¥$元万",
    "微信", "qq", "飞机", "验证码", "发给我", "http://", "www.", ".com", ".cn", "13812345678", CARD16, ID_X,
    "卡号", "电话", "\u200b", "一", "三", "八", "向日葵", "\n",
])
_TEXTS = st.one_of(st.text(max_size=80), st.lists(_ALPHABET, max_size=30).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_no_recognizer_crashes_and_spans_are_valid(text: str) -> None:
    norm = normalize(text)
    for rec in ALL_RECOGNIZERS:
        for ind in rec.analyze(norm):
            assert_span_ok(ind, text)
    for ind in default_registry().analyze(norm):
        assert_span_ok(ind, text)
