"""`fanzha watchlist import|export|check` through the installed console script, on a SQLite file."""

import os
import subprocess
import sys
from pathlib import Path

import orjson

FANZHA = str(Path(sys.executable).with_name("fanzha"))
CSV = (
    "kind,value,fraud_type\n"
    "phone,+86 138-1234-5678,fake_loan\n"
    "phone,12,fake_loan\n"
    "domain,evil-shop.com,fake_shopping\n"
)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "FANZHA_DATA_DIR": str(tmp_path / "data")}
    env.pop("FANZHA_DATABASE_URL", None)
    return subprocess.run(
        [FANZHA, "watchlist", *args], capture_output=True, timeout=120, env=env, cwd=tmp_path
    )


def test_import_reports_rejected_rows_on_stderr_and_exits_1(tmp_path):
    (tmp_path / "wl.csv").write_text(CSV, encoding="utf-8")
    res = run(tmp_path, "import", "wl.csv", "--source", "partner")
    assert res.returncode == 1
    assert b"row 3: not a valid phone number" in res.stderr
    summary = orjson.loads(res.stdout)
    assert (summary["inserted"], summary["rejected"]) == (2, 1)


def test_check_uses_the_imported_entries_and_the_allowlist(tmp_path):
    (tmp_path / "wl.csv").write_text(CSV, encoding="utf-8")
    run(tmp_path, "import", "wl.csv")
    hit = orjson.loads(run(tmp_path, "check", "url", "https://pay.evil-shop.com/x?y=1").stdout)
    assert hit["verdict"] == "fraud" and hit["matches"][0]["value"] == "evil-shop.com"
    official = orjson.loads(run(tmp_path, "check", "phone", "95588").stdout)
    assert official["verdict"] == "allowlisted"


def test_export_round_trips_through_import(tmp_path):
    (tmp_path / "wl.csv").write_text(CSV, encoding="utf-8")
    run(tmp_path, "import", "wl.csv")
    assert run(tmp_path, "export", "--format", "stix", "--output", "out.json").returncode == 0
    again = run(tmp_path, "import", "out.json")
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["inserted"] == 0
    csv = run(tmp_path, "export").stdout.decode().splitlines()
    assert csv[0].startswith("kind,value,") and len(csv) == 3


def test_unusable_arguments_exit_2(tmp_path):
    assert run(tmp_path, "check", "phone", "12").returncode == 2
    assert run(tmp_path, "import", "missing.csv").returncode == 2
    assert run(tmp_path, "import", "x.csv", "--source", "rumour").returncode == 2
    assert run(tmp_path, "export", "--kind", "email").returncode == 2
