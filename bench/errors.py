"""List the misses and false alarms of the bundled (or a given) text model on labelled JSONL files.

    .venv/bin/python bench/errors.py data/corpus/*_za*.jsonl
    FANZHA_MODEL_PATH=/tmp/m.npz .venv/bin/python bench/errors.py --threshold 0.75 data/corpus/*_z[1-4].jsonl

Prints, sorted by score, every fraud line scored below the fraud threshold (with its labelled type) and
every legitimate line at or above it (with the type the model gives), then the recall each FPR budget would
allow on these files (the threshold set on the files themselves: a diagnosis, not a figure to report).
Reading a test set's errors spends it: run this on a fresh set only after the model it measures was chosen.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fanzha.text.corpus import read_labelled  # noqa: E402
from fanzha.text.detector import Detector  # noqa: E402

WIDTH = 110  # characters of each line shown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--threshold", type=float, help="Fraud threshold (default: the model's).")
    args = ap.parse_args()
    detector = Detector.from_settings()
    assert detector.model is not None
    threshold = detector.fraud_threshold if args.threshold is None else args.threshold
    examples = [e for path in args.files for e in read_labelled(path) if e.text is not None]
    analyses = detector.analyze_many([e.text or "" for e in examples])  # messages only (no dialogues)
    scores = detector.model.predict_proba([a.norm.text for a in analyses], detector.dense_matrix(analyses))
    types = detector.model.type_classes_
    top = scores.types.argmax(axis=1).tolist()
    fraud = np.array([e.label == "fraud" for e in examples])
    rows = sorted(zip(scores.fraud.tolist(), top, examples, strict=True), key=lambda r: r[0])
    print(f"model {detector.version}, threshold {threshold:.3f}, {len(examples)} lines")
    print("\n== missed fraud (score, labelled type, text)")
    for p, _, e in rows:
        if e.label == "fraud" and p < threshold:
            print(f"{p:.3f}  {e.fraud_type}  {e.text[:WIDTH]}")
    print("\n== false alarms (score, id, model's type, text)")
    for p, t, e in reversed(rows):
        if e.label != "fraud" and p >= threshold:
            print(f"{p:.3f}  {e.id}  {types[t]}  {e.text[:WIDTH]}")
    pos, neg = scores.fraud[fraud], np.sort(scores.fraud[~fraud])[::-1]
    if pos.size and neg.size:
        print("\n== recall at the threshold each FPR budget would allow on these files")
        for budget in (0.01, 0.015, 0.02, 0.025, 0.03):
            k = int(np.floor(budget * neg.size))
            t = float(neg[k]) if k < neg.size else 0.0
            print(f"FPR ≤ {budget:.1%}: threshold {t:.3f}, recall {(pos > t).mean():.3f}")


if __name__ == "__main__":
    main()
