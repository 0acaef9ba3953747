"""Watchlist storage on SQLite and PostgreSQL: idempotent bulk upsert, all-or-nothing batches, audit."""

from datetime import datetime, timedelta

import pytest

from fanzha.intel.watchlist import WatchlistItem
from fanzha.store import repo_audit, repo_watchlist
from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import utcnow

T0 = datetime(2025, 3, 1, 8, 0, 0)


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _items(n: int, **kw) -> list[WatchlistItem]:
    return [WatchlistItem("phone", f"+86138{i:08d}", first_seen=T0, last_seen=T0, **kw) for i in range(n)]


def _state(sessions) -> list[tuple]:
    with sessions() as s:
        return [
            (
                e.kind,
                e.value,
                e.fraud_type,
                e.source,
                e.confidence,
                e.status,
                e.first_seen,
                e.last_seen,
                e.expires_at,
                e.report_count,
                e.note,
            )
            for e in repo_watchlist.iter_entries(s, batch=7)
        ]


def test_repeating_a_batch_changes_nothing_and_writes_nothing(sessions):
    engine = sessions.kw["bind"]
    items = _items(50, fraud_type="fake_loan", source="partner", confidence=0.7)
    first = repo_watchlist.upsert(engine, items, "importer")
    state = _state(sessions)
    second = repo_watchlist.upsert(engine, items, "importer")
    assert (first.inserted, first.updated) == (50, 0)
    assert (second.inserted, second.updated) == (0, 0)  # nothing new: nothing written
    assert _state(sessions) == state
    assert len(state) == 50


def test_merging_keeps_the_widest_times_highest_confidence_and_known_fraud_type(sessions):
    engine = sessions.kw["bind"]
    early, late = T0 - timedelta(days=3), T0 + timedelta(days=3)
    repo_watchlist.upsert(
        engine,
        [
            WatchlistItem(
                "domain",
                "evil.com",
                "fake_investment",
                "report",
                0.9,
                first_seen=T0,
                last_seen=T0,
                report_count=4,
            )
        ],
        "a",
    )
    repo_watchlist.upsert(
        engine,
        [
            WatchlistItem(
                "domain", "evil.com", None, "partner", 0.5, first_seen=early, last_seen=late, report_count=2
            )
        ],
        "b",
    )
    [(_kind, _value, ftype, source, conf, status, first, last, _exp, reports, _note)] = _state(sessions)
    assert (ftype, source, conf, status, reports) == ("fake_investment", "partner", 0.9, "active", 4)
    assert (first, last) == (early, late)


def test_duplicates_inside_one_batch_are_merged_not_rejected(sessions):
    engine = sessions.kw["bind"]
    stats = repo_watchlist.upsert(
        engine,
        [WatchlistItem("qq", "12345", confidence=0.3), WatchlistItem("qq", "12345", confidence=0.6)],
        "a",
    )
    assert (stats.received, stats.unique, stats.inserted) == (2, 1, 1)
    assert _state(sessions)[0][4] == 0.6


def test_a_batch_rolled_back_leaves_no_row_and_no_audit(sessions):
    with pytest.raises(RuntimeError), transaction(sessions) as s:
        repo_watchlist.upsert(s, _items(300), "importer")
        raise RuntimeError("crash after the rows were written, before commit")
    assert _state(sessions) == []
    with sessions() as s:
        assert repo_audit.entries(s, entity="watchlist") == []


def test_an_invalid_item_rejects_the_whole_batch_before_writing(sessions):
    bad = [*_items(10), WatchlistItem("phone", "+8613900000000", source="rumour")]
    with pytest.raises(ValueError, match="unknown source"):
        repo_watchlist.upsert(sessions.kw["bind"], bad, "importer")
    assert _state(sessions) == []


def test_one_audit_entry_per_batch_with_count_source_and_actor(sessions):
    repo_watchlist.upsert(sessions.kw["bind"], _items(20, source="partner"), "bank-feed")
    with sessions() as s:
        [entry] = repo_audit.entries(s, entity="watchlist")
    assert (entry.actor, entry.action) == ("bank-feed", "import")
    assert entry.after == {"count": 20, "inserted": 20, "updated": 0, "source": "partner"}


def test_allowlisting_by_import_is_audited_per_entry_and_sticks_against_later_imports(sessions):
    engine = sessions.kw["bind"]
    repo_watchlist.upsert(engine, [WatchlistItem("phone", "95566")], "a")
    repo_watchlist.upsert(engine, [WatchlistItem("phone", "95566", status="whitelisted")], "admin")
    repo_watchlist.upsert(engine, [WatchlistItem("phone", "95566", status="active")], "feed")
    assert _state(sessions)[0][5] == "whitelisted"
    with sessions() as s:
        actions = [(e.actor, e.action) for e in repo_audit.entries(s, entity="watchlist")]
    assert ("admin", "allowlist") in actions
    assert actions.count(("admin", "allowlist")) == 1


def test_single_upsert_and_update_record_before_and_after(sessions):
    with transaction(sessions) as s:
        row, created = repo_watchlist.upsert_one(s, WatchlistItem("wechat", "scam_boss1"), "analyst")
    with transaction(sessions) as s:
        again, created_again = repo_watchlist.upsert_one(
            s, WatchlistItem("wechat", "scam_boss1", confidence=0.95), "analyst"
        )
    with transaction(sessions) as s:
        changed = repo_watchlist.update(s, row.id, "admin", status="whitelisted", note="误报：客服号")
    assert created and not created_again and again.confidence == 0.95
    assert changed is not None and changed.status == "whitelisted"
    with sessions() as s:
        audit = repo_audit.entries(s, entity="watchlist")
    assert [e.action for e in audit] == ["create", "update", "allowlist"]
    assert audit[0].before is None and audit[0].after["value"] == "scam_boss1"
    assert audit[1].before["confidence"] == 0.8 and audit[1].after["confidence"] == 0.95
    assert audit[2].before["status"] == "active" and audit[2].after["status"] == "whitelisted"


def test_update_of_a_missing_id_returns_none(sessions):
    with transaction(sessions) as s:
        assert repo_watchlist.update(s, 424242, "admin", status="expired") is None


def test_search_pages_by_id_and_filters_by_value_prefix(sessions):
    repo_watchlist.upsert(sessions.kw["bind"], _items(25), "a")
    with sessions() as s:
        page1 = repo_watchlist.search(s, kind="phone", limit=10)
        page2 = repo_watchlist.search(s, kind="phone", after_id=page1[-1].id, limit=10)
        prefixed = repo_watchlist.search(s, prefix="+861380000001")
    assert len(page1) == 10 and len(page2) == 10 and page1[-1].id < page2[0].id
    assert [e.value for e in prefixed] == [f"+861380000001{i}" for i in range(10)]


def test_index_holds_active_and_allowlisted_entries_but_not_expired_ones(sessions):
    engine = sessions.kw["bind"]
    past = utcnow() - timedelta(days=1)
    repo_watchlist.upsert(
        engine,
        [
            WatchlistItem("domain", "evil.com", "fake_investment"),
            WatchlistItem("domain", "gone.com", expires_at=past),
            WatchlistItem("domain", "old.com", status="expired"),
            WatchlistItem("domain", "partner-bank.com", status="whitelisted"),
        ],
        "a",
    )
    index = repo_watchlist.load_index(engine)
    assert [m.value for m in index.match("url", "https://x.evil.com/pay")] == ["evil.com"]
    assert index.match("domain", "gone.com") == [] and index.match("domain", "old.com") == []
    assert index.match("domain", "partner-bank.com")[0].allowlisted


def test_bulk_upsert_of_many_rows_returns_stored_rows_when_asked(sessions):
    stats = repo_watchlist.upsert(sessions.kw["bind"], _items(1200), "a", return_rows=True)
    assert len(stats.rows) == 1200 and all(r.id for r in stats.rows)


def test_only_entries_a_batch_changes_count_as_updated(sessions):
    engine = sessions.kw["bind"]
    repo_watchlist.upsert(engine, _items(10, confidence=0.5), "a")
    later = [WatchlistItem("phone", "+8613800000000", first_seen=T0, last_seen=T0 + timedelta(hours=1))]
    stats = repo_watchlist.upsert(engine, [*_items(10, confidence=0.5), *later], "a")
    assert (stats.unique, stats.inserted, stats.updated) == (10, 0, 1)
    assert _state(sessions)[0][7] == T0 + timedelta(hours=1)


def test_postgresql_reimport_reads_unchanged_rows_and_updates_changed_ones_in_place(sessions):
    """Unchanged rows are not even locked (xmax stays 0); changed ones are HOT updates (fillfactor 50)."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL storage detail")
    items = _items(200, source="partner")
    repo_watchlist.upsert(engine, items, "a")
    repo_watchlist.upsert(engine, items, "a")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM watchlist WHERE xmax <> '0'").scalar() == 0
    later = [WatchlistItem(i.kind, i.value, source="partner", first_seen=T0, last_seen=T0 + timedelta(days=1))
             for i in items]
    with transaction(sessions) as s:
        stats = repo_watchlist.upsert(s, later, "a")
        upd, hot = s.connection().exec_driver_sql(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'watchlist'"
        ).one()
    assert (stats.inserted, stats.updated) == (0, 200)
    assert upd == hot == 200
    assert {row[7] for row in _state(sessions)} == {T0 + timedelta(days=1)}


def test_a_batch_of_new_and_known_entries_gets_ids_in_key_order(sessions):
    engine = sessions.kw["bind"]
    repo_watchlist.upsert(engine, _items(30)[::3], "a")
    stats = repo_watchlist.upsert(engine, list(reversed(_items(30))), "a", return_rows=True)
    assert (stats.inserted, stats.updated) == (20, 0)
    new = sorted((r for r in stats.rows if r.id > 10), key=lambda r: r.id)
    assert [r.value for r in new] == sorted(r.value for r in new)


def test_postgresql_new_rows_meeting_a_key_stored_meanwhile_are_merged_not_lost(sessions, monkeypatch):
    """New rows are copied straight into the table; a key another transaction stored after the look-up
    stops that COPY, and the batch goes in by INSERT … ON CONFLICT instead, with the same result."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL storage detail")
    repo_watchlist.upsert(engine, _items(10)[::2], "a")  # 5 stored
    # Make the look-up miss the stored keys, as when they were committed after it ran.
    monkeypatch.setattr(repo_watchlist, "_EXISTING", "SELECT NULL::bytea")
    later = [WatchlistItem(i.kind, i.value, first_seen=T0, last_seen=T0 + timedelta(days=1))
             for i in _items(10)]
    stats = repo_watchlist.upsert(engine, later, "a")
    assert (stats.inserted, stats.updated) == (5, 5)
    state = _state(sessions)
    assert len(state) == 10 and {row[7] for row in state} == {T0 + timedelta(days=1)}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(DISTINCT id) FROM watchlist").scalar() == 10


def test_concurrent_overlapping_imports_both_succeed(sessions):
    """Two batches sharing keys, written at the same time: neither fails, every key is stored once."""
    import threading

    engine = sessions.kw["bind"]
    batches = [_items(3000)[0::2] + _items(3000)[:1000], _items(3000)[1::2] + _items(3000)[:1000]]
    results: list = []
    errors: list = []

    def run(batch):
        try:
            results.append(repo_watchlist.upsert(engine, batch, "a"))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.inserted for r in results) == 3000
    assert len(_state(sessions)) == 3000
