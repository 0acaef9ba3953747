"""SparkSession builder for fanzha jobs: local mode with small defaults, a cluster master when given."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_ENV = "FANZHA_SPARK_MASTER"


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "fanzha",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
) -> SparkSession:
    """Get or create a session; master from the argument, else $FANZHA_SPARK_MASTER, else `local[2]`.

    Under spark-submit the master is already set by the launcher and wins over these defaults.
    """
    from pyspark.sql import SparkSession

    master = master or os.environ.get(MASTER_ENV) or "local[2]"
    local = master.startswith("local")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        # Naive ledger timestamps are China Standard Time already; reading them as UTC instants in a UTC
        # session keeps hours and epochs identical to DuckDB's.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.inferTimestampNTZ.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or (4 if local else 200)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false" if local else "true")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if local:
        # Local workers must run this interpreter (its venv has fanzha's dependencies), not the system
        # python3; PySpark reads the worker interpreter from the environment when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.memory", driver_memory or "1g")
    elif driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    return builder.getOrCreate()
