"""Group commit on both databases: many writes share a commit, a bad write fails alone, nothing is
acknowledged before it is committed, and closing commits what is queued."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from fanzha.payments.check import Decision, TransferCheck
from fanzha.store import repo_transfer_checks as repo
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.group_commit import CommitterClosed, GroupCommitter
from fanzha.store.models import AuditEntry, TransferCheckRecord


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _decision(i: int, key: str | None = None) -> Decision:
    return Decision(f"{i:032d}", "allow", 3, [], [], "v1", {"amount_yuan": float(i)}, idempotency_key=key)


def _submit(committer: GroupCommitter, i: int, key: str | None = None, actor: str = "bank"):
    req = TransferCheck("A", "B", 100 + i, None, "mobile", None, key)
    d = _decision(i, key)
    return committer.submit(lambda b: repo.add(b, actor, req, d), lambda s: repo.save(s, actor, req, d))


def _count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_concurrent_writes_share_commits_and_each_is_stored_with_its_audit_entry(sessions):
    committer = GroupCommitter(sessions)
    gate = threading.Event()
    # Hold the writer on the first job so the others queue up behind it, as under load.
    first = committer.submit(lambda b: gate.wait(5) and b.session.execute(select(1)).scalar(),
                             lambda s: 1)
    with ThreadPoolExecutor(8) as pool:
        futures = list(pool.map(lambda i: _submit(committer, i), range(1, 201)))
    gate.set()
    got = [f.result(10) for f in futures]
    assert first.result(10) == 1
    assert [d.check_id for d in got] == [f"{i:032d}" for i in range(1, 201)]
    assert committer.writes == 201 and committer.batches < 20
    committer.close()
    assert _count(sessions, TransferCheckRecord) == 200
    with sessions() as s:
        rec = s.get(TransferCheckRecord, f"{7:032d}")
        assert rec.amount_fen == 107 and rec.result["features"] == {"amount_yuan": 7.0}
        audit = select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "transfer_check")
        assert s.scalar(audit) == 200


def test_a_reused_key_in_a_batch_fails_nothing_else_and_answers_with_the_stored_decision(sessions):
    committer = GroupCommitter(sessions)
    first = _submit(committer, 1, key="k1").result(10)
    gate = threading.Event()
    committer.submit(lambda b: gate.wait(5), lambda s: True)
    retry = _submit(committer, 2, key="k1")  # same key, same content apart from the new decision's id
    others = [_submit(committer, i) for i in range(3, 8)]
    gate.set()
    assert [f.result(10).check_id for f in others] == [f"{i:032d}" for i in range(3, 8)]
    # The request content differs (amount), so the stored key refuses it rather than replaying.
    with pytest.raises(repo.KeyConflict):
        retry.result(10)
    committer.close()
    assert _count(sessions, TransferCheckRecord) == 6
    assert first.check_id == f"{1:032d}"


def test_a_failing_write_alone_reports_its_error(sessions):
    committer = GroupCommitter(sessions)

    def broken(_):
        raise IntegrityError("INSERT", {}, Exception("boom"))

    bad = committer.submit(broken, broken)
    with pytest.raises(IntegrityError):
        bad.result(10)
    assert _submit(committer, 1).result(10).check_id == f"{1:032d}"
    committer.close()


def test_a_write_is_visible_to_others_when_its_future_resolves(sessions):
    committer = GroupCommitter(sessions)
    for i in range(1, 30):
        d = _submit(committer, i).result(10)
        with sessions() as s:  # another connection: the commit has happened
            assert s.get(TransferCheckRecord, d.check_id) is not None
    committer.close()


def test_close_commits_what_is_queued_then_refuses_new_writes(sessions):
    committer = GroupCommitter(sessions)
    futures = [_submit(committer, i) for i in range(1, 50)]
    committer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert _count(sessions, TransferCheckRecord) == 49
    with pytest.raises(CommitterClosed):
        _submit(committer, 99)
