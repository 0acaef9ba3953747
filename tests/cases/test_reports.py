"""What a public report must look like before it is stored."""

import pytest

from fanzha.cases.reports import InvalidReport, ReportRequest, check_fraud_type


def test_reported_value_is_normalised_so_duplicates_meet():
    a = ReportRequest(kind="phone", value="+86 170-1234-5678")
    b = ReportRequest(kind="phone", value="17012345678")
    assert a.value == b.value == "+8617012345678"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "pigeon", "value": "x"}, "kind"),
        ({"kind": "phone", "value": "not a phone"}, "value"),
        ({"kind": "bank_card", "value": "6222021234567891"}, "value"),  # fails Luhn
        ({"kind": "url", "value": "evil.com", "region_code": "33"}, "region_code"),
        ({"kind": "url", "value": "evil.com", "fraud_type": "'; DROP TABLE reports;--"}, "fraud_type"),
        ({"kind": "url", "value": "evil.com", "message_text": "x" * 20_001}, "message_text"),
    ],
)
def test_invalid_reports_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(InvalidReport, match=message):
        ReportRequest(**kwargs)


def test_fraud_type_must_be_known_when_the_typology_is_given():
    assert check_fraud_type("fake_loan", {"fake_loan"}) == "fake_loan"
    assert check_fraud_type("", {"fake_loan"}) is None
    with pytest.raises(InvalidReport):
        check_fraud_type("fake_lottery_2", {"fake_loan"})


def test_detector_reads_message_and_screenshot_text_together():
    r = ReportRequest(kind="url", value="evil.com", message_text="点击领取", screenshot_text="  ")
    assert r.text_to_examine() == "点击领取"
    r2 = ReportRequest(kind="url", value="evil.com", message_text="a", screenshot_text="b")
    assert r2.text_to_examine() == "a\nb"
