"""`fanzha warnings list|escalate|stats` through the installed console script, on both databases."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from fanzha.cases.warnings import WarningRequest
from fanzha.settings import Settings
from fanzha.store import repo_warnings
from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import Warning, utcnow
from fanzha.store.repo_users import create_user

FANZHA = str(Path(sys.executable).with_name("fanzha"))


@pytest.fixture
def fanzha(db_url, tmp_path):
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as s:
        create_user(s, "grid_xihu", "password-123", "grid", "330106")
        for phone, region, name in (("13812345678", "330106", "王小明"), ("13912340001", "440305", None)):
            req = WarningRequest(
                region_code=region, source="partner", risk=92, person_phone=phone, person_name=name
            )
            repo_warnings.raise_warning(s, req, Settings(), "bank", utcnow() - timedelta(hours=1))
    engine.dispose()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"FANZHA_DATABASE_URL": db_url, "FANZHA_DATA_DIR": str(tmp_path), "COLUMNS": "160", "PATH": ""}
        return subprocess.run(
            [FANZHA, "warnings", *args], capture_output=True, text=True, env=env, timeout=120
        )

    return run


def test_list_shows_a_table_with_personal_data_masked(fanzha):
    res = fanzha("list", "--region", "330100")
    assert res.returncode == 0, res.stderr
    assert "预警任务 1 / 1" in res.stdout and "王**" in res.stdout and "+86****5678" in res.stdout
    assert "13812345678" not in res.stdout and "王小明" not in res.stdout and "grid_xihu" in res.stdout


def test_list_json_filters_by_status_and_limit(fanzha):
    rows = [orjson.loads(line) for line in fanzha("list", "--status", "open", "--json").stdout.splitlines()]
    assert len(rows) == 2 and {r["person_phone"] for r in rows} == {"+86****5678", "+86****0001"}
    assert len(fanzha("list", "--limit", "1", "--json").stdout.splitlines()) == 1
    assert fanzha("list", "--json", "--status", "closed").stdout == ""


def test_bad_region_or_status_is_a_usage_error(fanzha):
    assert fanzha("list", "--region", "33").returncode == 2
    assert fanzha("list", "--status", "lost").returncode == 2
    assert fanzha("stats", "--from", "yesterday").returncode == 2


def test_escalate_escalates_overdue_tasks_and_reports_them(fanzha, db_url):
    res = fanzha("escalate")
    assert res.returncode == 0, res.stderr
    assert "escalated 2 task(s)" in res.stdout
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as s:
        assert all(w.escalated for w in s.query(Warning))
    engine.dispose()
    assert "escalated 0 task(s)" in fanzha("escalate").stdout


def test_stats_json_counts_the_period_and_region(fanzha):
    res = fanzha("stats", "--json", "--region", "330000")
    assert res.returncode == 0, res.stderr
    stats = orjson.loads(res.stdout)
    assert stats["total"] == 1 and stats["open"] == 1 and stats["region_prefix"] == "33"
    assert "劝阻成功率" in fanzha("stats").stdout
