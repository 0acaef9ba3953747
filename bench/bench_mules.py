"""Benchmark mule scoring end to end: 10 M transfers with the embedded engine, Spark on a smaller ledger.

.venv/bin/fanzha simulate --out /tmp/mules/big --seed 3 --accounts 1000000 --transfers 10000000
.venv/bin/python bench/bench_mules.py --ledger /tmp/mules/big [--runs 3] [--stages] \
    [--spark-ledger /tmp/mules/s2]

--stages adds one run timed per stage (feature SQL, first pass + neighbour SQL, tree scoring, reasons + groups
+ writing), CPU and wall seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fanzha.payments import mules
from fanzha.payments.mule_features import links_sql


def _time_embedded(ledger: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds: on a shared machine CPU time shows what the job costs without neighbours."""
    started, cpu = time.perf_counter(), time.process_time()
    mules.write_scores(mules.score_ledger(ledger), out)
    return time.perf_counter() - started, time.process_time() - cpu


def _time_stages(ledger: Path, out: Path) -> dict[str, tuple[float, float]]:
    """(CPU, wall) seconds per stage of one embedded run (the same steps as mules.score_ledger)."""
    marks = [(time.process_time(), time.perf_counter())]
    model = mules.load_model()
    con = mules.connect(ledger)
    feats = mules.features_duckdb(con)
    marks.append((time.process_time(), time.perf_counter()))
    feats = mules.model_features(model, feats, mules.neighbours_duckdb(con))
    marks.append((time.process_time(), time.perf_counter()))
    scores = model.score(feats)
    marks.append((time.process_time(), time.perf_counter()))
    ids = feats.column("account_id").to_pylist()
    suspects = [a for a, s in zip(ids, scores, strict=True) if s >= model.group_threshold]
    con.register("suspects", pa.table({"account_id": suspects}))
    links = con.execute(links_sql()).to_arrow_table()
    mules.write_scores(mules.assemble(model, feats, mules.groups(suspects, links), scores), out)
    marks.append((time.process_time(), time.perf_counter()))
    names = ("features", "first pass+neighbours", "scoring", "reasons+groups+write")
    return {
        n: (round(b[0] - a[0], 1), round(b[1] - a[1], 1))
        for n, a, b in zip(names, marks[:-1], marks[1:], strict=True)
    }


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
    parser.add_argument("--stages", action="store_true", help="Also time one run per stage (CPU).")
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
        if args.stages:
            stages = _time_stages(args.ledger, Path(tmp) / "stages.parquet")
            print(f"embedded stages, (CPU s, wall s): {stages}, load average {os.getloadavg()}")
        if args.spark_ledger:
            m = pq.ParquetFile(args.spark_ledger / "transfers.parquet").metadata.num_rows
            t = _time_spark(args.spark_ledger, Path(tmp) / "spark.parquet")
            print(f"spark local[2]: {m:,} transfers, {t:.1f} s, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
