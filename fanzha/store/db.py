"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text, update
from sqlalchemy.orm import Session, sessionmaker

from fanzha.store.models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'fanzha.db').resolve()}"


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets readers work during writes; FULL sync makes every acknowledged commit survive a crash.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def write_lock_path(engine: Engine) -> Path | None:
    """For a SQLite file: the lock file beside it that group committers of all processes share."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return None
    return Path(engine.url.database + "-writers.lock")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed as one unit, or rolled back whole on any error."""
    with factory() as session, session.begin():
        yield session


def serialize(session: Session, model: type[Base], key: str) -> None:
    """Make check-then-write on `key` safe against concurrent requests, until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the key. SQLite: an empty UPDATE, which takes the
    database's single write lock now instead of at the later INSERT, so the check sees every commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
    else:
        table = model.__table__
        session.execute(update(table).where(text("1 = 0")).values(id=table.c.id))


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (creates it on first start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
