"""Accounts, roles, tokens, API keys and the audit log through the real API."""

from datetime import timedelta

from sqlalchemy import update

from fanzha.store.db import make_engine
from fanzha.store.models import AccessToken, utcnow
from tests.api.conftest import PASSWORD


def test_login_gives_a_token_that_identifies_the_user(client, auth):
    r = client.get("/v1/auth/me", headers=auth("grid"))
    assert r.status_code == 200
    assert r.json() == {"id": r.json()["id"], "username": "grid", "role": "grid", "region_code": "330106"}


def test_wrong_password_and_missing_token_are_401(client):
    assert client.post("/v1/auth/token", data={"username": "admin", "password": "nope"}).status_code == 401
    assert client.get("/v1/auth/me").status_code == 401
    assert client.get("/v1/auth/me", headers={"Authorization": "Bearer junk"}).status_code == 401


def test_expired_token_is_refused_with_a_reason(client, auth, app_settings):
    headers = auth("analyst")
    engine = make_engine(app_settings.database_url)
    with engine.begin() as conn:
        conn.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    engine.dispose()
    r = client.get("/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "token expired"


def test_api_key_authenticates_machine_clients(client, auth):
    r = client.post("/v1/auth/api-keys", json={"name": "core-banking"}, headers=auth("bank"))
    assert r.status_code == 201
    key = r.json()["api_key"]
    me = client.get("/v1/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["role"] == "bank"


def test_only_admin_creates_users_and_unknown_roles_are_rejected(client, auth):
    body = {"username": "newbie", "password": PASSWORD, "role": "analyst"}
    assert client.post("/v1/users", json=body, headers=auth("analyst")).status_code == 403
    bad = client.post("/v1/users", json={**body, "role": "superhero"}, headers=auth("admin"))
    assert bad.status_code == 422 and "unknown role" in bad.text
    assert client.post("/v1/users", json=body, headers=auth("admin")).status_code == 201
    assert client.post("/v1/users", json=body, headers=auth("admin")).status_code == 422


def test_every_change_is_audited_and_auditors_can_read_but_not_write(client, auth):
    client.post(
        "/v1/users", json={"username": "n2", "password": PASSWORD, "role": "bank"}, headers=auth("admin")
    )
    log = client.get("/v1/audit", params={"entity": "user"}, headers=auth("auditor"))
    assert log.status_code == 200
    created = [e for e in log.json() if e["action"] == "create" and e["after"]["username"] == "n2"]
    assert created and created[0]["actor"] == "admin"
    assert "password" not in str(created[0])
    assert (
        client.post(
            "/v1/users",
            json={"username": "n3", "password": PASSWORD, "role": "bank"},
            headers=auth("auditor"),
        ).status_code
        == 403
    )


def test_oversize_body_is_413_not_500(client, auth):
    r = client.post(
        "/v1/users", content=b"x" * (65 * 1024), headers={**auth("admin"), "content-type": "application/json"}
    )
    assert r.status_code == 413
