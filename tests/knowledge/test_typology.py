"""Tests for the fraud typology data and its loader."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import opencc
import pytest

from fanzha.knowledge.loader import (
    FRAUD_TYPE_CODES,
    REGEX_FLAGS,
    TYPOLOGY_DIR,
    Typology,
    TypologyError,
    load_typology,
)
from fanzha.text.normalize import normalize

NAMES = {
    "impersonate_police": "冒充公检法及政府机关",
    "impersonate_customer_service": "冒充电商物流客服",
    "impersonate_acquaintance": "冒充领导熟人/亲友/老师",
    "fake_loan": "虚假网络贷款/代办信用卡",
    "fake_credit_repair": "虚假征信/注销校园贷",
    "brushing_rebate": "刷单返利/点赞关注兼职",
    "fake_investment": "虚假投资理财/荐股/虚拟币",
    "romance_scam": "网络婚恋交友(杀猪盘)",
    "fake_shopping": "虚假购物服务/低价代购",
    "game_trading": "网络游戏虚假交易",
    "prize_lottery": "中奖/抽奖/彩票",
    "billing_arrears": "话费宽带医保欠费/滞纳金",
    "refund_subsidy": "退税/补贴/社保医保卡异常",
    "kidnapping_emergency": "虚构绑架/亲人出事",
    "phishing_account": "账户异常/积分兑换/钓鱼链接/索要验证码",
    "sextortion": "裸聊/PS图片敲诈",
    "card_trafficking": "收购出租银行卡手机卡/跑分",
    "gambling": "网络赌博",
    "other_fraud": "其他诈骗",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
T2S = opencc.OpenCC("t2s")


@pytest.fixture(scope="module")
def typology() -> Typology:
    return load_typology()


def test_all_codes_present_in_canonical_order(typology: Typology) -> None:
    assert typology.codes == FRAUD_TYPE_CODES
    assert set(typology.codes) == set(NAMES)


@pytest.mark.parametrize("code", FRAUD_TYPE_CODES)
def test_type_texts(typology: Typology, code: str) -> None:
    ft = typology.get(code)
    assert ft.name == NAMES[code] == typology.name(code)
    for text in (ft.description, ft.typical_script, ft.advice):
        assert CJK.search(text)
        # Folded YAML would join Chinese lines with a space.
        assert not re.search(r"[\u3000-\u9fff\uff00-\uffef] [\u3000-\u9fff\uff00-\uffef]", text)
    assert typology.advice(code) == ft.advice
    assert 20 <= len(ft.keywords) <= 40
    assert 6 <= len(ft.patterns) <= 15


def test_unknown_code_is_a_key_error(typology: Typology) -> None:
    with pytest.raises(KeyError, match="no_such_type"):
        typology.name("no_such_type")


def test_label_map(typology: Typology) -> None:
    assert typology.label_map() == {
        "投资诈骗": "fake_investment",
        "彩票诈骗": "prize_lottery",
        "绑架诈骗": "kidnapping_emergency",
        "客服诈骗": "impersonate_customer_service",
        "钓鱼诈骗": "phishing_account",
    }


def test_patterns_compile_and_weights_in_range(typology: Typology) -> None:
    for ft in typology.types.values():
        for p in ft.patterns:
            assert re.compile(p.pattern, REGEX_FLAGS)
            assert 0.1 <= p.weight <= 1.0, p.id
            assert CJK.search(p.description), p.id
        for kw in ft.keywords:
            assert 0.1 <= kw.weight <= 1.0, kw.term
    kinds = {s.kind for s in typology.signals}
    assert kinds == {"risk", "legitimacy"}
    for s in typology.signals:
        assert (0.1 <= s.weight <= 1.0) if s.kind == "risk" else (-1.0 <= s.weight <= -0.1), s.id
        if s.pattern:
            assert re.compile(s.pattern, REGEX_FLAGS)


def test_terms_are_in_normalised_form(typology: Typology) -> None:
    """Keywords are matched on normalised text: simplified, lower-case, canonical variants."""
    terms = [kw.term for ft in typology.types.values() for kw in ft.keywords]
    terms += [s.term for s in typology.signals if s.term]
    bad = [t for t in terms if normalize(t).text != t]
    assert not bad


def test_patterns_are_simplified_chinese(typology: Typology) -> None:
    patterns = [p.pattern for ft in typology.types.values() for p in ft.patterns]
    patterns += [s.pattern for s in typology.signals if s.pattern]
    assert [p for p in patterns if T2S.convert(p) != p] == []


def test_no_keyword_is_just_a_weaker_copy_of_a_pattern(typology: Typology) -> None:
    """A keyword that a same-type pattern matches entirely is redundant; if it outweighs the
    pattern, the pattern's coverage would silently lower the score."""
    for ft in typology.types.values():
        for p in ft.patterns:
            rx = re.compile(p.pattern, REGEX_FLAGS)
            for kw in ft.keywords:
                assert not (rx.search(kw.term) and kw.weight > p.weight), (ft.code, p.id, kw.term)


# --- broken data gives clear errors ----------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "typology"
    shutil.copytree(TYPOLOGY_DIR, target)
    return target


def test_copy_loads(data_dir: Path) -> None:
    assert load_typology(data_dir).codes == FRAUD_TYPE_CODES


def test_yaml_syntax_error_names_the_file(data_dir: Path) -> None:
    (data_dir / "fake_loan.yaml").write_text("code: fake_loan\nname: [unclosed\n", encoding="utf-8")
    with pytest.raises(TypologyError, match=r"fake_loan\.yaml"):
        load_typology(data_dir)


def test_bad_regex_names_file_and_entry(data_dir: Path) -> None:
    path = data_dir / "gambling.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("pattern: '(注册|首充", "pattern: '((注册|首充", 1), encoding="utf-8")
    with pytest.raises(TypologyError, match=r"gambling\.yaml: patterns\[0\].*does not compile"):
        load_typology(data_dir)


def test_weight_out_of_range(data_dir: Path) -> None:
    path = data_dir / "sextortion.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{term: 裸聊, weight: 1.0}", "{term: 裸聊, weight: 1.5}"), encoding="utf-8")
    with pytest.raises(TypologyError, match=r"sextortion\.yaml: keywords\[0\] weight 1.5"):
        load_typology(data_dir)


def test_upper_case_term_rejected(data_dir: Path) -> None:
    path = data_dir / "fake_investment.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("term: usdt,", "term: USDT,"), encoding="utf-8")
    with pytest.raises(TypologyError, match=r"fake_investment\.yaml.*lower-case"):
        load_typology(data_dir)


def test_missing_type_file(data_dir: Path) -> None:
    (data_dir / "game_trading.yaml").unlink()
    with pytest.raises(TypologyError, match=r"missing.*game_trading"):
        load_typology(data_dir)


def test_unknown_type_file(data_dir: Path) -> None:
    text = (data_dir / "other_fraud.yaml").read_text(encoding="utf-8")
    (data_dir / "new_scam.yaml").write_text(text.replace("code: other_fraud", "code: new_scam"), "utf-8")
    with pytest.raises(TypologyError, match=r"unexpected.*new_scam"):
        load_typology(data_dir)


def test_code_must_match_file_name(data_dir: Path) -> None:
    path = data_dir / "romance_scam.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("code: romance_scam", "code: romance"), "utf-8")
    with pytest.raises(TypologyError, match=r"romance_scam\.yaml.*file name"):
        load_typology(data_dir)


def test_duplicate_label(data_dir: Path) -> None:
    path = data_dir / "gambling.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("teleantifraud_labels: []", "teleantifraud_labels: [投资诈骗]"), "utf-8")
    with pytest.raises(TypologyError, match="投资诈骗"):
        load_typology(data_dir)


def test_legitimacy_signal_needs_negative_weight(data_dir: Path) -> None:
    path = data_dir / "_signals.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("term: 谨防, weight: -0.8", "term: 谨防, weight: 0.8"), "utf-8")
    with pytest.raises(TypologyError, match=r"_signals\.yaml: legitimacy\[0\] weight 0.8"):
        load_typology(data_dir)


def test_signal_needs_term_or_pattern(data_dir: Path) -> None:
    path = data_dir / "_signals.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{id: secrecy, term: 保密,", "{id: secrecy,"), "utf-8")
    with pytest.raises(TypologyError, match=r"_signals\.yaml: risk\[\d+\].*exactly one of"):
        load_typology(data_dir)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TypologyError, match="not found"):
        load_typology(tmp_path / "nope")
