"""Watchlist benchmark: check latency with 10M entries, bulk-import rate, and a SIGKILL-during-import test.

Run: .venv/bin/python bench/bench_watchlist.py [--entries 10000000] [--import-rows 1000000] [--import-runs 1]
     [--no-postgres] [--parts matching,import,crash]
PostgreSQL: FANZHA_TEST_POSTGRES_URL, else a throwaway server from the installed binaries (tests/pg.py).
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fanzha.intel.matcher import Row, WatchlistIndex  # noqa: E402
from fanzha.intel.watchlist import WatchlistItem  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- matching ---------------------------------------------------------------------------------------------


def _phone(i: int) -> str:
    return f"+8613{i:09d}"


def synthetic_rows(n: int) -> Iterator[Row]:
    """60% phones, 20% domains, 10% URLs, 10% QQ/WeChat IDs: roughly the mix of a national list."""
    types = ("fake_loan", "fake_investment", "impersonating_police", "brushing_rebate", None)
    for i in range(n):
        r = i % 10
        if r < 6:
            kind, value = "phone", _phone(i)
        elif r < 8:
            kind, value = "domain", f"d{i}.example{i % 997}.com"
        elif r < 9:
            kind, value = "url", f"u{i}.site{i % 991}.cn/pay/{i}"
        else:
            kind, value = ("qq", str(10_000_000 + i)) if i % 20 == 9 else ("wechat", f"wx_{i}")
        yield Row(i + 1, kind, value, types[i % 5], "partner", 0.5 + (i % 50) / 100)


def _timed(fn: Callable[[str, str], Any], cases: list[tuple[str, str]], expect_hit: bool) -> dict[str, float]:
    times = []
    for kind, value in cases:
        t = time.perf_counter_ns()
        found = fn(kind, value)
        times.append(time.perf_counter_ns() - t)
        assert bool(found) == expect_hit, (kind, value, found)
    times.sort()
    return {
        "median_us": round(statistics.median(times) / 1000, 2),
        "p99_us": round(times[int(len(times) * 0.99)] / 1000, 2),
    }


def bench_matching(n: int, samples: int) -> dict[str, Any]:
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = WatchlistIndex(synthetic_rows(n))
    build_s = time.perf_counter() - start
    gc.collect()
    # As the service does once its start-up objects (model, indexes) are loaded (api/app.py).
    gc.freeze()
    after = rss_mb()
    rng = random.Random(7)
    picks = [rng.randrange(n) for _ in range(samples * 10)]
    phones = [i for i in picks if i % 10 < 6][:samples]
    domains = [i for i in picks if i % 10 in (6, 7)][:samples]
    urls = [i for i in picks if i % 10 == 8][:samples]
    raw_phone = [("phone", f"+86 {_phone(i)[3:6]}-{_phone(i)[6:10]}-{_phone(i)[10:]}") for i in phones]
    cases = {
        "phone_hit": ([("phone", _phone(i)) for i in phones], True),
        "phone_miss": ([("phone", f"+8619{i:09d}") for i in phones], False),
        "domain_hit_subdomain": ([("domain", f"a.b.d{i}.example{i % 997}.com") for i in domains], True),
        "domain_miss": ([("domain", f"a.b.x{i}.example{i % 997}.com") for i in domains], False),
        "url_hit_on_listed_domain": ([("url", f"a.d{i}.example{i % 997}.com/x/y") for i in domains], True),
        "url_hit_longer_path": ([("url", f"u{i}.site{i % 991}.cn/pay/{i}/step/2") for i in urls], True),
        "url_miss": ([("url", f"u{i}.other{i % 991}.cn/pay/{i}/step/2") for i in urls], False),
    }
    normalized = {name: _timed(index.match_normalized, c, hit) for name, (c, hit) in cases.items()}
    raw_cases = {
        "phone_hit_written_with_spaces": (raw_phone, True),
        "url_hit_with_scheme_and_query": (
            [("url", f"https://Login.D{i}.example{i % 997}.com/x/y?utm=1#top") for i in domains],
            True,
        ),
        "url_miss_with_scheme_and_query": (
            [("url", f"https://u{i}.other{i % 991}.cn/pay/{i}/?q=1") for i in urls],
            False,
        ),
    }
    raw = {name: _timed(index.match, c, hit) for name, (c, hit) in raw_cases.items()}
    return {
        "entries": n,
        "build_s": round(build_s, 1),
        "index_mb": round(after - before),
        "bytes_per_entry": round((after - before) * 2**20 / n),
        "check_normalized_value": normalized,
        "check_raw_value_including_normalisation": raw,
        "samples_per_case": samples,
    }


# -- bulk import ---------------------------------------------------------------------------------------


def import_items(n: int, offset: int = 0, seen: datetime | None = None) -> list[WatchlistItem]:
    return [
        WatchlistItem("phone", _phone(offset + i), "fake_loan", "partner", 0.7, first_seen=seen,
                      last_seen=seen)
        for i in range(n)
    ]


def bench_import(url: str, n: int) -> dict[str, Any]:
    """Insert n new entries; import them again seen a day later (every row updated, as when a feed is
    re-imported); and once more unchanged (every row only read)."""
    from fanzha.store.db import make_engine
    from fanzha.store.repo_watchlist import upsert

    day = datetime(2026, 11, 1, 8, 0)
    engine = make_engine(url)
    try:
        first = upsert(engine, import_items(n, seen=day), "bench")
        again = upsert(engine, import_items(n, seen=day + timedelta(days=1)), "bench")
        same = upsert(engine, import_items(n, seen=day + timedelta(days=1)), "bench")
    finally:
        engine.dispose()
    assert first.inserted == n and again.updated == n and same.inserted == same.updated == 0
    return {
        "rows": n,
        "load_average": os.getloadavg()[0],
        "insert_s": first.seconds,
        "insert_per_s": round(n / first.seconds),
        "update_s": again.seconds,
        "update_per_s": round(n / again.seconds),
        "unchanged_s": same.seconds,
        "unchanged_per_s": round(n / same.seconds),
    }


def _import_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run as it is; several: the median rate of each step, and every run."""
    if len(runs) == 1:
        return runs[0]
    out: dict[str, Any] = {"runs": len(runs)}
    for key in ("insert_per_s", "update_per_s", "unchanged_per_s"):
        out[f"median_{key}"] = round(statistics.median(r[key] for r in runs))
    out["each"] = runs
    return out


# -- crash test ----------------------------------------------------------------------------------------

# Self-contained: a module named "bench" elsewhere on the path must not shadow this directory.
CHILD = """
import sys
sys.path.insert(0, {root!r})
from fanzha.intel.watchlist import WatchlistItem
from fanzha.store.db import make_engine
from fanzha.store.repo_watchlist import upsert
items = [WatchlistItem("phone", f"+8613{{i:09d}}", "fake_loan", "partner", 0.7) for i in range({n})]
engine = make_engine({url!r})
print("writing", flush=True)
upsert(engine, items, "crash-test")
print("committed", flush=True)
"""


def _count(url: str) -> int:
    from sqlalchemy import text

    from fanzha.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM watchlist")).scalar_one())
    finally:
        engine.dispose()


def _run_child(url: str, n: int, kill_after: float | None) -> tuple[float, bool]:
    """Seconds from "writing" to exit or kill, and whether the child reported its commit."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), url=url, n=n)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "writing"
    start = time.perf_counter()
    if kill_after is None:
        child.wait()
    else:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
        child.wait()
    took = time.perf_counter() - start
    return took, "committed" in child.stdout.read()


def _empty(url: str) -> None:
    from sqlalchemy import text

    from fanzha.store.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM watchlist"))
    engine.dispose()


def crash_test(url: str, n: int) -> dict[str, Any]:
    """SIGKILL an importing process at 10%–90% of an import's duration; after each kill the table must hold
    all of the batch (when the commit got through) or none of it."""
    _empty(url)
    duration, committed = _run_child(url, n, None)
    assert committed and _count(url) == n
    kills = []
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
        _empty(url)
        _, committed = _run_child(url, n, duration * fraction)
        time.sleep(0.5)  # PostgreSQL aborts a dead client's transaction once it sees the socket close
        count = _count(url)
        kills.append(
            {
                "kill_at": f"{fraction:.0%}",
                "committed_before_kill": committed,
                "rows_after": count,
                "all_or_nothing": count in (0, n),
            }
        )
    return {
        "batch_rows": n,
        "import_s": round(duration, 2),
        "kills": kills,
        "passed": all(k["all_or_nothing"] for k in kills),
    }


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    from tests import pg

    with pg.server_url() as admin:
        url = pg.create_database(admin)
        try:
            yield url
        finally:
            pg.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--import-runs", type=int, default=1, help="imports into a fresh database each")
    parser.add_argument("--crash-rows", type=int, default=300_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--parts", default="matching,import,crash", help="comma-separated subset to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    from fanzha.store.db import migrate

    out: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    out["load_average_at_start"] = os.getloadavg()
    if "matching" in parts:
        out["matching"] = bench_matching(args.entries, args.samples)
        gc.unfreeze()
        gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        if "import" in parts:
            runs = []
            for run in range(args.import_runs):
                url = f"sqlite:///{tmp}/bench{run}.db"
                migrate(url)
                runs.append(bench_import(url, args.import_rows))
            out["import_sqlite"] = _import_summary(runs)
        if "crash" in parts:
            crash = f"sqlite:///{tmp}/crash.db"
            migrate(crash)
            out["crash_sqlite"] = crash_test(crash, args.crash_rows)
    if not args.no_postgres and "import" in parts:
        runs = []
        for _ in range(args.import_runs):
            with postgres_database() as url:
                migrate(url)
                runs.append(bench_import(url, args.import_rows))
        out["import_postgresql"] = _import_summary(runs)
    if not args.no_postgres and "crash" in parts:
        with postgres_database() as url:
            migrate(url)
            out["crash_postgresql"] = crash_test(url, args.crash_rows)
    out["load_average_at_end"] = os.getloadavg()
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
