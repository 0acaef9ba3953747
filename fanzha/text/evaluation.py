"""`fanzha eval`: quality and speed of the detector on labelled data."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from fanzha.text.corpus import Example
from fanzha.text.detector import Detector
from fanzha.text.dialogue import detect_dialogue
from fanzha.text.result import Detection


@dataclass(slots=True)
class EvalReport:
    n: int = 0
    n_fraud: int = 0
    n_legit: int = 0
    precision: float = 0.0
    recall: float = 0.0
    false_positive_rate: float = 0.0
    flagged_rate_legit: float = 0.0
    spam_as_fraud_rate: float = 0.0
    type_accuracy: float = 0.0
    type_accuracy_detected: float = 0.0
    n_type_clear: int = 0
    fpr_by_category: dict[str, tuple[int, int]] = field(default_factory=dict)
    recall_by_type: dict[str, tuple[int, int]] = field(default_factory=dict)
    type_confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    median_alert_turn_fraction: float | None = None
    seconds: float = 0.0
    per_second: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def run(detector: Detector, examples: Sequence[Example], batch_size: int = 2048) -> list[Detection]:
    texts = [e for e in examples if e.turns is None]
    dialogs = [e for e in examples if e.turns is not None]
    results: dict[str, Detection] = {}
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        for e, d in zip(chunk, detector.detect_many([e.content for e in chunk]), strict=True):
            results[e.id] = d
    for e in dialogs:
        results[e.id] = detect_dialogue(detector, e.turns or [])
    return [results[e.id] for e in examples]


def evaluate(detector: Detector, examples: Sequence[Example]) -> EvalReport:
    start = time.perf_counter()
    detections = run(detector, examples)
    r = EvalReport(seconds=time.perf_counter() - start, n=len(examples))
    r.per_second = _ratio(len(examples), r.seconds) if r.seconds else 0.0
    tp = fp = fn = flagged = spam_fraud = n_spam = 0
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    type_ok = type_ok_detected = n_detected_clear = 0
    alert_fractions = []
    for e, d in zip(examples, detections, strict=True):
        hit = d.verdict == "fraud"
        if e.label == "fraud":
            r.n_fraud += 1
            tp += hit
            fn += not hit
            key = e.fraud_type or "unknown"
            by_type[key][0] += hit
            by_type[key][1] += 1
            if e.turns and d.first_alert_turn is not None:
                alert_fractions.append((d.first_alert_turn + 1) / len(e.turns))
            if e.type_clear and e.fraud_type:
                r.n_type_clear += 1
                predicted = d.fraud_type or "none"
                confusion[e.fraud_type][predicted] += 1
                type_ok += predicted == e.fraud_type
                if hit:
                    n_detected_clear += 1
                    type_ok_detected += predicted == e.fraud_type
        elif e.label == "spam":
            n_spam += 1
            spam_fraud += hit
        else:
            r.n_legit += 1
            fp += hit
            flagged += d.verdict != "normal"
            cat = f"{e.source}:{e.category or '-'}"
            by_cat[cat][0] += hit
            by_cat[cat][1] += 1
    r.precision = _ratio(tp, tp + fp + spam_fraud)
    r.recall = _ratio(tp, tp + fn)
    r.false_positive_rate = _ratio(fp, r.n_legit)
    r.flagged_rate_legit = _ratio(flagged, r.n_legit)
    r.spam_as_fraud_rate = _ratio(spam_fraud, n_spam)
    r.type_accuracy = _ratio(type_ok, r.n_type_clear)
    r.type_accuracy_detected = _ratio(type_ok_detected, n_detected_clear)
    r.fpr_by_category = {k: (v[0], v[1]) for k, v in sorted(by_cat.items())}
    r.recall_by_type = {k: (v[0], v[1]) for k, v in sorted(by_type.items())}
    r.type_confusion = {k: dict(v.most_common()) for k, v in sorted(confusion.items())}
    if alert_fractions:
        alert_fractions.sort()
        r.median_alert_turn_fraction = alert_fractions[len(alert_fractions) // 2]
    return r
