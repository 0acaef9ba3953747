"""Transfer check API: decisions, 三问一确认 answers, idempotency, audit, clear 4xx (SQLite + PG)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.models import AuditEntry, TransferCheckRecord
from tests.payments.check_ledger import write_ledger

# Daytime yesterday in China Standard Time: decisions must not depend on when the suite runs.
DAY = (datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8) - timedelta(days=1)).replace(hour=10)
BENIGN = {"payee": "known_person", "purpose": "daily", "source": "no", "confirm": "yes"}


@pytest.fixture
def app_settings(db_url, tmp_path) -> Settings:
    # warning_refresh_seconds=0: the in-memory list of warned accounts is re-read before every check
    return Settings(database_url=db_url, data_dir=tmp_path, ledger_dir=write_ledger(tmp_path / "ledger"),
                    warning_refresh_seconds=0)


def check(client, headers, **body):
    body = {"payer": "A", "payee": "B", "amount_fen": 25_000, "ts": DAY.isoformat(), **body}
    return client.post("/v1/transfers/check", json=body, headers=headers)


def test_routine_transfer_is_allowed_and_stored(client, auth):
    r = check(client, auth("bank"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["decision"] == "allow" and d["rules_version"] and len(d["check_id"]) == 32
    got = client.get(f"/v1/transfers/checks/{d['check_id']}", headers=auth("analyst")).json()
    assert got["decision"] == "allow" and got["checked_by"] == "bank"


def test_confirm_then_benign_answers_allow_and_are_audited(client, auth, app_settings):
    d = check(client, auth("bank"), payee="62220000111", amount_fen=2_000_000).json()
    assert d["decision"] == "confirm" and len(d["questions"]) == 4
    assert all("text" in r and r["text"] for r in d["reasons"])
    r = client.post(f"/v1/transfers/checks/{d['check_id']}/answers", json={"answers": BENIGN},
                    headers=auth("bank"))
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "allow" and r.json()["initial_decision"] == "confirm"
    got = client.get(f"/v1/transfers/checks/{d['check_id']}", headers=auth("bank")).json()
    assert got["answers"] == BENIGN and got["answered_by"] == "bank" and got["decision"] == "allow"
    sessions = make_sessionmaker(make_engine(app_settings.database_url or ""))
    with sessions() as s:
        q = select(AuditEntry).where(AuditEntry.entity == "transfer_check")
        actions = [a.action for a in s.scalars(q)]
        assert actions == ["check", "answer"]
        assert s.get(TransferCheckRecord, d["check_id"]).decision == "allow"


def test_safe_account_answer_blocks(client, auth):
    d = check(client, auth("bank"), payee="62220000111", amount_fen=2_000_000).json()
    r = client.post(f"/v1/transfers/checks/{d['check_id']}/answers",
                    json={"answers": {"purpose": "safe_account"}}, headers=auth("bank"))
    assert r.json()["decision"] == "block"
    assert any("安全账户" in x["text"] for x in r.json()["reasons"])


def test_allowed_transfer_becomes_history(client, auth):
    first = check(client, auth("bank"), payee="NEWPAYEE", amount_fen=10_000).json()
    assert first["decision"] == "allow" and first["features"]["first_to_payee"] == 1
    again = check(client, auth("bank"), payee="NEWPAYEE", amount_fen=10_000).json()
    assert again["features"]["first_to_payee"] == 0


def test_same_idempotency_key_same_decision_other_request_conflict(client, auth):
    h = {**auth("bank"), "Idempotency-Key": "retry-1"}
    a = check(client, h, payee="62220000111", amount_fen=2_000_000)
    b = check(client, h, payee="62220000111", amount_fen=2_000_000)
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    assert check(client, h, payee="62220000111", amount_fen=2_000_001).status_code == 409
    # The key in the body works the same way.
    c = check(client, auth("bank"), payee="62220000111", amount_fen=2_000_000, idempotency_key="retry-1")
    assert c.json()["check_id"] == a.json()["check_id"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount_fen": -100}, 422),
        ({"amount_fen": 0}, 422),
        ({"amount_fen": 10**15}, 422),
        ({"amount_fen": "lots"}, 422),
        ({"ts": (datetime.now() + timedelta(days=2)).isoformat()}, 422),
        ({"payer": "nobody"}, 404),
        ({"payee": "A"}, 422),
        ({"channel": "pigeon"}, 422),
        ({"payer": "x" * 65}, 422),
        ({"surprise": 1}, 422),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, auth, body, code):
    r = check(client, auth("bank"), **body)
    assert r.status_code == code, r.text
    assert "detail" in r.json()


def test_body_errors_are_located_like_other_routes(client, auth):
    # The check route validates its body itself (no FastAPI body parameter): errors keep FastAPI's shape.
    r = check(client, auth("bank"), amount_fen="lots")
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "amount_fen"]]
    r = check(client, auth("bank"), payer=None)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "payer"]
    for raw in (b"{not json", b"", b"[1, 2]", b"\xff\xfe"):
        r = client.post("/v1/transfers/check", content=raw,
                        headers={**auth("bank"), "Content-Type": "application/json"})
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["detail"][0]["loc"][0] == "body"


def test_idempotency_header_is_validated(client, auth):
    r = check(client, {**auth("bank"), "Idempotency-Key": "k" * 129})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert check(client, {**auth("bank"), "Idempotency-Key": "k" * 128}).status_code == 200
    r = check(client, {**auth("bank"), "Idempotency-Key": "a"}, idempotency_key="b")
    assert r.status_code == 422


def test_check_is_documented_with_its_body_and_header(client):
    op = client.get("/openapi.json").json()["paths"]["/v1/transfers/check"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"payer", "payee", "amount_fen"}
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op["parameters"])


def test_api_key_works_as_well_as_bearer_token(client, auth):
    r = client.post("/v1/auth/api-keys", json={"name": "counter"}, headers=auth("bank"))
    assert r.status_code in (200, 201), r.text
    assert check(client, {"X-API-Key": r.json()["api_key"]}).status_code == 200
    assert check(client, {"authorization": "bearer " + auth("bank")["Authorization"][7:]}).status_code == 200
    assert check(client, {"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert check(client, {"X-API-Key": "fz_not_a_key"}).status_code == 401


def test_unknown_payer_message_is_bilingual(client, auth):
    detail = check(client, auth("bank"), payer="nobody").json()["detail"]
    assert detail["code"] == "unknown_payer"
    assert "付款账户" in detail["message"] and "unknown" in detail["message"]


def test_answer_errors(client, auth):
    assert client.post("/v1/transfers/checks/nope/answers", json={"answers": BENIGN},
                       headers=auth("bank")).status_code == 404
    allowed = check(client, auth("bank")).json()
    r = client.post(f"/v1/transfers/checks/{allowed['check_id']}/answers", json={"answers": BENIGN},
                    headers=auth("bank"))
    assert r.status_code == 422
    d = check(client, auth("bank"), payee="62220000111", amount_fen=2_000_000).json()
    r = client.post(f"/v1/transfers/checks/{d['check_id']}/answers", json={"answers": {"payee": "alien"}},
                    headers=auth("bank"))
    assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_option"


def test_roles(client, auth):
    assert check(client, {}).status_code == 401
    assert check(client, auth("telecom")).status_code == 403
    assert check(client, auth("grid")).status_code == 403
    assert check(client, auth("admin")).status_code == 200
    assert client.get("/v1/transfers/checks/abc", headers=auth("auditor")).status_code == 403


def test_a_warning_for_the_payer_is_a_reason_on_the_next_check(client, auth):
    before = check(client, auth("bank")).json()
    assert "payer_recent_warning" not in [r["code"] for r in before["reasons"]]
    warning = {"person_account": "A", "region_code": "330106", "risk": 90, "person_phone": "13812345678"}
    assert client.post("/v1/warnings", json=warning, headers=auth("bank")).status_code in (200, 201)
    after = check(client, auth("bank")).json()
    assert "payer_recent_warning" in [r["code"] for r in after["reasons"]]
