"""Group commit: writes from many concurrent requests share one transaction and one disk sync.

A request hands its write to the committer and waits for the returned future; the committer's thread takes
every write queued while the previous batch was syncing, runs them in one transaction and commits once. A
future resolves only after COMMIT returned, so a request that answers 2xx after waiting has its write on
disk, exactly as with a commit per request — but at high request rates one sync serves many requests
instead of each request queueing behind everyone else's sync (SQLite allows one writer at a time).

If the batch fails (a constraint violation from one write, a lost connection) nothing of it is kept and
every write is retried alone in its own transaction (`solo` form), so one bad write fails only its own
request.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("fanzha.store.group_commit")
T = TypeVar("T")
MAX_BATCH = 512


class CommitterClosed(RuntimeError):
    """The committer was shut down; the write was not made."""


class Batch:
    """What a batched write sees: the shared session, and `insert()` to queue plain rows that are written
    with one multi-row INSERT per table when the batch ends (much cheaper than one statement per row)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[Table, list[dict[str, Any]]] = {}

    def insert(self, table: Table, row: dict[str, Any]) -> None:
        self._rows.setdefault(table, []).append(row)

    def flush(self) -> None:
        conn = self.session.connection()
        for table, rows in self._rows.items():  # tables in order of first use
            conn.execute(table.insert(), rows)
        self._rows.clear()


@dataclass(slots=True)
class _Job(Generic[T]):
    batch: Callable[[Batch], T]
    solo: Callable[[Session], T]
    future: Future[T]


_STOP: Any = object()


class GroupCommitter:
    """One writer thread per process that commits queued writes in batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_batch: int = MAX_BATCH,
        name: str = "",
        write_lock: Path | None = None,
    ) -> None:
        """`write_lock`: a file that the committers of all worker processes lock around each batch. For
        SQLite (one writer at a time): a committer waiting on the file lock wakes the moment the other
        releases it, while one waiting inside SQLite polls with sleeps of 1, 2, 5, 10 … ms."""
        self._sessions = sessions
        self._lock_fd = os.open(write_lock, os.O_RDWR | os.O_CREAT, 0o600) if write_lock else None
        self._max_batch = max_batch
        self._solo_first = False  # a batch of one also goes the batch way (cheaper); tests may flip it
        self._queue: queue.SimpleQueue[_Job[Any]] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0  # counters for tests and diagnostics
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name=name or "fanzha-group-commit", daemon=True)
        self._thread.start()

    def submit(self, batch: Callable[[Batch], T], solo: Callable[[Session], T]) -> Future[T]:
        """Queue a write. `batch(b)` adds it to a shared transaction through `b.insert()` or `b.session`
        (it must not commit); `solo(session)` is the form used when it must be retried alone, in a
        transaction of its own. The future gives the function's result once committed."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise CommitterClosed("the group committer is closed")
            self._queue.put(_Job(batch, solo, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is _STOP:
                break
            jobs = [job]
            with self._locked():  # writes queued while waiting for the lock join this batch
                while len(jobs) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    jobs.append(nxt)
                jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
                if jobs:
                    try:
                        self._write(jobs)
                    except BaseException as exc:  # never let the thread die with futures left waiting
                        log.exception("group commit failed")
                        for j in jobs:
                            if not j.future.done():
                                j.future.set_exception(exc)
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _write(self, jobs: list[_Job[Any]]) -> None:
        self.batches += 1
        self.writes += len(jobs)
        if len(jobs) > 1 or not self._solo_first:
            try:
                with self._sessions() as session:
                    batch = Batch(session)
                    results = [j.batch(batch) for j in jobs]
                    batch.flush()
                    session.commit()
            except Exception as exc:
                log.info("batch of %d writes failed (%s); retrying each alone", len(jobs), type(exc).__name__)
            else:
                for j, result in zip(jobs, results, strict=True):
                    j.future.set_result(result)
                return
        for j in jobs:
            try:
                with self._sessions() as session:
                    result = j.solo(session)
                    session.commit()
            except Exception as exc:
                j.future.set_exception(exc)
            else:
                j.future.set_result(result)
