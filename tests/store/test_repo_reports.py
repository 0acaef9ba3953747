"""Public reports on both databases: merging duplicates, the review queue, and review into the watchlist."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from fanzha.cases.reports import ReportRequest
from fanzha.store import repo_reports
from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import AuditEntry, Report, WatchlistEntry
from fanzha.store.repo_reports import ReportStateError


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def submit(factory, kind="phone", value="17012345678", **kw):
    with transaction(factory) as s:
        report, merged = repo_reports.submit(
            s, ReportRequest(kind=kind, value=value, **kw), kw.get("detection")
        )
        return report.id, merged


def test_repeat_of_a_pending_report_is_counted_not_duplicated(sessions):
    first, merged1 = submit(sessions, value="+86 170 1234 5678")
    again, merged2 = submit(sessions, value="17012345678", fraud_type="fake_loan", message_text="低息贷款")
    assert (merged1, merged2, again) == (False, True, first)
    with sessions() as s:
        r = s.get(Report, first)
        assert r.count == 2 and r.last_reported_at >= r.first_reported_at
        # what the first reporter left out, the second one filled in
        assert r.fraud_type == "fake_loan" and r.message_text == "低息贷款"
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "report")).all() == [
            "create",
            "merge",
        ]


def test_earlier_reporters_text_is_never_overwritten(sessions):
    first, _ = submit(sessions, message_text="第一条")
    submit(sessions, message_text="第二条")
    with sessions() as s:
        assert s.get(Report, first).message_text == "第一条"


def test_concurrent_reports_of_one_indicator_make_one_pending_report(sessions):
    with ThreadPoolExecutor(8) as pool:
        ids = {rid for rid, _ in pool.map(lambda _: submit(sessions), range(8))}
    assert len(ids) == 1
    with sessions() as s:
        assert s.get(Report, ids.pop()).count == 8


def test_queue_puts_the_most_reported_first_then_the_oldest(sessions):
    old, _ = submit(sessions, value="17000000001")
    new, _ = submit(sessions, value="17000000002")
    hot, _ = submit(sessions, value="17000000003")
    submit(sessions, value="17000000003")
    with transaction(sessions) as s:
        r = s.get(Report, old)
        r.first_reported_at -= timedelta(hours=1)
    with sessions() as s:
        rows, total = repo_reports.queue(s, "pending", limit=10)
        assert total == 3 and [r.id for r in rows] == [hot, old, new]
        page, _ = repo_reports.queue(s, "pending", limit=1, offset=1)
        assert [r.id for r in page] == [old]


def test_accepting_creates_a_watchlist_entry_counting_every_reporter(sessions):
    rid, _ = submit(sessions, fraud_type="fake_loan")
    submit(sessions)
    submit(sessions)
    with transaction(sessions) as s:
        entry = repo_reports.review(s, s.get(Report, rid), "accept", "analyst", confidence=0.9)
    assert (entry.kind, entry.value, entry.source, entry.report_count) == (
        "phone",
        "+8617012345678",
        "report",
        3,
    )
    assert entry.fraud_type == "fake_loan" and entry.confidence == pytest.approx(0.9)
    # a later pending report of the same number strengthens the same entry
    rid2, merged = submit(sessions)
    submit(sessions)
    assert not merged
    with transaction(sessions) as s:
        again = repo_reports.review(s, s.get(Report, rid2), "accept", "analyst")
    assert again.id == entry.id and again.report_count == 5
    with sessions() as s:
        assert s.get(Report, rid).status == "accepted" and s.get(Report, rid).reviewed_by == "analyst"
        audited = s.scalars(
            select(AuditEntry.entity).where(AuditEntry.action.in_(["accept", "create"]))
        ).all()
        assert {"report", "watchlist"} <= set(audited)


def test_rejecting_closes_the_report_and_lists_nothing(sessions):
    rid, _ = submit(sessions)
    with transaction(sessions) as s:
        assert repo_reports.review(s, s.get(Report, rid), "reject", "analyst") is None
    with sessions() as s:
        assert s.get(Report, rid).status == "rejected"
        assert s.scalar(select(WatchlistEntry.id)) is None


def test_a_report_is_reviewed_once(sessions):
    rid, _ = submit(sessions)
    with transaction(sessions) as s:
        repo_reports.review(s, s.get(Report, rid), "reject", "analyst")
    with pytest.raises(ReportStateError), transaction(sessions) as s:
        repo_reports.review(s, s.get(Report, rid), "accept", "analyst")
    with sessions() as s:
        assert s.get(Report, rid).status == "rejected"
        assert s.scalar(select(WatchlistEntry.id)) is None


def test_accept_fails_whole_when_the_watchlist_refuses_the_entry(sessions):
    rid, _ = submit(sessions)
    with pytest.raises(ValueError), transaction(sessions) as s:
        repo_reports.review(s, s.get(Report, rid), "accept", "analyst", confidence=1.5)
    with sessions() as s:
        assert s.get(Report, rid).status == "pending"
        assert s.scalar(select(WatchlistEntry.id)) is None
