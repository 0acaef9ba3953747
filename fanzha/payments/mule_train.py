"""Train the bundled two-pass mule model on several simulated ledgers (model 4 and later).

    .venv/bin/fanzha mules train --ledger /tmp/mz2/s1 --ledger /tmp/mz2/s2 … \
        --validate /tmp/mz2/s3 --validate /tmp/mz2/s4 --version 4-gbt2-8seeds [--out FILE]

Pass 1: gradient-boosted trees over the per-account features (`mule_features.FEATURES`). Pass 2: trees over
the same features plus the money-weighted first-pass scores of each account's payers and payees
(`NEIGHBOUR_FEATURES`). Pass 2 must learn from first-pass scores as they look on a ledger the first pass has
never seen, so its training features are cross-fitted: the training ledgers are split into `--folds` folds
and each fold's neighbour features come from a first pass trained on the other folds. The shipped first
pass is then trained on all training ledgers. Negatives are subsampled (`--negatives`, weighted back), which
makes training several times faster on 200 k-account ledgers with ~400 positives each.

The seeds (from each ledger's manifest.json) are recorded in the model; validation ledgers are only scored
(with the full pipeline, `mules.score_ledger`) and printed, never trained on. Never pass a report seed here.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from fanzha.payments import mules
from fanzha.payments.mule_features import ALL_FEATURES, FEATURES


def _manifest(ledger: Path) -> dict[str, Any]:
    try:
        return orjson.loads((ledger / "manifest.json").read_bytes())
    except (OSError, ValueError):
        return {}


def _load(ledger: Path) -> tuple[Any, pa.Table, np.ndarray]:
    con = mules.connect(ledger)
    feats = mules.features_duckdb(con)
    return con, feats, mules.load_labels(ledger, feats.column("account_id").to_pylist())


def _subsample(labels: list[np.ndarray], share: float) -> list[np.ndarray]:
    """Per ledger: sample weights, 0 for dropped negatives, 1/share for kept ones, 1 for positives."""
    rng = np.random.default_rng(0)
    out = []
    for y in labels:
        keep = rng.random(len(y)) < share
        out.append(np.where(y == 1, 1.0, np.where(keep, 1.0 / share, 0.0)))
    return out


def _fit(tables: list[pa.Table], labels: list[np.ndarray], weights: list[np.ndarray], **kw: Any) -> Any:
    w = np.concatenate(weights)
    keep = np.flatnonzero(w > 0)
    table = pa.concat_tables(tables).take(pa.array(keep))
    return mules.fit_trees(table, np.concatenate(labels)[keep], sample_weight=w[keep], **kw)


def train(
    train_ledgers: list[Path],
    *,
    version: str,
    folds: int = 2,
    negatives: float = 0.25,
    hyper: dict[str, Any] | None = None,
    hyper_first: dict[str, Any] | None = None,
    log: Any = print,
) -> mules.TreeModel:
    """The two-pass model trained on these ledgers (see the module docstring)."""
    hyper = {"max_iter": 300, "max_depth": 4, "learning_rate": 0.05, "min_samples_leaf": 20} | (hyper or {})
    hyper_first = hyper | (hyper_first or {})
    started = time.perf_counter()
    cons, feats, labels = zip(*(_load(p) for p in train_ledgers), strict=True)
    weights = _subsample(list(labels), negatives)
    log(f"features of {len(train_ledgers)} ledgers: {time.perf_counter() - started:.0f} s")
    k = max(2, min(folds, len(train_ledgers)))
    fold = [i % k for i in range(len(train_ledgers))]
    full: list[pa.Table | None] = [None] * len(train_ledgers)
    for f in range(k):
        rest = [i for i in range(len(train_ledgers)) if fold[i] != f]
        first = _fit(
            [feats[i] for i in rest],
            [labels[i] for i in rest],
            [weights[i] for i in rest],
            version="cross-fit",
            meta={},
            **hyper_first,
        )
        for i in range(len(train_ledgers)):
            if fold[i] == f:
                full[i] = mules.model_features(
                    mules.TreeModel([], [], 0.0, np.zeros(0), first_pass=first),
                    feats[i],
                    mules.neighbours_duckdb(cons[i]),
                )
        log(f"cross-fitted first pass, fold {f + 1}/{k}: {time.perf_counter() - started:.0f} s")
    seeds = [_manifest(p).get("seed") for p in train_ledgers]
    versions = sorted({str(_manifest(p).get("generator_version")) for p in train_ledgers})
    meta: dict[str, Any] = {
        "training_seeds": seeds,
        "simulator_version": versions[0] if len(versions) == 1 else versions,
        "training_accounts": sum(t.num_rows for t in feats),
        "positive_roles": sorted(mules.POSITIVE_ROLES),
    }
    params = {"l2_regularization": 1.0, "negative_share": negatives}
    first = _fit(
        list(feats),
        list(labels),
        weights,
        version=f"{version}-first-pass",
        meta=copy.deepcopy(meta) | {"hyperparameters": hyper_first | params},
        features=FEATURES,
        **hyper_first,
    )
    log(f"first pass on all ledgers: {time.perf_counter() - started:.0f} s")
    model = _fit(
        [t for t in full if t is not None],
        list(labels),
        weights,
        version=version,
        meta=meta | {"hyperparameters": hyper | params, "cross_fit_folds": k},
        features=ALL_FEATURES,
        first_pass=first,
        **hyper,
    )
    log(f"second pass: {time.perf_counter() - started:.0f} s")
    return model


def seeds(ledgers: list[Path]) -> set[Any]:
    """The simulator seeds of these ledgers (from manifest.json; a ledger without one has none)."""
    return {seed for p in ledgers if (seed := _manifest(p).get("seed")) is not None}


def validation_lines(model: mules.TreeModel, ledgers: list[Path]) -> list[str]:
    """Score each validation ledger with the full pipeline and describe the result in one line."""
    lines = []
    for ledger in ledgers:
        table = mules.score_ledger(ledger, model)
        labels = mules.load_labels(ledger, table.column("account_id").to_pylist())
        m = mules.evaluate(table.column("score").to_numpy(), labels)
        lines.append(
            f"validation seed {_manifest(ledger).get('seed')}: positives {m['positives']}, "
            f"recall at P>=80% {m['recall_at_precision_0.8']:.1%}, at P>=90% "
            f"{m['recall_at_precision_0.9']:.1%}, PR-AUC {m['pr_auc']:.4f}, "
            f"threshold {m.get('threshold_at_precision_0.8', float('nan')):.2f}"
        )
    return lines
