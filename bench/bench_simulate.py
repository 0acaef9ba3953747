"""Benchmark `fanzha simulate`: transfers generated and written per minute (median of a few runs).

Run: .venv/bin/python bench/bench_simulate.py [--transfers 2000000] [--accounts 200000] [--runs 3]
Reports wall-clock and CPU-time rates: on a shared machine the CPU rate is what one free core would give.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fanzha.payments.simulate import SimConfig, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()
    cfg = SimConfig(accounts=args.accounts, transfers=args.transfers, fmt=args.format)
    print(
        f"command: fanzha simulate --accounts {cfg.accounts} --transfers {cfg.transfers} "
        f"--days {cfg.days} --format {cfg.fmt}  (x{args.runs})"
    )
    rates, cpu_rates = [], []
    for i in range(args.runs):
        out = Path(tempfile.mkdtemp(prefix="fanzha-bench-sim-"))
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            result = simulate(cfg, out)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        finally:
            shutil.rmtree(out)
        rates.append(result.transfers / seconds * 60)
        cpu_rates.append(result.transfers / cpu * 60)
        print(
            f"run {i + 1}: {result.transfers:,} transfers in {seconds:.2f} s wall / {cpu:.2f} s CPU, "
            f"{rates[-1] / 1e6:.2f} M/min wall, {cpu_rates[-1] / 1e6:.2f} M/min CPU, {size:.0f} MB on disk"
        )
    load1, load5, _ = os.getloadavg()
    print(
        f"median: {statistics.median(rates) / 1e6:.2f} M transfers/min wall, "
        f"{statistics.median(cpu_rates) / 1e6:.2f} M/min CPU"
    )
    print(f"load average (1 min, 5 min): {load1:.2f}, {load5:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
