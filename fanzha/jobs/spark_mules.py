"""Mule scoring on Apache Spark: the same feature SQL as the embedded engine, then the same scoring code.

Features and clustering links are computed by Spark SQL over the ledger's Parquet files; the per-account
feature rows (one per account, far fewer than transfers) come back to the driver as Arrow and are scored,
explained and grouped by `fanzha.payments.mules`, so both engines give the same scores. A two-pass model's
first-pass scores go back to Spark as a table (one integer per account) for the neighbour query.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from fanzha.payments import mules
from fanzha.payments.mule_features import feature_sql, links_sql, neighbour_sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _ledger_path(ledger: str, name: str) -> str:
    # Cluster paths (hdfs://, s3a://) cannot be checked locally; take them as given.
    if "://" in ledger:
        return f"{ledger.rstrip('/')}/{name}.parquet"
    return mules._ledger_file(Path(ledger), name)


def _read(spark: SparkSession, path: str):
    if path.endswith(".csv"):
        return spark.read.csv(path, header=True, inferSchema=True)
    return spark.read.parquet(path)


def score_ledger(ledger: str, spark: SparkSession, model: mules.Model | None = None) -> pa.Table:
    """The MuleScore table for a ledger directory (local path or cluster URI), computed with Spark."""
    model = model or mules.load_model()
    for name in ("transfers", "accounts"):
        _read(spark, _ledger_path(ledger, name)).createOrReplaceTempView(name)

    def run_neighbours(first_pass: pa.Table) -> pa.Table:
        spark.createDataFrame(first_pass).createOrReplaceTempView("first_pass")
        return spark.sql(neighbour_sql()).toArrow()

    feats = mules.model_features(model, spark.sql(feature_sql("spark")).toArrow(), run_neighbours)
    scores = model.score(feats)
    ids = feats.column("account_id").to_pylist()
    suspect_ids = [a for a, s in zip(ids, scores, strict=True) if s >= model.group_threshold]
    spark.createDataFrame([(a,) for a in suspect_ids], "account_id string").createOrReplaceTempView(
        "suspects"
    )
    links = spark.sql(links_sql()).toArrow()
    return mules.assemble(model, feats, mules.groups(suspect_ids, links), scores)
