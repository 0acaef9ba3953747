"""`/v1/cases`: record a case (警情), read it with the payments its traces registered; roles, regions,
audit, bad input. Real app on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.models import AuditEntry
from tests.payments.test_trace import SPLIT_MERGE, write_ledger

CASE = {"region_code": "330106", "fraud_type": "impersonate_customer_service",
        "summary": "受害人接到冒充客服电话，按要求转账，对方手机号13812345678"}


@pytest.fixture
def app_settings(db_url: str, tmp_path: Path) -> Settings:
    ledger = write_ledger(tmp_path / "ledger", SPLIT_MERGE)
    return Settings(database_url=db_url, data_dir=tmp_path, ledger_dir=ledger)


def test_analyst_records_a_case_traces_it_and_reads_it_back(client, auth, app_settings) -> None:
    r = client.post("/v1/cases", json=CASE, headers=auth("analyst"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "open" and case["victim_transfer_ids"] == []
    assert case["summary"] == CASE["summary"]  # analysts see the raw text
    t = client.post(f"/v1/cases/{case['id']}/trace", json={"transfer_ids": ["v1"]}, headers=auth("bank"))
    assert t.status_code == 200, t.text
    got = client.get(f"/v1/cases/{case['id']}", headers=auth("bank")).json()
    assert got["victim_transfer_ids"] == ["v1"]
    assert "13812345678" not in got["summary"]  # a bank sees personal data in the summary masked
    engine = make_engine(app_settings.database_url or "")
    try:
        with make_sessionmaker(engine)() as s:
            [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "create",
                                                          AuditEntry.entity == "case")).all()
            assert entry.actor == "analyst" and entry.entity_id == str(case["id"])
            assert entry.after is not None and "13812345678" not in entry.after["summary"]
    finally:
        engine.dispose()


def test_roles_and_regions(client, auth) -> None:
    assert client.post("/v1/cases", json=CASE).status_code == 401
    for role in ("bank", "telecom", "auditor"):
        assert client.post("/v1/cases", json=CASE, headers=auth(role)).status_code == 403
    mine = client.post("/v1/cases", json=CASE, headers=auth("grid"))  # grid's region is 330106
    assert mine.status_code == 201, mine.text
    other = {**CASE, "region_code": "440305"}
    assert client.post("/v1/cases", json=other, headers=auth("grid")).status_code == 403
    theirs = client.post("/v1/cases", json=other, headers=auth("grid_other")).json()
    assert client.get(f"/v1/cases/{theirs['id']}", headers=auth("grid")).status_code == 404
    assert client.get(f"/v1/cases/{mine.json()['id']}", headers=auth("grid")).status_code == 200
    assert client.get(f"/v1/cases/{theirs['id']}", headers=auth("auditor")).status_code == 200
    assert client.get(f"/v1/cases/{theirs['id']}", headers=auth("telecom")).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {**CASE, "fraud_type": "alien_invasion"},
        {**CASE, "region_code": "33010"},
        {**CASE, "summary": "x" * 2001},
        {**CASE, "surprise": 1},
        {"fraud_type": "fake_loan"},
    ],
)
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(client, auth, body) -> None:
    r = client.post("/v1/cases", json=body, headers=auth("analyst"))
    assert r.status_code == 422, r.text
    assert client.get("/v1/cases/1", headers=auth("analyst")).status_code == 404


def test_unknown_case_is_404(client, auth) -> None:
    assert client.get("/v1/cases/999", headers=auth("analyst")).status_code == 404
    assert client.get("/v1/cases/0", headers=auth("analyst")).status_code == 422
