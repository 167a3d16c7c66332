"""One session-scoped Delta-enabled SparkSession for the whole test run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ucx_spark.config import SparkConfig
from ucx_spark.session import build_spark

TEST_TZ = "America/Chicago"
TEST_KEY = b"test-pseudonym-key"


@pytest.fixture(scope="session")
def spark_warehouse() -> Path:
    path = Path(tempfile.mkdtemp(prefix="ucx-test-wh-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(spark_warehouse: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    cfg = SparkConfig(
        master="local[2]",
        app_name="ucx-tests",
        shuffle_partitions=2,
        driver_memory="3g",
        metastore="none",
        log_level="ERROR",
        ui_enabled=False,
        extra={
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        },
    )
    session = build_spark(cfg, warehouse=str(spark_warehouse), time_zone=TEST_TZ)
    yield session
    session.stop()


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    wh.mkdir()
    return wh
