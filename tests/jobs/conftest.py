"""One local Spark session for all job tests: starting the JVM is the slow part."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    if shutil.which("java") is None:
        reason = "Java is not installed (.ci/run installs default-jre-headless)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must run the Spark tests, not skip them
        pytest.skip(reason)
    from fanzha.jobs.spark_session import spark_session

    session = spark_session("local[2]", app_name="fanzha-tests", shuffle_partitions=2, driver_memory="768m")
    yield session
    session.stop()
