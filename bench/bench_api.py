"""Throughput and latency of POST /v1/detect on a real server (issue target: ≥ 1,500 requests/s, p99 ≤ 20 ms).

Usage: .venv/bin/python bench/bench_api.py [--workers 2] [--connections 16] [--duration 10] [--no-wrk]
Starts `fanzha serve` on a free loopback port with a temporary data folder, logs in as the demo partner
`bank`, creates an API key, replays held-out corpus SMS with bench/loadgen.py (and with `wrk` when it is
installed), prints JSON and stops the server. The load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import loadgen  # bench/ is on sys.path when this file runs as a script
import orjson
from bench_detect import sms_messages

WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("FANZHA_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local key = os.getenv("FANZHA_BENCH_KEY")
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-API-Key"] = key}, bodies[i])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("fanzha"))
    cmd = [exe, "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/docs", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its descendants (Linux /proc): the server's cost per request,
    which other load on the machine changes far less than it changes throughput."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
    children: dict[int, list[int]] = {}
    for p, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(p)
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        if p in stats:
            total += (int(stats[p][11]) + int(stats[p][12])) / os.sysconf("SC_CLK_TCK")
        stack += children.get(p, [])
    return total


def measured(pid: int, run: Callable[[], dict[str, object]]) -> dict[str, object]:
    before = cpu_seconds(pid)
    result = run()
    requests = result.get("answered_with_warmup", result.get("requests")) or 0
    if isinstance(requests, int) and requests:
        result["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - before) * 1000 / requests, 3)
    return result


def api_key(base: str) -> str:
    from fanzha.store.demo import DEMO_PASSWORD

    token = httpx.post(f"{base}/v1/auth/token", data={"username": "bank", "password": DEMO_PASSWORD}).json()
    r = httpx.post(
        f"{base}/v1/auth/api-keys",
        json={"name": "bench"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    r.raise_for_status()
    return str(r.json()["api_key"])


def run_wrk(
    url: str, key: str, bodies: Path, connections: int, duration: int, tmp: Path
) -> dict[str, object]:
    script = tmp / "detect.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    env = {**os.environ, "FANZHA_BENCH_BODIES": str(bodies), "FANZHA_BENCH_KEY": key}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float | None:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return None
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)], 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "command": " ".join(cmd),
        "connections": connections,
        "requests": int(total.group(1)) if total else 0,
        "requests_per_s": float(rps.group(1)) if rps else None,
        "p50_ms": ms("50"),
        "p90_ms": ms("90"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--no-wrk", action="store_true", help="skip wrk even if it is installed")
    args = ap.parse_args()
    texts = sms_messages(2000)
    result: dict[str, object] = {
        "cpus": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "workers": args.workers,
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(tmp / "data", port, args.workers, tmp / "server.log")
        try:
            wait_ready(base, proc)
            key = api_key(base)
            bodies = tmp / "bodies.jsonl"
            bodies.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts))
            first = httpx.post(f"{base}/v1/detect", json={"text": texts[0]}, headers={"X-API-Key": key})
            first.raise_for_status()
            target = loadgen.loopback_target(f"{base}/v1/detect")
            requests = [
                loadgen.build_request(target, orjson.dumps({"text": t}), [f"X-API-Key: {key}"]) for t in texts
            ]
            run = loadgen.run(target, requests, args.connections, args.duration, warmup=args.warmup)
            result["loadgen"] = measured(proc.pid, lambda: loadgen.run_blocking(run))
            if shutil.which("wrk") and not args.no_wrk:
                url = f"{base}/v1/detect"
                result["wrk"] = measured(
                    proc.pid, lambda: run_wrk(url, key, bodies, args.connections, args.duration, tmp)
                )
        finally:
            stop_server(proc)
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
