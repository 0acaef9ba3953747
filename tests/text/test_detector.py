"""End-to-end behaviour of the detector that users rely on (bundled model and typology)."""

import pytest

from fanzha.text.detector import InvalidInput


@pytest.fixture(scope="module")
def detector():
    from fanzha.text.detector import Detector

    return Detector.from_settings()


def test_police_impersonation_is_fraud_with_type_advice_and_evidence(detector):
    d = detector.detect(
        "您好，这里是市公安局，您的身份证涉嫌洗钱案件，请立即把资金转入安全账户配合调查，不要告诉任何人。"
    )
    assert d.verdict == "fraud" and d.risk >= 50
    assert d.fraud_type == "impersonate_police"
    assert d.fraud_type_name and d.advice
    assert d.evidence


def test_anti_fraud_publicity_using_fraud_words_is_not_fraud(detector):
    d = detector.detect(
        "【国家反诈中心】公检法机关不会通过电话办案，更不存在“安全账户”，凡是要求转账的都是诈骗，请下载国家反诈中心APP。"
    )
    assert d.verdict != "fraud"


def test_ordinary_bank_notice_is_normal(detector):
    d = detector.detect("【建设银行】您尾号3321的储蓄卡11月21日工资收入8,620.00元，活期余额12,004.55元。")
    assert d.verdict == "normal" and d.fraud_type is None and d.advice is None


def test_evidence_and_indicator_spans_point_into_the_original_text(detector):
    text = "兼職刷單，點讚一單３元，加 V 信 ab12345 領任務，先墊付後返傭"
    d = detector.detect(text)
    assert d.verdict == "fraud"
    for item in [*d.evidence, *d.indicators]:
        assert text[item.start : item.end] == item.text


def test_indicators_are_typed_and_normalised(detector):
    d = detector.detect("请拨打＋86 138-1234-5678，或访问 http://icbc-vip.top/login 办理")
    kinds = {i.kind: i for i in d.indicators}
    assert kinds["phone"].value == "+8613812345678"
    assert "url" in kinds


def test_empty_and_oversized_text_are_clear_errors(detector):
    with pytest.raises(InvalidInput, match="empty"):
        detector.detect("  \n")
    with pytest.raises(InvalidInput, match="limit"):
        detector.detect("字" * (detector.max_text_chars + 1))
    with pytest.raises(InvalidInput, match="string"):
        detector.detect(b"bytes")  # type: ignore[arg-type]


def test_risk_is_monotone_with_the_verdict(detector):
    texts = ["晚上回家吃饭", "点赞关注一单3元日结，先垫付后返佣", "【京东】双11家电满3000减400，回TD退订"]
    for d in detector.detect_many(texts):
        if d.verdict == "fraud":
            assert d.risk >= round(detector.fraud_threshold * 100)
        if d.verdict == "normal":
            assert d.risk < round(detector.fraud_threshold * 100)


@pytest.mark.parametrize("text", ["押金", "定金", "保证金", "手续费", "解冻", "退款", "货款", "投资"])
def test_lone_words_shared_with_scams_are_not_fraud(detector, text):
    # Bank remarks and chat replies are often one word; model 1.3 called 押金/定金/保证金 fraud (risk 80+).
    assert detector.detect(text).verdict != "fraud"


def test_a_scam_using_the_same_word_is_still_fraud(detector):
    d = detector.detect(
        "您的贷款已审批通过，因银行卡号填写错误资金被冻结，需先转3000元保证金解冻，加V信 dk8866 办理"
    )
    assert d.verdict == "fraud"
