"""One session-scoped Delta-enabled SparkSession for the whole test run."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
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
        driver_memory="6g",  # the whole suite in one JVM: at 4g a late module ran out of heap building a broadcast
        metastore="none",
        log_level="ERROR",
        ui_enabled=False,
        extra={
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
            # The SQL status store keeps every execution's plan graph: a test run executes thousands
            # of large plans (household_features), which filled the heap and left the JVM in full GC.
            "spark.sql.ui.retainedExecutions": "20",
            "spark.sql.limit.initialNumPartitions": "64",
        },
    )
    session = build_spark(cfg, warehouse=str(spark_warehouse), time_zone=TEST_TZ)
    yield session
    session.stop()


@pytest.fixture(scope="module", autouse=True)
def _release_between_modules():
    """After each test module: drop Spark's cached tables and the per-warehouse GX contexts the
    module's warehouses left behind (each holds plans of the DataFrames it validated)."""
    yield
    import gc

    from ucx_spark.quality import gates

    gates.release_contexts()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()
    gc.collect()


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    wh.mkdir()
    return wh


@dataclass(frozen=True)
class InsightsWarehouse:
    """A generated utility (tests/insights_synth.py) with trained champions and scores."""

    warehouse: Path
    tracking_uri: str
    frames: dict


@pytest.fixture(scope="session")
def insights_wh(spark, tmp_path_factory: pytest.TempPathFactory) -> InsightsWarehouse:
    """Built once per test run: ~500 households, three champions (1 Optuna trial each), gold/household_scores.

    The insights tests (drivers, what-if, segments, saturation, targeting, report)
    share it: training is the expensive part. They may add gold tables to it but
    must not change household_features or the registered models.
    """
    from insights_synth import build_insights_warehouse

    from ucx_spark.pipelines import score as score_pipeline
    from ucx_spark.pipelines import train as train_pipeline

    wh = tmp_path_factory.mktemp("insights-wh")
    frames = build_insights_warehouse(spark, wh)
    uri = f"sqlite:///{wh / '_mlflow' / 'mlflow.db'}"
    (wh / "_mlflow").mkdir()
    train_pipeline.run(
        spark, warehouse=str(wh), tracking_uri=uri, experiment="ucx-insights-test",
        models=["csat", "ev_adoption", "payment_risk"], trials=1, run_id="insights-train", time_zone=TEST_TZ,
        # The insight tests need a champion of every model; on this synthetic utility's linear
        # signal one tuning trial need not beat the linear baseline (test_models_validation
        # covers that rule).
        require_baseline_lift=False,
    )
    score_pipeline.run(spark, warehouse=str(wh), tracking_uri=uri, run_id="insights-score")
    return InsightsWarehouse(wh, uri, frames)


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite MLflow tracking and registry store per test module (creating its tables is the slow
    part); the tests of a module use distinct model names."""
    from ucx_spark.models import registry

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry.prepare_tracking(uri, "registry-test", artifact_root=root / "artifacts")
    return uri
