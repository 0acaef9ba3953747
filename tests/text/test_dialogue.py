"""Dialogues are scored as a whole and turn by turn, with spans relative to each turn."""

import pytest

from fanzha.text.detector import InvalidInput
from fanzha.text.dialogue import DialogueSession, Turn, detect_dialogue, parse_turns


@pytest.fixture(scope="module")
def detector():
    from fanzha.text.detector import Detector

    return Detector.from_settings()


SCAM = [
    Turn("caller", "您好，我是市公安局刑侦支队的民警，警号041235。"),
    Turn("callee", "您好，有什么事吗？"),
    Turn("caller", "您名下一张银行卡涉嫌跨境洗钱案件，现在需要配合调查，不能告诉家人。"),
    Turn("callee", "啊？那我该怎么办？"),
    Turn(
        "caller", "你把卡里的资金转到我们指定的安全账户，核查清白后会退还给你，下载这个会议软件开启屏幕共享。"
    ),
]


def test_add_turn_returns_an_updated_result_each_turn_and_remembers_the_first_alert(detector):
    session = DialogueSession(detector)
    results = [session.add_turn(t.speaker, t.text) for t in SCAM]
    assert [r.turn for r in results] == list(range(len(SCAM)))
    assert results[-1].verdict == "fraud"
    alert = results[-1].first_alert_turn
    assert alert is not None and results[alert].verdict == "fraud"
    assert all(r.verdict != "fraud" for r in results[:alert])


def test_evidence_spans_point_into_their_own_turn(detector):
    result = detect_dialogue(detector, SCAM)
    assert result.evidence
    for e in result.evidence:
        assert e.turn is not None
        assert SCAM[e.turn].text[e.start : e.end] == e.text


def test_ordinary_service_call_is_not_fraud(detector):
    call = [
        Turn("caller", "您好，这里是小区物业，明天上午九点到十一点停水检修，请提前储水。"),
        Turn("callee", "好的，谢谢提醒。"),
    ]
    assert detect_dialogue(detector, call).verdict == "normal"


def test_malformed_turns_are_rejected_with_a_reason():
    with pytest.raises(InvalidInput, match="non-empty list"):
        parse_turns([])
    with pytest.raises(InvalidInput, match="speaker"):
        parse_turns([{"speaker": "robot", "text": "x"}])
    with pytest.raises(InvalidInput, match="text must be a string"):
        parse_turns([{"speaker": "caller", "text": None}])
