"""Shared fixtures: databases (SQLite file and a real PostgreSQL server) for the storage and API tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import pg


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        with pg.server_url() as url:
            yield url
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(f"PostgreSQL not available ({exc}); set {pg.ENV} or install postgresql")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    from fanzha.store.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fanzha.db'}"
        migrate(url)
        yield url
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = pg.create_database(admin)
    try:
        migrate(url)
        yield url
    finally:
        pg.drop_database(url)
