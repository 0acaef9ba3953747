"""A small closed-loop HTTP/1.1 load generator for loopback benchmarks: N keep-alive connections, each
sending its next request as soon as the previous answer is read, for a fixed time or request count.

Usage: .venv/bin/python bench/loadgen.py URL [--body-file bodies.jsonl] [-H "X-API-Key: …"]
       [--connections 32] [--duration 10 | --requests 50000] [--warmup 2] [--rate 1000]
Prints JSON: achieved requests/s, latency percentiles (ms), status counts, errors.

With --rate R the load is an open loop instead: requests are due at a fixed rate R whatever the server does,
any free connection sends the next due one, and latency counts from the due time, so a server that falls
behind shows its queueing in the percentiles (no coordinated omission) as long as connections suffice.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import socket
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_CONNECTIONS = 1024
MAX_DURATION_S = 600.0


@dataclass(slots=True)
class Target:
    host: str
    port: int
    path: str


@dataclass(slots=True)
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0  # answered requests, warm-up included

    def summary(self, seconds: float, connections: int) -> dict[str, object]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None

        return {
            "connections": connections,
            "seconds": round(seconds, 2),
            "requests": len(lat),
            "answered_with_warmup": self.sent,
            "requests_per_s": round(len(lat) / seconds, 1) if seconds else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 2) if lat else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
        }


def loopback_target(url: str) -> Target:
    """Parse URL and refuse anything but this machine: this tool is for benchmarks, not for other hosts."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("only http:// URLs are supported")
    addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(f"{parts.hostname} is not a loopback address; loadgen only targets this machine")
    return Target(parts.hostname, parts.port or 80, parts.path or "/")


def build_request(target: Target, body: bytes | None, headers: Sequence[str] = ()) -> bytes:
    lines = [
        f"{'POST' if body is not None else 'GET'} {target.path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        *headers,
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not supported")
    if length:
        await reader.readexactly(length)
    return status


class _Conn:
    """One keep-alive connection: send a request, read its answer, count it; reconnect after a failure."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def exchange(self, request: bytes, stats: Stats, since: float, record: bool) -> None:
        """Latency counts from `since` (the send time in a closed loop, the due time in an open one)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        try:
            status = await _read_response(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            stats.errors[type(exc).__name__] += 1
            self.close()
            await self.open()
            return
        stats.sent += 1
        if record:
            stats.latencies.append(time.perf_counter() - since)
            stats.statuses[status] += 1


async def _connection(
    target: Target,
    requests: Iterator[bytes],
    stats: Stats,
    record_after: float,
    deadline: float,
    budget: list[int],
) -> None:
    conn = _Conn(target)
    await conn.open()
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            await conn.exchange(next(requests), stats, started, record=started >= record_after)
    finally:
        conn.close()


async def run(
    target: Target,
    requests: Sequence[bytes],
    connections: int = 32,
    duration: float = 10.0,
    total: int | None = None,
    warmup: float = 0.0,
) -> dict[str, object]:
    """Drive the load for `warmup` + `duration` seconds, or until `total` requests (warm-up ones included)."""
    if not 1 <= connections <= MAX_CONNECTIONS or not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"connections must be 1…{MAX_CONNECTIONS}, duration 0…{MAX_DURATION_S} s")
    stats = Stats()
    cycle = itertools.cycle(requests)
    record_after = time.perf_counter() + warmup
    budget = [total if total is not None else sys.maxsize]
    await asyncio.gather(
        *(
            _connection(target, cycle, stats, record_after, record_after + duration, budget)
            for _ in range(connections)
        )
    )
    return stats.summary(time.perf_counter() - record_after, connections)


async def _open_loop_connection(
    target: Target,
    requests: Iterator[bytes],
    due_times: asyncio.Queue[float | None],
    stats: Stats,
    record_after: list[float],
) -> None:
    conn = _Conn(target)
    await conn.open()
    try:
        while (due := await due_times.get()) is not None:
            await conn.exchange(next(requests), stats, due, record=due >= record_after[0])
    finally:
        conn.close()


async def run_rate(
    target: Target,
    requests: Sequence[bytes],
    rate: float,
    connections: int = 64,
    duration: float = 10.0,
    warmup: float = 0.0,
) -> dict[str, object]:
    """Open loop: one request due every 1/rate s for `warmup` + `duration` s; latency from its due time."""
    if not 1 <= connections <= MAX_CONNECTIONS or not 0 < duration <= MAX_DURATION_S or not 0 < rate <= 1e6:
        raise ValueError(f"connections must be 1…{MAX_CONNECTIONS}, duration 0…{MAX_DURATION_S} s, rate > 0")
    stats = Stats()
    cycle = itertools.cycle(requests)
    due_times: asyncio.Queue[float | None] = asyncio.Queue()
    record_after = [float("inf")]
    workers = [
        asyncio.create_task(_open_loop_connection(target, cycle, due_times, stats, record_after))
        for _ in range(connections)
    ]
    await asyncio.sleep(0.2)  # let the connections open before the clock starts
    start = time.perf_counter()
    record_after[0] = start + warmup
    total = int(rate * (warmup + duration))
    queued = 0
    while queued < total:
        due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
        while queued < due_now:
            due_times.put_nowait(start + queued / rate)
            queued += 1
        await asyncio.sleep(max(0.0, start + queued / rate - time.perf_counter()))
    for _ in workers:
        due_times.put_nowait(None)
    await asyncio.gather(*workers)
    summary = stats.summary(time.perf_counter() - record_after[0], connections)
    summary["rate"] = rate
    return summary


def run_blocking(coro: Coroutine[Any, Any, dict[str, object]]) -> dict[str, object]:
    """Run on uvloop when installed: the generator then leaves more CPU to the server it measures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _bodies(path: Path | None) -> list[bytes | None]:
    if path is None:
        return [None]
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--body-file", type=Path, help="JSONL, one request body per line (POST); cycled")
    ap.add_argument("-H", "--header", action="append", default=[], help='e.g. "X-API-Key: fz_…"')
    ap.add_argument("--connections", "-c", type=int, default=32)
    ap.add_argument("--duration", "-d", type=float, default=10.0)
    ap.add_argument("--requests", "-n", type=int, help="stop after this many requests instead")
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds of load not recorded")
    ap.add_argument("--rate", type=float, help="open loop: requests due per second (see above)")
    args = ap.parse_args(argv)
    target = loopback_target(args.url)
    requests = [build_request(target, b, args.header) for b in _bodies(args.body_file)]
    duration = MAX_DURATION_S if args.requests else args.duration
    started = time.perf_counter()
    if args.rate:
        job = run_rate(target, requests, args.rate, args.connections, args.duration, args.warmup)
        result = run_blocking(job)
    else:
        result = run_blocking(run(target, requests, args.connections, duration, args.requests, args.warmup))
    result["wall_s"] = round(time.perf_counter() - started, 2)
    return result


if __name__ == "__main__":
    print(orjson.dumps(main(), option=orjson.OPT_INDENT_2).decode())
