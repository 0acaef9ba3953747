"""Tracing on hand-built ledgers; every expected attribution is worked out by hand from the rule "tainted
money leaves first, oldest tainted lot first; money that left before it arrived is not the victim's"."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanzha.payments.graph import LedgerGraph, UnknownTransfer, build, open_graph
from fanzha.payments.schema import ACCOUNTS, TRANSFERS
from fanzha.payments.trace import KnownVictims, TraceError, TraceResult, trace

BASE = datetime(2026, 11, 1, 9, 0, 0)
Row = tuple[str, float, str | None, str | None, int]  # id, hours after BASE, from, to, yuan


def write_ledger(directory: Path, rows: list[Row], external: tuple[str, ...] = (), csv: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    transfers = pa.table(
        {
            "transfer_id": [r[0] for r in rows],
            "ts": pa.array([BASE + timedelta(hours=r[1]) for r in rows], pa.timestamp("ms")),
            "from_account": [r[2] for r in rows],
            "to_account": [r[3] for r in rows],
            "amount_fen": pa.array([r[4] * 100 for r in rows], pa.int64()),
            "channel": ["mobile"] * len(rows),
            "remark": [None] * len(rows),
            "device_id": [None] * len(rows),
            "ip": [None] * len(rows),
        },
        schema=TRANSFERS,
    )
    names = sorted({a for r in rows for a in r[2:4] if a})
    accounts = pa.table(
        {
            "account_id": names,
            "bank": ["EXT" if a in external else "ICBC" for a in names],
            "account_type": ["personal"] * len(names),
            "holder_id": [f"H{a}" for a in names],
            "branch": ["B1"] * len(names),
            "opened_at": pa.array([BASE] * len(names), pa.timestamp("ms")),
            "last_active_at": pa.array([None] * len(names), pa.timestamp("ms")),
            "region": ["330106"] * len(names),
            "age_band": [None] * len(names),
            "kyc_flags": [""] * len(names),
        },
        schema=ACCOUNTS,
    )
    if csv:
        from pyarrow import csv as pacsv

        t = transfers.set_column(
            1, "ts", pa.array([(BASE + timedelta(hours=r[1])).strftime("%Y-%m-%d %H:%M:%S") for r in rows])
        )
        pacsv.write_csv(t, directory / "transfers.csv")
        pacsv.write_csv(accounts.drop_columns(["opened_at", "last_active_at"]), directory / "accounts.csv")
    else:
        pq.write_table(transfers, directory / "transfers.parquet")
        pq.write_table(accounts, directory / "accounts.parquet")
    return directory


def graph_of(tmp_path: Path, rows: list[Row], **kw: object) -> LedgerGraph:
    return build(write_ledger(tmp_path / "ledger", rows, **kw))  # type: ignore[arg-type]


def by_account(result: TraceResult) -> dict[str, tuple[int, int, int, int]]:
    """account → (hop, received, passed on, held), in yuan."""
    return {
        a.account: (a.hop, a.received_fen // 100, a.passed_on_fen // 100, a.held_fen // 100)
        for a in result.accounts
    }


def assert_conserved(result: TraceResult) -> None:
    assert (
        result.held_fen + result.cash_fen + result.external_fen + result.beyond_hops_fen == result.total_fen
    )
    assert all(0 <= a.held_fen <= a.received_fen for a in result.accounts)


SPLIT_MERGE: list[Row] = [
    ("p0", -1, "A", "X", 3000),  # left A before the victim's money arrived: never the victim's
    ("v1", 0, "V", "A", 10000),
    ("t1", 1, "A", "B", 6000),
    ("t2", 2, "A", "C", 6000),  # only 4000 of it is still the victim's (tainted first)
    ("t3", 3, "B", "D", 6000),
    ("t4", 4, "C", "D", 6000),  # C passes 6000, but only 4000 tainted
    ("n1", 5, "Q", "D", 500),  # unrelated money into D
]


def test_split_and_merge_attribute_tainted_money_first(tmp_path: Path) -> None:
    result = trace(graph_of(tmp_path, SPLIT_MERGE), ["v1"])
    assert by_account(result) == {
        "A": (1, 10000, 10000, 0),
        "B": (2, 6000, 6000, 0),
        "C": (2, 4000, 4000, 0),
        "D": (3, 10000, 0, 10000),
    }
    d = next(a for a in result.accounts if a.account == "D")
    assert d.parents == ["B", "C"]
    assert d.path == ["V", "A", "B", "D"]
    assert d.first_arrival == "2026-11-01 12:00:00"
    assert [a.account for a in result.freeze_list()] == ["D"]
    assert result.total_fen == 1_000_000
    assert_conserved(result)


def test_money_that_left_before_arrival_is_never_attributed(tmp_path: Path) -> None:
    result = trace(graph_of(tmp_path, SPLIT_MERGE), ["v1"])
    assert "X" not in by_account(result)


def test_rows_out_of_time_order_give_the_same_trace(tmp_path: Path) -> None:
    shuffled = list(reversed(SPLIT_MERGE))
    assert by_account(trace(graph_of(tmp_path, shuffled), ["v1"])) == by_account(
        trace(graph_of(tmp_path / "b", SPLIT_MERGE), ["v1"])
    )


def test_cycle_terminates_and_conserves(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("v1", 0, "V", "A", 5000),
        ("c1", 1, "A", "B", 5000),
        ("c2", 2, "B", "A", 5000),
        ("c3", 3, "A", "B", 5000),
        ("c4", 4, "B", "C", 2000),
    ]
    result = trace(graph_of(tmp_path, rows), ["v1"])
    # Hop counts the transfers the money made: what reaches C went round the cycle (V→A→B→A→B→C).
    assert by_account(result) == {
        "A": (1, 10000, 10000, 0),
        "B": (2, 10000, 7000, 3000),
        "C": (5, 2000, 0, 2000),
    }
    assert_conserved(result)


def test_self_feeding_cycle_of_many_rounds_ends(tmp_path: Path) -> None:
    rows: list[Row] = [("v1", 0, "V", "A", 100)]
    rows += [
        (f"r{i}", 1 + i / 100, "A" if i % 2 == 0 else "B", "B" if i % 2 == 0 else "A", 100)
        for i in range(400)
    ]
    result = trace(graph_of(tmp_path, rows), ["v1"], max_hops=20)
    assert result.held_fen + result.beyond_hops_fen == 10000
    assert_conserved(result)


def test_cash_out_and_other_bank_are_exits(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("v1", 0, "V", "A", 8000),
        ("w1", 1, "A", None, 3000),
        ("e1", 2, "A", "E", 2000),
    ]
    result = trace(graph_of(tmp_path, rows, external=("E",)), ["v1"])
    assert by_account(result) == {"A": (1, 8000, 5000, 3000)}
    assert {(x.kind, x.to_account, x.amount_fen // 100) for x in result.exits} == {
        ("cash", None, 3000),
        ("external", "E", 2000),
    }
    assert (result.cash_fen, result.external_fen, result.held_fen) == (300000, 200000, 300000)
    assert_conserved(result)


def test_window_limits_the_outflows_followed(tmp_path: Path) -> None:
    rows: list[Row] = [("v1", 0, "V", "A", 1000), ("t1", 80, "A", "B", 1000)]
    g = graph_of(tmp_path, rows)
    assert by_account(trace(g, ["v1"], window_hours=72)) == {"A": (1, 1000, 0, 1000)}
    assert by_account(trace(g, ["v1"], window_hours=81)) == {"A": (1, 1000, 1000, 0), "B": (2, 1000, 0, 1000)}


def test_hop_limit_reports_money_beyond_it(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("v1", 0, "V", "A", 1000),
        ("t1", 1, "A", "B", 1000),
        ("t2", 2, "B", "C", 600),
        ("t3", 3, "C", "D", 600),
    ]
    result = trace(graph_of(tmp_path, rows), ["v1"], max_hops=2)
    assert by_account(result) == {"A": (1, 1000, 1000, 0), "B": (2, 1000, 600, 400)}
    assert [(x.kind, x.to_account, x.amount_fen // 100) for x in result.exits] == [("beyond_hops", "C", 600)]
    assert_conserved(result)


def test_several_payments_of_one_victim_arrive_in_time_order(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("v1", 0, "V", "A", 1000),
        ("t1", 1, "A", "B", 1500),  # only the first payment had arrived: 1000 tainted
        ("v2", 2, "V", "A", 2000),
        ("t2", 3, "A", "C", 2000),
    ]
    result = trace(graph_of(tmp_path, rows), ["v2", "v1"])
    assert by_account(result) == {"A": (1, 3000, 3000, 0), "B": (2, 1000, 0, 1000), "C": (2, 2000, 0, 2000)}
    assert result.total_fen == 300000


def test_other_victims_in_the_same_account_share_it_first_in_first_out(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("k2", 0, "W", "A", 2000),  # another victim's money arrives first
        ("v1", 1, "V", "A", 3000),
        ("t1", 2, "A", "B", 4000),  # FIFO: 2000 of case K2, then 2000 of ours
    ]
    g = graph_of(tmp_path, rows)
    known = {"v1": "K1", "k2": "K2"}
    result = trace(g, ["v1"], known_victims=known)
    assert by_account(result) == {"A": (1, 3000, 2000, 1000), "B": (2, 2000, 0, 2000)}
    b = next(a for a in result.accounts if a.account == "B")
    assert [(o.case_id, o.received_fen // 100, o.held_fen // 100) for o in b.other_cases] == [
        ("K2", 2000, 2000)
    ]
    [other] = result.other_victims
    assert (other.case_id, other.transfer_ids, other.shared_accounts) == ("K2", ["k2"], ["A", "B"])
    assert other.held_fen == 200000
    # No fen is claimed twice: both victims' money in B together is what B received from them.
    assert b.held_fen + b.other_cases[0].held_fen == 400000
    # The same answer from a prepared index (what the API keeps in memory).
    assert trace(g, ["v1"], known_victims=KnownVictims(g, known)) == result


def test_other_victims_outside_the_window_are_not_reported(tmp_path: Path) -> None:
    rows: list[Row] = [("k2", -100, "W", "A", 2000), ("v1", 1, "V", "A", 3000)]
    result = trace(graph_of(tmp_path, rows), ["v1"], known_victims={"k2": "K2"})
    assert result.other_victims == []


def test_unknown_transfer_is_named(tmp_path: Path) -> None:
    g = graph_of(tmp_path, SPLIT_MERGE)
    with pytest.raises(UnknownTransfer) as err:
        trace(g, ["v1", "nope-1", "nope-2"])
    assert err.value.ids == ["nope-1", "nope-2"]
    assert "nope-1" in str(err.value)


def test_cash_withdrawal_cannot_be_a_victim_payment(tmp_path: Path) -> None:
    g = graph_of(tmp_path, [("w1", 0, "V", None, 100)])
    with pytest.raises(TraceError, match="取现"):
        trace(g, ["w1"])


@pytest.mark.parametrize(("hops", "hours"), [(0, 72), (21, 72), (6, 0), (6, 10_000)])
def test_parameters_out_of_range_are_refused(tmp_path: Path, hops: int, hours: int) -> None:
    with pytest.raises(TraceError):
        trace(graph_of(tmp_path, SPLIT_MERGE), ["v1"], max_hops=hops, window_hours=hours)


def test_broken_rows_are_excluded_counted_and_flagged(tmp_path: Path) -> None:
    rows: list[Row] = [
        *SPLIT_MERGE,
        ("bad", 1.5, "A", "Z", -5),  # negative amount
        ("t1", 9, "Q", "R", 1),  # duplicate id: both rows are ambiguous and excluded
        ("self", 2, "B", "B", 10),
    ]
    g = graph_of(tmp_path, rows)
    assert g.broken_rows == 4
    assert set(g.meta["broken_by_reason"]) == {
        "金额无效 (amount ≤ 0, missing or absurd)",
        "转账编号重复 (duplicate transfer_id)",
        "自己转给自己 (from = to)",
    }
    with pytest.raises(UnknownTransfer):
        trace(g, ["bad"])
    result = trace(g, ["v1"])
    assert any("无效记录" in w for w in result.warnings)
    flagged = {a.account for a in result.accounts if a.warning}
    assert flagged == {"A"}  # A's own rows "bad" and "t1" were dropped: its amounts need a human check
    assert "B" not in by_account(result)  # reached only through the ambiguous "t1"


def test_saved_index_memory_maps_and_gives_the_same_trace(tmp_path: Path) -> None:
    ledger = write_ledger(tmp_path / "ledger", SPLIT_MERGE)
    first = open_graph(ledger)
    assert (ledger / "graph_index" / "dst.npy").is_file()
    again = open_graph(ledger)
    assert not isinstance(again.dst, type(first.dst)) or again.dst.base is not None
    assert trace(again, ["v1"]) == trace(first, ["v1"])


def test_index_is_rebuilt_when_the_ledger_changes(tmp_path: Path) -> None:
    ledger = write_ledger(tmp_path / "ledger", SPLIT_MERGE)
    open_graph(ledger)
    write_ledger(ledger, [*SPLIT_MERGE, ("t9", 6, "D", "F", 10000)])
    assert by_account(trace(open_graph(ledger), ["v1"]))["F"] == (4, 10000, 0, 10000)


def test_csv_ledger_traces_like_parquet(tmp_path: Path) -> None:
    g = graph_of(tmp_path, SPLIT_MERGE, csv=True)
    assert by_account(trace(g, ["v1"]))["D"] == (3, 10000, 0, 10000)


def test_random_ledgers_always_conserve_money(tmp_path: Path) -> None:
    rng = random.Random(4)
    for n in range(25):
        accts = [f"a{i}" for i in range(8)]
        rows: list[Row] = [("v", 0, "V", "a0", rng.randint(1, 5000))]
        for i in range(60):
            src, dst = rng.sample(accts, 2)
            rows.append(
                (f"r{i}", rng.uniform(-5, 80), src, rng.choice([dst, dst, None]), rng.randint(1, 3000))
            )
        g = graph_of(tmp_path / str(n), rows, external=("a7",))
        result = trace(g, ["v"], max_hops=rng.randint(1, 6), known_victims={"r1": "K", "r2": "K2"})
        assert_conserved(result)
        for a in result.accounts:
            assert a.received_fen == a.passed_on_fen + a.held_fen


def test_cli_prints_the_freeze_list_and_writes_excel(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fanzha.cli import app

    ledger = write_ledger(tmp_path / "ledger", SPLIT_MERGE)
    out = tmp_path / "止付.xlsx"
    run = CliRunner().invoke(app, ["trace", "--ledger", str(ledger), "-t", "v1", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "仍在账户(元)：10000.00" in run.output
    assert out.is_file()
    bad = CliRunner().invoke(app, ["trace", "--ledger", str(ledger), "-t", "v1", "-t", "nope"])
    assert bad.exit_code == 2
    assert "nope" in bad.output
