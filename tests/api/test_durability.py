"""The real server, killed with SIGKILL right after each acknowledged write, loses none of them; hostile
input gets a 4xx or is stored verbatim, never a 500 and never half a write."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import AuditEntry, Case, ContactAttempt, Report, Warning
from fanzha.store.repo_users import create_user

PASSWORD = "correct-horse-1"
SQL = "'; DROP TABLE reports;--"
SCRIPT = "<script>alert(1)</script>"
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`uvicorn --factory fanzha.api.app:create_app` in a subprocess, as production runs it."""

    def __init__(self, db_url: str, workdir: Path) -> None:
        self.db_url = db_url
        self.workdir = workdir
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "FANZHA_DATABASE_URL": self.db_url, "FANZHA_DATA_DIR": str(self.workdir)}
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "fanzha.api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {START_TIMEOUT} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed that was not already durable."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        return (self.workdir / f"server-{self.starts}.log").read_text(errors="replace")[-4000:]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as s:
        create_user(s, "analyst", PASSWORD, "analyst")
        create_user(s, "bank", PASSWORD, "bank")
        create_user(s, "grid", PASSWORD, "grid", "330106")
    engine.dispose()
    srv = Server(db_url, tmp_path)
    srv.start()
    yield srv
    srv.kill()


def login(srv: Server, user: str) -> dict[str, str]:
    r = httpx.post(f"{srv.base}/v1/auth/token", data={"username": user, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def acknowledged_then_killed(srv: Server, method: str, path: str, **kw) -> httpx.Response:
    """Send one write, SIGKILL the server the moment it answers 2xx, and start it again."""
    r = httpx.request(method, f"{srv.base}{path}", timeout=30, **kw)
    assert 200 <= r.status_code < 300, r.text
    srv.kill()
    srv.start()
    return r


def test_every_acknowledged_report_and_warning_survives_sigkill(server):
    analyst, bank, grid = login(server, "analyst"), login(server, "bank"), login(server, "grid")
    receipts = []
    for i in range(3):
        body = {"kind": "phone", "value": f"1700000000{i}", "message_text": f"第{i}条：点击链接领取补贴"}
        receipts.append(
            acknowledged_then_killed(server, "POST", "/v1/reports", json=body).json()["receipt_id"]
        )
    merged = acknowledged_then_killed(
        server, "POST", "/v1/reports", json={"kind": "phone", "value": "17000000000"}
    )
    assert merged.status_code == 200 and merged.json()["receipt_id"] == receipts[0]
    warnings = []
    for i in range(3):
        body = {
            "person_phone": f"1381234567{i}",
            "region_code": "330106",
            "risk": 90,
            "amount_at_stake": 1000 * i,
        }
        warnings.append(
            acknowledged_then_killed(server, "POST", "/v1/warnings", json=body, headers=bank).json()["id"]
        )
    contact = {"method": "phone", "reached": True, "note": "已接通"}
    acknowledged_then_killed(
        server, "POST", f"/v1/warnings/{warnings[0]}/contacts", json=contact, headers=grid
    )
    acknowledged_then_killed(
        server,
        "POST",
        f"/v1/warnings/{warnings[0]}/outcome",
        json={"outcome": "already_defrauded"},
        headers=grid,
    )
    acknowledged_then_killed(
        server, "POST", f"/v1/reports/{receipts[1]}/review", json={"decision": "accept"}, headers=analyst
    )

    engine = make_engine(server.db_url)
    with make_sessionmaker(engine)() as s:
        reports = {r.id: r for r in s.scalars(select(Report))}
        assert set(receipts) <= set(reports)
        assert reports[receipts[0]].count == 2 and reports[receipts[1]].status == "accepted"
        stored = {w.id: w for w in s.scalars(select(Warning))}
        assert set(warnings) <= set(stored)
        assert stored[warnings[0]].status == "closed" and stored[warnings[0]].case_id is not None
        assert s.get(Case, stored[warnings[0]].case_id) is not None
        assert s.scalar(select(func.count()).select_from(ContactAttempt)) == 1
    engine.dispose()
    # and the restarted service answers from the same data
    queue = httpx.get(f"{server.base}/v1/reports", headers=analyst, timeout=10).json()
    assert {i["id"] for i in queue["items"]} == {receipts[0], receipts[2]}
    seen = httpx.get(f"{server.base}/v1/warnings/{warnings[0]}", headers=analyst, timeout=10).json()
    assert seen["outcome"] == "already_defrauded" and len(seen["contacts"]) == 1


def _counts(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        out = {
            m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Report, Warning, ContactAttempt, Case, AuditEntry)
        }
    engine.dispose()
    return out


def test_hostile_input_is_refused_or_stored_verbatim_never_500_never_half_written(server):
    bank, grid = login(server, "bank"), login(server, "grid")
    wid = httpx.post(
        f"{server.base}/v1/warnings",
        json={"person_phone": "13812345678", "region_code": "330106", "risk": 70},
        headers=bank,
        timeout=10,
    ).json()["id"]
    json_headers = {"content-type": "application/json"}
    refused = [
        ("POST", "/v1/reports", {"content": b'{"kind": "phone", "value": ', "headers": json_headers}),
        ("POST", "/v1/reports", {"content": b"\xff\xfe not json", "headers": json_headers}),
        ("POST", "/v1/reports", {"json": ["kind", "phone"]}),
        ("POST", "/v1/reports", {"json": {"kind": "phone", "value": 17012345678}}),
        ("POST", "/v1/reports", {"json": {"kind": "phone", "value": SQL}}),
        ("POST", "/v1/reports", {"json": {"kind": SQL, "value": "x"}}),
        ("POST", "/v1/reports", {"json": {"kind": "url", "value": SCRIPT}}),
        ("POST", "/v1/reports", {"json": {"kind": "url", "value": "evil.com", "fraud_type": SQL}}),
        ("POST", "/v1/reports", {"json": {"kind": "url", "value": "evil.com", "region_code": SQL}}),
        (
            "POST",
            "/v1/warnings",
            {"json": {"person_phone": SQL, "region_code": "330106", "risk": 50}, "headers": bank},
        ),
        (
            "POST",
            "/v1/warnings",
            {
                "json": {"person_phone": "13812345678", "region_code": "330106", "risk": "high"},
                "headers": bank,
            },
        ),
        ("POST", f"/v1/warnings/{wid}/outcome", {"json": {"outcome": "abducted_by_aliens"}, "headers": grid}),
        ("POST", f"/v1/warnings/{wid}/outcome", {"json": {"outcome": SQL}, "headers": grid}),
        ("POST", f"/v1/warnings/{wid}/contacts", {"json": {"method": SQL, "reached": True}, "headers": grid}),
        (
            "POST",
            f"/v1/warnings/{wid}/contacts",
            {"json": {"method": "phone", "reached": [1]}, "headers": grid},
        ),
        ("GET", f"/v1/warnings/{SQL}", {"headers": grid}),
        ("GET", "/v1/warnings", {"params": {"region": SQL}, "headers": grid}),
        ("GET", "/v1/warnings", {"params": {"status": SCRIPT}, "headers": grid}),
        ("GET", "/v1/warnings/stats", {"params": {"date_from": SQL}, "headers": grid}),
    ]
    before = _counts(server.db_url)
    for method, path, kw in refused:
        r = httpx.request(method, f"{server.base}{path}", timeout=10, **kw)
        assert 400 <= r.status_code < 500, (path, kw, r.status_code, r.text)
    assert _counts(server.db_url) == before

    report = httpx.post(
        f"{server.base}/v1/reports",
        json={"kind": "app", "value": SQL, "message_text": SCRIPT, "screenshot_text": SQL},
        timeout=10,
    )
    assert report.status_code == 201, report.text
    person = httpx.post(
        f"{server.base}/v1/warnings",
        json={
            "person_phone": "13912345678",
            "person_name": SCRIPT,
            "region_code": "330106",
            "risk": 60,
            "detail": {"note": SQL, "nested": [SCRIPT]},
        },
        headers=bank,
        timeout=10,
    )
    assert person.status_code == 201, person.text
    note = httpx.post(
        f"{server.base}/v1/warnings/{wid}/contacts",
        json={"method": "sms", "reached": False, "note": SQL},
        headers=grid,
        timeout=10,
    )
    assert note.status_code == 201, note.text

    engine = make_engine(server.db_url)
    with make_sessionmaker(engine)() as s:
        r = s.get(Report, report.json()["receipt_id"])
        assert (r.value, r.message_text, r.screenshot_text) == (SQL.lower(), SCRIPT, SQL)
        w = s.get(Warning, person.json()["id"])
        assert w.person_name == SCRIPT and w.detail["signals"][0]["note"] == SQL
        assert s.scalars(select(ContactAttempt.note)).all() == [SQL]
    engine.dispose()
