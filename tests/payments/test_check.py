"""Transfer check: features from payer, payee and history → decision, reasons, 三问一确认 and bad input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import pytest

from fanzha.intel.matcher import Row, WatchlistIndex
from fanzha.payments.check import (
    CheckError,
    Decision,
    MuleScores,
    TransferCheck,
    TransferChecker,
    UnknownAccount,
)
from fanzha.payments.rules import RulesError, load_rules
from fanzha.payments.state import account_hash, build_state
from tests.payments.check_ledger import NOW_MS, ms, write_ledger


@dataclass
class _Det:
    risk: int


class StubDetector:
    def __init__(self) -> None:
        self.calls = 0

    def detect(self, text: str) -> _Det:
        self.calls += 1
        return _Det(95 if "安全账户" in text else 0)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    return write_ledger(tmp_path_factory.mktemp("ledger"))


@pytest.fixture
def checker(ledger):
    wl = WatchlistIndex([Row(kind="payment_account", value="8800123456", fraud_type="fake_investment",
                             confidence=0.9, source="case", expires_at=None, entry_id=1)])
    return TransferChecker(
        build_state(ledger), watchlist=wl, mule_scores=MuleScores.from_mapping({"M": 92}),
        detector=StubDetector(), recent_warning=lambda acct: acct == "E", clock=lambda: NOW_MS,
    )


def req(payer="A", payee="B", yuan=250, **kw) -> TransferCheck:
    return TransferCheck(payer=payer, payee=payee, amount_fen=int(yuan * 100), **kw)


def codes(d: Decision) -> set[str]:
    return {r.code for r in d.reasons}


def test_routine_payment_to_known_payee_is_allowed(checker):
    d = checker.check(req())
    assert d.decision == "allow" and d.risk < 30 and d.reasons == []
    assert d.features["first_to_payee"] == 0 and d.rules_version == load_rules().version


def test_watchlisted_payee_is_blocked_with_chinese_reason(checker):
    d = checker.check(req(payee="8800123456", yuan=100))
    assert d.decision == "block" and "payee_watchlisted" in codes(d)
    assert any("涉诈名单" in r.text for r in d.reasons)


def test_high_mule_score_payee_needs_a_human(checker):
    d = checker.check(req(payee="M", yuan=100))
    assert d.decision == "hold" and "payee_mule_high" in codes(d)


def test_blacklisted_payee_is_blocked(checker):
    assert checker.check(req(payee="X", yuan=100)).decision == "block"


def test_first_large_transfer_to_new_external_payee_asks_three_questions(checker):
    d = checker.check(req(payee="62220000111", yuan=20_000))
    assert d.decision == "confirm", d
    assert {"first_payee_large", "amount_far_above_history"} <= codes(d)
    assert d.features["payee_known"] == 0 and d.features["payee_age_days"] == -1
    assert [q["id"] for q in d.questions] == ["payee", "purpose", "source", "confirm"]


def test_dormant_payer_suddenly_moving_money_is_flagged(checker):
    d = checker.check(req(payer="D", yuan=6000))
    assert "dormant_payer_active" in codes(d) and d.decision != "allow"
    assert d.features["payer_dormant_days"] > 600


def test_elderly_payer_with_recent_warning_is_flagged(checker):
    d = checker.check(req(payer="E", yuan=12_000))
    assert {"elderly_large", "payer_recent_warning"} <= codes(d) and d.decision in {"hold", "block"}


def test_restricted_new_account_may_not_transfer_outside_the_counter(checker):
    assert checker.check(req(payer="R", yuan=100)).decision == "hold"
    at_counter = checker.check(req(payer="R", yuan=100, channel="counter"))
    assert "payer_restricted_noncounter" not in codes(at_counter)


def test_remark_runs_through_detector_once_per_distinct_text(checker):
    d = checker.check(req(yuan=300, remark="按民警要求转入安全账户"))
    assert "remark_fraud" in codes(d) and d.decision != "allow"
    checker.check(req(yuan=300, remark="按民警要求转入安全账户"))
    checker.check(req(yuan=300))
    assert checker.detector.calls == 1


def test_short_remarks_are_left_to_the_keyword_rules_not_the_message_model(checker, ledger, tmp_path):
    assert checker.rules.remark_text_min_chars == 8  # the bundled rules
    d = checker.check(req(yuan=300, remark="安全账户"))  # 4 characters: no message for the text engine
    assert checker.detector.calls == 0 and "remark_fraud" not in codes(d)
    rules = tmp_path / "rules.yaml"
    rules.write_text(load_rules_text().replace("remark_text_min_chars: 8", "remark_text_min_chars: 0"))
    every = TransferChecker(
        build_state(ledger), load_rules(rules), detector=StubDetector(), clock=lambda: NOW_MS
    )
    assert "remark_fraud" in codes(every.check(req(yuan=300, remark="安全账户")))
    rules.write_text(load_rules_text().replace("remark_text_min_chars: 8", "remark_text_min_chars: -1"))
    with pytest.raises(RulesError):
        load_rules(rules)


def load_rules_text() -> str:
    from fanzha.payments.rules import RULES_FILE

    return RULES_FILE.read_text(encoding="utf-8")


def test_night_burst_after_recorded_transfers(checker):
    night = ms(datetime(2026, 11, 23, 2, 0))
    for k in range(2):
        checker.state.record(account_hash("A"), account_hash("B"), 10_000, night + k * 60_000)
    d = checker.check(req(yuan=300, ts_ms=night + 5 * 60_000))
    assert "night_burst" in codes(d)


def test_recording_a_transfer_makes_the_payee_known(checker):
    assert checker.check(req(payee="NEWP", yuan=100)).features["first_to_payee"] == 1
    checker.state.record(account_hash("A"), account_hash("NEWP"), 10_000, NOW_MS - 1000)
    assert checker.check(req(payee="NEWP", yuan=100)).features["first_to_payee"] == 0


def test_idempotency_key_is_echoed_and_decision_is_repeatable(checker):
    a, b = checker.check(req(idempotency_key="k-1")), checker.check(req(idempotency_key="k-1"))
    assert a.idempotency_key == "k-1" and (a.decision, a.risk, a.reasons) == (b.decision, b.risk, b.reasons)
    assert req(idempotency_key="k").fingerprint() != req(yuan=251, idempotency_key="k").fingerprint()


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ({"payee": "known_person", "purpose": "daily", "source": "no", "confirm": "yes"}, "allow"),
        ({"payee": "known_person", "purpose": "daily"}, "confirm"),
        ({"purpose": "safe_account"}, "block"),
        ({"source": "stranger_call", "confirm": "yes"}, "block"),
        ({"purpose": "investment", "payee": "known_person", "source": "no", "confirm": "yes"}, "hold"),
    ],
)
def test_answers_to_three_questions_change_the_decision(checker, answers, outcome):
    d = checker.check(req(payee="62220000111", yuan=20_000))
    after = checker.answer(d, answers)
    assert after.decision == outcome and after.initial_decision == "confirm" and after.answers == answers
    if outcome in {"hold", "block"}:
        assert any(r.code.startswith("answer:") for r in after.reasons) and after.risk >= 60


def test_answers_are_cumulative_and_validated(checker):
    d = checker.check(req(payee="62220000111", yuan=20_000))
    d = checker.answer(d, {"payee": "known_person", "purpose": "daily"})
    assert checker.answer(d, {"source": "no", "confirm": "yes"}).decision == "allow"
    with pytest.raises(CheckError):
        checker.answer(d, {"purpose": "lottery"})
    with pytest.raises(CheckError):
        checker.answer(d, {"nope": "x"})
    with pytest.raises(CheckError):
        checker.answer(checker.check(req()), {"payee": "known_person"})


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (req(yuan=-5), "bad_amount"),
        (TransferCheck("A", "B", 0), "bad_amount"),
        (req(yuan=200_000_000), "bad_amount"),
        (req(ts_ms=NOW_MS + 3_600_000), "future_timestamp"),
        (req(payee="A"), "same_account"),
        (req(channel="pigeon"), "bad_channel"),
        (req(payee=""), "bad_account"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(checker, request_, code):
    with pytest.raises(CheckError) as err:
        checker.check(request_)
    assert err.value.code == code and " / " in err.value.message


def test_unknown_payer_is_its_own_error(checker):
    with pytest.raises(UnknownAccount):
        checker.check(req(payer="nobody"))


def test_decision_json_round_trips(checker):
    d = checker.check(req(payee="62220000111", yuan=20_000))
    assert Decision.from_dict(orjson.loads(d.to_json())) == d


def test_rules_with_unknown_features_are_refused(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("version: x\nbands: {confirm: 1, hold: 2, block: 3}\n"
                   "rules: [{id: a, description_zh: a, when: {moon_phase: {eq: 1}}, weight: 1}]\n")
    with pytest.raises(RulesError):
        load_rules(bad)


def test_state_cut_off_excludes_later_history(ledger):
    early = build_state(ledger, until_ms=ms(datetime(2026, 10, 3)))
    i = early.index(account_hash("A"))
    assert early.tx_count[i] == 2
    assert build_state(ledger).tx_count[build_state(ledger).index(account_hash("A"))] == 10


def test_compiled_rules_agree_with_interpreted_rules(checker):
    rules = load_rules()
    fast = rules.compile()
    for payee in ("B", "M", "X", "62220000111"):
        for yuan in (10, 9e3, 6e4):
            f = list(checker.check(req(payee=payee, yuan=yuan)).features.values())
            assert [r.id for r in fast(f)] == [r.id for r in rules.fired(f)]
