"""The Spark mule job gives the embedded engine's scores, reasons and groups on the same ledger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fanzha.jobs import spark_mules
from fanzha.payments import mules
from tests.payments.test_mules import build_ledger, hand_model


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ledger(tmp_path_factory.mktemp("ledger"), seed=11)


def test_spark_features_equal_duckdb_features(ledger: Path, spark) -> None:
    from fanzha.payments.mule_features import feature_sql

    for name in ("transfers", "accounts"):
        spark.read.parquet(str(ledger / f"{name}.parquet")).createOrReplaceTempView(name)
    on_spark = spark.sql(feature_sql("spark")).toArrow()
    embedded = mules.features_duckdb(mules.connect(ledger))
    assert on_spark.column_names == embedded.column_names
    assert on_spark.column("account_id").to_pylist() == embedded.column("account_id").to_pylist()
    for name in embedded.column_names[1:]:
        np.testing.assert_allclose(
            on_spark.column(name).to_numpy(),
            embedded.column(name).to_numpy(),
            rtol=1e-9,
            atol=1e-9,
            err_msg=name,
        )


def test_spark_neighbour_features_equal_duckdb(ledger: Path, spark) -> None:
    from fanzha.payments.mule_features import neighbour_sql

    for name in ("transfers", "accounts"):
        spark.read.parquet(str(ledger / f"{name}.parquet")).createOrReplaceTempView(name)
    con = mules.connect(ledger)
    feats = mules.features_duckdb(con)
    first = mules.first_pass_table(feats, np.linspace(0.0, 100.0, feats.num_rows))
    spark.createDataFrame(first).createOrReplaceTempView("first_pass")
    on_spark = spark.sql(neighbour_sql()).toArrow()
    embedded = mules.neighbours_duckdb(con)(first)
    assert on_spark.column_names == embedded.column_names
    assert on_spark.column("account_id").to_pylist() == embedded.column("account_id").to_pylist()
    for name in embedded.column_names[1:]:  # integer sums: identical, not merely close
        np.testing.assert_array_equal(on_spark.column(name).to_numpy(), embedded.column(name).to_numpy())


def test_spark_scores_equal_embedded_scores(ledger: Path, spark) -> None:
    # The bundled model (two-pass gradient-boosted trees) and hand-set logistic weights (which put the ring
    # above the group threshold, so the groups are compared too) must give identical results on both engines.
    for model in (mules.load_model(), hand_model()):
        on_spark = spark_mules.score_ledger(str(ledger), spark, model)
        _assert_same(on_spark, mules.score_ledger(ledger, model))
    assert {r["account_id"] for r in on_spark.to_pylist() if r["group_id"]} >= {"m1", "m2", "m3"}


def _assert_same(on_spark, embedded) -> None:
    assert on_spark.schema == embedded.schema
    assert on_spark.column("account_id").to_pylist() == embedded.column("account_id").to_pylist()
    np.testing.assert_allclose(
        on_spark.column("score").to_numpy(), embedded.column("score").to_numpy(), atol=1e-6
    )
    assert on_spark.column("group_id").to_pylist() == embedded.column("group_id").to_pylist()
    assert on_spark.column("reasons").to_pylist() == embedded.column("reasons").to_pylist()
