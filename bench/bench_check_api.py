"""Latency of POST /v1/transfers/check at a fixed request rate (target: p99 ≤ 15 ms at 1,000 requests/s).

Usage: .venv/bin/python bench/bench_check_api.py --ledger DIR [--rate 1000] [--duration 10] [--workers 2]
       [--connections N]   (closed loop through bench/loadgen.py instead of the fixed-rate httpx client)
Starts `fanzha serve` with FANZHA_LEDGER_DIR=DIR, creates a bank API key, then sends requests on a fixed
schedule (open loop: latency is measured from the scheduled send time, so a stalled server cannot hide
queueing), payers and payees drawn from the ledger's accounts. Prints JSON with p50/p99 and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow.parquet as pq
from bench_api import (  # bench/ is on sys.path as a script
    api_key,
    free_port,
    measured,
    stop_server,
    wait_ready,
)


def start(data_dir: Path, port: int, workers: int, ledger: Path, log: Path) -> object:
    import subprocess

    exe = str(Path(sys.executable).with_name("fanzha"))
    env = {**os.environ, "FANZHA_LEDGER_DIR": str(ledger)}
    cmd = [exe, "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


async def fire(base: str, key: str, bodies: list[bytes], rate: float, duration: float) -> dict[str, object]:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        headers = {"X-API-Key": key, "Content-Type": "application/json"}

        async def one(body: bytes, due: float) -> None:
            r = await client.post("/v1/transfers/check", content=body, headers=headers)
            lat.append(time.perf_counter() - due)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        start = time.perf_counter()
        tasks = []
        n = int(rate * duration)
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[i % len(bodies)], due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {
        "requests": n, "achieved_rps": round(n / elapsed), "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
        "statuses": statuses,
    }


def _closed_loop(
    base: str, key: str, bodies: list[bytes], connections: int, duration: float
) -> dict[str, object]:
    import loadgen

    target = loadgen.loopback_target(base + "/v1/transfers/check")
    requests = [loadgen.build_request(target, b, [f"X-API-Key: {key}"]) for b in bodies]
    return loadgen.run_blocking(loadgen.run(target, requests, connections, duration, warmup=2.0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ledger", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=0,
                    help="closed loop with N keep-alive connections (raw sockets, bench/loadgen.py): the "
                         "fixed-rate httpx client needs a whole core of its own at 1,000 req/s")
    args = ap.parse_args()
    ids = pq.read_table(args.ledger / "accounts.parquet", columns=["account_id"]).column(0).to_pylist()
    rng = np.random.default_rng(3)
    pick = rng.integers(len(ids), size=(5000, 2))
    bodies = [
        orjson.dumps({"payer": ids[a], "payee": ids[b], "amount_fen": int(rng.lognormal(10, 1.5)) + 1})
        for a, b in pick.tolist()
        if a != b
    ]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start(Path(tmp), port, args.workers, args.ledger, Path(tmp) / "server.log")
        try:
            wait_ready(base, proc)  # type: ignore[arg-type]
            key = api_key(base)
            if args.connections:
                result = measured(
                    proc.pid,  # type: ignore[attr-defined]
                    lambda: _closed_loop(base, key, bodies, args.connections, args.duration),
                )
            else:
                asyncio.run(fire(base, key, bodies, args.rate, 2))  # warm-up
                result = asyncio.run(fire(base, key, bodies, args.rate, args.duration))
        finally:
            stop_server(proc)  # type: ignore[arg-type]
    result.update(rate=args.rate, workers=args.workers, loadavg=os.getloadavg())
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
