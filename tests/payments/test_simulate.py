"""The simulator's promises: deterministic by seed, schema-true, coherent fraud flows, consistent labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fanzha.payments import schema
from fanzha.payments.ledger import read_ledger
from fanzha.payments.simulate import SimConfig, simulate

SMALL = SimConfig(accounts=4_000, transfers=40_000, days=30, seed=11, fraud_rate=0.02, chunk_rows=15_000)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(SMALL, out)
    return out


@pytest.fixture(scope="module")
def joined(ledger: Path) -> dict[str, pa.Table]:
    tx = pq.read_table(ledger / "transfers.parquet")
    lt = pq.read_table(ledger / "labels_transfers.parquet")
    la = pq.read_table(ledger / "labels_accounts.parquet")
    tx = tx.join(lt, "transfer_id")
    return {"tx": tx, "labels_accounts": la, "accounts": pq.read_table(ledger / "accounts.parquet")}


def _role_of(joined: dict[str, pa.Table]) -> dict[str, str]:
    la = joined["labels_accounts"]
    return dict(zip(la.column("account_id").to_pylist(), la.column("role").to_pylist(), strict=True))


def test_same_seed_writes_identical_files(tmp_path: Path, ledger: Path) -> None:
    again = tmp_path / "again"
    simulate(SMALL, again)
    names = sorted(p.name for p in ledger.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (ledger / name).read_bytes() == (again / name).read_bytes(), name


def test_another_seed_gives_another_ledger(tmp_path: Path, ledger: Path) -> None:
    other = SimConfig(**{**SMALL.__dict__, "seed": 12})
    simulate(other, tmp_path)
    a = pq.read_table(ledger / "transfers.parquet").column("amount_fen")
    b = pq.read_table(tmp_path / "transfers.parquet").column("amount_fen")
    assert a.to_pylist()[:1000] != b.to_pylist()[:1000]


def test_every_table_follows_the_schema(ledger: Path) -> None:
    for name, expected in schema.LEDGER_FILES.items():
        got = pq.read_schema(ledger / f"{name}.parquet")
        assert got.names == expected.names, name
        assert [f.type for f in got] == [f.type for f in expected], name
        table = pq.read_table(ledger / f"{name}.parquet")
        for f in expected:
            if not f.nullable:
                assert table.column(f.name).null_count == 0, (name, f.name)


def test_size_is_close_to_the_target_and_manifest_counts_match(ledger: Path) -> None:
    tx = pq.read_table(ledger / "transfers.parquet")
    assert abs(tx.num_rows - SMALL.transfers) / SMALL.transfers < 0.05
    manifest = json.loads((ledger / "manifest.json").read_text())
    assert manifest["seed"] == SMALL.seed
    assert manifest["counts"]["transfers"] == tx.num_rows
    la = pq.read_table(ledger / "labels_accounts.parquet")
    mules = pc.sum(pc.equal(la.column("role"), "mule")).as_py()
    assert manifest["counts"]["roles"]["mule"] == mules
    assert manifest["generator_version"]


def test_simulated_ledger_passes_validation(ledger: Path) -> None:
    load = read_ledger(ledger)
    assert load.reject_counts == {}
    assert load.transfers.num_rows == pq.read_metadata(ledger / "transfers.parquet").num_rows
    assert len(set(load.transfers.column("transfer_id").to_pylist())) == load.transfers.num_rows


def test_labels_cover_every_account_and_transfer(ledger: Path, joined: dict[str, pa.Table]) -> None:
    assert set(joined["labels_accounts"].column("account_id").to_pylist()) == set(
        joined["accounts"].column("account_id").to_pylist()
    )
    assert joined["tx"].num_rows == pq.read_metadata(ledger / "transfers.parquet").num_rows
    la = joined["labels_accounts"]
    normal = pc.equal(la.column("role"), "normal")
    # Normal accounts carry no layer or group; every fraud role does.
    assert la.filter(normal).column("layer").null_count == la.filter(normal).num_rows
    assert la.filter(pc.invert(normal)).column("group_id").null_count == 0
    assert set(la.column("role").to_pylist()) == {r.value for r in schema.AccountRole}


def test_a_mule_never_sends_more_fraud_money_than_it_has_received(joined: dict[str, pa.Table]) -> None:
    roles = _role_of(joined)
    fraud = joined["tx"].filter(pc.field("is_fraud")).to_pylist()
    events: dict[str, list[tuple[object, int]]] = {}
    for t in fraud:
        if t["to_account"] and roles[t["to_account"]] == "mule":
            events.setdefault(t["to_account"], []).append((t["ts"], t["amount_fen"]))
        if t["from_account"] and roles[t["from_account"]] == "mule":
            events.setdefault(t["from_account"], []).append((t["ts"], -t["amount_fen"]))
    assert len(events) >= 10
    for account, ev in events.items():
        # Arrivals sort before departures at the same millisecond, so ties do not hide an overdraft.
        ev.sort(key=lambda e: (e[0], e[1] < 0))
        balance = np.cumsum([a for _, a in ev])
        assert balance.min() >= 0, account


def test_each_case_is_one_victim_and_its_money_moves_forward_in_time(joined: dict[str, pa.Table]) -> None:
    roles = _role_of(joined)
    fraud = joined["tx"].filter(pc.field("is_fraud")).filter(pc.is_valid(pc.field("case_id"))).to_pylist()
    victims_of: dict[str, set[str]] = {}
    first_in: dict[tuple[str, str], object] = {}
    for t in sorted(fraud, key=lambda t: t["ts"]):
        if t["from_account"] and roles[t["from_account"]] == "victim":
            victims_of.setdefault(t["case_id"], set()).add(t["from_account"])
        if t["to_account"]:
            first_in.setdefault((t["case_id"], t["to_account"]), t["ts"])
    assert victims_of and all(len(v) == 1 for v in victims_of.values())
    for t in fraud:
        src = t["from_account"]
        if src and roles[src] in ("mule", "platform"):
            assert first_in[(t["case_id"], src)] <= t["ts"], t


def test_fraud_has_the_typical_shapes(joined: dict[str, pa.Table]) -> None:
    tx = joined["tx"].filter(pc.field("is_fraud"))
    rows = tx.to_pylist()
    assert any(r["to_account"] is None and r["channel"] == "atm" for r in rows), "ATM cash-out"
    assert any(4_990_000 <= r["amount_fen"] <= 4_999_999 for r in rows), "49,9xx just under a limit"
    assert {r["remark"] for r in rows} & {"投资款", "保证金", "解冻费"}
    # A ring runs several cards from one phone.
    devices: dict[str, set[str]] = {}
    for r in rows:
        if r["device_id"] and r["from_account"]:
            devices.setdefault(r["device_id"], set()).add(r["from_account"])
    assert max(len(a) for a in devices.values()) >= 3


def test_victims_skew_old_and_young(joined: dict[str, pa.Table]) -> None:
    roles = _role_of(joined)
    acc = joined["accounts"]
    ages = dict(zip(acc.column("account_id").to_pylist(), acc.column("age_band").to_pylist(), strict=True))
    victims = [ages[a] for a, r in roles.items() if r == "victim"]
    everyone = [ages[a] for a, r in roles.items() if r == "normal" and ages[a]]
    share = lambda xs: sum(x in ("60_plus", "18_29") for x in xs) / len(xs)  # noqa: E731
    assert share(victims) > share(everyone) + 0.1


def test_normal_accounts_include_high_fan_in_look_alikes(joined: dict[str, pa.Table]) -> None:
    roles = _role_of(joined)
    tx = joined["tx"]
    fan_in = tx.group_by("to_account").aggregate([("from_account", "count_distinct")]).to_pylist()
    by_role: dict[str, list[int]] = {}
    for r in fan_in:
        if r["to_account"]:
            by_role.setdefault(roles[r["to_account"]], []).append(r["from_account_count_distinct"])
    busiest_normal = sorted(by_role["normal"])[-20:]
    assert min(busiest_normal) > np.median(by_role["mule"]), "fan-in alone must not find the mules"


def test_csv_output_loads_to_the_same_ledger(tmp_path: Path, ledger: Path) -> None:
    cfg = SimConfig(**{**SMALL.__dict__, "fmt": "csv"})
    simulate(cfg, tmp_path)
    assert (tmp_path / "transfers.csv").is_file()
    from_csv = read_ledger(tmp_path)
    from_parquet = read_ledger(ledger)
    assert from_csv.reject_counts == {}
    assert from_csv.transfers.equals(from_parquet.transfers)
    assert from_csv.accounts.equals(from_parquet.accounts)


def test_cli_simulate_prints_a_summary(tmp_path: Path) -> None:
    from fanzha.cli import app

    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path), "--accounts", "2000", "--transfers", "5000", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "transfers" in result.output and "5,0" in result.output
    assert (tmp_path / "labels_transfers.parquet").is_file()
    bad = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--format", "xlsx"])
    assert bad.exit_code == 2


def test_rerunning_in_another_format_leaves_no_stale_tables(tmp_path: Path) -> None:
    small = SimConfig(accounts=1_000, transfers=2_000, days=5, seed=2)
    simulate(small, tmp_path)
    simulate(SimConfig(**{**small.__dict__, "fmt": "csv"}), tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".csv"] * 4 + [".json"]


def test_hard_mules_and_legitimate_look_alikes_exist(joined: dict[str, pa.Table]) -> None:
    roles = _role_of(joined)
    tx = joined["tx"]
    acc = joined["accounts"]
    opened = dict(zip(acc.column("account_id").to_pylist(), acc.column("opened_at").to_pylist(), strict=True))
    rows = tx.select(["from_account", "to_account", "device_id", "ts", "amount_fen", "is_fraud"]).to_pylist()
    accounts_of: dict[str, set[str]] = {}
    devices_of: dict[str, set[str]] = {}
    for r in rows:
        if r["device_id"] and r["from_account"]:
            accounts_of.setdefault(r["device_id"], set()).add(r["from_account"])
            devices_of.setdefault(r["from_account"], set()).add(r["device_id"])
    mules = [a for a, r in roles.items() if r == "mule" and a in devices_of]
    # Some mules are run only from a phone no other account uses.
    own = [a for a in mules if all(len(accounts_of[d]) == 1 for d in devices_of[a])]
    assert len(own) >= 0.15 * len(mules)
    # Some mules are years-old (rented) accounts, and mules also have everyday (normal) transfers.
    start = min(r["ts"] for r in rows)
    assert sum((start - opened[a]).days > 365 for a in mules) >= 0.15 * len(mules)
    lived_in = {r["to_account"] for r in rows if not r["is_fraud"] and roles.get(r["to_account"]) == "mule"}
    assert len(lived_in) >= 0.5 * len(mules)
    # Normal accounts that receive from several payers and send most of it on within a day exist.
    recv: dict[str, list[tuple[object, int, str]]] = {}
    sent: dict[str, list[tuple[object, int]]] = {}
    for r in rows:
        if r["to_account"] and r["from_account"] and roles[r["to_account"]] == "normal":
            recv.setdefault(r["to_account"], []).append((r["ts"], r["amount_fen"], r["from_account"]))
        if r["from_account"] and r["to_account"] and roles[r["from_account"]] == "normal":
            sent.setdefault(r["from_account"], []).append((r["ts"], r["amount_fen"]))
    look_alikes = 0
    for a, ins in recv.items():
        if len({p for _, _, p in ins}) < 3 or a not in sent:
            continue
        total_in = sum(x for _, x, _ in ins)
        fast = sum(x for t, x in sent[a] if any(0 <= (t - ti).total_seconds() <= 86_400 for ti, _, _ in ins))
        look_alikes += fast >= 0.5 * total_in
    assert look_alikes >= 20
