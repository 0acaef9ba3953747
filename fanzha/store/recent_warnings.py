"""Accounts warned recently (预警), kept in memory for the transfer check's hot path.

Every transfer check asks "was the payer warned in the last 30 days?". Asking the database each time costs
a connection checkout and a query per request (a network round trip on PostgreSQL); this keeps, per worker
process, the latest warning time of every warned account and reads only the new warnings, at most once per
`max_age` seconds (default 1 s). A warning raised in another worker is therefore seen by a check at most
`max_age` seconds later. New rows are found by id; the last `ID_OVERLAP` ids are read again each time,
so a warning whose transaction took a lower id but committed later (PostgreSQL) is not missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, select

from fanzha.store.models import Warning, utcnow

ID_OVERLAP = 1000
PRUNE_SECONDS = 3600.0
_NEW = select(Warning.id, Warning.person_account, Warning.created_at).where(
    Warning.id > bindparam("after"), Warning.created_at >= bindparam("since"),
    Warning.person_account.is_not(None),
)


class RecentWarnings:
    def __init__(
        self,
        engine: Engine,
        days: int = 30,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.window = timedelta(days=days)
        self.max_age = max_age
        self.clock = clock
        self._latest: dict[str, datetime] = {}
        self._max_id = 0
        self._refreshed = float("-inf")
        self._pruned = clock()
        self._lock = threading.Lock()

    def warned(self, account: str) -> bool:
        """Whether `account` was named in a warning created within the window."""
        if self.clock() - self._refreshed >= self.max_age:
            self.refresh()
        at = self._latest.get(account)
        return at is not None and at >= utcnow() - self.window

    def refresh(self) -> None:
        with self._lock:
            now = self.clock()
            since = utcnow() - self.window
            with self.engine.connect() as conn:
                rows = conn.execute(_NEW, {"after": self._max_id - ID_OVERLAP, "since": since}).all()
            latest = self._latest
            for wid, account, created in rows:
                if wid > self._max_id:
                    self._max_id = wid
                if latest.get(account, datetime.min) < created:
                    latest[account] = created
            if now - self._pruned >= PRUNE_SECONDS:  # forget accounts whose warnings left the window
                self._latest = {a: t for a, t in latest.items() if t >= since}
                self._pruned = now
            self._refreshed = now
