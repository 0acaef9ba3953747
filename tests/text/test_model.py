"""The classifier: fits, predicts probabilities, and persists exactly."""

import numpy as np

from fanzha.text.model import FraudTextClassifier


def _toy():
    texts = [
        "请转账到安全账户",
        "涉嫌洗钱配合调查",
        "点赞关注一单三元",
        "晚上回家吃饭",
        "快递到了取件码",
        "开会改到三点",
        "回TD退订 双十一大促",
    ]
    labels = ["fraud", "fraud", "fraud", "normal", "normal", "normal", "spam"]
    types = ["impersonate_police", "impersonate_police", "brushing_rebate", None, None, None, None]
    dense = np.zeros((len(texts), 2), dtype=np.float32)
    return texts, dense, labels, types


def test_fit_then_predict_gives_probabilities_that_separate_the_training_data():
    texts, dense, labels, types = _toy()
    model = FraudTextClassifier(bits=12).fit(texts, dense, labels, types, ["a", "b"])
    scores = model.predict_proba(texts, dense)
    assert scores.fraud.shape == (len(texts),)
    assert np.all((scores.fraud >= 0) & (scores.fraud <= 1))
    assert scores.fraud[:3].min() > scores.fraud[3:6].max()
    assert np.allclose(scores.types.sum(axis=1), 1.0, atol=1e-5)
    assert model.type_classes_ == ["brushing_rebate", "impersonate_police"]


def test_saved_model_loads_with_the_same_predictions(tmp_path):
    texts, dense, labels, types = _toy()
    model = FraudTextClassifier(bits=12).fit(texts, dense, labels, types, ["a", "b"])
    model.metadata_ = {"version": "test"}
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = FraudTextClassifier.load(path)
    assert loaded.metadata_ == {"version": "test"}
    np.testing.assert_allclose(
        loaded.predict_proba(texts, dense).fraud, model.predict_proba(texts, dense).fraud, atol=2e-3
    )


def test_loading_a_file_of_another_format_is_a_clear_error(tmp_path):
    import pytest

    path = tmp_path / "x.npz"
    np.savez(path, meta=np.array('{"format": "other"}'), coef=np.zeros(1), intercept=np.zeros(1))
    with pytest.raises(ValueError, match="not a fanzha-text-model"):
        FraudTextClassifier.load(path)
