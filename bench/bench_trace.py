"""Benchmark of `fanzha trace`: index build time and memory, then traces of 6 hops / 72 h from many victims.

    .venv/bin/python bench/bench_trace.py --ledger /tmp/ledger-2m                        # quick (2 M)
    .venv/bin/python bench/bench_trace.py --ledger /tmp/ledger-50m --transfers 50000000  # the target

The ledger is generated once and cached at --ledger (a NumPy random graph with layered fraud chains embedded;
`--source simulate` uses fanzha.payments.simulate); delete the folder to regenerate. `build_peak_rss_mb` is
the process's peak so far, generation included: for the build's own peak run it on an existing ledger with
--rebuild, or under `/usr/bin/time -v`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fanzha.payments.graph import INDEX_DIR, LedgerGraph, build
from fanzha.payments.schema import LABELS_ACCOUNTS, LABELS_TRANSFERS, TRANSFERS
from fanzha.payments.trace import KnownVictims, known_victims_from_labels, trace

START_MS = int((datetime(2026, 9, 1) - datetime(1970, 1, 1)).total_seconds() * 1000)
DAY_MS = 86_400_000


def _ids(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(nums), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def random_ledger(out: Path, transfers: int, days: int = 30, seed: int = 7) -> None:
    """Everyday transfers between random accounts plus fraud chains: victim → 6 layers of mules → cash."""
    rng = np.random.default_rng(seed)
    n_acc = max(transfers // 10, 1000)
    n_cases = max(transfers // 25_000, 20)
    out.mkdir(parents=True, exist_ok=True)
    schema = TRANSFERS
    chunk = 5_000_000
    chain_rows = _chains(rng, n_acc, n_cases, days)
    n_plain = transfers - len(chain_rows["src"])
    with pq.ParquetWriter(out / "transfers.parquet", schema) as writer:
        done = 0
        while done < n_plain:
            k = min(chunk, n_plain - done)
            src = rng.integers(0, n_acc, k)
            dst = rng.integers(0, n_acc, k)
            dst = np.where(dst == src, (dst + 1) % n_acc, dst)
            cash = rng.random(k) < 0.03
            amount = np.maximum((rng.lognormal(np.log(30_000), 1.2, k)).astype(np.int64), 1)
            ts = START_MS + rng.integers(0, days * DAY_MS, k)
            writer.write_table(_table(np.arange(done, done + k), ts, src, dst, cash, amount))
            done += k
        base = n_plain
        c = chain_rows
        writer.write_table(
            _table(np.arange(base, base + len(c["src"])), c["ts"], c["src"], c["dst"], c["cash"], c["amt"])
        )
    pq.write_table(
        pa.table(
            {
                "transfer_id": _ids("T", np.arange(base, base + len(c["src"])), 11),
                "is_fraud": pa.array(np.ones(len(c["src"]), bool)),
                "case_id": _ids("C", c["case"], 6),
            },
            schema=LABELS_TRANSFERS,
        ),
        out / "labels_transfers.parquet",
    )
    victims = np.unique(c["src"][c["layer"] == 0])
    pq.write_table(
        pa.table(
            {
                "account_id": _ids("A", victims, 9),
                "role": pa.array(["victim"] * len(victims)),
                "layer": pa.array(np.zeros(len(victims), np.int8)),
                "group_id": pa.array([None] * len(victims), pa.string()),
            },
            schema=LABELS_ACCOUNTS,
        ),
        out / "labels_accounts.parquet",
    )


def _table(
    nums: np.ndarray, ts: np.ndarray, src: np.ndarray, dst: np.ndarray, cash: np.ndarray, amount: np.ndarray
) -> pa.Table:
    k = len(nums)
    to = _ids("A", dst, 9)
    return pa.table(
        {
            "transfer_id": _ids("T", nums, 11),
            "ts": pa.array(ts.astype("datetime64[ms]")),
            "from_account": _ids("A", src, 9),
            "to_account": pc.if_else(pa.array(cash), pa.scalar(None, pa.string()), to),
            "amount_fen": pa.array(amount, pa.int64()),
            "channel": pa.array(np.where(cash, "atm", "mobile")),
            "remark": pa.nulls(k, pa.string()),
            "device_id": pa.nulls(k, pa.string()),
            "ip": pa.nulls(k, pa.string()),
        },
        schema=TRANSFERS,
    )


def _chains(rng: np.random.Generator, n_acc: int, n_cases: int, days: int) -> dict[str, np.ndarray]:
    """Layered laundering: each layer splits into 1–3 and forwards within minutes; layer 6 withdraws."""
    cols: dict[str, list[int]] = {k: [] for k in ("src", "dst", "ts", "amt", "cash", "case", "layer")}
    mules = rng.choice(n_acc, size=max(n_cases * 4, 50), replace=False)  # shared 跑分 pool

    def add(s: int, d: int, t: int, a: int, cash: bool, case: int, layer: int) -> None:
        for key, value in zip(cols, (s, d, t, a, cash, case, layer), strict=True):
            cols[key].append(int(value))

    mule_set = set(mules.tolist())
    for case in range(n_cases):
        victim = int(rng.integers(0, n_acc))
        while victim in mule_set:  # a victim that is also a mule would blur which payment is the victim's
            victim = int(rng.integers(0, n_acc))
        t = START_MS + int(rng.integers(0, (days - 4) * DAY_MS))
        amount = int(rng.integers(5_000, 500_000)) * 100
        frontier = [(int(rng.choice(mules)), amount, t)]
        add(victim, frontier[0][0], t, amount, False, case, 0)
        for layer in range(1, 7):
            nxt = []
            for acct, amt, t0 in frontier:
                parts = int(rng.integers(1, 4)) if amt > 300_000 else 1
                cuts = np.sort(rng.integers(1, amt, parts - 1)) if parts > 1 else np.array([], int)
                pieces = np.diff(np.concatenate([[0], cuts, [amt]])).astype(np.int64)
                for piece in pieces:
                    t1 = t0 + int(rng.integers(2, 60)) * 60_000
                    if layer == 6:
                        add(acct, 0, t1, int(piece), True, case, layer)
                    else:
                        dst = int(rng.choice(mules))
                        if dst == acct:
                            dst = (dst + 1) % n_acc
                        add(acct, dst, t1, int(piece), False, case, layer)
                        nxt.append((dst, int(piece), t1))
            frontier = nxt
    return {k: np.asarray(v, dtype=np.int64 if k != "cash" else bool) for k, v in cols.items()}


def simulated_ledger(out: Path, transfers: int) -> bool:
    try:
        from fanzha.payments.simulate import SimConfig, simulate
    except ImportError:
        return False
    simulate(SimConfig(accounts=max(transfers // 10, 1000), transfers=transfers), out)
    return True


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ledger", type=Path, required=True, help="cache folder for the generated ledger")
    ap.add_argument("--transfers", type=int, default=2_000_000)
    ap.add_argument("--source", choices=["auto", "simulate", "random"], default="random")
    ap.add_argument("--traces", type=int, default=300, help="victim transfers to trace")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the graph index even if saved")
    args = ap.parse_args()

    out: dict[str, object] = {"transfers_requested": args.transfers, "cpus": os.cpu_count()}
    if not (args.ledger / "transfers.parquet").is_file():
        t0 = time.perf_counter()
        made = args.source != "random" and simulated_ledger(args.ledger, args.transfers)
        if not made:
            random_ledger(args.ledger, args.transfers)
        out["generator"] = "simulate" if made else "random"
        out["generate_s"] = round(time.perf_counter() - t0, 1)

    index = args.ledger / INDEX_DIR
    if args.rebuild or not (index / "meta.json").is_file():
        shutil.rmtree(index, ignore_errors=True)
        t0 = time.perf_counter()
        graph = build(args.ledger)
        out["build_s"] = round(time.perf_counter() - t0, 1)
        out["build_peak_rss_mb"] = round(rss_mb())
        t0 = time.perf_counter()
        graph.save(index)
        out["save_s"] = round(time.perf_counter() - t0, 1)
        del graph
    t0 = time.perf_counter()
    graph = LedgerGraph.load(index)
    out["load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["edges"], out["accounts"] = graph.n_edges, graph.n_accounts
    out["index_mb"] = round(sum(f.stat().st_size for f in index.iterdir()) / 2**20)

    labels = known_victims_from_labels(args.ledger / "labels_transfers.parquet")
    t0 = time.perf_counter()
    known = KnownVictims(graph, labels)
    out["known_victims"], out["known_victims_index_ms"] = (
        len(labels),
        round((time.perf_counter() - t0) * 1000),
    )
    rng = np.random.default_rng(1)
    # Only payments into an account can be traced (a label file may also mark a victim's own withdrawals).
    victims = sorted(t for t in labels if (e := graph.edge_of(t)) is not None and graph.dst[e] >= 0)
    picks = [victims[i] for i in rng.choice(len(victims), size=min(args.traces, len(victims)), replace=False)]

    out["loadavg_before_traces"] = os.getloadavg()
    for name, kv in (("trace", None), ("trace_with_other_victims", known)):
        times, cpu, accounts, others = [], [], [], []
        for tid in picks:
            t0, c0 = time.perf_counter(), time.process_time()
            result = trace(graph, [tid], max_hops=6, window_hours=72, known_victims=kv)
            # CPU time beside wall time: on a shared machine the wall time mostly measures the load.
            cpu.append((time.process_time() - c0) * 1000)
            times.append((time.perf_counter() - t0) * 1000)
            accounts.append(len(result.accounts))
            others.append(len(result.other_victims))
        times.sort()
        out[name] = {
            "n": len(times),
            "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "max_ms": round(times[-1], 2),
            "cpu_median_ms": round(statistics.median(cpu), 2),
            "median_accounts": statistics.median(accounts),
            "median_other_victims_sharing": statistics.median(others),
        }
    out["peak_rss_mb"] = round(rss_mb())
    out["loadavg"] = os.getloadavg()
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
