"""The statistical text classifier: hashed n-grams plus rule and indicator features, two heads.

The verdict head separates normal / spam / fraud; the type head names the fraud type. The type head is a
multinomial logistic regression; the verdict head is one too, or (model 1.3) a network with one ReLU hidden
layer over the same features, whose first layer shares the one sparse product with the type head. Fusing
rules, indicators and text is learned from data rather than tuned by hand. The estimator follows
scikit-learn's shape (`fit`, `predict_proba`, hyper-parameters in `__init__`) and persists as one versioned
`.npz` file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fanzha.text.features import hashed_ngram_entries, hashed_ngrams

if TYPE_CHECKING:
    import scipy.sparse as sp

VERDICT_CLASSES = ("normal", "spam", "fraud")
FORMAT = "fanzha-text-model/2"
# /1: linear verdict head only. /2 adds the optional hidden layer (arrays out_coef, out_intercept).
_READABLE_FORMATS = ("fanzha-text-model/1", FORMAT)
# Up to this many texts, _text_logits sums rows in NumPy instead of building a CSR matrix.
_SMALL_BATCH = 8


@dataclass(slots=True)
class Scores:
    """Model output for a batch: calibrated fraud probability, spam probability, fraud-type probabilities."""

    fraud: np.ndarray
    spam: np.ndarray
    types: np.ndarray


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class FraudTextClassifier:
    """Classifier over hashed character n-grams and dense rule/indicator features (see the module doc)."""

    def __init__(
        self,
        bits: int = 17,
        max_order: int = 3,
        c_verdict: float = 8.0,
        c_type: float = 8.0,
        max_iter: int = 400,
    ) -> None:
        self.bits = bits
        self.max_order = max_order
        self.c_verdict = c_verdict
        self.c_type = c_type
        self.max_iter = max_iter

    # fitted attributes end with "_"
    coef_: np.ndarray
    intercept_: np.ndarray
    dense_names_: list[str]
    type_classes_: list[str]
    calibration_: tuple[float, float]
    metadata_: dict[str, Any]
    # Verdict head with a hidden layer: the first `h` columns of coef_/intercept_ are the hidden units
    # (ReLU), out_coef_ (h x 3) and out_intercept_ (3) map them to the verdict logits. None: the first three
    # columns are the verdict logits (a linear head).
    out_coef_: np.ndarray | None = None
    out_intercept_: np.ndarray | None = None

    def _design(self, texts: Sequence[str], dense: np.ndarray) -> sp.csr_matrix:
        import scipy.sparse as sp

        x = hashed_ngrams(texts, self.bits, self.max_order)
        return sp.hstack([x, sp.csr_matrix(dense.astype(np.float32))], format="csr")

    def fit(
        self,
        texts: Sequence[str],
        dense: np.ndarray,
        y_verdict: Sequence[str],
        y_type: Sequence[str | None],
        dense_names: Sequence[str],
        sample_weight: np.ndarray | None = None,
    ) -> FraudTextClassifier:
        from sklearn.linear_model import LogisticRegression

        design = self._design(texts, dense)
        yv = np.array([VERDICT_CLASSES.index(v) for v in y_verdict])
        head_v = LogisticRegression(C=self.c_verdict, max_iter=self.max_iter)
        head_v.fit(design, yv, sample_weight=sample_weight)
        typed = np.array([t is not None for t in y_type])
        type_classes = sorted({t for t in y_type if t is not None})
        yt = np.array([type_classes.index(t) for t in y_type if t is not None])
        head_t = LogisticRegression(C=self.c_type, max_iter=self.max_iter)
        head_t.fit(design[typed], yt, sample_weight=None if sample_weight is None else sample_weight[typed])
        self.coef_ = np.hstack([head_v.coef_.T, head_t.coef_.T]).astype(np.float32)
        self.intercept_ = np.concatenate([head_v.intercept_, head_t.intercept_]).astype(np.float32)
        self.dense_names_ = list(dense_names)
        self.type_classes_ = type_classes
        self.calibration_ = (1.0, 0.0)
        self.metadata_ = {}
        self.out_coef_ = self.out_intercept_ = None
        return self

    @property
    def verdict_width(self) -> int:
        """Columns of coef_ that belong to the verdict head (3 logits, or the hidden units)."""
        return len(VERDICT_CLASSES) if self.out_coef_ is None else self.out_coef_.shape[0]

    def _text_logits(self, texts: Sequence[str]) -> np.ndarray:
        """The n-gram part of the logits: hashed n-gram matrix @ n-gram weights (float32).

        A batch goes through scipy's CSR product. A few texts (a single message, a dialogue turn) skip
        building the CSR matrix, whose fixed cost is several times the arithmetic: each row is summed
        with the same float32 operations in the same order as scipy's row loop (y = 0; y += a * w for
        each entry in order), so the result is bit for bit the same.
        """
        width = 1 << self.bits
        weights = self.coef_[:width]
        n = len(texts)
        if n > _SMALL_BATCH:
            return hashed_ngrams(texts, self.bits, self.max_order) @ weights
        out = np.zeros((n, weights.shape[1]), dtype=np.float32)
        if n == 0:
            return out
        indices, indptr, data = hashed_ngram_entries(texts, self.bits, self.max_order)
        for i, (start, end) in enumerate(zip(indptr[:-1].tolist(), indptr[1:].tolist(), strict=True)):
            if end > start:
                # cumsum adds strictly left to right (no pairwise summation); its last row is the sum.
                terms = weights[indices[start:end]] * data[start:end, None]
                out[i] = np.cumsum(terms, axis=0)[-1]
        return out

    def _raw(self, texts: Sequence[str], dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width = 1 << self.bits
        logits = self._text_logits(texts) + dense.astype(np.float32) @ self.coef_[width:] + self.intercept_
        nv = self.verdict_width
        if self.out_coef_ is None:
            verdict = logits[:, :nv]
        else:
            verdict = np.maximum(logits[:, :nv], 0.0) @ self.out_coef_ + self.out_intercept_
        return _softmax(verdict), _softmax(logits[:, nv:])

    def fraud_logit(self, texts: Sequence[str], dense: np.ndarray) -> np.ndarray:
        """The uncalibrated fraud log-odds, before Platt scaling."""
        verdict, _ = self._raw(texts, dense)
        return _logit(verdict[:, 2])

    def calibrated(self, logit: np.ndarray) -> np.ndarray:
        """Apply this model's Platt scaling to fraud log-odds."""
        a, b = self.calibration_
        return 1.0 / (1.0 + np.exp(-(a * logit + b)))

    def predict_proba(self, texts: Sequence[str], dense: np.ndarray) -> Scores:
        verdict, types = self._raw(texts, dense)
        fraud = self.calibrated(_logit(verdict[:, 2]))
        return Scores(fraud=fraud, spam=verdict[:, 1], types=types)

    def calibrate(self, texts: Sequence[str], dense: np.ndarray, is_fraud: Sequence[bool]) -> None:
        """Platt scaling of the fraud probability on data the heads were not fitted on."""
        from sklearn.linear_model import LogisticRegression

        verdict, _ = self._raw(texts, dense)
        z = _logit(verdict[:, 2]).reshape(-1, 1)
        platt = LogisticRegression(C=1e4).fit(z, np.asarray(is_fraud, dtype=int))
        self.calibration_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))

    def save(self, path: Path) -> None:
        meta = {
            "format": FORMAT,
            "bits": self.bits,
            "max_order": self.max_order,
            "c_verdict": self.c_verdict,
            "c_type": self.c_type,
            "dense_names": self.dense_names_,
            "type_classes": self.type_classes_,
            "calibration": list(self.calibration_),
            "metadata": self.metadata_,
            "hidden_units": 0 if self.out_coef_ is None else int(self.out_coef_.shape[0]),
        }
        arrays = {}
        if self.out_coef_ is not None and self.out_intercept_ is not None:
            arrays = {
                "out_coef": self.out_coef_.astype(np.float32),
                "out_intercept": self.out_intercept_.astype(np.float32),
            }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                coef=self.coef_.astype(np.float16),
                intercept=self.intercept_,
                meta=np.array(json.dumps(meta, ensure_ascii=False)),
                **arrays,
            )

    @classmethod
    def load(cls, path: Path) -> FraudTextClassifier:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("format") not in _READABLE_FORMATS:
                raise ValueError(f"{path}: not a {' or '.join(_READABLE_FORMATS)} file")
            model = cls(
                bits=meta["bits"],
                max_order=meta["max_order"],
                c_verdict=meta["c_verdict"],
                c_type=meta["c_type"],
            )
            model.coef_ = npz["coef"].astype(np.float32)
            model.intercept_ = npz["intercept"].astype(np.float32)
            if meta.get("hidden_units"):
                model.out_coef_ = npz["out_coef"].astype(np.float32)
                model.out_intercept_ = npz["out_intercept"].astype(np.float32)
        model.dense_names_ = meta["dense_names"]
        model.type_classes_ = meta["type_classes"]
        model.calibration_ = (float(meta["calibration"][0]), float(meta["calibration"][1]))
        model.metadata_ = meta["metadata"]
        return model
