"""`POST /v1/cases/{id}/trace` on the real app, SQLite and PostgreSQL: roles, errors, audit, CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.models import AuditEntry, Case
from tests.payments.test_trace import SPLIT_MERGE, write_ledger


@pytest.fixture
def app_settings(db_url: str, tmp_path: Path) -> Settings:
    ledger = write_ledger(tmp_path / "ledger", SPLIT_MERGE)
    return Settings(database_url=db_url, data_dir=tmp_path, ledger_dir=ledger)


@pytest.fixture
def case_id(client, app_settings: Settings) -> int:
    engine = make_engine(app_settings.database_url or "")
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            case = Case(region_code="330106", status="open", summary="冒充客服")
            s.add(case)
            s.flush()
            return case.id
    finally:
        engine.dispose()


def _audit(app_settings: Settings) -> list[AuditEntry]:
    engine = make_engine(app_settings.database_url or "")
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "trace")))
    finally:
        engine.dispose()


def test_analyst_traces_a_case_and_the_trace_is_audited(client, auth, case_id, app_settings) -> None:
    r = client.post(f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1"]}, headers=auth("analyst"))
    assert r.status_code == 200, r.text
    body = r.json()
    held = {a["account"]: a["held_fen"] for a in body["accounts"] if a["held_fen"]}
    assert held == {"D": 1_000_000}
    assert body["total_fen"] == 1_000_000 and body["rule"] == "tainted_first_fifo"
    [entry] = _audit(app_settings)
    assert (entry.actor, entry.entity, entry.entity_id) == ("analyst", "case", str(case_id))
    assert entry.after is not None
    assert entry.after["transfer_ids"] == ["v1"] and entry.after["freeze_accounts"] == 1
    assert entry.after["held_fen"] == 1_000_000 and entry.after["max_hops"] == 6


def test_bank_gets_the_freeze_list_as_csv(client, auth, case_id) -> None:
    r = client.post(
        f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1"], "format": "csv"}, headers=auth("bank")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][1] == "账户" and rows[0][4] == "可归属金额(元)"
    assert [(row[1], row[3], row[4]) for row in rows[1:]] == [("D", "3", "10000.00")]


def test_hop_limit_is_honoured(client, auth, case_id) -> None:
    body = {"transfer_ids": ["v1"], "max_hops": 2}
    r = client.post(f"/v1/cases/{case_id}/trace", json=body, headers=auth("analyst"))
    assert r.status_code == 200
    # B and C are the second hop; what they pass on is reported, not followed.
    assert r.json()["held_fen"] == 0 and r.json()["beyond_hops_fen"] == 1_000_000


@pytest.mark.parametrize("user", ["grid", "telecom", "auditor"])
def test_other_roles_may_not_trace(client, auth, case_id, user: str) -> None:
    r = client.post(f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1"]}, headers=auth(user))
    assert r.status_code == 403


def test_login_is_required(client, case_id) -> None:
    assert client.post(f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1"]}).status_code == 401


def test_unknown_case_is_404(client, auth) -> None:
    r = client.post("/v1/cases/999999/trace", json={"transfer_ids": ["v1"]}, headers=auth("analyst"))
    assert r.status_code == 404


def test_unknown_transfers_are_named_in_a_422(client, auth, case_id, app_settings) -> None:
    r = client.post(
        f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1", "zz9"]}, headers=auth("analyst")
    )
    assert r.status_code == 422
    assert r.json()["detail"]["unknown_transfer_ids"] == ["zz9"]
    assert _audit(app_settings) == []


@pytest.mark.parametrize(
    "body",
    [
        {"transfer_ids": []},
        {"transfer_ids": ["v1"], "max_hops": 0},
        {"transfer_ids": ["v1"], "format": "pdf"},
    ],
)
def test_bad_parameters_are_422(client, auth, case_id, body: dict) -> None:
    assert client.post(f"/v1/cases/{case_id}/trace", json=body, headers=auth("analyst")).status_code == 422


def test_no_ledger_configured_is_503(client, auth, case_id) -> None:
    client.app.state.settings.ledger_dir = None
    r = client.post(f"/v1/cases/{case_id}/trace", json={"transfer_ids": ["v1"]}, headers=auth("analyst"))
    assert r.status_code == 503
    assert "账本" in r.json()["detail"]
