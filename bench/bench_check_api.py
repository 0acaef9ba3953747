"""Latency of POST /v1/transfers/check at a fixed request rate (target: p99 ≤ 15 ms at 1,000 requests/s).

Usage: .venv/bin/python bench/bench_check_api.py --ledger DIR [--rate 1000] [--duration 10] [--workers 2]
       [--connections N]   (closed loop through bench/loadgen.py instead of the open loop)
       [--wrk --connections N]   (closed loop through wrk, which costs the shared cores least)
       [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]   (a fresh database on that server)
Starts `fanzha serve` with FANZHA_LEDGER_DIR=DIR, creates a bank API key, then by default sends requests on
a fixed schedule over 64 keep-alive connections (bench/loadgen.py open loop: latency is measured from the
scheduled send time, so a stalled server cannot hide queueing), payers and payees drawn from the ledger's
accounts. Prints JSON with p50/p99, the server's CPU per request and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
from bench_api import (  # bench/ is on sys.path as a script
    api_key,
    free_port,
    measured,
    run_wrk,
    stop_server,
    wait_ready,
)


def start(data_dir: Path, port: int, workers: int, ledger: Path, log: Path, db_url: str | None) -> object:
    import subprocess

    exe = str(Path(sys.executable).with_name("fanzha"))
    env = {**os.environ, "FANZHA_LEDGER_DIR": str(ledger)}
    if db_url:
        env["FANZHA_DATABASE_URL"] = db_url
    cmd = [exe, "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _open_loop(base: str, key: str, bodies: list[bytes], rate: float, duration: float) -> dict[str, object]:
    import loadgen

    target = loadgen.loopback_target(base + "/v1/transfers/check")
    requests = [loadgen.build_request(target, b, [f"X-API-Key: {key}"]) for b in bodies]
    return loadgen.run_blocking(loadgen.run_rate(target, requests, rate, 64, duration, warmup=2.0))


def _closed_loop(
    base: str, key: str, bodies: list[bytes], connections: int, duration: float
) -> dict[str, object]:
    import loadgen

    target = loadgen.loopback_target(base + "/v1/transfers/check")
    requests = [loadgen.build_request(target, b, [f"X-API-Key: {key}"]) for b in bodies]
    return loadgen.run_blocking(loadgen.run(target, requests, connections, duration, warmup=2.0))


@contextmanager
def fresh_postgres(url: str | None) -> Iterator[str | None]:
    """A new empty database on the server of `url` (any database there) for one run, dropped after."""
    if not url:
        yield None
        return
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"fanzha_bench_{os.getpid()}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ledger", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--postgres", metavar="URL",
                    help="run on a fresh database on this PostgreSQL server (URL of any database there)")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--connections",
        type=int,
        default=0,
        help="closed loop with N keep-alive connections (raw sockets, bench/loadgen.py): the "
        "open loop needs a few connections' worth of CPU more",
    )
    ap.add_argument(
        "--wrk",
        action="store_true",
        help="closed loop with wrk (C, one thread) and --connections N: the cheapest generator",
    )
    args = ap.parse_args()
    ids = pq.read_table(args.ledger / "accounts.parquet", columns=["account_id"]).column(0).to_pylist()
    rng = np.random.default_rng(3)
    pick = rng.integers(len(ids), size=(5000, 2))
    bodies = [
        orjson.dumps({"payer": ids[a], "payee": ids[b], "amount_fen": int(rng.lognormal(10, 1.5)) + 1})
        for a, b in pick.tolist()
        if a != b
    ]
    with tempfile.TemporaryDirectory() as tmp, fresh_postgres(args.postgres) as db_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start(Path(tmp), port, args.workers, args.ledger, Path(tmp) / "server.log", db_url)
        try:
            wait_ready(base, proc)  # type: ignore[arg-type]
            key = api_key(base)
            if args.wrk:
                lines = Path(tmp) / "bodies.jsonl"
                lines.write_bytes(b"\n".join(bodies) + b"\n")
                url = base + "/v1/transfers/check"
                run_wrk(url, key, lines, args.connections or 16, 2, Path(tmp))  # warm-up
                result = measured(
                    proc.pid,  # type: ignore[attr-defined]
                    lambda: run_wrk(url, key, lines, args.connections or 16, int(args.duration), Path(tmp)),
                )
            elif args.connections:
                result = measured(
                    proc.pid,  # type: ignore[attr-defined]
                    lambda: _closed_loop(base, key, bodies, args.connections, args.duration),
                )
            else:
                result = measured(
                    proc.pid,  # type: ignore[attr-defined]
                    lambda: _open_loop(base, key, bodies, args.rate, args.duration),
                )
        finally:
            stop_server(proc)  # type: ignore[arg-type]
    result.update(rate=args.rate, workers=args.workers, database="postgresql" if args.postgres else "sqlite",
                  loadavg=os.getloadavg())
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
