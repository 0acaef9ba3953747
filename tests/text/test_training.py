"""Training helpers: the verdict threshold respects its false-positive budget, CV folds do not leak."""

import numpy as np

from fanzha.text.model import FraudTextClassifier
from fanzha.text.training import CV_FOLDS, _fold_of, _threshold_for_fpr


def test_threshold_keeps_the_legit_false_positive_rate_within_the_target():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.0, 0.8, 1000), rng.uniform(0.4, 1.0, 1000)])
    is_fraud = np.concatenate([np.zeros(1000, bool), np.ones(1000, bool)])
    t = _threshold_for_fpr(p, is_fraud, 0.015)
    assert (p[~is_fraud] >= t).mean() <= 0.015
    # and it is the lowest such threshold: one step lower would exceed the budget
    assert (p[~is_fraud] >= t - 2e-6).mean() > 0.015 or t == 0.2


def test_an_augmented_copy_lands_in_the_same_cv_fold_as_its_original():
    for i in range(50):
        assert _fold_of(f"fa-x-{i}", CV_FOLDS) == _fold_of(f"fa-x-{i}~obf", CV_FOLDS)
    assert len({_fold_of(f"id-{i}", CV_FOLDS) for i in range(200)}) == CV_FOLDS


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
