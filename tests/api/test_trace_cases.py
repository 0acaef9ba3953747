"""Traces register their victim payments to the case, so traces of other cases find that money (串并).

Real app on SQLite and PostgreSQL; a ledger without labels, as a bank's would be: every "other victim"
comes from a case traced in the service.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.models import AuditEntry, Case, CaseTransfer
from tests.payments.test_trace import Row, write_ledger

# Two victims pay the same first-layer mule A within an hour; A passes everything on to D.
SHARED_MULE: list[Row] = [
    ("v1", 0, "V", "A", 10000),
    ("w1", 1, "W", "A", 5000),
    ("t1", 2, "A", "D", 15000),
    ("u1", 3, "U", "E", 800),  # an unrelated payment elsewhere
]


@pytest.fixture
def app_settings(db_url: str, tmp_path: Path) -> Settings:
    ledger = write_ledger(tmp_path / "ledger", SHARED_MULE)
    assert not (ledger / "labels_transfers.parquet").exists()
    return Settings(database_url=db_url, data_dir=tmp_path, ledger_dir=ledger)


def _db(app_settings: Settings):
    return make_engine(app_settings.database_url or "")


@pytest.fixture
def cases(client, app_settings: Settings) -> tuple[int, int, int]:
    engine = _db(app_settings)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            made = [Case(region_code="330106", status="open", summary=f"案件 {i}") for i in range(3)]
            s.add_all(made)
            s.flush()
            return made[0].id, made[1].id, made[2].id
    finally:
        engine.dispose()


def _trace(client, auth, case_id: int, *ids: str) -> dict:
    r = client.post(f"/v1/cases/{case_id}/trace", json={"transfer_ids": list(ids)}, headers=auth("analyst"))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_traced_case_is_another_victim_for_the_next_trace(client, auth, cases) -> None:
    first, second, _ = cases
    alone = _trace(client, auth, first, "v1")
    assert alone["other_victims"] == []  # nothing registered yet, no labels in this ledger
    body = _trace(client, auth, second, "w1")
    [other] = body["other_victims"]
    assert other["case_id"] == str(first) and other["transfer_ids"] == ["v1"]
    assert "D" in other["shared_accounts"] and other["held_fen"] > 0
    # Money of both cases went through A to D in one transfer: D holds each victim's share, not all of it.
    held = {a["account"]: a["held_fen"] for a in body["accounts"] if a["held_fen"]}
    assert held == {"D": 500_000}
    # And the first case, traced again, now sees the second.
    again = _trace(client, auth, first, "v1")
    assert [o["case_id"] for o in again["other_victims"]] == [str(second)]


def test_payments_are_registered_once_and_a_second_case_is_told(client, auth, cases, app_settings) -> None:
    first, second, _ = cases
    _trace(client, auth, first, "v1")
    _trace(client, auth, first, "v1")  # a repeated trace registers nothing new
    body = _trace(client, auth, second, "v1")
    assert any(f"案件 {first}" in w for w in body["warnings"])
    assert body["other_victims"] == []  # its own payment is not "another victim"
    engine = _db(app_settings)
    try:
        with make_sessionmaker(engine)() as s:
            rows = s.execute(select(CaseTransfer.transfer_id, CaseTransfer.case_id)).all()
            assert [tuple(r) for r in rows] == [("v1", first)]
            audits = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "trace")))
            assert audits[-1].after is not None
            assert audits[-1].after["registered_elsewhere"] == {"v1": first}
    finally:
        engine.dispose()


def test_a_failed_trace_registers_nothing(client, auth, cases, app_settings) -> None:
    first, _, _ = cases
    body = {"transfer_ids": ["v1", "nope"]}
    r = client.post(f"/v1/cases/{first}/trace", json=body, headers=auth("analyst"))
    assert r.status_code == 422
    engine = _db(app_settings)
    try:
        with make_sessionmaker(engine)() as s:
            assert s.scalars(select(CaseTransfer)).all() == []
    finally:
        engine.dispose()
