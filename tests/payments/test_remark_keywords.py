"""Remark (附言) keywords: short scam wording raises the transfer check; everyday remarks do not."""

from __future__ import annotations

import pytest

from fanzha.payments.check import TransferCheck, TransferChecker
from fanzha.payments.rules import RulesError, load_remark_keywords
from fanzha.payments.state import build_state
from tests.payments.check_ledger import NOW_MS, write_ledger


@pytest.fixture(scope="module")
def keywords():
    return load_remark_keywords()


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    # No text detector: the keyword signal must work on its own (as in the backtest).
    return TransferChecker(build_state(write_ledger(tmp_path_factory.mktemp("ledger"))), clock=lambda: NOW_MS)


@pytest.mark.parametrize(
    ("remark", "group"),
    [
        ("转入安全账户", "safe_account"),
        ("安全帳戶", "safe_account"),  # traditional characters
        ("安 全 账 户", "safe_account"),  # separators inside the word
        ("资金核查", "fund_check"),
        ("解冻费", "unfreeze_fee"),
        ("刷单返利", "brushing"),
        ("ＵＳＤＴ", "investment"),  # full width, upper case
        ("保证金", "loan_fees"),
        ("投资款", "investment"),
    ],
)
def test_scam_wording_matches_a_group(keywords, remark, group):
    g = keywords.match(remark)
    assert g is not None and g.id == group
    assert any("\u4e00" <= ch <= "\u9fff" for ch in g.reason_zh)


@pytest.mark.parametrize(
    "remark", ["房租", "还钱", "生活费", "工资", "货款", "投标保证金", "房屋押金及保证金", "红包"]
)
def test_everyday_remarks_and_legitimate_uses_do_not_match(keywords, remark):
    assert keywords.match(remark) is None


def test_riskiest_group_wins(keywords):
    assert keywords.match("保证金转入安全账户").id == "safe_account"


def test_keyword_remark_raises_the_check_with_a_specific_reason(checker):
    d = checker.check(TransferCheck("A", "B", 30_000, remark="解冻费"))
    assert d.features["remark_keyword_risk"] >= 80
    assert d.decision != "allow"
    reason = next(r for r in d.reasons if r.code == "remark_keyword_high")
    assert "解冻" in reason.text and reason.text.startswith("转账附言含诈骗常用说法：")
    medium = checker.check(TransferCheck("A", "B", 30_000, remark="保证金"))
    assert {r.code for r in medium.reasons} >= {"remark_keyword_medium"}
    everyday = checker.check(TransferCheck("A", "B", 30_000, remark="房租"))
    assert everyday.features["remark_keyword_risk"] == 0
    assert not any(r.code.startswith("remark_") for r in everyday.reasons)


def test_malformed_keyword_file_is_refused(tmp_path):
    bad = tmp_path / "kw.yaml"
    bad.write_text(
        'version: "x"\ngroups:\n  - {id: a, risk: 150, terms: [x], reason_zh: 理由}\n', encoding="utf-8"
    )
    with pytest.raises(RulesError):
        load_remark_keywords(bad)
    bad.write_text('version: "x"\ngroups:\n  - {id: a, risk: 50, reason_zh: 理由}\n', encoding="utf-8")
    with pytest.raises(RulesError):
        load_remark_keywords(bad)
