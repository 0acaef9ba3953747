"""Leave-one-batch-out comparison of verdict-head variants: a cheap proxy for a fresh test set.

    .venv/bin/python bench/cv_batches.py --variant base --variant order4 --batches n,q,s,t,v,x

For each held-out corpus batch B, the verdict head is fitted the way `fanzha train` fits it (training split
+ obfuscated copies + TeleAntiFraud dialogues, NB column scale, same head) on every batch except B, scored on
all of B's lines (every split: B's writers are then unseen, like a fresh test set's). Per batch it prints the
fraud recall at the threshold that gives 1 % / 1.5 % / 2 % FPR on B's legitimate lines, and the ROC AUC. The
threshold is set on B itself, so the figures rank variants; they are not the shipped model's recall (whose
threshold comes from pooled out-of-fold scores). The test sets in `data/testsets/` are never read.

Variants (`--variant`, repeatable): see VARIANTS. Each changes one knob of model 2.4's n-gram features or
verdict head ("base"). Results: docs/benchmarks.md "Model 2.5". About 5-15 min per variant on one core (the
analysis of the corpus is cached in --cache).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fanzha.knowledge.loader import load_typology  # noqa: E402
from fanzha.text import features as F  # noqa: E402
from fanzha.text import training as T  # noqa: E402
from fanzha.text.corpus import batch_of, split_of  # noqa: E402
from fanzha.text.detector import Detector  # noqa: E402
from fanzha.text.features import hashed_ngrams  # noqa: E402

# orders above 3 need more per-order multipliers (orders 1-3 keep their hashes)
F._MULT = (*F._MULT, np.uint64(0xD6E8FEB86659FD93), np.uint64(0xA0761D6478BD642F))
F._ORDER_SALT = (*F._ORDER_SALT, np.uint64(0xE7037ED1A0B428DB), np.uint64(0x8EBC6AF09C88C6E3))

TELE = ROOT.parent / "shared/datasets/teleantifraud/dialogues.jsonl"


@dataclass(frozen=True)
class Variant:
    bits: int = 17
    max_order: int = 3
    hidden: int = 16
    epochs: int = 30
    alpha: float = 1e-4
    nb_power: float = 0.5
    dense_scale: float = 0.2
    seeds: int = 1  # > 1: average the logits of heads fitted with different seeds


BASE = Variant()  # the verdict head of model 2.4
VARIANTS = {
    "base": BASE,
    "seeds3": replace(BASE, seeds=3),
    "order2": replace(BASE, max_order=2),
    "order4": replace(BASE, max_order=4),
    "nb1": replace(BASE, nb_power=1.0),
    "alpha1e-3": replace(BASE, alpha=1e-3),
    "alpha1e-5": replace(BASE, alpha=1e-5),
    "ep10": replace(BASE, epochs=10),
    "ep15": replace(BASE, epochs=15),  # model 2.5
    "ep20": replace(BASE, epochs=20),
    "ep45": replace(BASE, epochs=45),
}


def _analyses(cache: Path) -> tuple[list, list[str], np.ndarray, list[str]]:
    """Examples (training split + augmented + every batch line) with normalised text and dense rows."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    detector = _detector()
    examples = T.load_examples(
        ROOT / "data/corpus", TELE if TELE.exists() else None, load_typology().label_map()
    )
    train = [e for e in examples if split_of(e.id) == "train"]
    rest = [e for e in examples if split_of(e.id) != "train" and batch_of(e.id) is not None]
    items = train + T.augment(train, 20261123) + rest
    analyses = [detector.analyze(e.content) for e in items]
    dense = detector.dense_matrix(analyses)
    texts = [a.norm.text for a in analyses]
    out = (items, texts, dense, list(detector.dense_names))
    cache.write_bytes(pickle.dumps(out, protocol=5))
    return out


def _detector() -> Detector:
    from fanzha.settings import Settings

    return Detector.from_settings(Settings(), with_model=False)


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _recall_at(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    neg = np.sort(neg)
    k = int(np.floor(fpr * neg.size))
    t = neg[-(k + 1)] + 1e-9
    return float((pos >= t).mean())


def run(variant: Variant, held: list[str], cache: Path) -> dict[str, list[float]]:
    items, texts, dense, _ = _analyses(cache)
    import scipy.sparse as sp

    x = hashed_ngrams(texts, variant.bits, variant.max_order)
    design = sp.hstack([x, sp.csr_matrix(dense.astype(np.float32))], format="csr")
    n_dense = dense.shape[1]
    yv = T._verdict_targets(items)
    fraud = T.VERDICT_CLASSES.index("fraud")
    is_fraud = yv == fraud
    weights = np.array([T.DIALOGUE_WEIGHT if e.turns is not None else 1.0 for e in items])
    batches = np.array([batch_of(e.id) or "" for e in items])
    in_train = np.array([split_of(e.id.split("~", 1)[0]) == "train" for e in items])
    T.VERDICT_HIDDEN_UNITS = variant.hidden
    T.VERDICT_MLP_EPOCHS = variant.epochs
    T.VERDICT_MLP_ALPHA = variant.alpha
    out: dict[str, list[float]] = {}
    for b in held:
        fit_idx = np.flatnonzero(in_train & (batches != b))
        test_idx = np.flatnonzero((batches == b) & np.array(["~" not in e.id for e in items]))
        scale = T._column_scale(
            design[fit_idx], is_fraud[fit_idx], n_dense, variant.dense_scale, variant.nb_power
        )
        fit_design = T._scaled(design[fit_idx], scale)
        test_design = T._scaled(design[test_idx], scale)
        logits = np.zeros(len(test_idx))
        for s in range(variant.seeds):
            if variant.hidden:
                head = T._fit_mlp(fit_design, yv[fit_idx], weights[fit_idx], 20261123 + s)
            else:
                head = T._fit_head(fit_design, yv[fit_idx], 64.0, weights[fit_idx])
            p = np.clip(head.predict_proba(test_design)[:, fraud], 1e-6, 1 - 1e-6)
            logits += np.log(p / (1 - p)) / variant.seeds
        pos, neg = logits[is_fraud[test_idx]], logits[~is_fraud[test_idx]]
        out[b] = [_recall_at(pos, neg, f) for f in (0.01, 0.015, 0.02)] + [_auc(pos, neg)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--batches", default="n,q,s,t,v,x")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fanzha_cv_cache.pickle"))
    args = ap.parse_args()
    held = args.batches.split(",")
    for name in args.variant:
        t0 = time.perf_counter()
        res = run(VARIANTS[name], held, args.cache)
        mean = np.mean([res[b] for b in held], axis=0)
        for b in held:
            r = res[b]
            print(f"| {name} | {b} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.4f} |", flush=True)
        print(
            f"| {name} | **mean** | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | {mean[3]:.4f} |"
            f"  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
