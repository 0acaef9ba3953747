"""API fixtures: the real app on a real database (SQLite and PostgreSQL), users of every role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fanzha.api.app import create_app
from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.repo_users import create_user

PASSWORD = "correct-horse-1"
USERS = {
    "admin": ("admin", None),
    "analyst": ("analyst", None),
    "bank": ("bank", None),
    "telecom": ("telecom", None),
    "grid": ("grid", "330106"),
    "grid_other": ("grid", "440305"),
    "auditor": ("auditor", None),
}


@pytest.fixture(scope="session")
def detector():
    from fanzha.text.detector import Detector

    return Detector.from_settings()


@pytest.fixture
def app_settings(db_url, tmp_path) -> Settings:
    return Settings(
        database_url=db_url, data_dir=tmp_path, max_body_bytes=64 * 1024, lookup_rate_per_minute=5,
        report_rate_per_minute=1000,
    )


@pytest.fixture
def client(app_settings, detector) -> Iterator[TestClient]:
    engine = make_engine(app_settings.database_url or "")
    sessions = make_sessionmaker(engine)
    with sessions() as s, s.begin():
        for name, (role, region) in USERS.items():
            create_user(s, name, PASSWORD, role, region)
    engine.dispose()
    with TestClient(create_app(app_settings, detector=detector)) as c:
        yield c


@pytest.fixture
def auth(client):
    """auth("grid") → headers with a fresh login token for that user."""
    cache: dict[str, dict[str, str]] = {}

    def headers(user: str) -> dict[str, str]:
        if user not in cache:
            r = client.post("/v1/auth/token", data={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            cache[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return cache[user]

    return headers
