"""Watchlist storage: idempotent bulk upsert (executemany on SQLite, COPY on PostgreSQL), edits, export.

A batch is one transaction: after a crash the table holds all of it or none of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from fanzha.intel.matcher import Row, WatchlistIndex
from fanzha.intel.watchlist import KINDS, MAX_VALUE_LENGTH, SOURCES, STATUSES, WatchlistItem
from fanzha.store import repo_audit
from fanzha.store.models import WatchlistEntry, utcnow

ENTITY = "watchlist"
COLUMNS = (
    "kind", "value", "fraud_type", "source", "confidence", "status", "first_seen", "last_seen", "expires_at",
    "report_count", "note",
)
_T = WatchlistEntry.__table__
_SELECT = select(_T.c.id, *(_T.c[c] for c in COLUMNS))
# Re-seeing a value never loses what is known: times widen, confidence and report count only grow, and an
# allow-listed value stays allow-listed until someone changes it on purpose (PATCH /v1/watchlist/{id}).
# {old} is the stored row and {new} the incoming one; both engines share these two clauses.
_SET = """fraud_type = COALESCE({new}.fraud_type, {old}.fraud_type),
  source = {new}.source,
  confidence = {max}({old}.confidence, {new}.confidence),
  status = CASE WHEN {old}.status = 'whitelisted' THEN {old}.status ELSE {new}.status END,
  first_seen = {min}({old}.first_seen, {new}.first_seen),
  last_seen = {max}({old}.last_seen, {new}.last_seen),
  expires_at = COALESCE({new}.expires_at, {old}.expires_at),
  report_count = {max}({old}.report_count, {new}.report_count),
  note = CASE WHEN {new}.note = '' THEN {old}.note ELSE {new}.note END"""
# Rows the batch would not change are skipped: re-importing a feed writes only what is new.
_CHANGED = """({new}.fraud_type IS NOT NULL AND {new}.fraud_type {ne} {old}.fraud_type)
  OR {new}.source <> {old}.source OR {new}.confidence > {old}.confidence
  OR ({old}.status <> 'whitelisted' AND {new}.status <> {old}.status)
  OR {new}.first_seen < {old}.first_seen OR {new}.last_seen > {old}.last_seen
  OR ({new}.expires_at IS NOT NULL AND {new}.expires_at {ne} {old}.expires_at)
  OR {new}.report_count > {old}.report_count
  OR ({new}.note <> '' AND {new}.note <> {old}.note)"""
_SQLITE = dict(old="watchlist", new="excluded", max="MAX", min="MIN", ne="IS NOT")
_ON_CONFLICT = (
    "ON CONFLICT (kind, value) DO UPDATE SET " + _SET.format(**_SQLITE)
    + "\nWHERE " + _CHANGED.format(**_SQLITE)
)
_COLS = ", ".join(COLUMNS)
_STAGE_TYPES = ("varchar", "varchar", "varchar", "varchar", "float8", "varchar", "timestamp", "timestamp",
                "timestamp", "int4", "text")
_PG_OPS = dict(max="GREATEST", min="LEAST", ne="IS DISTINCT FROM")
_PG = dict(old="w", new="s", **_PG_OPS)
_PG_CONFLICT = dict(old="watchlist", new="excluded", **_PG_OPS)
# The staged batch is joined with the table once to update the rows it changes, then once more to insert
# the new ones. Unchanged rows are only read (INSERT … ON CONFLICT over the whole batch locked, and so
# wrote, every existing row it met). The updated columns carry no index, so with the free space the 0004
# migration leaves in each page (fillfactor 50) the new row versions stay on their page as HOT updates:
# no index entries, a fraction of the WAL, and no table growth from one re-import to the next.
_UPDATE = (
    f"UPDATE watchlist w SET {_SET.format(**_PG)}\nFROM watchlist_stage s\n"
    f"WHERE w.kind = s.kind AND w.value = s.value AND ({_CHANGED.format(**_PG)})"
)
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS watchlist_stage (ord integer, kind varchar(16), value varchar(512), "
    "fraud_type varchar(40), source varchar(16), confidence float8, status varchar(12), "
    "first_seen timestamp, last_seen timestamp, expires_at timestamp, report_count integer, note text) "
    "ON COMMIT DELETE ROWS"
)
_EXISTING = (
    "SELECT string_agg(int4send(s.ord), ''::bytea) FROM watchlist_stage s\n"
    "WHERE EXISTS (SELECT 1 FROM watchlist w WHERE w.kind = s.kind AND w.value = s.value)"
)
# The fallback when the COPY of new rows meets a key another transaction stored meanwhile: the whole batch
# once more through ON CONFLICT, which merges every stored row — also one committed after the look-up or
# the UPDATE — and skips those the UPDATE already brought up to date. New rows in key order (ids follow it).
_INSERT = (
    f"WITH up AS (INSERT INTO watchlist ({_COLS}) SELECT {_COLS} FROM watchlist_stage\n"
    "ORDER BY kind, value\n"
    f"ON CONFLICT (kind, value) DO UPDATE SET {_SET.format(**_PG_CONFLICT)}\n"
    f"WHERE {_CHANGED.format(**_PG_CONFLICT)}\n"
    "RETURNING (xmax = 0) AS inserted) SELECT COUNT(*) FILTER (WHERE inserted), COUNT(*) FROM up"
)
# Memory for the hash joins of a large batch: PostgreSQL's default (4 MB) spills a million-row join to disk.
_BIG_BATCH = 50_000
_BIG_BATCH_WORK_MEM = "256MB"


@dataclass(slots=True)
class EntryRow:
    """A stored watchlist entry."""

    id: int
    kind: str
    value: str
    fraud_type: str | None
    source: str
    confidence: float
    status: str
    first_seen: datetime
    last_seen: datetime
    expires_at: datetime | None
    report_count: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def index_row(self) -> Row:
        return Row(self.id, self.kind, self.value, self.fraud_type, self.source, self.confidence,
                   self.status == "whitelisted", self.expires_at)

    def matchable(self, now: datetime | None = None) -> bool:
        """Whether the index should hold this entry (listed or allow-listed, and not expired)."""
        now = now or utcnow()
        return self.status != "expired" and (self.expires_at is None or self.expires_at > now)


@dataclass(slots=True)
class UpsertStats:
    received: int = 0
    unique: int = 0
    inserted: int = 0
    updated: int = 0  # existing entries the batch changed; the rest (unique - inserted - updated) unchanged
    seconds: float = 0.0
    rows: list[EntryRow] = field(default_factory=list)  # the stored rows, when asked for

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("received", "unique", "inserted", "updated", "seconds")}


def _entry(row: Any) -> EntryRow:
    return EntryRow(*row)


def _check(item: WatchlistItem) -> None:
    if item.kind not in KINDS:
        raise ValueError(f"unknown kind {item.kind!r}")
    if not item.value or len(item.value) > MAX_VALUE_LENGTH:
        raise ValueError(f"{item.kind} value must have 1 to {MAX_VALUE_LENGTH} characters")
    if item.source not in SOURCES:
        raise ValueError(f"unknown source {item.source!r}; sources are {', '.join(SOURCES)}")
    if item.status not in STATUSES:
        raise ValueError(f"unknown status {item.status!r}; statuses are {', '.join(STATUSES)}")
    if not 0.0 <= item.confidence <= 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {item.confidence}")
    if item.fraud_type is not None and len(item.fraud_type) > 40:
        raise ValueError("fraud_type has at most 40 characters")


def _merge(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    """Two rows of one batch with the same key, combined as the ON CONFLICT clause would."""
    kind, value, ftype, _src, conf, status, first, last, expires, count, note = old
    return (
        kind, value, new[2] if new[2] is not None else ftype, new[3], max(conf, new[4]),
        status if status == "whitelisted" else new[5], min(first, new[6]), max(last, new[7]),
        new[8] if new[8] is not None else expires, max(count, new[9]), new[10] or note,
    )


_Key = tuple[str, str]


def _tuples(items: Iterable[WatchlistItem], now: datetime) -> tuple[int, dict[_Key, tuple[Any, ...]]]:
    received = 0
    unique: dict[_Key, tuple[Any, ...]] = {}
    kinds, sources, statuses = frozenset(KINDS), frozenset(SOURCES), frozenset(STATUSES)
    get = unique.get
    for it in items:
        received += 1
        kind, value, source, status, conf = it.kind, it.value, it.source, it.status, it.confidence
        ftype = it.fraud_type
        # One combined test for the common, valid item; _check says what is wrong with the others.
        if not (kind in kinds and source in sources and status in statuses and 0.0 <= conf <= 1.0
                and value and len(value) <= MAX_VALUE_LENGTH and (ftype is None or len(ftype) <= 40)):
            _check(it)
        first, last = it.first_seen, it.last_seen
        row = (
            kind, value, ftype, source, float(conf), status, first or last or now, last or first or now,
            it.expires_at, int(it.report_count), it.note or "",
        )
        key = (kind, value)
        old = get(key)
        unique[key] = row if old is None else _merge(old, row)
    return received, unique


def upsert(
    target: Session | Engine,
    items: Iterable[WatchlistItem],
    actor: str,
    *,
    source_label: str | None = None,
    return_rows: bool = False,
) -> UpsertStats:
    """Insert or merge a batch (one transaction, one audit entry); repeating a batch changes nothing.

    With a Session the caller commits; with an Engine the batch is committed here.
    """
    if isinstance(target, Engine):
        with Session(target) as session, session.begin():
            return upsert(session, items, actor, source_label=source_label, return_rows=return_rows)
    session = target
    start = time.perf_counter()
    received, unique = _tuples(items, utcnow())
    stats = UpsertStats(received=received, unique=len(unique))
    if not unique:
        return stats
    allowlisted = [k for k, r in unique.items() if r[5] == "whitelisted"]
    before = {(e.kind, e.value): e for e in get_by_keys(session, allowlisted)}
    # Index-order inserts touch fewer pages. Keys are unique, so tuples never compare beyond (kind, value).
    rows = sorted(unique.values())
    if session.get_bind().dialect.name == "postgresql":
        stats.inserted, stats.updated = _upsert_postgresql(session, rows)
    else:
        stats.inserted, stats.updated = _upsert_sqlite(session, rows)
    if return_rows or allowlisted:
        stored = get_by_keys(session, list(unique))
        stats.rows = stored if return_rows else []
        _audit_allowlisting(session, actor, [e for e in stored if e.status == "whitelisted"], before)
    sources = sorted({r[3] for r in rows})
    repo_audit.record(
        session, actor, "import", ENTITY, "batch",
        after={"count": stats.unique, "inserted": stats.inserted, "updated": stats.updated,
               "source": source_label or ",".join(sources)},
    )
    session.flush()
    stats.seconds = round(time.perf_counter() - start, 3)
    return stats


def _sqlite_times(rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Rows with times as the exact text SQLAlchemy stores on SQLite, so MIN/MAX compare and the ORM reads
    them back. Most rows of a batch share their times: formatting each distinct time once saves half the
    import time."""
    texts: dict[datetime | None, str | None] = {None: None}

    def text(at: datetime | None) -> str | None:
        out = texts.get(at, "")
        if out == "":
            out = texts[at] = at.strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[union-attr]
        return out

    for r in rows:
        yield (*r[:6], text(r[6]), text(r[7]), text(r[8]), *r[9:])


def _upsert_sqlite(session: Session, rows: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
    raw = session.connection().connection.driver_connection
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        # Take the write lock first (a write that matches no row), so no other writer can add rows between
        # reading the largest id and the insert; a plain SELECT here would run before the transaction.
        cur.execute("UPDATE watchlist SET id = id WHERE id < 0")
        before = cur.execute("SELECT COALESCE(MAX(id), 0) FROM watchlist").fetchone()[0]
        cur.executemany(
            f"INSERT INTO watchlist ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            + _ON_CONFLICT,
            _sqlite_times(rows),
        )
        changed = cur.rowcount
        # SQLite hands out ids above the largest one, and its write lock keeps other writers out.
        inserted = cur.execute("SELECT COUNT(*) FROM watchlist WHERE id > ?", (before,)).fetchone()[0]
    finally:
        cur.close()
    return inserted, changed - inserted


def _upsert_postgresql(session: Session, rows: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_STAGE)
        # Binary COPY: no text formatting of floats and times on either side. `ord` is the row's position.
        with cur.copy(f"COPY watchlist_stage (ord, {_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(("int4", *_STAGE_TYPES))
            write = copy.write_row
            for i, r in enumerate(rows):
                write((i, *r))
        # Row counts for the planner: index look-ups for a few rows, hash or merge joins for many.
        cur.execute("ANALYZE watchlist_stage (kind, value)")
        big = len(rows) >= _BIG_BATCH
        if big:
            cur.execute("SELECT current_setting('work_mem'), set_config('work_mem', %s, true)",
                        (_BIG_BATCH_WORK_MEM,))
            work_mem = cur.fetchone()[0]
        # Positions of the rows already stored, as one array of big-endian int4 (4 bytes a row, no per-row
        # result rows); NULL when none is, as for a first import.
        cur.execute(_EXISTING, binary=True)
        packed = cur.fetchone()[0]
        existing = 0 if packed is None else len(packed) // 4
        updated = inserted = 0
        if existing:
            cur.execute(_UPDATE)
            updated = cur.rowcount
        if existing < len(rows):
            inserted, changed = _insert_new(cur, rows, packed)
            updated += changed
        if big:
            cur.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
        cur.execute("TRUNCATE watchlist_stage")
    return inserted, updated


def _insert_new(cur: Any, rows: Sequence[tuple[Any, ...]], packed: bytes | None) -> tuple[int, int]:
    """Copy the rows not yet stored straight into the table: (inserted, updated).

    COPY writes a page of rows with one WAL record and no per-row executor work; INSERT … SELECT from the
    stage took 1.5 times as long for a million new rows, and INSERT … ON CONFLICT (an extra index probe
    and a second WAL record a row) 2.5 times. Another transaction may have stored one of the keys since
    the look-up: the unique index then stops the COPY, its savepoint is rolled back, and the whole stage
    goes through INSERT … ON CONFLICT instead, which merges such a row — slower, never wrong.
    """
    from psycopg.errors import UniqueViolation

    if packed:
        new = np.ones(len(rows), dtype=bool)
        new[np.frombuffer(packed, dtype=">i4").astype(np.int64)] = False
        todo: Iterable[tuple[Any, ...]] = [rows[i] for i in np.flatnonzero(new).tolist()]
    else:
        todo = rows
    cur.execute("SAVEPOINT watchlist_new")
    try:
        with cur.copy(f"COPY watchlist ({_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_STAGE_TYPES)
            write = copy.write_row
            count = 0
            for r in todo:
                write(r)
                count += 1
    except UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT watchlist_new")
        cur.execute(_INSERT)
        inserted, total = cur.fetchone()
        return int(inserted), int(total) - int(inserted)
    cur.execute("RELEASE SAVEPOINT watchlist_new")
    return count, 0


def get_by_keys(session: Session, keys: Sequence[tuple[str, str]]) -> list[EntryRow]:
    out: list[EntryRow] = []
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    for kind, values in by_kind.items():
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            q = _SELECT.where(_T.c.kind == kind, _T.c.value.in_(chunk))
            out.extend(_entry(r) for r in session.execute(q))
    return out


def _audit_allowlisting(
    session: Session, actor: str, stored: list[EntryRow], before: dict[tuple[str, str], EntryRow]
) -> None:
    for entry in stored:
        old = before.get((entry.kind, entry.value))
        if old is None or old.status != "whitelisted":
            repo_audit.record(session, actor, "allowlist", ENTITY, entry.id,
                              before=old.to_dict() if old else None, after=entry.to_dict())


def upsert_one(session: Session, item: WatchlistItem, actor: str) -> tuple[EntryRow, bool]:
    """Upsert one entry with a before/after audit entry; returns the stored row and whether it is new."""
    found = get_by_keys(session, [(item.kind, item.value)])
    old = found[0] if found else None
    _, unique = _tuples([item], utcnow())
    rows = list(unique.values())
    if session.get_bind().dialect.name == "postgresql":
        _upsert_postgresql(session, rows)
    else:
        _upsert_sqlite(session, rows)
    new = get_by_keys(session, [(item.kind, item.value)])[0]
    if old is None:
        action = "create"
    elif new.status == "whitelisted" and old.status != "whitelisted":
        action = "allowlist"
    else:
        action = "update"
    repo_audit.record(session, actor, action, ENTITY, new.id,
                      before=old.to_dict() if old else None, after=new.to_dict())
    session.flush()
    return new, old is None


_UNSET: Any = object()


def update(
    session: Session,
    entry_id: int,
    actor: str,
    *,
    status: str | None = None,
    confidence: float | None = None,
    expires_at: datetime | None = _UNSET,
    note: str | None = None,
) -> EntryRow | None:
    """Change status, confidence, expiry or note of one entry (audited); None when there is no such id."""
    entry = session.get(WatchlistEntry, entry_id)
    if entry is None:
        return None
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}")
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    old = get(session, entry_id)
    assert old is not None
    if status is not None:
        entry.status = status
    if confidence is not None:
        entry.confidence = confidence
    if expires_at is not _UNSET:
        entry.expires_at = expires_at
    if note is not None:
        entry.note = note
    session.flush()
    new = get(session, entry_id)
    assert new is not None
    if new.status == "whitelisted" and old.status != "whitelisted":
        action = "allowlist"
    elif old.status == "whitelisted" and new.status != "whitelisted":
        action = "unallowlist"
    else:
        action = "update"
    repo_audit.record(session, actor, action, ENTITY, entry_id, before=old.to_dict(), after=new.to_dict())
    return new


def get(session: Session, entry_id: int) -> EntryRow | None:
    row = session.execute(_SELECT.where(_T.c.id == entry_id)).first()
    return None if row is None else _entry(row)


def get_many(session: Session, ids: Sequence[int]) -> list[EntryRow]:
    if not ids:
        return []
    return [_entry(r) for r in session.execute(_SELECT.where(_T.c.id.in_(list(ids))))]


def search(
    session: Session,
    *,
    kind: str | None = None,
    status: str | None = None,
    fraud_type: str | None = None,
    prefix: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[EntryRow]:
    """Entries in id order after `after_id` (keyset paging); `prefix` filters on the normalised value."""
    q = _SELECT.where(_T.c.id > after_id).order_by(_T.c.id).limit(limit)
    if kind:
        q = q.where(_T.c.kind == kind)
    if status:
        q = q.where(_T.c.status == status)
    if fraud_type:
        q = q.where(_T.c.fraud_type == fraud_type)
    if prefix:
        # A range, not LIKE: it uses the (kind, value) index and needs no escaping of % and _.
        q = q.where(_T.c.value >= prefix, _T.c.value < prefix + "\U0010ffff")
    return [_entry(r) for r in session.execute(q)]


def count(session: Session, *, status: str | None = None) -> int:
    q = select(func.count()).select_from(_T)
    if status:
        q = q.where(_T.c.status == status)
    return int(session.scalar(q) or 0)


def iter_entries(
    session: Session, *, kind: str | None = None, status: str | None = None, batch: int = 5000
) -> Iterator[EntryRow]:
    """Every entry in id order, read in batches so memory stays flat for millions of rows."""
    after = 0
    while True:
        page = search(session, kind=kind, status=status, after_id=after, limit=batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].id


def index_rows(session: Session) -> Iterator[Row]:
    """Rows the matcher needs: listed and allow-listed entries that have not expired."""
    now = utcnow()
    q = (
        select(_T.c.id, _T.c.kind, _T.c.value, _T.c.fraud_type, _T.c.source, _T.c.confidence, _T.c.status,
               _T.c.expires_at)
        .where(_T.c.status.in_(("active", "whitelisted")),
               or_(_T.c.expires_at.is_(None), _T.c.expires_at > now))
        .execution_options(yield_per=20_000)
    )
    for r in session.execute(q):
        yield Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6] == "whitelisted", r[7])


def load_index(target: Session | Engine) -> WatchlistIndex:
    """A matcher index holding every active and allow-listed entry, plus the bundled allow-list."""
    if isinstance(target, Engine):
        with Session(target) as session:
            return WatchlistIndex(index_rows(session))
    return WatchlistIndex(index_rows(target))
