"""Schema migrations run on both databases, and the audit log refuses to be rewritten."""

import pytest
from sqlalchemy import inspect, text

from fanzha.store.db import make_engine, migrate


def test_migrations_create_every_table(db_url):
    tables = set(inspect(make_engine(db_url)).get_table_names())
    assert {"users", "access_tokens", "audit_log", "watchlist", "reports", "warnings", "cases"} <= tables


def test_migrating_twice_is_harmless(db_url):
    migrate(db_url)


def test_audit_log_is_append_only_in_the_database_itself(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, action, entity, entity_id) "
                          "VALUES ('2026-01-01 00:00:00', 'a', 'create', 'user', '1')"))
    for stmt in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(stmt))
    engine.dispose()
