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


def test_a_head_fitted_on_scaled_columns_scores_raw_features_the_same_once_the_scale_is_folded_in():
    """Training fits heads on rescaled columns (NB ratios, down-weighted rule features) and folds the
    factors into the weights, so inference needs no scale vector and the file format is unchanged."""
    import scipy.sparse as sp

    from fanzha.text.training import _assemble, _column_scale, _fit_head, _scaled

    texts, dense, labels, types = _toy()
    dense = np.arange(len(texts) * 2, dtype=np.float32).reshape(-1, 2) % 3
    types = ["impersonate_police", "fake_investment", "brushing_rebate", None, None, None, None]  # 3 types:
    # with two, scikit-learn fits one binary row, which the two-head layout does not take
    shape = FraudTextClassifier(bits=12)
    design = shape._design(texts, dense)
    yv = np.array([("normal", "spam", "fraud").index(v) for v in labels])
    scale_v = _column_scale(design, yv == 2, 2, 0.2, 0.5)
    assert np.all(scale_v[-2:] == 0.2) and scale_v[:-2].max() > 0
    typed = np.array([t is not None for t in types])
    classes = sorted({t for t in types if t})
    yt = np.array([classes.index(t) for t in types if t])
    scale_t = _column_scale(design, yv == 2, 2, 0.15, 0.0)
    assert np.all(scale_t[:-2] == 1.0)
    head_v = _fit_head(_scaled(design, scale_v), yv, 32.0, None)
    head_t = _fit_head(_scaled(design[typed], scale_t), yt, 32.0, None)
    model = _assemble(head_v, head_t, classes, ["a", "b"], 32.0, 32.0, scale_v, scale_t)
    model.bits = 12
    scores = model.predict_proba(texts, dense)
    np.testing.assert_allclose(
        scores.fraud, head_v.predict_proba(_scaled(design, scale_v))[:, 2], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        scores.types, head_t.predict_proba(_scaled(design, scale_t)), rtol=1e-4, atol=1e-5
    )
    assert isinstance(design, sp.csr_matrix)


def test_a_hidden_layer_verdict_head_scores_like_the_network_and_survives_save_and_load(tmp_path):
    """Model 1.3's verdict head: the network's first layer lives in coef_ (sharing the sparse product with
    the type head, with the column scale folded in), its output layer in out_coef_."""
    from fanzha.text import training
    from fanzha.text.training import _assemble, _column_scale, _fit_head, _fit_mlp, _scaled

    texts, dense, labels, types = _toy()
    types = ["impersonate_police", "fake_investment", "brushing_rebate", None, None, None, None]
    shape = FraudTextClassifier(bits=12)
    design = shape._design(texts, dense)
    yv = np.array([("normal", "spam", "fraud").index(v) for v in labels])
    scale_v = _column_scale(design, yv == 2, 2, 0.2, 0.5)
    typed = np.array([t is not None for t in types])
    classes = sorted({t for t in types if t})
    head_t = _fit_head(design[typed], np.array([classes.index(t) for t in types if t]), 32.0, None)
    mlp = _fit_mlp(_scaled(design, scale_v), yv, None, seed=1)
    model = _assemble(mlp, head_t, classes, ["a", "b"], 0.0, 32.0, scale_v, None)
    model.bits = 12
    assert model.verdict_width == training.VERDICT_HIDDEN_UNITS
    expected = mlp.predict_proba(_scaled(design, scale_v))[:, 2]
    np.testing.assert_allclose(model.predict_proba(texts, dense).fraud, expected, rtol=1e-3, atol=1e-4)
    model.metadata_ = {"version": "t"}
    model.save(tmp_path / "m.npz")
    loaded = FraudTextClassifier.load(tmp_path / "m.npz")
    assert loaded.verdict_width == model.verdict_width
    np.testing.assert_allclose(loaded.predict_proba(texts, dense).fraud, expected, atol=5e-3)
    np.testing.assert_allclose(
        loaded.predict_proba(texts, dense).types, model.predict_proba(texts, dense).types, atol=5e-3
    )
