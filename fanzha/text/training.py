"""`fanzha train`: rebuild the bundled model from the project corpus and the TeleAntiFraud dialogues."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fanzha.text.corpus import Example, read_labelled, read_teleantifraud, split_of
from fanzha.text.detector import Detector
from fanzha.text.model import FraudTextClassifier
from fanzha.text.obfuscate import obfuscate

MODEL_VERSION = "1.1"
# The budget is 2 % of legitimate messages flagged as fraud; the threshold aims lower because it is
# estimated on our own synthetic data and real traffic will be less like the training data.
TARGET_FPR = 0.015
# Folds for the out-of-fold scores the threshold is chosen on (train split, grouped by original id).
CV_FOLDS = 5
# Call dialogues are many, long and from one generator; weighting them down keeps short messages (the main
# traffic) from being outvoted.
DIALOGUE_WEIGHT = 0.5
C_GRID = (8.0, 32.0, 128.0)


@dataclass(slots=True)
class TrainReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    fraud_threshold: float = 0.5
    suspicious_threshold: float = 0.25
    calibration_recall: float = 0.0
    calibration_fpr: float = 0.0
    cv_recall: float = 0.0
    cv_fpr: float = 0.0
    version: str = ""
    c: float = 0.0
    c_losses: dict[str, float] = field(default_factory=dict)


def load_examples(corpus_dir: Path, teleantifraud: Path | None, label_map: dict[str, str]) -> list[Example]:
    examples: list[Example] = []
    for path in sorted(corpus_dir.glob("*.jsonl")):
        examples.extend(read_labelled(path))
    if teleantifraud is not None:
        examples.extend(read_teleantifraud(teleantifraud, label_map))
    ids = Counter(e.id for e in examples)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise ValueError(f"duplicate example ids: {dupes[:5]}")
    return examples


def augment(examples: Sequence[Example], seed: int, share: float = 0.3) -> list[Example]:
    """Obfuscated copies of some fraud messages, so the model also sees what the normaliser can't undo."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        if e.label == "fraud" and e.text is not None and rng.random() < share:
            out.append(
                Example(
                    e.id + "~obf",
                    e.label,
                    e.fraud_type,
                    e.type_clear,
                    e.source + "+obf",
                    text=obfuscate(e.text, rng),
                )
            )
    return out


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def _threshold_for_fpr(p_fraud: np.ndarray, is_fraud: np.ndarray, target_fpr: float) -> float:
    legit = np.sort(p_fraud[~is_fraud])
    if legit.size == 0:
        return 0.5
    k = int(np.floor(target_fpr * legit.size))
    # the smallest threshold that leaves at most k legitimate examples at or above it
    t = float(legit[-(k + 1)]) + 1e-6
    return float(np.clip(t, 0.2, 0.95))


def _fold_of(example_id: str, folds: int) -> int:
    base = example_id.split("~", 1)[0]  # an augmented copy stays in its original's fold
    return int(hashlib.sha1(("cv:" + base).encode("utf-8")).hexdigest()[:8], 16) % folds


def _out_of_fold_logits(
    texts: Sequence[str],
    dense: np.ndarray,
    examples: Sequence[Example],
    y_type: Sequence[str | None],
    dense_names: Sequence[str],
    weights: np.ndarray,
    c: float,
) -> np.ndarray:
    """Uncalibrated fraud logits for every training example from a model that did not see it."""
    folds = np.array([_fold_of(e.id, CV_FOLDS) for e in examples])
    labels = [e.label for e in examples]
    out = np.zeros(len(examples))
    for k in range(CV_FOLDS):
        fit_idx, test_idx = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        fold_model = FraudTextClassifier(c_verdict=c, c_type=c).fit(
            [texts[i] for i in fit_idx],
            dense[fit_idx],
            [labels[i] for i in fit_idx],
            [y_type[i] for i in fit_idx],
            dense_names,
            sample_weight=weights[fit_idx],
        )
        out[test_idx] = fold_model.fraud_logit([texts[i] for i in test_idx], dense[test_idx])
    return out


def train(
    detector: Detector, corpus_dir: Path, teleantifraud: Path | None, out: Path, seed: int = 20261123
) -> TrainReport:
    examples = load_examples(corpus_dir, teleantifraud, detector.typology.label_map())
    parts: dict[str, list[Example]] = {"train": [], "calibration": [], "heldout": []}
    for e in examples:
        parts[split_of(e.id)].append(e)
    train_set = parts["train"] + augment(parts["train"], seed)
    report = TrainReport()
    for name, items in (("train", train_set), *((k, v) for k, v in parts.items() if k != "train")):
        report.counts[name] = dict(Counter(e.label for e in items))

    analyses = [detector.analyze(e.content) for e in train_set]
    dense = detector.dense_matrix(analyses)
    texts = [a.norm.text for a in analyses]
    y_type = [e.fraud_type if (e.label == "fraud" and e.type_clear) else None for e in train_set]
    weights = np.array([DIALOGUE_WEIGHT if e.turns is not None else 1.0 for e in train_set])

    calib = parts["calibration"]
    c_analyses = [detector.analyze(e.content) for e in calib]
    c_dense = detector.dense_matrix(c_analyses)
    c_texts = [a.norm.text for a in c_analyses]
    is_fraud = np.array([e.label == "fraud" for e in calib])

    best: tuple[float, FraudTextClassifier] | None = None
    for c in C_GRID:
        candidate = FraudTextClassifier(c_verdict=c, c_type=c).fit(
            texts, dense, [e.label for e in train_set], y_type, detector.dense_names, sample_weight=weights
        )
        loss = _log_loss(candidate.predict_proba(c_texts, c_dense).fraud, is_fraud)
        report.c_losses[str(c)] = round(loss, 5)
        if best is None or loss < best[0]:
            best = (loss, candidate)
    assert best is not None
    model = best[1]
    model.calibrate(c_texts, c_dense, is_fraud)
    p = model.predict_proba(c_texts, c_dense).fraud
    # Short messages are the main traffic and the hard case: the threshold is set on them alone, using
    # out-of-fold scores of the original (not augmented) training messages plus the calibration messages —
    # about five times more legitimate messages than the calibration split alone, so a steadier estimate.
    is_message = np.array([e.turns is None for e in calib])
    oof = _out_of_fold_logits(texts, dense, train_set, y_type, detector.dense_names, weights, model.c_verdict)
    p_oof = model.calibrated(oof)
    original_msg = np.array([e.turns is None and "~" not in e.id for e in train_set])
    oof_fraud = np.array([e.label == "fraud" for e in train_set])
    pooled_p = np.concatenate([p_oof[original_msg], p[is_message]])
    pooled_y = np.concatenate([oof_fraud[original_msg], is_fraud[is_message]])
    threshold = _threshold_for_fpr(pooled_p, pooled_y, TARGET_FPR)
    report.cv_recall = float((p_oof[original_msg & oof_fraud] >= threshold).mean())
    report.cv_fpr = float((p_oof[original_msg & ~oof_fraud] >= threshold).mean())
    report.fraud_threshold = threshold
    report.suspicious_threshold = round(threshold / 2, 4)
    fraud_msg, legit_msg = is_fraud & is_message, ~is_fraud & is_message
    report.calibration_recall = float((p[fraud_msg] >= threshold).mean()) if fraud_msg.any() else 0.0
    report.calibration_fpr = float((p[legit_msg] >= threshold).mean()) if legit_msg.any() else 0.0
    report.c = model.c_verdict

    digest = hashlib.sha256("\n".join(sorted(e.id for e in train_set)).encode()).hexdigest()[:10]
    report.version = f"{MODEL_VERSION}+{digest}"
    model.metadata_ = {
        "version": report.version,
        "fraud_threshold": report.fraud_threshold,
        "suspicious_threshold": report.suspicious_threshold,
        "counts": report.counts,
        "seed": seed,
        "sources": sorted({e.source for e in examples}),
    }
    model.save(out)
    return report
