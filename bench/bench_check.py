"""In-process transfer checks per second with account state for 10 M accounts (target ≥ 20,000/s, one core).

Usage: taskset -c 0 .venv/bin/python bench/bench_check.py [--accounts 10000000] [--checks 100000] [--runs 5]
Builds a synthetic state directly (the simulator is too slow for 10 M accounts): random opening dates, ages,
flags and history, 3 payees per account. Requests mix known and external payees, amounts, night hours and a
few repeated remarks (through a stub detector, so the cache is what is measured). Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from dataclasses import dataclass

import numpy as np
import orjson

from fanzha.payments.check import MuleScores, TransferCheck, TransferChecker
from fanzha.payments.state import DAY_MS, AccountState, hash_many, pair_keys

NOW_MS = 1_795_000_000_000  # late 2026, CST-naive epoch ms


@dataclass
class _Det:
    risk: int


class _Detector:
    def detect(self, text: str) -> _Det:
        return _Det(80 if "安全" in text else 0)


def build(n: int, rng: np.random.Generator) -> tuple[AccountState, list[str], float]:
    started = time.perf_counter()
    ids = [f"6222{i:012d}" for i in range(n)]
    keys = hash_many(ids)
    state = AccountState.from_columns(
        keys, NOW_MS - rng.integers(1, 3650, n) * DAY_MS, elderly=rng.random(n) < 0.15,
        flags=(rng.random(n) < 0.01).astype(np.uint8) * 8,
    )
    state.tx_count[:] = rng.integers(0, 200, n)
    state.amount_max[:] = rng.integers(1_000, 2_000_000, n)
    state.amount_sum[:] = state.amount_max // 3 * state.tx_count
    state.last_ms[:] = NOW_MS - rng.integers(0, 400, n) * DAY_MS
    payer = np.repeat(keys, 3)
    payee = keys[rng.integers(0, n, 3 * n)]
    state.pairs = np.unique(pair_keys(payer, payee))
    return state, ids, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10_000_000)
    ap.add_argument("--checks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    state, ids, build_s = build(args.accounts, rng)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    scores = MuleScores.from_mapping({ids[i]: 90 for i in rng.integers(0, args.accounts, 10_000)})
    checker = TransferChecker(state, mule_scores=scores, detector=_Detector(), clock=lambda: NOW_MS)
    remarks = [None] * 8 + ["房租", "转入安全账户"]
    reqs = [
        TransferCheck(
            ids[int(rng.integers(args.accounts))],
            ids[int(rng.integers(args.accounts))] if rng.random() < 0.8 else f"EXT{int(rng.integers(1e9))}",
            int(rng.lognormal(10, 1.5)) + 1,
            NOW_MS - int(rng.integers(0, DAY_MS)),
            "mobile",
            remarks[int(rng.integers(len(remarks)))],
        )
        for _ in range(args.checks)
    ]
    rates = []
    decisions: dict[str, int] = {}
    for _ in range(args.runs):
        started = time.perf_counter()
        for r in reqs:
            checker.check(r, NOW_MS)
        rates.append(len(reqs) / (time.perf_counter() - started))
    for r in reqs[:10_000]:
        d = checker.check(r, NOW_MS).decision
        decisions[d] = decisions.get(d, 0) + 1
    print(orjson.dumps({
        "accounts": args.accounts, "pairs": len(state.pairs), "build_s": round(build_s, 1),
        "max_rss_gb_after_build": round(rss_gb, 2), "checks": args.checks,
        "checks_per_s_median": round(statistics.median(rates)), "runs": [round(x) for x in rates],
        "decisions_of_10k": decisions, "loadavg": os.getloadavg(),
    }, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
