"""Mule scoring: features, scores, reasons, groups and metrics on a small hand-built ledger."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanzha.payments import mules
from fanzha.payments.mule_features import (
    ALL_FEATURES,
    FEATURES,
    MAX_SHARED_KEY_ACCOUNTS,
    NEIGHBOUR_FEATURES,
    neighbour_sql,
)
from fanzha.payments.schema import ACCOUNTS, LABELS_ACCOUNTS, TRANSFERS

T0 = datetime(2026, 3, 1, 9, 0)
MULES = ["m1", "m2", "m3"]
# Seeds never trained on: 3 and 4 choose features and hyperparameters (validation), 11–13 are the fresh
# held-out ledgers model 4 is reported on (seed 2 was held out for models 1–3 and is a training seed now).
VALIDATION_SEEDS = (3, 4)
REPORT_SEEDS = (11, 12, 13)


def build_ledger(out: Path, seed: int = 7) -> Path:
    """40 ordinary people, a shop, 12 victims paying two first-layer mules who forward to a third."""
    rng = random.Random(seed)
    accounts: list[dict] = []
    transfers: list[dict] = []
    labels: list[dict] = []

    def account(
        aid: str,
        *,
        kind: str = "personal",
        branch: str | None = None,
        opened: datetime | None = None,
        holder: str | None = None,
        flags: str = "id_verified",
    ) -> None:
        accounts.append(
            {
                "account_id": aid,
                "bank": "ICBC",
                "account_type": kind,
                "holder_id": holder or "h-" + aid,
                "branch": branch or f"B{rng.randrange(20)}",
                "opened_at": opened or T0 - timedelta(days=rng.randrange(300, 3000)),
                "last_active_at": None,
                "region": "330106",
                "age_band": None if kind != "personal" else "30_44",
                "kyc_flags": flags,
            }
        )

    def pay(
        src: str | None,
        dst: str | None,
        fen: int,
        ts: datetime,
        device: str | None = None,
        ip: str | None = None,
    ) -> None:
        transfers.append(
            {
                "transfer_id": f"t{len(transfers):05d}",
                "ts": ts,
                "from_account": src,
                "to_account": dst,
                "amount_fen": fen,
                "channel": "mobile",
                "remark": None,
                "device_id": device or (f"dev-{src}" if src else None),
                "ip": ip or "10.0.0.1",
            }
        )

    people = [f"n{i:02d}" for i in range(40)]
    for p in people:
        account(p)
        labels.append({"account_id": p, "role": "normal", "layer": None, "group_id": None})
    account("shop", kind="merchant")
    labels.append({"account_id": "shop", "role": "normal", "layer": None, "group_id": None})
    for day in range(30):
        for _ in range(8):
            a, b = rng.sample(people, 2)
            pay(a, b, rng.randrange(1_000, 300_000), T0 + timedelta(days=day, hours=rng.randrange(8, 20)))
        for _ in range(5):  # shoppers pay the shop; it settles once a week
            pay(rng.choice(people), "shop", rng.randrange(500, 20_000), T0 + timedelta(days=day, hours=12))
        if day % 7 == 6:
            pay("shop", people[0], 300_000, T0 + timedelta(days=day, hours=23))
        if day % 10 == 0:  # salaries as cash deposits
            for p in people[:10]:
                pay(None, p, 800_000, T0 + timedelta(days=day, hours=10))
    opened = T0 - timedelta(days=3)
    for m in MULES:  # opened together at one branch, remotely, all driven from one phone
        account(m, branch="B99", opened=opened, flags="remote_opened")
        labels.append({"account_id": m, "role": "mule", "layer": 1 if m != "m3" else 2, "group_id": "ring1"})
    victims = [f"v{i:02d}" for i in range(12)]
    for i, v in enumerate(victims):
        account(v)
        labels.append({"account_id": v, "role": "victim", "layer": 0, "group_id": "ring1"})
        pay(rng.choice(people), v, 2_000_000, T0 + timedelta(days=i, hours=8))  # the victim's own money
        ts = T0 + timedelta(days=i + 1, hours=rng.randrange(9, 18))
        first = MULES[i % 2]
        pay(v, first, 5_000_000, ts)
        pay(
            first,
            "m3",
            4_990_000,
            ts + timedelta(minutes=rng.randrange(3, 15)),
            device="dev-ring",
            ip="1.2.3.4",
        )
        pay("m3", None, 4_980_000, ts + timedelta(minutes=30), device="dev-ring", ip="1.2.3.4")
    tables = {
        "accounts": pa.Table.from_pylist(accounts, schema=ACCOUNTS),
        "transfers": pa.Table.from_pylist(transfers, schema=TRANSFERS),
        "labels_accounts": pa.Table.from_pylist(labels, schema=LABELS_ACCOUNTS),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, out / f"{name}.parquet")
    return out


def hand_model() -> mules.MuleModel:
    """Transparent weights on raw features: the tests check the mechanics, not the trained coefficients."""
    weights = {
        "fast_out_ratio": 3.0,
        "pass_through": 1.5,
        "n_payers": 1.0,
        "chain_in_share": 1.0,
        "chain_out_share": 1.0,
        "device_accounts": 0.8,
        "opened_together": 0.8,
        "remote_opened": 0.8,
        "is_merchant": -3.0,
        "hold_minutes": -0.5,
        "cash_out_ratio": 1.0,
    }
    n = len(FEATURES)
    return mules.MuleModel(
        list(FEATURES),
        np.zeros(n),
        np.ones(n),
        np.array([weights.get(f, 0.0) for f in FEATURES]),
        -6.0,
        version="test",
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ledger(tmp_path_factory.mktemp("ledger"))


@pytest.fixture(scope="module")
def features(ledger: Path) -> pa.Table:
    return mules.features_duckdb(mules.connect(ledger))


def _row(table: pa.Table, account_id: str) -> dict:
    ids = table.column("account_id").to_pylist()
    return table.slice(ids.index(account_id), 1).to_pylist()[0]


def test_features_measure_fan_in_pass_through_and_holding_time(features: pa.Table) -> None:
    assert features.column_names == ["account_id", *FEATURES]
    m1, m3, shop = _row(features, "m1"), _row(features, "m3"), _row(features, "shop")
    assert m1["n_payers"] == 6 and m1["payer_ratio"] == 1.0
    assert m1["pass_through"] == pytest.approx(4_990_000 / 5_000_000)
    assert m1["fast_out_ratio"] > 0.99 and 3 <= m1["hold_minutes"] <= 15
    assert m3["cash_out_ratio"] == 1.0 and m3["chain_in_share"] == 1.0
    assert m1["chain_out_share"] == 1.0
    assert m1["opened_together"] == 3 and m1["remote_opened"] == 1.0
    assert m1["device_accounts"] == 3  # m1, m2, m3 all sent from dev-ring
    assert shop["is_merchant"] == 1.0 and shop["fast_out_ratio"] < 0.2


def test_features_see_victim_money_and_the_next_layer(features: pa.Table) -> None:
    m1, m3, shop = _row(features, "m1"), _row(features, "m3"), _row(features, "shop")
    # each victim sends one payment of ¥50,000, all they send: draining, unusual for the payer
    assert m1["drain_in_share"] == 1.0 and m1["unusual_in_share"] == 0.0  # avg == the payment itself
    assert m1["matched_out_ratio"] == 1.0  # ¥49,900 leaves minutes after ¥50,000 came in
    assert m1["slow_chain_out_share"] == 1.0 and m3["slow_chain_in_share"] == 1.0
    assert m3["exposed_in_share"] == 1.0  # m1 and m2 received victim money; m3 receives theirs
    assert shop["drain_in_share"] == 0.0 and shop["exposed_in_share"] < 0.5
    assert 0.0 <= shop["new_payer_in_share"] < 1.0 and m1["new_payer_in_share"] == 0.0


def test_every_account_gets_a_row_even_without_transfers(ledger: Path, tmp_path: Path) -> None:
    accounts = pq.read_table(ledger / "accounts.parquet")
    extra = accounts.slice(0, 1).to_pylist()[0] | {"account_id": "zz-idle"}
    pq.write_table(
        pa.concat_tables([accounts, pa.Table.from_pylist([extra], schema=accounts.schema)]),
        tmp_path / "accounts.parquet",
    )
    (tmp_path / "transfers.parquet").symlink_to(ledger / "transfers.parquet")
    feats = mules.features_duckdb(mules.connect(tmp_path))
    idle = _row(feats, "zz-idle")
    assert idle["n_in"] == 0 and idle["hold_minutes"] == -1 and idle["days_to_first_txn"] == -1


def test_mules_outrank_victims_merchants_and_normal_accounts(ledger: Path) -> None:
    scores = mules.score_ledger(ledger, hand_model())
    assert scores.schema == mules.MULE_SCORES
    by_id = dict(
        zip(scores.column("account_id").to_pylist(), scores.column("score").to_pylist(), strict=True)
    )
    assert all(0 <= s <= 100 for s in by_id.values())
    top3 = sorted(by_id, key=by_id.get, reverse=True)[:3]
    assert sorted(top3) == MULES
    assert by_id["shop"] < min(by_id[m] for m in MULES)
    assert max(by_id[f"v{i:02d}"] for i in range(12)) < min(by_id[m] for m in MULES)


def test_each_high_score_is_explained_in_chinese(ledger: Path) -> None:
    scores = mules.score_ledger(ledger, hand_model())
    row = _row(scores, "m1")
    reasons = orjson.loads(row["reasons"])
    assert 1 <= len(reasons) <= 3
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r) for r in reasons)


def test_connected_suspects_share_a_group(ledger: Path) -> None:
    scores = mules.score_ledger(ledger, hand_model())
    groups = {r["account_id"]: r["group_id"] for r in scores.to_pylist()}
    assert groups["m1"] == groups["m2"] == groups["m3"] == "G-m1"
    assert all(g is None for a, g in groups.items() if a.startswith("n"))


def test_groups_ignore_keys_shared_by_too_many_accounts() -> None:
    links = pa.table({"account_id": ["a", "b", "c"], "node": ["i:1.1.1.1", "i:1.1.1.1", "a:a"]})
    assert mules.groups(["a", "b", "c"], links) == {"a": "G-a", "b": "G-a", "c": "G-a"}
    assert mules.groups(["a", "b"], pa.table({"account_id": ["a"], "node": ["d:x"]})) == {}
    assert MAX_SHARED_KEY_ACCOUNTS >= 2


def test_evaluation_reports_precision_recall_and_pr_auc() -> None:
    scores = np.array([90, 80, 70, 60, 50, 40.0])
    labels = np.array([1, 1, 0, 1, 0, 0], dtype=np.int8)
    m = mules.evaluate(scores, labels, ks=(2, 4))
    assert m["positives"] == 3
    assert m["at_k"]["2"] == {"precision": 1.0, "recall": pytest.approx(2 / 3)}
    assert m["at_k"]["4"]["precision"] == 0.75
    assert m["recall_at_precision_0.8"] == pytest.approx(2 / 3)
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)


def test_victims_are_not_positives(ledger: Path) -> None:
    labels = mules.load_labels(ledger, ["m1", "v00", "n00", "m3"])
    assert labels.tolist() == [1, 0, 0, 1]


def test_bundled_model_records_its_training_seeds_and_simulator() -> None:
    model = mules.load_model()
    seeds = set(model.meta["training_seeds"])
    assert len(seeds) >= 2 and not seeds & {*VALIDATION_SEEDS, *REPORT_SEEDS}
    assert model.meta["simulator_version"]
    assert model.features and set(model.features) <= set(ALL_FEATURES)
    # two passes: the first reads only the account's own features, the second also its neighbours' scores
    assert isinstance(model, mules.TreeModel) and model.first_pass is not None
    assert set(model.first_pass.features) <= set(FEATURES)
    assert set(NEIGHBOUR_FEATURES) <= set(model.features)


def test_model_round_trips_through_yaml(tmp_path: Path, ledger: Path) -> None:
    model = mules.load_model()
    mules.save_model(model, tmp_path / "m.yaml")
    mules.save_model(model, tmp_path / "m.json")
    expected = mules.score_ledger(ledger, model)
    for again in (mules.load_model(tmp_path / "m.yaml"), mules.load_model(tmp_path / "m.json")):
        assert again.features == model.features and again.version == model.version
        assert mules.score_ledger(ledger, again).equals(expected)


def test_logistic_model_round_trips_through_yaml(tmp_path: Path) -> None:
    model = hand_model()
    mules.save_model(model, tmp_path / "lr.yaml")
    again = mules.load_model(tmp_path / "lr.yaml")
    assert isinstance(again, mules.MuleModel) and again.features == model.features
    np.testing.assert_allclose(again.coef, model.coef)


@pytest.fixture(scope="module")
def trees(features: pa.Table, ledger: Path) -> mules.TreeModel:
    labels = mules.load_labels(ledger, features.column("account_id").to_pylist())
    return mules.fit_trees(
        features,
        labels,
        version="test-trees",
        meta={},
        max_iter=15,
        max_depth=3,
        learning_rate=0.1,
        min_samples_leaf=2,
    )


def test_exported_trees_score_like_scikit_learn(trees: mules.TreeModel, features: pa.Table, ledger) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    labels = mules.load_labels(ledger, features.column("account_id").to_pylist())
    x = trees.matrix(features)
    gbt = HistGradientBoostingClassifier(
        max_iter=15,
        max_depth=3,
        min_samples_leaf=2,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    ).fit(x, labels)
    np.testing.assert_allclose(trees.score(features), 100 * gbt.predict_proba(x)[:, 1], atol=1e-9)
    walked = 100 / (1 + np.exp(-trees._walk(x, None)))
    np.testing.assert_allclose(walked, trees.score(features), atol=1e-12)
    top3 = np.argsort(-trees.score(features))[:3]
    assert sorted(features.column("account_id").take(pa.array(top3)).to_pylist()) == MULES


def test_tree_path_contributions_add_up_and_explain_in_chinese(
    trees: mules.TreeModel, features: pa.Table
) -> None:
    contrib, high = trees.explain(features)
    scores = trees.score(features)
    logit = np.log(scores / (100 - scores))
    root = trees.base + sum(float(t["value"][0]) for t in trees.trees)
    np.testing.assert_allclose(contrib.sum(axis=1) + root, logit, atol=1e-9)
    assert high.shape == contrib.shape
    why = dict(
        zip(
            features.column("account_id").to_pylist(),
            mules.reasons(trees, features, scores=scores),
            strict=True,
        )
    )
    m1 = orjson.loads(why["m1"])
    assert 1 <= len(m1) <= 3 and all(any("\u4e00" <= ch <= "\u9fff" for ch in r) for r in m1)
    assert all(why[a] == "[]" for a, s in zip(why, scores, strict=True) if s < mules.REASON_MIN_SCORE)


def test_tree_model_scores_a_ledger_with_groups(trees: mules.TreeModel, ledger: Path) -> None:
    scores = mules.score_ledger(ledger, trees)
    assert scores.schema == mules.MULE_SCORES
    rows = {r["account_id"]: r for r in scores.to_pylist()}
    assert min(rows[m]["score"] for m in MULES) > max(r["score"] for a, r in rows.items() if a not in MULES)


def test_neighbour_features_weigh_counterparties_scores_by_money(ledger: Path, features: pa.Table) -> None:
    con = mules.connect(ledger)
    ids = features.column("account_id").to_pylist()
    first = mules.first_pass_table(features, np.array([90.0 if a in MULES else 2.04 for a in ids]))
    assert first.column("score_dm").to_pylist()[ids.index("m1")] == 900
    nb = mules.neighbours_duckdb(con)(first)
    assert nb.column_names == ["account_id", *NEIGHBOUR_FEATURES]
    full = mules.add_neighbours(features, nb)
    m1, m3, v0, n0 = (_row(full, a) for a in ("m1", "m3", "v00", "n00"))
    assert m1["payee_score"] == 90.0 and m1["payer_score"] == pytest.approx(2.0)  # pays m3, paid by victims
    assert m3["payer_score"] == 90.0 and m3["payee_score"] == -1  # only cash withdrawals go out
    assert v0["payee_score_max"] == 90.0 and n0["payer_score_max"] <= 2.0
    with pytest.raises(ValueError):
        mules.add_neighbours(features, nb.slice(1))
    assert "first_pass" in neighbour_sql()


@pytest.fixture(scope="module")
def two_pass(features: pa.Table, ledger: Path) -> mules.TreeModel:
    labels = mules.load_labels(ledger, features.column("account_id").to_pylist())
    small = {"max_iter": 10, "max_depth": 3, "learning_rate": 0.1, "min_samples_leaf": 2}
    first = mules.fit_trees(features, labels, version="test-first", meta={}, **small)
    full = mules.model_features(
        mules.TreeModel([], [], 0.0, np.zeros(0), first_pass=first),
        features,
        mules.neighbours_duckdb(mules.connect(ledger)),
    )
    return mules.fit_trees(
        full, labels, version="test-two-pass", meta={}, features=ALL_FEATURES, first_pass=first, **small
    )


def test_two_pass_model_scores_explains_and_round_trips(
    two_pass: mules.TreeModel, ledger: Path, tmp_path: Path
) -> None:
    scores = mules.score_ledger(ledger, two_pass)
    rows = {r["account_id"]: r for r in scores.to_pylist()}
    assert min(rows[m]["score"] for m in MULES) > max(r["score"] for a, r in rows.items() if a not in MULES)
    m1 = orjson.loads(rows["m1"]["reasons"])
    assert 1 <= len(m1) <= 3 and all(any("\u4e00" <= ch <= "\u9fff" for ch in r) for r in m1)
    for path in (tmp_path / "m.yaml", tmp_path / "m.json"):
        mules.save_model(two_pass, path)
        again = mules.load_model(path)
        assert isinstance(again, mules.TreeModel) and again.first_pass is not None
        assert again.first_pass.features == two_pass.first_pass.features
        assert mules.score_ledger(ledger, again).equals(scores)
    assert "first_pass_trees" in orjson.loads((tmp_path / "m.trees.json").read_bytes())


def test_neighbour_features_need_a_first_pass(two_pass: mules.TreeModel) -> None:
    data = two_pass.to_data()
    data.pop("first_pass")
    with pytest.raises(ValueError, match="first_pass"):
        mules.TreeModel.from_data(data)


def test_cli_trains_the_two_pass_model_and_refuses_a_validation_seed_it_trained_on(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fanzha.cli import app

    a, b, c = (build_ledger(tmp_path / f"s{seed}", seed=seed) for seed in (21, 22, 23))
    for path, seed in ((a, 21), (b, 22), (c, 23)):
        (path / "manifest.json").write_text(f'{{"seed": {seed}, "generator_version": "test"}}')
    out = tmp_path / "model.yaml"
    runner = CliRunner()
    args = ["mules", "train", "--ledger", str(a), "--ledger", str(b), "--version", "t-cli", "--trees", "20"]
    r = runner.invoke(app, [*args, "--validate", str(c), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "validation seed 23" in r.stdout
    model = mules.load_model(out)
    assert model.version == "t-cli" and model.first_pass is not None
    assert sorted(model.meta["training_seeds"]) == [21, 22]
    clash = runner.invoke(app, [*args, "--validate", str(a), "--out", str(tmp_path / "other.yaml")])
    assert clash.exit_code != 0 and not (tmp_path / "other.yaml").exists()
