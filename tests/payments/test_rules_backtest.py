"""`fanzha rules backtest`: online replay of a labelled ledger counts hits on fraud and false alarms."""

from __future__ import annotations

from datetime import datetime

import orjson
from typer.testing import CliRunner

from fanzha.cli import app
from fanzha.payments.backtest import backtest
from tests.payments.check_ledger import write_ledger


def _ledger(tmp_path):
    # A pays B every few days (legit); on 2026-11-10 A suddenly pays a new account N 30,000 yuan (fraud).
    tr = [(f"t{k}", datetime(2026, 10, 1 + 2 * k, 12), "A", "B", 20_000, "mobile", "房租") for k in range(15)]
    tr.append(("f1", datetime(2026, 11, 21, 12), "A", "N", 3_000_000, "mobile", "保证金"))
    tr.append(("t99", datetime(2026, 11, 22, 12), "A", "B", 20_000, "mobile", "房租"))
    return write_ledger(tmp_path / "l", tr, labels=[False] * 15 + [True, False])


def test_backtest_reports_hits_and_false_alarms(tmp_path):
    r = backtest(_ledger(tmp_path), warmup=0.5).to_dict()
    assert r["fraud"] == 1 and r["legit"] == 3 and r["skipped"] == 0
    assert r["hit_rate"] == 1.0 and r["false_alarm_rate"] == 0.0
    assert r["rules"]["first_payee_large"]["fraud"] == 1
    assert r["rules"]["new_payee_account"]["fraud"] == 1
    assert sum(v["fraud"] + v["legit"] for v in r["decisions"].values()) == r["checked"]


def test_backtest_is_online_history_before_each_transfer(tmp_path):
    # The warm-up ends before A ever paid B: the first replayed payment to B is a first payment, later not.
    r = backtest(_ledger(tmp_path), warmup=0.0).to_dict()
    assert r["legit"] == 16 and r["rules"]["first_payee_large"]["legit"] == 0


def test_cli_backtest_and_show(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["rules", "backtest", "--ledger", str(_ledger(tmp_path))])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.stdout)["hit_rate"] == 1.0
    shown = runner.invoke(app, ["rules", "show"])
    assert shown.exit_code == 0 and "payee_watchlisted" in shown.stdout
    bad = runner.invoke(app, ["rules", "backtest", "--ledger", str(tmp_path / "missing")])
    assert bad.exit_code == 2


def test_backtest_scores_remarks_with_the_text_engine_when_given(tmp_path):
    from fanzha.text.detector import Detector

    tr = [(f"t{k}", datetime(2026, 10, 1 + 2 * k, 12), "A", "B", 20_000, "mobile", "房租") for k in range(15)]
    remark = "公安局通知：您涉嫌洗钱，请将资金转入安全账户配合调查，否则冻结名下所有银行卡"
    tr.append(("f1", datetime(2026, 11, 21, 12), "A", "N", 300_000, "mobile", remark))
    ledger = write_ledger(tmp_path / "l", tr, labels=[False] * 15 + [True])
    without = backtest(ledger, warmup=0.5).to_dict()
    with_text = backtest(ledger, warmup=0.5, detector=Detector.from_settings()).to_dict()
    assert without["rules"]["remark_fraud"]["fraud"] == 0
    assert with_text["rules"]["remark_fraud"]["fraud"] == 1
    assert with_text["rules"]["remark_fraud"]["legit"] == 0  # "房租" is not scam wording


def test_backtest_takes_a_watchlist_file_for_the_payee_rules(tmp_path):
    tr = [(f"t{k}", datetime(2026, 10, 1 + 2 * k, 12), "A", "B", 20_000, "mobile", "房租") for k in range(15)]
    tr.append(("f1", datetime(2026, 11, 21, 12), "A", "88880001", 50_000, "mobile", None))
    ledger = write_ledger(tmp_path / "l", tr, labels=[False] * 15 + [True])
    listed = tmp_path / "watchlist.csv"
    listed.write_text(
        "kind,value,fraud_type\npayment_account,8888-0001,impersonate_police\nphone,not-a-phone,fake_loan\n"
    )
    runner = CliRunner()
    base = ["rules", "backtest", "--ledger", str(ledger), "--no-text"]
    plain = orjson.loads(runner.invoke(app, base).stdout)
    out = runner.invoke(app, [*base, "--watchlist", str(listed)])
    assert out.exit_code == 0, out.output
    report = orjson.loads(out.stdout)
    assert plain["rules"]["payee_watchlisted"]["fraud"] == 0
    hits = report["rules"]["payee_watchlisted"]
    assert (hits["fraud"], hits["legit"]) == (1, 0)
    assert report["decisions"]["block"]["fraud"] == 1  # the rule's floor
    assert "1 rows rejected" in out.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = runner.invoke(app, [*base, "--watchlist", str(broken)])
    assert bad.exit_code == 2
