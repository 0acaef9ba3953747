"""Loading ledgers: bad rows are set aside with a reason and counted, the rest loads; bad input errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from fanzha.payments import schema
from fanzha.payments.ledger import LedgerError, read_ledger, write_ledger, write_rejects

NOW = datetime(2026, 11, 1, 12, 0)
ACCOUNTS_CSV = """\
account_id,bank,account_type,holder_id,branch,opened_at,last_active_at,region,age_band,kyc_flags
A1,FZB,personal,H1,BR1,2020-01-01 09:00:00,2026-10-01 10:00:00,110105,60_plus,id_verified
A2,EXT,personal,H2,BR2,2021-05-01 09:00:00,,310115,18_29,""
M1,FZB,merchant,H3,BR1,2019-03-01 09:00:00,,440106,,id_verified
A1,FZB,personal,H9,BR1,2020-01-01 09:00:00,,110105,60_plus,
A3,FZB,personal,H4,BR1,yesterday,,110105,30_44,
A4,FZB,alien,H5,BR1,2020-01-01 09:00:00,,110105,30_44,
"""
HEADER = "transfer_id,ts,from_account,to_account,amount_fen,channel,remark,device_id,ip\n"
# (line, expected outcome) — each bad line breaks exactly one rule.
TRANSFER_ROWS = [
    ("T1,2026-10-02 10:00:00,A1,M1,1500,mobile,货款,D1,1.2.3.4", "ok"),
    ("T0,2026-10-01 08:00:00,A2,A1,99000,online,,,", "ok"),  # earlier than T1: loads sorted by time
    ("T2,2026-10-02 11:00:00,A1,,20000,atm,,,", "ok"),  # cash withdrawal
    ("T3,2026-10-02 12:00:00,,A2,20000,counter,,,", "ok"),  # cash deposit
    ("T4,2026-10-02 12:00:00,A1,A2,-5,mobile,,,", "bad_amount"),
    ("T5,2026-10-02 12:00:00,A1,A2,0,mobile,,,", "bad_amount"),
    (f"T6,2026-10-02 12:00:00,A1,A2,{schema.MAX_AMOUNT_FEN + 1},mobile,,,", "bad_amount"),
    ("T7,2026-10-02 12:00:00,A1,ZZZ,100,mobile,,,", "unknown_account"),
    ("T8,2026-10-02 12:00:00,,,100,mobile,,,", "no_account"),
    ("T1,2026-10-03 12:00:00,A2,A1,300,mobile,,,", "duplicate_id"),
    ("T9,2027-01-01 00:00:00,A1,A2,100,mobile,,,", "future_timestamp"),
    ("T10,2026-10-02 12:00:00,A1,A2,100,carrier_pigeon,,,", "unknown_channel"),
    ("T11,not a time,A1,A2,100,mobile,,,", "bad_value"),
    ("T12,2026-10-02 12:00:00,A1,A2,12.5,mobile,,,", "bad_value"),
    (",2026-10-02 12:00:00,A1,A2,100,mobile,,,", "missing_field"),
    ("T13,2026-10-02 12:00:00,A1,A2", "unparsable_row"),
    ("T14,2026-10-02 12:00:00,A1,A2,100,mobile,x,y,z,extra,columns", "unparsable_row"),
    ("T15,2026-10-02 12:00:00,A1,A3,100,mobile,,,", "unknown_account"),  # A3 itself was rejected
]


def _write_csv_ledger(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "accounts.csv").write_text(ACCOUNTS_CSV, encoding="utf-8")
    (directory / "transfers.csv").write_text(HEADER + "\n".join(r for r, _ in TRANSFER_ROWS) + "\n")
    return directory


def _expected_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, outcome in TRANSFER_ROWS:
        if outcome != "ok":
            counts[outcome] = counts.get(outcome, 0) + 1
    counts["duplicate_id"] += 1  # account A1 listed twice
    counts["bad_value"] += 2  # A3's opening date, A4's account type
    return counts


def test_broken_csv_rows_are_rejected_with_counts_and_the_rest_loads(tmp_path: Path) -> None:
    load = read_ledger(_write_csv_ledger(tmp_path), now=NOW)
    assert load.reject_counts == _expected_counts()
    accepted = [r.split(",")[0] for r, outcome in TRANSFER_ROWS if outcome == "ok"]
    assert sorted(load.transfers.column("transfer_id").to_pylist()) == sorted(accepted)
    assert load.accounts.column("account_id").to_pylist() == ["A1", "A2", "M1"]
    assert load.rows_read == {"accounts": 6, "transfers": len(TRANSFER_ROWS)}


def test_loaded_tables_have_the_schema_types_and_transfers_are_in_time_order(tmp_path: Path) -> None:
    load = read_ledger(_write_csv_ledger(tmp_path), now=NOW)
    assert load.transfers.schema.equals(schema.TRANSFERS)
    assert load.accounts.schema.equals(schema.ACCOUNTS)
    ts = load.transfers.column("ts").to_pylist()
    assert ts == sorted(ts)
    assert load.transfers.column("transfer_id").to_pylist()[0] == "T0"
    first_kept = next(r for r in load.transfers.to_pylist() if r["transfer_id"] == "T1")
    assert first_kept["amount_fen"] == 1500  # the first T1 wins, the later duplicate is rejected
    a2 = next(r for r in load.accounts.to_pylist() if r["account_id"] == "A2")
    assert a2["kyc_flags"] == "" and a2["last_active_at"] is None


def test_rejects_name_the_row_and_the_offending_value(tmp_path: Path) -> None:
    load = read_ledger(_write_csv_ledger(tmp_path), now=NOW)
    rows = load.rejects.to_pylist()
    negative = next(r for r in rows if r["key"] == "T4")
    assert negative["reason"] == "bad_amount" and negative["detail"] == "amount_fen=-5"
    assert negative["file"] == "transfers.csv" and negative["row"] == 5
    unknown = next(r for r in rows if r["key"] == "T7")
    assert unknown["detail"] == "to_account=ZZZ"
    broken = [r for r in rows if r["reason"] == "unparsable_row"]
    assert {(r["key"], r["line"]) for r in broken} == {("T13", 17), ("T14", 18)}


def test_the_future_is_relative_to_now(tmp_path: Path) -> None:
    later = read_ledger(_write_csv_ledger(tmp_path), now=datetime(2030, 1, 1))
    assert "future_timestamp" not in later.reject_counts


def test_parquet_ledger_round_trips_and_cycles_are_kept(tmp_path: Path) -> None:
    source = read_ledger(_write_csv_ledger(tmp_path / "csv"), now=NOW)
    cycle = pa.Table.from_pylist(
        [
            {
                "transfer_id": "C1",
                "ts": datetime(2026, 10, 5),
                "from_account": "A1",
                "to_account": "A2",
                "amount_fen": 100,
                "channel": "mobile",
            },
            {
                "transfer_id": "C2",
                "ts": datetime(2026, 10, 6),
                "from_account": "A2",
                "to_account": "A1",
                "amount_fen": 100,
                "channel": "mobile",
            },
        ],
        schema=schema.TRANSFERS,
    )
    write_ledger(tmp_path / "pq", source.accounts, pa.concat_tables([source.transfers, cycle]))
    again = read_ledger(tmp_path / "pq", now=NOW)
    assert again.reject_counts == {}
    assert again.transfers.num_rows == source.transfers.num_rows + 2
    assert again.accounts.equals(source.accounts)


def test_write_rejects_gives_a_csv_with_every_reject(tmp_path: Path) -> None:
    load = read_ledger(_write_csv_ledger(tmp_path / "l"), now=NOW)
    write_rejects(load.rejects, tmp_path / "rejects.csv")
    back = pacsv.read_csv(tmp_path / "rejects.csv")
    assert back.num_rows == sum(_expected_counts().values())
    assert set(back.column("reason").to_pylist()) == set(_expected_counts())


def test_unusable_input_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="not found"):
        read_ledger(tmp_path / "nowhere")
    _write_csv_ledger(tmp_path)
    (tmp_path / "transfers.csv").unlink()
    with pytest.raises(LedgerError, match="transfers"):
        read_ledger(tmp_path)
    (tmp_path / "transfers.csv").write_text("transfer_id,ts,amount_fen\nT1,2026-10-01 00:00:00,5\n")
    with pytest.raises(LedgerError, match="from_account"):
        read_ledger(tmp_path)


def test_cli_validate_reports_counts_and_exits_zero_with_rejects(tmp_path: Path) -> None:
    from fanzha.cli import app

    _write_csv_ledger(tmp_path / "l")
    result = CliRunner().invoke(
        app,
        [
            "ledger",
            "validate",
            str(tmp_path / "l"),
            "--rejects",
            str(tmp_path / "r.csv"),
            "--now",
            "2026-11-01T12:00:00",
        ],
    )
    assert result.exit_code == 0, result.output
    for reason, count in _expected_counts().items():
        assert f"{reason} (" in result.output and f"): {count}" in result.output
    assert (tmp_path / "r.csv").is_file()
    missing = CliRunner().invoke(app, ["ledger", "validate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
