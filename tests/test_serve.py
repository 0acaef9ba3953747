"""`fanzha serve` as a user runs it: a real server process on a free port, stopped and started again."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
from websockets.sync.client import connect

from fanzha.store.demo import DEMO_PASSWORD

FANZHA = str(Path(sys.executable).with_name("fanzha"))
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data_dir: Path, log: Path, *extra: str) -> Iterator[str]:
    """Start `fanzha serve`, yield its base URL once /docs answers, stop it with Ctrl+C (SIGINT)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FANZHA_DATABASE_URL"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [FANZHA, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server not ready in time:\n" + log.read_text()
            try:
                if httpx.get(f"{base}/docs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()


def login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/v1/auth/token", data={"username": user, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_serve_answers_detection_for_a_demo_user_and_keeps_its_data_across_restarts(tmp_path):
    data = tmp_path / "data"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    text = "您好，这里是市公安局刑侦支队，您的身份证涉嫌洗钱，请立即将资金转入安全账户配合调查。"
    with serve(data, first_log) as base:
        r = httpx.post(f"{base}/v1/detect", json={"text": text}, headers=login(base, "bank"))
        assert r.status_code == 200 and r.json()["verdict"] in ("fraud", "suspicious")
        key = httpx.post(f"{base}/v1/auth/api-keys", json={"name": "gateway"}, headers=login(base, "bank"))
        api_key = key.json()["api_key"]
        with connect(f"ws{base.removeprefix('http')}/v1/detect/live?token={api_key}") as ws:
            assert orjson.loads(ws.recv())["type"] == "ready"
    banner = first_log.read_text()
    assert api_key not in banner  # uvicorn logs WebSocket URLs; the token in the query is redacted
    assert f"{base}/docs" in banner and DEMO_PASSWORD in banner and "演示账号" in banner
    assert (data / "fanzha.db").is_file()

    with serve(data, second_log) as base:
        again = httpx.post(f"{base}/v1/detect", json={"text": text}, headers={"X-API-Key": api_key})
        assert again.status_code == 200
        assert httpx.get(f"{base}/v1/auth/me", headers=login(base, "admin")).json()["role"] == "admin"
    second = second_log.read_text()
    assert "已创建 / created" not in second and "Traceback" not in second
    # Server logs are JSON lines (uvicorn's included), so they can be shipped and searched as they are.
    log_lines = [line for line in second.splitlines() if line.startswith("{")]
    assert log_lines and all(orjson.loads(line)["level"] for line in log_lines)


def test_serve_without_demo_creates_no_accounts(tmp_path):
    with serve(tmp_path / "data", tmp_path / "serve.log", "--no-demo") as base:
        r = httpx.post(f"{base}/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD})
        assert r.status_code == 401
    assert DEMO_PASSWORD not in (tmp_path / "serve.log").read_text()


def test_serve_refuses_to_start_without_a_model(tmp_path):
    env = {**os.environ, "FANZHA_MODEL_PATH": str(tmp_path / "missing.npz")}
    r = subprocess.run(
        [FANZHA, "serve", "--data-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "fanzha train" in r.stderr
