"""Transfer-check records on both databases: two counters answering the same check do not overwrite
each other silently."""

from __future__ import annotations

import pytest

from fanzha.payments.check import Decision, TransferCheck
from fanzha.store import repo_transfer_checks as repo
from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import TransferCheckRecord


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_second_answer_on_a_stale_read_conflicts_and_writes_nothing(sessions):
    d = Decision("c" * 32, "confirm", 40, [], [], "v1", {})
    with transaction(sessions) as s:
        repo.save(s, "bank", TransferCheck("A", "B", 100), d)
    first, second = sessions(), sessions()
    rec1, rec2 = first.get(TransferCheckRecord, d.check_id), second.get(TransferCheckRecord, d.check_id)
    allow = Decision(d.check_id, "allow", 40, [], [], "v1", {}, "confirm", {"confirm": "yes"})
    block = Decision(d.check_id, "block", 90, [], [], "v1", {}, "confirm", {"purpose": "safe_account"})
    repo.save_answers(first, rec1, "teller1", block)
    first.commit()
    with pytest.raises(repo.AnswerConflict):
        repo.save_answers(second, rec2, "teller2", allow)
    second.rollback()
    first.close()
    second.close()
    with sessions() as s:
        rec = s.get(TransferCheckRecord, d.check_id)
        assert (rec.decision, rec.answered_by) == ("block", "teller1")
        assert rec.result["answers"] == {"purpose": "safe_account"}
    # A fresh read can answer again.
    with transaction(sessions) as s:
        repo.save_answers(s, s.get(TransferCheckRecord, d.check_id), "teller2", allow)
    with sessions() as s:
        assert s.get(TransferCheckRecord, d.check_id).answered_by == "teller2"
