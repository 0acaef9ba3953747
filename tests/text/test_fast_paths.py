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


def test_utf16_automaton_finds_what_the_character_automaton_finds(detector: Detector) -> None:
    """rules.match scans UTF-16 code units; the character automaton is the reference (and the fallback
    for texts with astral characters)."""
    rules = detector.rules
    all_keys = rules._automaton.keys()
    keys = [k for k in all_keys if "\x01" not in k]
    rng = random.Random(11)
    pieces = [*rng.sample(keys, 200), "的", "，", "a", "1", " ", "😀", "\U00020000", "\ud800", "x"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        wide = text.encode("utf-16-be", "surrogatepass").decode("latin-1")
        reference = [(end, value) for end, value in rules._automaton.iter(text)]
        if len(wide) == 2 * len(text):
            got = [(end >> 1, value) for end, value in rules._automaton16.iter(wide) if end & 1]
            assert got == reference, text
        # match() itself takes either path; the character path is what it was before.
        assert rules.match(text) == _reference_match(rules, text), text


def _reference_match(rules, text: str) -> list[RuleHit]:
    """match() with the character automaton forced (a texts with an astral character takes that path)."""
    saved = rules._automaton16
    rules._automaton16 = None
    try:
        return rules.match(text)
    finally:
        rules._automaton16 = saved


def _reference_hashed_ngrams(texts: list[str], bits: int, max_order: int = 3):
    """features.hashed_ngrams as first written (message index per position, bincount of entries)."""
    import numpy as np
    import scipy.sparse as sp

    from fanzha.text.features import _MULT, _ORDER_SALT, BOUNDARY

    n_docs, width = len(texts), 1 << bits
    if n_docs == 0:
        return sp.csr_matrix((0, width), dtype=np.float32)
    padded = BOUNDARY + (BOUNDARY * 2).join(t.replace(BOUNDARY, " ") for t in texts) + BOUNDARY
    cps = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 2 for t in texts), dtype=np.int64, count=len(texts))
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    total = cps.shape[0]
    shift = np.uint64(64 - bits)
    cols = np.full((total, max_order), -1, dtype=np.int64)
    acc = np.zeros(total, dtype=np.uint64)
    for order in range(max_order):
        if total < order + 1:
            break
        starts = total - order
        with np.errstate(over="ignore"):
            acc[:starts] = (acc[:starts] ^ cps[order:]) * _MULT[order]
            h = ((acc[:starts] ^ _ORDER_SALT[order]) * _MULT[2]) >> shift
        valid = owner[:starts] == owner[order:]
        if order == 0:
            valid &= cps[:starts] != 0
        cols[:starts, order] = np.where(valid, h.astype(np.int64), -1)
    flat = cols.ravel()
    keep = flat >= 0
    counts = np.bincount(np.repeat(owner, max_order)[keep], minlength=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = 1.0 / np.sqrt(np.maximum(counts, 1)).astype(np.float32)
    data = np.repeat(scale, counts)
    return sp.csr_matrix((data, flat[keep].astype(np.int32), indptr), shape=(n_docs, width))


def test_hashed_ngrams_equal_the_reference_bit_for_bit() -> None:
    import numpy as np

    from fanzha.text.features import hashed_ngrams

    rng = random.Random(5)
    alphabet = [*TEXTS, "", "a", "\x00", "😀", "微信", " "]
    batches = [[""], ["", ""], ["a"], ["", "a", ""], ["\x00", "ab\x00c"], TEXTS]
    for _ in range(200):
        batches.append([rng.choice(alphabet)[: rng.randint(0, 6)] for _ in range(rng.randint(1, 7))])
    for order in (1, 2, 3):
        for batch in batches:
            a, b = _reference_hashed_ngrams(batch, 12, order), hashed_ngrams(batch, 12, order)
            assert a.shape == b.shape
            for name in ("indptr", "indices", "data"):
                x, y = getattr(a, name), getattr(b, name)
                assert x.dtype == y.dtype and np.array_equal(x, y), (order, batch, name)


def test_small_batch_text_logits_equal_the_csr_product_bit_for_bit(detector: Detector) -> None:
    import numpy as np

    from fanzha.text.features import hashed_ngrams
    from fanzha.text.model import _SMALL_BATCH

    model = detector.model
    weights = model.coef_[: 1 << model.bits]
    rng = random.Random(9)
    for _ in range(300):
        batch = [rng.choice([*TEXTS, "", "x"]) for _ in range(rng.randint(1, _SMALL_BATCH))]
        expected = hashed_ngrams(batch, model.bits, model.max_order) @ weights
        assert np.array_equal(model._text_logits(batch), expected), batch


def test_registry_runs_each_distinct_gate_once() -> None:
    from fanzha.text.normalize import normalize
    from fanzha.text.recognizers.registry import RecognizerRegistry

    registry = default_registry()
    assert len(registry._gates) == len({r.gate for r in registry.recognizers if r.gate is not None})
    text = normalize("身份证11010519491231002X，卡号6222021234567890128，电话13800138000")
    kinds = {i.kind for i in RecognizerRegistry(registry.recognizers).analyze(text)}
    assert {"id_card", "bank_card", "phone"} <= kinds
