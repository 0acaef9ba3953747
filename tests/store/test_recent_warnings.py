"""The in-memory list of recently warned accounts on both databases: new warnings appear after at most
`max_age`, old ones fall out of the window, and late-committed lower ids are not missed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import Warning, utcnow
from fanzha.store.recent_warnings import RecentWarnings


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _warn(engine, account: str, age_days: float = 0, wid: int | None = None) -> None:
    with transaction(make_sessionmaker(engine)) as s:
        w = Warning(person_account=account, region_code="330106", source="partner", risk=80, priority=1,
                    due_at=utcnow(), dedupe_key=f"k-{account}-{age_days}-{wid}",
                    created_at=utcnow() - timedelta(days=age_days))
        if wid is not None:
            w.id = wid
        s.add(w)


def test_new_warnings_show_after_max_age_and_expired_ones_do_not(engine):
    now = [0.0]
    recent = RecentWarnings(engine, days=30, max_age=1.0, clock=lambda: now[0])
    _warn(engine, "old", age_days=31)
    _warn(engine, "A")
    assert recent.warned("A") and not recent.warned("old") and not recent.warned("B")
    _warn(engine, "B")
    assert not recent.warned("B")  # read 0 s ago: not yet
    now[0] = 1.0
    assert recent.warned("B")


def test_a_lower_id_committed_later_is_still_found(engine):
    now = [0.0]
    recent = RecentWarnings(engine, max_age=0, clock=lambda: now[0])
    _warn(engine, "A", wid=500)
    assert recent.warned("A")
    _warn(engine, "late", wid=400)  # took its id before 500 but committed after it was read
    assert recent.warned("late")


def test_accounts_whose_warnings_left_the_window_are_forgotten(engine):
    from fanzha.store import recent_warnings as rw

    now = [0.0]
    recent = RecentWarnings(engine, days=30, max_age=0, clock=lambda: now[0])
    _warn(engine, "A", age_days=29.99999)
    assert recent.warned("A")
    recent.window = timedelta(days=29)  # as if a day had passed: A's warning is now outside
    assert not recent.warned("A")
    assert "A" in recent._latest  # kept until the next prune
    now[0] = rw.PRUNE_SECONDS
    recent.refresh()
    assert "A" not in recent._latest
