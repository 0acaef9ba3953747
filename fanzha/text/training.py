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

MODEL_VERSION = "1.0"
TARGET_CALIBRATION_FPR = 0.02
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
    return float(np.clip(t, 0.3, 0.9))


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
    # Short messages are the main traffic and the hard case: the threshold is set on them alone.
    is_message = np.array([e.turns is None for e in calib])
    threshold = _threshold_for_fpr(p[is_message], is_fraud[is_message], TARGET_CALIBRATION_FPR)
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
