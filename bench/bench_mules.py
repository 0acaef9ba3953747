"""Benchmark mule scoring end to end: 10 M transfers with the embedded engine, Spark on a smaller ledger.

.venv/bin/fanzha simulate --out /tmp/mules/big --seed 3 --accounts 1000000 --transfers 10000000
.venv/bin/python bench/bench_mules.py --ledger /tmp/mules/big [--runs 3] [--spark-ledger /tmp/mules/s2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from fanzha.payments import mules


def _time_embedded(ledger: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds: on a shared machine CPU time shows what the job costs without neighbours."""
    started, cpu = time.perf_counter(), time.process_time()
    mules.write_scores(mules.score_ledger(ledger), out)
    return time.perf_counter() - started, time.process_time() - cpu


def _time_spark(ledger: Path, out: Path) -> float:
    from fanzha.jobs.spark_mules import score_ledger
    from fanzha.jobs.spark_session import spark_session

    spark = spark_session(driver_memory="2g")
    started = time.perf_counter()
    mules.write_scores(score_ledger(str(ledger), spark), out)
    elapsed = time.perf_counter() - started
    spark.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ledger", type=Path, required=True, help="Ledger for the embedded engine.")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--spark-ledger", type=Path, help="Smaller ledger to time the Spark job on.")
    args = parser.parse_args()
    n = pq.ParquetFile(args.ledger / "transfers.parquet").metadata.num_rows
    with tempfile.TemporaryDirectory() as tmp:
        runs = [_time_embedded(args.ledger, Path(tmp) / "scores.parquet") for _ in range(args.runs)]
        wall = [round(w, 1) for w, _ in runs]
        print(
            f"embedded (DuckDB): {n:,} transfers, wall {wall} s (median {statistics.median(wall):.1f} s), "
            f"CPU {[round(c, 1) for _, c in runs]} s, load average {os.getloadavg()}"
        )
        if args.spark_ledger:
            m = pq.ParquetFile(args.spark_ledger / "transfers.parquet").metadata.num_rows
            t = _time_spark(args.spark_ledger, Path(tmp) / "spark.parquet")
            print(f"spark local[2]: {m:,} transfers, {t:.1f} s, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
