"""Fast paths of batch detection give exactly what the plain per-message paths give."""

import gc
import random
import subprocess
import sys

import orjson
import pytest

from fanzha.text.detector import MAX_EVIDENCE, Analysis, Detector
from fanzha.text.normalize import NormalizedText
from fanzha.text.recognizers.base import any_word_regex
from fanzha.text.recognizers.registry import default_registry
from fanzha.text.rules import RuleHit

TEXTS = [
    "您好，这里是市公安局，您的身份证涉嫌洗钱案件，请立即把资金转入安全账户配合调查。",
    "【招商银行】您尾号1234的卡消费500.00元。退订回T",
    "加我QQ:123456789，下载向日葵远程协助，转账3.5万元到6222021234567890128",
    "点击 http://icbc-vip.top/a?b=C 领取补贴，客服电话400-820-8820",
    "晚上回家吃饭",
    "ＶＸ：ａｂｃ＿１２３４５６，飞机@scam_helper，把验证码告诉我",
    "TJCnKsPa7y5okkXvQAxCvbMaQtgjxYUMPx 充值 usdt 500",
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.from_settings()


def test_analyze_many_equals_analyze_per_text(detector: Detector) -> None:
    assert detector.analyze_many(TEXTS) == [detector.analyze(t) for t in TEXTS]


def test_detect_many_equals_detect_per_text(detector: Detector) -> None:
    batch = [orjson.dumps(d) for d in detector.detect_many(TEXTS)]
    assert batch == [orjson.dumps(detector.detect(t)) for t in TEXTS]


def _reference_evidence_order(hits: list[RuleHit]) -> list[RuleHit]:
    """The order evidence had before the fast path: strongest MAX_EVIDENCE, then by start (stable)."""
    ranked = sorted(hits, key=lambda h: -abs(h.weight))[:MAX_EVIDENCE]
    ranked.sort(key=lambda h: h.start)
    return ranked


@pytest.mark.parametrize("n_hits", [0, 1, 2, 5, MAX_EVIDENCE, MAX_EVIDENCE + 1, 30])
def test_evidence_order_matches_the_two_sort_reference_with_ties(detector: Detector, n_hits: int) -> None:
    rng = random.Random(n_hits)
    text = "x" * 40
    for _ in range(50):
        # Few distinct starts and weights, so ties in both keys are common.
        hits = [
            RuleHit(f"r{i}", None, s, s + 2, rng.choice([0.5, -0.5, 1.0, 0.2]), f"d{i}")
            for i, s in enumerate(rng.choice([0, 3, 3, 7]) for _ in range(n_hits))
        ]
        a = Analysis(NormalizedText(text, text), hits, [], [])
        assert [e.rule for e in detector._evidence(a)] == [h.rule for h in _reference_evidence_order(hits)]


def test_evidence_spans_map_through_offsets(detector: Detector) -> None:
    original, norm = "微 信转帐", "微信转账"
    hit = RuleHit("r", None, 0, 2, 1.0, "d")
    a = Analysis(NormalizedText(original, norm, (0, 2, 3, 4, 5)), [hit], [], [])
    (ev,) = detector._evidence(a)
    assert (ev.start, ev.end, ev.text) == (0, 3, "微 信")


def test_any_word_regex_finds_exactly_the_texts_containing_a_word() -> None:
    words = ["飞机", "纸飞机", "tg", "telegram", "a.b", "向日葵"]
    rx = any_word_regex(words)
    rng = random.Random(7)
    alphabet = "飞机纸tgelramb.向日葵x "
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert (rx.search(text) is not None) == any(w in text for w in words), text
    assert any_word_regex([]).search("anything") is None


def test_app_gate_keeps_apps_and_skips_texts_without_them() -> None:
    from fanzha.text.normalize import normalize

    registry = default_registry()
    kinds = [i.kind for i in registry.analyze(normalize("请下载向日葵和todesk配合操作"))]
    assert kinds.count("app") == 2
    assert not [i for i in registry.analyze(normalize("今天天气很好")) if i.kind == "app"]


def test_results_do_not_depend_on_the_string_hash_seed() -> None:
    """Brand look-alikes and rule triggers once depended on set iteration order (PYTHONHASHSEED)."""
    code = (
        "from fanzha.text.recognizers.url import lookalike_of;"
        "from fanzha.text.detector import Detector;"
        "r = Detector.from_settings(with_model=False).rules;"
        "print(lookalike_of('10086icbc-vip.com'), len(r._automaton), sorted(r._need2))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout
        for seed in (1, 2, 5)
    }
    assert len(outs) == 1
    assert outs.pop().startswith("chinamobile ")  # the labels as written are checked before homoglyphs


def test_batch_gc_settings_are_restored() -> None:
    from fanzha.cli import _BATCH_GC_THRESHOLD, _batch_gc

    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with _batch_gc():
        assert gc.get_threshold()[0] == _BATCH_GC_THRESHOLD
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen or frozen > 0  # never unfreezes what others froze
