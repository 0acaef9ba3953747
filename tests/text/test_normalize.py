"""Tests for the evasion-undoing normaliser and the evaluation obfuscator."""

from __future__ import annotations

import random
import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fanzha.text import normalize as norm_module
from fanzha.text.normalize import VARIANTS, NormalizedText, normalize
from fanzha.text.obfuscate import obfuscate

# Pieces that exercise every step: evasions, separators, invisible characters, Chinese digits,
# traditional characters, full-width forms, and ordinary text around them.
_PIECES = [
    "微信", "加", "V", "v信", "vx", "wx", "信", "转帐", "轉賬", "安全帳戶", "企鹅", "飞机", "帐号",
    "刷", "单",
    "一", "三", "八", "两", "幺", "壹", "五", "1", "38", "0", "-", ".", " ", "★", "😀", "\u200b", "\ufe0f",
    "\x00", "\ud800", "，", "。", "Ａ", "ｂ", "１", "\u3000", "\n", "a", "Q", "@", "/", "乾隆", "打坏", "薴",
    "zfb", "zhang", "户", "号", "\u0336", "①", "𝐀", "🅰", "⑴", "¹", "\U00020000", "\t", "\r",
]
_mixed = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
_interleaved = st.lists(st.one_of(st.text(max_size=5), _mixed)).map("".join)
_any_text = st.one_of(st.text(max_size=60), _mixed, _interleaved)


_EVASIVE_CHUNK = "刷 单 加-V-信 一三八一二三四五六七八 轉帳\u200b 😀 "


def _random_text(n: int) -> str:
    rng = random.Random(0)
    return "".join(chr(rng.randrange(0x20, 0x30000)) for _ in range(n))


def _check_offsets(n: NormalizedText) -> None:
    if n.offsets is None:
        assert len(n.text) == len(n.original)
        return
    offs = n.offsets
    assert len(offs) == len(n.text) + 1
    assert offs[-1] == len(n.original)
    assert all(0 <= o <= len(n.original) for o in offs)
    assert all(a <= b for a, b in pairwise(offs))
    assert all(o < len(n.original) for o in offs[:-1])


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(_any_text)
def test_offsets_are_monotonic_in_bounds_and_sized_to_text(text: str) -> None:
    _check_offsets(normalize(text))


@settings(max_examples=400, deadline=None)
@given(_any_text)
def test_span_of_whole_text_covers_everything_but_dropped_edges(text: str) -> None:
    n = normalize(text)
    if not n.text:
        return
    start, end = n.span(0, len(n.text))
    assert 0 <= start < end <= len(text)
    # Whatever lies outside the span must be characters that normalise to nothing.
    assert normalize(text[:start]).text == ""
    assert normalize(text[end:]).text == ""


@settings(max_examples=400, deadline=None)
@given(_any_text)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text).text
    assert normalize(once).text == once


@settings(max_examples=300, deadline=None)
@given(_any_text)
def test_output_is_valid_text_without_invisible_characters(text: str) -> None:
    out = normalize(text).text
    out.encode("utf-8")  # no lone surrogates
    assert not any(c in out for c in "\x00\u200b\ufe0f\ufeff\u200d")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fast_width_folding_equals_plain_translate(text: str) -> None:
    # _fold replaces runs instead of translating everything; it must give exactly the same result.
    assert norm_module._fold(text) == text.translate(norm_module._ONE_TO_ONE)


def test_fast_width_folding_handles_short_run_inside_long_run() -> None:
    assert norm_module._fold("ＺHUAN💰賬AN✨") == "zhuan💰賬an✨"


# --- each evasion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("刷★单", "刷单"),
        ("刷 单", "刷单"),
        ("刷\u3000单", "刷单"),
        ("加-V-信", "加微信"),
        ("转.账", "转账"),
        ("微😀信", "微信"),
        ("微❤️信", "微信"),
        ("微\u200b信", "微信"),
        ("微\u0336信", "微信"),
        ("ＡＢＣ１２３！", "abc123!"),
        ("①③⑧", "138"),
        ("轉帳到安全賬戶", "转账到安全账户"),
        ("加ＶＸ：abc123", "加微信:abc123"),
        ("加薇信", "加微信"),
        ("加威信", "加微信"),
        ("加企鹅123456", "加qq123456"),
        ("扣扣号", "qq号"),
        ("代款", "贷款"),
        ("刷dan", "刷单"),
        ("兼值", "兼职"),
        ("du博", "赌博"),
        ("yzm是多少", "验证码是多少"),
        ("银航卡", "银行卡"),
        ("高反利", "高返利"),
        ("菠菜平台", "博彩平台"),
        ("luo聊", "裸聊"),
        ("用zfb付", "用支付宝付"),
        ("加飞机", "加telegram"),
        ("一三八一二三四五六七八", "13812345678"),
        ("幺三八 幺两三四 五六七八", "13812345678"),
        ("壹叁捌壹贰叁肆伍陆柒捌", "13812345678"),
        ("138一二三四5678", "13812345678"),
    ],
)
def test_evasion_is_undone(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_evidence_span_maps_back_to_the_disguised_original() -> None:
    n = normalize("加 V 信 abc")
    i = n.text.index("微信")
    s, e = n.span(i, i + 2)
    assert n.original[s:e] == "V 信"


def test_span_of_length_changing_variant_covers_whole_source() -> None:
    n = normalize("请用zfb转zhang到安全帐户")
    for term, source in [("支付宝", "zfb"), ("转账", "转zhang"), ("安全账户", "安全帐户")]:
        i = n.text.index(term)
        s, e = n.span(i, i + len(term))
        assert n.original[s:e] == source


def test_empty_span_maps_to_a_point() -> None:
    n = normalize("刷 单")
    assert n.span(1, 1) == (2, 2)


def test_clean_simplified_text_keeps_identity_offsets() -> None:
    assert normalize("您的账户存在异常，请联系客服。").offsets is None


# --- legitimate text is not mangled -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "一个人去看卫星",
        "三四天后再说",
        "他很有威信",
        "企鹅很可爱",
        "我爱吃菠菜",
        "违反利益冲突规定",
        "反利用漏洞",
        "携带款项",
        "飞机晚点了",
        "打坏了",
        "2000一次性付清",
        "1.5万",
        "3-5天",
        "138-1234-5678",
        "138 1234 5678",
        "wx.qq.com",
        "mp.weixin.qq.com",
        "vx@abc.com",
        "wxyz",
        "python",
    ],
)
def test_legitimate_text_is_unchanged(text: str) -> None:
    assert normalize(text).text == text


def test_sentence_punctuation_and_newlines_survive() -> None:
    out = normalize("你好！ 我是小王。\n请问，有事吗？").text
    assert out == "你好! 我是小王。\n请问,有事吗?"


# --- the variants data file ---------------------------------------------------------------------------------


def test_canonical_forms_are_fixed_points() -> None:
    for canonical in VARIANTS:
        assert normalize(canonical).text == canonical


@pytest.mark.parametrize(
    ("canonical", "variant", "spec"),
    [(c, v, spec) for c, items in VARIANTS.items() for v, spec in items],
)
def test_every_variant_maps_to_its_canonical_form_in_context(
    canonical: str, variant: str, spec: dict[str, list[str]]
) -> None:
    before = spec["after"][0] if "after" in spec else "在"
    after = spec["before"][0] if "before" in spec else "。"
    assert canonical in normalize(before + variant + after).text


# --- obfuscate then normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_obfuscated_key_terms_are_recovered(level: int) -> None:
    for seed in range(300):
        obfuscated = obfuscate("加微信转账到安全账户", random.Random(seed), level)
        text = normalize(obfuscated).text
        for term in ("微信", "转账", "安全账户"):
            assert term in text, (seed, obfuscated, text)


def test_obfuscated_long_message_recovers_terms_and_numbers() -> None:
    msg = "您好，请加QQ 123456789 或微信，电话13812345678，刷单返利，贷款到银行卡，验证码发给我，用支付宝转账"
    terms = ["qq", "123456789", "微信", "13812345678", "刷单", "返利", "贷款", "银行卡", "验证码"]
    terms += ["支付宝", "转账"]
    for seed in range(200):
        obfuscated = obfuscate(msg, random.Random(seed), 3)
        text = normalize(obfuscated).text
        assert all(t in text for t in terms), (seed, obfuscated, text)


def test_obfuscate_is_deterministic_and_actually_changes_text() -> None:
    msg = "加微信转账到安全账户，电话13812345678"
    assert obfuscate(msg, random.Random(7)) == obfuscate(msg, random.Random(7))
    assert sum(obfuscate(msg, random.Random(s), 3) != msg for s in range(50)) >= 45


def test_obfuscate_level_zero_and_empty_text_are_identity() -> None:
    assert obfuscate("加微信转账", random.Random(1), 0) == "加微信转账"
    assert obfuscate("", random.Random(1), 3) == ""


# --- bad input ----------------------------------------------------------------------------------------


def test_empty_string() -> None:
    n = normalize("")
    assert (n.text, n.span(0, 0)) == ("", (0, 0))


def test_control_characters_are_dropped_but_line_breaks_and_tabs_kept() -> None:
    n = normalize("a\x00b\x07c\x1bd\ne\tf\rg\x7f")
    assert n.text == "abcd\ne\tf\rg"
    _check_offsets(n)


def test_lone_surrogates_are_dropped_not_fatal() -> None:
    # Decision: lone surrogates are not text (cannot be UTF-8 encoded), so they vanish like
    # zero-width characters; offsets still point at the surviving characters.
    n = normalize("加\ud800微\udfff信")
    assert n.text == "加微信"
    assert n.offsets == (0, 2, 4, 5)
    assert normalize("\ud800").text == ""


@pytest.mark.parametrize(
    "big",
    [
        pytest.param((_EVASIVE_CHUNK * 40_000)[:1_000_000], id="evasions"),
        pytest.param("\ud800a" * 500_000, id="surrogates"),
        pytest.param(" " * 1_000_000, id="spaces"),
        pytest.param("加" + "-" * 999_998 + "信", id="one-long-separator"),
        pytest.param(_random_text(20_000) * 50, id="random-unicode"),
    ],
)
def test_one_megabyte_input_finishes_quickly(big: str) -> None:
    # A guard against super-linear blow-ups (a quadratic pass over 1 MB takes minutes), not a speed
    # benchmark (bench/bench_detect.py): CPU time, with a bound well above the ~0.3–0.6 s it takes even on
    # a machine loaded by other jobs.
    t0 = time.process_time()
    n = normalize(big)
    assert time.process_time() - t0 < 5.0
    assert n.offsets is None or len(n.offsets) == len(n.text) + 1


def test_shipped_traditional_character_table_matches_the_installed_opencc(tmp_path):
    from fanzha.text import normalize as nm

    # Regenerate with `python -m fanzha.text.normalize` after upgrading OpenCC.
    assert nm._cached_traditional_chars() == nm._traditional_chars()
    stale = tmp_path / "t2s_chars.json"
    stale.write_text('{"key": "opencc 0.0", "trad": [], "chained": []}', encoding="utf-8")
    assert nm._cached_traditional_chars(stale) == nm._traditional_chars()  # stale file: recomputed
    assert nm._cached_traditional_chars(tmp_path / "missing.json") == nm._traditional_chars()
