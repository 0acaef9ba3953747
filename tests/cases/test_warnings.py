"""Rules of warning tasks: what a valid request is, how urgent and when due it is, how it is counted."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanzha.cases.warnings import (
    OUTCOMES,
    InvalidWarning,
    WarningFacts,
    WarningRequest,
    covering_regions,
    due_at,
    escalated_priority,
    merged_detail,
    priority,
    summarize,
    warning_from_detection,
)
from fanzha.intel.matcher import Match
from fanzha.text.result import Detection

NOW = datetime(2026, 3, 1, 8, 0)


def req(**kw):
    base = {"region_code": "330106", "source": "detection", "risk": 80, "person_phone": "13812345678"}
    return WarningRequest(**{**base, **kw})


def test_phone_is_normalised_so_spellings_of_one_number_share_a_dedupe_key():
    keys = {req(person_phone=p).dedupe_key for p in ("13812345678", "+86 138-1234-5678", "008613812345678")}
    assert keys == {"phone:+8613812345678"}


def test_account_identifies_the_person_when_there_is_no_phone():
    r = req(person_phone=None, person_account="6222 0212-3456 7890")
    assert r.dedupe_key == "account:6222021234567890"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"region_code": "3301"}, "region_code"),
        ({"region_code": "33010a"}, "region_code"),
        ({"source": "rumour"}, "source"),
        ({"risk": 101}, "risk"),
        ({"risk": -1}, "risk"),
        ({"risk": True}, "risk"),
        ({"amount_at_stake": -5}, "amount"),
        ({"amount_at_stake": float("nan")}, "amount"),
        ({"person_phone": "12"}, "person_phone"),
        ({"person_phone": "95588"}, "service line"),
        ({"person_phone": None}, "person_phone or person_account"),
        ({"detail": ["not", "a", "dict"]}, "detail"),
    ],
)
def test_invalid_requests_are_refused_with_the_field_named(change, message):
    with pytest.raises(InvalidWarning, match=message):
        req(**change)


@pytest.mark.parametrize(
    ("risk", "amount", "expected"),
    [
        (95, 0, 2),
        (95, 5_000, 1),
        (95, 80_000, 1),
        (80, 0, 3),
        (80, 10_000, 2),
        (80, 50_000, 1),
        (60, 0, 4),
        (60, 60_000, 2),
        (10, 0, 5),
        (10, 4_999.99, 5),
        (10, 1_000_000, 3),
    ],
)
def test_priority_table_from_risk_and_amount(risk, amount, expected):
    assert priority(risk, amount) == expected


@given(st.integers(0, 100), st.integers(0, 100), st.floats(0, 1e9), st.floats(0, 1e9))
def test_priority_is_monotonic_more_risk_or_money_is_never_less_urgent(r1, r2, a1, a2):
    lo_r, hi_r = sorted((r1, r2))
    lo_a, hi_a = sorted((a1, a2))
    assert priority(hi_r, hi_a) <= priority(lo_r, lo_a)
    assert 1 <= priority(r1, a1) <= 5


def test_priority_one_is_due_in_a_third_of_the_usual_time_others_in_the_usual():
    assert due_at(NOW, 1, 30) == NOW + timedelta(minutes=10)
    assert due_at(NOW, 2, 30) == NOW + timedelta(minutes=30)
    assert due_at(NOW, 1, 6) == NOW + timedelta(minutes=5)  # never unreasonably short


def test_escalation_raises_priority_but_not_past_one():
    assert [escalated_priority(p) for p in (5, 2, 1)] == [4, 1, 1]


def test_covering_regions_go_from_district_to_province():
    assert covering_regions("330106") == ("330106", "330100", "330000")
    assert covering_regions("330100") == ("330100", "330000")


def test_merged_detail_keeps_signals_in_order_and_bounded():
    detail = None
    for i in range(60):
        detail = merged_detail(detail, {"n": i}, NOW)
    assert [s["n"] for s in detail["signals"]] == list(range(10, 60))


def detection(verdict="fraud", risk=92, indicators=()):
    return Detection(
        verdict=verdict,
        risk=risk,
        fraud_type="impersonate_police" if verdict != "normal" else None,
        fraud_type_name=None,
        evidence=[],
        indicators=list(indicators),
        advice=None,
        model_version="t",
    )


def test_detection_with_fraud_verdict_becomes_a_warning_for_the_recipient():
    w = warning_from_detection(detection(), "138 1234 5678", "330106", amount=20_000)
    assert w is not None
    assert (w.person_phone, w.source, w.risk, w.fraud_type) == (
        "+8613812345678",
        "detection",
        92,
        "impersonate_police",
    )
    assert w.amount_at_stake == 20_000 and w.detail["verdict"] == "fraud"


def test_normal_or_suspicious_detection_without_watchlist_hit_raises_nothing():
    assert warning_from_detection(detection("normal", 3), "13812345678", "330106") is None
    assert warning_from_detection(detection("suspicious", 40), "13812345678", "330106") is None


def test_watchlist_hit_raises_a_warning_even_when_the_wording_looks_harmless():
    hit = Match(7, "phone", "+8617012345678", "fake_investment", 0.95, "report", allowlisted=False)
    answer = detection("normal", 5).to_dict() | {"watchlist_hits": [hit]}
    w = warning_from_detection(answer, "13812345678", "330106")
    assert w is not None and w.source == "watchlist" and w.risk == 95
    assert w.fraud_type == "fake_investment"  # the entry's type when the wording gave none
    assert w.detail["watchlist_hits"][0]["value"] == "+8617012345678"


def test_allowlisted_numbers_in_a_message_raise_no_warning():
    official = {"kind": "phone", "value": "96110", "allowlisted": True, "confidence": 1.0}
    answer = detection("normal", 5).to_dict() | {"watchlist_hits": [official]}
    assert warning_from_detection(answer, "13812345678", "330106") is None


def facts(created, outcome=None, contact_after=None, reached=False, region="330106", escalated=False):
    return WarningFacts(
        created_at=created,
        region_code=region,
        status="closed" if outcome else "open",
        outcome=outcome,
        first_contact_at=created + timedelta(minutes=contact_after) if contact_after is not None else None,
        reached=reached,
        escalated=escalated,
    )


def test_stats_count_per_day_and_region_median_contact_time_and_dissuasion_rate():
    d1, d2 = datetime(2026, 3, 1, 9), datetime(2026, 3, 2, 9)
    rows = [
        facts(d1, "dissuaded", 4, reached=True),
        facts(d1, "dissuaded", 10, reached=True, region="440305"),
        facts(d1, "already_defrauded", 20, reached=True),
        facts(d2, "unreachable", 30, reached=False),  # never reached: not in the rate
        facts(d2, "false_alarm", 5, reached=True),  # nobody to dissuade: not in the rate
        facts(d2, escalated=True),
    ]
    s = summarize(rows, date(2026, 3, 1), date(2026, 3, 2))
    assert s.total == 6 and s.open == 1 and s.closed == 5 and s.escalated == 1
    assert s.by_day_region == [
        {"day": "2026-03-01", "region_code": "330106", "count": 2},
        {"day": "2026-03-01", "region_code": "440305", "count": 1},
        {"day": "2026-03-02", "region_code": "330106", "count": 3},
    ]
    assert s.by_outcome == {"dissuaded": 2, "already_defrauded": 1, "unreachable": 1, "false_alarm": 1}
    assert s.median_minutes_to_first_contact == 10.0 and s.contacted == 5
    assert s.reached_closed == 3 and s.dissuasion_rate == pytest.approx(2 / 3, abs=1e-4)


def test_stats_of_an_empty_period_have_no_rates_rather_than_zero_division():
    s = summarize([], date(2026, 3, 1), date(2026, 3, 1))
    assert s.total == 0 and s.dissuasion_rate is None and s.median_minutes_to_first_contact is None
    assert s.by_outcome == dict.fromkeys(OUTCOMES, 0)
    assert s.to_dict()["date_from"] == "2026-03-01"
