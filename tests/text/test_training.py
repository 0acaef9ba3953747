"""Training helpers: the verdict threshold respects its false-positive budget, CV folds do not leak."""

import numpy as np
import pytest

from fanzha.text.corpus import Example, batch_of
from fanzha.text.model import VERDICT_CLASSES, FraudTextClassifier
from fanzha.text.training import (
    CV_FOLDS,
    _assemble,
    _fit_head,
    _fold_of,
    _folds,
    _threshold_for_fpr,
    _type_weights,
    batch_guard_threshold,
    pool_transfer,
)


def test_threshold_keeps_the_legit_false_positive_rate_within_the_target():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.0, 0.8, 1000), rng.uniform(0.4, 1.0, 1000)])
    is_fraud = np.concatenate([np.zeros(1000, bool), np.ones(1000, bool)])
    t = _threshold_for_fpr(p, is_fraud, 0.015)
    assert (p[~is_fraud] >= t).mean() <= 0.015
    # and it is the lowest such threshold: one step lower would exceed the budget
    assert (p[~is_fraud] >= t - 2e-6).mean() > 0.015 or t == 0.2


def test_pool_transfer_reports_each_batch_at_the_threshold_and_at_the_rest_of_the_pool():
    # batch "a" has harder legitimate lines than "b": a threshold set without "a" lets more of them through
    p = np.array([0.1, 0.2, 0.9, 0.95, 0.8, 0.85, 0.1, 0.15, 0.3, 0.35, 0.9, 0.99])
    is_fraud = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    batches = np.array(list("aaaaaabbbbbb"), dtype=object)
    out = pool_transfer(p, is_fraud, batches, threshold=0.86, target_fpr=0.0)
    assert out["a"] == {
        "fraud": 2, "legit": 4, "recall": 1.0, "fpr": 0.0, "transfer_recall": 1.0, "transfer_fpr": 0.5,
    }  # without "a", the threshold is just above 0.35
    assert out["b"]["fpr"] == 0.0 and out["b"]["recall"] == 1.0
    # without "b", the threshold is just above 0.85: b's legitimate lines stay below it
    assert out["b"]["transfer_fpr"] == 0.0 and out["b"]["transfer_recall"] == 1.0


def test_batch_guard_raises_the_threshold_until_few_batches_exceed_the_budget():
    rng = np.random.default_rng(1)
    p, y, b = [], [], []
    # ten batches of 200 legitimate lines; batch j's legitimate scores reach up to 0.5 + 0.04 j
    for j in range(10):
        p += list(rng.uniform(0.0, 0.5 + 0.04 * j, 200)) + [0.99] * 20
        y += [False] * 200 + [True] * 20
        b += [str(j)] * 220
    p, y, b = np.array(p), np.array(y), np.array(b, dtype=object)

    def over(t: float) -> int:
        return sum((p[(b == str(j)) & ~y] >= t).mean() > 0.02 for j in range(10))

    t = batch_guard_threshold(p, y, b, budget=0.02, over_share=0.1)
    assert over(t) == 1  # one batch of ten may exceed
    assert over(t - 1e-3) >= 2  # and the threshold is the lowest that allows only one
    assert over(batch_guard_threshold(p, y, b, budget=0.02, over_share=0.0)) == 0
    # a guard that nothing needs: every batch is within budget at any threshold above its scores
    assert batch_guard_threshold(p, y, b, budget=0.5, over_share=0.1) <= 0.5


def test_an_augmented_copy_lands_in_the_same_cv_fold_as_its_original():
    for i in range(50):
        assert _fold_of(f"fa-x-{i}", CV_FOLDS) == _fold_of(f"fa-x-{i}~obf", CV_FOLDS)
    assert len({_fold_of(f"id-{i}", CV_FOLDS) for i in range(200)}) == CV_FOLDS


def test_corpus_batch_is_read_from_the_id():
    assert batch_of("fa-impersonate_police-001") == "a"
    assert batch_of("lg2-family_chat_g-010") == "g"
    assert batch_of("fg1-fake_investment-003~obf") == "g"
    assert batch_of("taf-20b9b03ef13b") is None
    assert batch_of("th1-fake_loan-001") is None  # test sets are not corpus batches
    assert batch_of("fz1-fake_loan-001") == "z"
    assert batch_of("lzb2-family-001") == "zb"  # after z: za … zz, which sort after z
    assert sorted(["zb", "z", "y", "za"]) == ["y", "z", "za", "zb"]


def _ex(example_id: str) -> Example:
    return Example(example_id, "normal", None, False, "t", text="x")


def test_cv_folds_hold_out_whole_batches_and_spread_other_sources():
    ids = [f"f{b}-x-{i}" for b in "abc" for i in range(20)] + [f"lc-y-{i}~obf" for i in range(5)]
    ids += [f"taf-{i}" for i in range(60)]
    folds = _folds([_ex(i) for i in ids])
    by_batch = {b: {int(f) for i, f in zip(ids, folds, strict=True) if batch_of(i) == b} for b in "abc"}
    assert [len(v) for v in by_batch.values()] == [1, 1, 1]  # one fold per batch
    assert len(set().union(*by_batch.values())) == 3
    assert set(folds[-60:].tolist()) == {0, 1, 2}  # dialogues spread over the batch folds


def test_cv_folds_fall_back_to_hashes_with_a_single_batch():
    ids = [f"fa-x-{i}" for i in range(200)]
    assert len(set(_folds([_ex(i) for i in ids]).tolist())) == CV_FOLDS


def test_calibrated_fraud_logit_matches_predict_proba():
    texts = ["请转账到安全账户", "点赞关注一单三元", "晚上回家吃饭", "快递到了取件码", "回TD退订 大促"]
    labels = ["fraud", "fraud", "normal", "normal", "spam"]
    types = ["impersonate_police", "brushing_rebate", None, None, None]
    dense = np.zeros((5, 1), dtype=np.float32)
    model = FraudTextClassifier(bits=10).fit(texts, dense, labels, types, ["a"])
    model.calibration_ = (1.3, -0.2)
    np.testing.assert_allclose(
        model.calibrated(model.fraud_logit(texts, dense)), model.predict_proba(texts, dense).fraud, rtol=1e-5
    )


def _toy():
    texts = ["请转账到安全账户", "点赞关注一单三元", "晚上回家吃饭", "快递到了取件码", "回TD退订 大促"]
    texts.append("刷单返利垫付")
    labels = ["fraud", "fraud", "normal", "normal", "spam", "fraud"]
    types = ["impersonate_police", "brushing_rebate", None, None, None, "brushing_rebate"]
    return texts, np.zeros((len(texts), 1), dtype=np.float32), labels, types


def test_separately_fitted_heads_make_the_same_model_as_fit():
    texts, dense, labels, types = _toy()
    reference = FraudTextClassifier(bits=10, c_verdict=8.0, c_type=32.0)
    reference.fit(texts, dense, labels, types, ["a"])
    shape = FraudTextClassifier(bits=10)
    design = shape._design(texts, dense)
    typed = np.array([t is not None for t in types])
    classes = sorted({t for t in types if t is not None})
    head_v = _fit_head(design, np.array([VERDICT_CLASSES.index(v) for v in labels]), 8.0, None)
    head_t = _fit_head(design[typed], np.array([classes.index(t) for t in types if t]), 32.0, None)
    model = _assemble(head_v, head_t, classes, ["a"], 8.0, 32.0)
    model.bits = 10
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-4)
    assert model.type_classes_ == reference.type_classes_
    np.testing.assert_allclose(
        model.predict_proba(texts, dense).types, reference.predict_proba(texts, dense).types, atol=1e-4
    )


def test_type_weights_down_weight_dialogues_and_can_balance_types(monkeypatch):
    from fanzha.text import training
    from fanzha.text.dialogue import Turn

    msgs = [Example(f"m{i}", "fraud", "a", True, "s", text="x") for i in range(3)]
    call = Example("d", "fraud", "b", True, "s", turns=[Turn("a", "x")])
    examples = [*msgs, call]
    y = ["a", "a", "a", "b"]
    monkeypatch.setattr(training, "TYPE_CLASS_BALANCE", False)
    np.testing.assert_allclose(_type_weights(examples, y), [1, 1, 1, training.TYPE_DIALOGUE_WEIGHT])
    monkeypatch.setattr(training, "TYPE_CLASS_BALANCE", True)
    w = _type_weights(examples, y)
    assert w[:3].sum() == pytest.approx(w[3]) and w.sum() == pytest.approx(3 + training.TYPE_DIALOGUE_WEIGHT)


def test_batch_kinds_are_read_from_the_corpus_folder(tmp_path):
    from fanzha.text.corpus import read_batch_kinds

    assert read_batch_kinds(tmp_path) == {}
    (tmp_path / "batches.yaml").write_text("test_set: [h, i]\ntraining: [a]\n", encoding="utf-8")
    assert read_batch_kinds(tmp_path) == {"h": "test_set", "i": "test_set", "a": "training"}
    (tmp_path / "batches.yaml").write_text("test_set: [h]\ntraining: [h]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed as"):
        read_batch_kinds(tmp_path)


def test_every_bundled_corpus_batch_has_a_kind():
    from pathlib import Path

    from fanzha.text.corpus import read_batch_kinds

    corpus = Path(__file__).resolve().parents[2] / "data" / "corpus"
    kinds = read_batch_kinds(corpus)
    present = {
        batch_of(p.stem.replace("fraud_", "f").replace("legit_", "l") + "-") for p in corpus.glob("*.jsonl")
    }
    assert present - {None} <= set(kinds), sorted(present - set(kinds))
    assert set(kinds.values()) <= {"test_set", "training"}
    assert sum(k == "test_set" for k in kinds.values()) >= 5


def test_out_of_fold_scores_extra_rows_with_the_head_of_their_batch(monkeypatch):
    from fanzha.text import training
    from fanzha.text.training import _out_of_fold_logits

    monkeypatch.setattr(training, "VERDICT_HIDDEN_UNITS", 0)
    words = {
        "fraud": ["转账安全账户", "刷单返利垫付", "验证码发我"],
        "normal": ["晚上回家吃饭", "快递取件码", "开会改到三点"],
    }
    train, texts = [], []
    for b in "abc":
        for label, ws in words.items():
            for i, w in enumerate(ws):
                train.append(Example(f"{'f' if label == 'fraud' else 'l'}{b}-x-{i}", label, None, False, "t"))
                texts.append(w)
        train.append(Example(f"l{b}-spam-0", "spam", None, False, "t"))
        texts.append("大促回TD退订")
    extra = [Example("fb-y-0", "fraud", None, False, "t"), Example("taf-1", "normal", None, False, "t")]
    shape = FraudTextClassifier(bits=10)
    dense = np.zeros((len(texts), 1), dtype=np.float32)
    design = shape._design(texts, dense)
    extra_design = shape._design(["转账到安全账户", "回家吃饭"], np.zeros((2, 1), dtype=np.float32))
    oof, extra_oof = _out_of_fold_logits(design, train, np.ones(len(train)), 8.0, 1, 0, extra_design, extra)
    assert oof.shape == (len(train),) and np.isfinite(oof).all()
    is_fraud = np.array([e.label == "fraud" for e in train])
    assert oof[is_fraud].mean() > oof[~is_fraud].mean()
    assert np.isfinite(extra_oof[0]) and extra_oof[0] > 0  # scored by the head that left batch b out
    assert np.isnan(extra_oof[1])  # no batch: no fold
