"""The same jobs on a Spark standalone cluster: a Master and two Workers on 127.0.0.1.

The package goes to the executors as a zip made at test time (--py-files), Delta
as jars (--jars), and the warehouse is a local folder every process shares.
Gold written on the cluster must equal gold written by a local run on the same
input, row by row (run-time columns such as run_id excluded).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from chispa import assert_df_equality
from clusterkit import REPO, comparable, submit
from conftest import TEST_KEY, TEST_TZ

from ucx_spark.cluster import StandaloneCluster, package_zip

pytestmark = pytest.mark.slow  # a standalone cluster beside the test JVM: CI and `make test-all` run it

SUBMIT_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g") as running:
        yield running


@pytest.fixture(scope="module")
def pyfiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_zip(tmp_path_factory.mktemp("pyfiles") / "ucx_spark.zip")


def _submit_to(cluster: StandaloneCluster, app: Path, args: list[str], work: Path, pyfiles: Path,
               timeout: float) -> None:
    submit(
        app, args, master=cluster.master_url, work_dir=work, py_files=[pyfiles],
        conf=SUBMIT_CONF, env={"UCX_PSEUDONYM_KEY": TEST_KEY.decode()}, timeout=timeout,
        executor_memory="1g", total_executor_cores=2,
    ).check(f"spark-submit {app.name} to {cluster.master_url}")


def _completed_apps(cluster: StandaloneCluster) -> list[dict]:
    with urllib.request.urlopen(cluster.status_url, timeout=5) as resp:  # noqa: S310 - loopback
        return list(json.load(resp).get("completedapps", []))


def test_standin_job_on_cluster_equals_local(spark, cluster, pyfiles, tmp_path: Path) -> None:
    """Harness check independent of the pipeline steps: session plumbing, --py-files, Delta, shuffle."""
    import standin_job

    landing = tmp_path / "landing"
    (landing / "ami").mkdir(parents=True)
    rows = ["meter_id,read_at,kwh"]
    for meter in ("M1", "M2", "M3"):
        for hour in range(48):
            kwh = "" if (meter == "M2" and hour == 5) else f"{0.1 * (hour % 7) + int(meter[1]):.3f}"
            rows.append(f"{meter},2025-03-0{1 + hour // 24}T{hour % 24:02d}:00:00Z,{kwh}")
    (landing / "ami" / "reads_20250303T000000Z.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    warehouse = tmp_path / "warehouse"

    _submit_to(cluster, REPO / "tests" / "standin_job.py",
               ["--env", "test", "--landing", str(landing), "--warehouse", str(warehouse), "--run-id", "cluster"],
               tmp_path / "submit", pyfiles, timeout=300)

    got_df = spark.read.format("delta").load(str(warehouse / "gold" / standin_job.TABLE))
    origins = {r[0] for r in got_df.select("module_origin").distinct().collect()}
    assert origins and all(".zip" in o for o in origins), f"executors did not import the shipped zip: {origins}"
    expected_df = standin_job.daily_usage(standin_job.read_reads(spark, str(landing)), time_zone=TEST_TZ)
    assert_df_equality(
        comparable(got_df.drop("module_origin")), comparable(expected_df.drop("module_origin")),
        ignore_row_order=True, ignore_column_order=True, ignore_nullable=True,
    )
    assert got_df.count() == 3 * 3  # 48 UTC hours in America/Chicago span 3 local dates
    assert any(app.get("state") == "FINISHED" for app in _completed_apps(cluster))


GOLD_TABLES = ("meter_daily_usage", "cx_kpis", "household_features")


@pytest.mark.e2e
def test_pipeline_on_cluster_equals_local(spark, cluster, pyfiles, tmp_path: Path) -> None:
    from ucx_spark.config import load_config
    from ucx_spark.generate import generate_utility
    from ucx_spark.pipelines import medallion

    landing = tmp_path / "landing"
    generate_utility(spark, str(landing), households=20, months=2, interval_minutes=60, seed=42, time_zone=TEST_TZ)
    cfg = load_config(env="test")
    assert cfg.utility.time_zone == TEST_TZ

    # Local run, in this test's own local[2] session (saves starting another JVM).
    local_wh = tmp_path / "local_wh"
    medallion.run(spark, cfg=cfg.with_paths(landing=str(landing), warehouse=str(local_wh)), pseudonym_key=TEST_KEY,
                  run_id="local", gates=False)

    cluster_wh = tmp_path / "cluster_wh"
    _submit_to(cluster, REPO / "jobs" / "pipeline.py",
               ["--env", "test", "--landing", str(landing), "--warehouse", str(cluster_wh), "--run-id", "cluster",
                "--no-gates"],
               tmp_path / "submit", pyfiles, timeout=900)

    for table in GOLD_TABLES:
        local_df = spark.read.format("delta").load(str(local_wh / "gold" / table))
        cluster_df = spark.read.format("delta").load(str(cluster_wh / "gold" / table))
        assert cluster_df.count() == local_df.count(), table
        assert_df_equality(comparable(cluster_df), comparable(local_df), ignore_row_order=True,
                           ignore_column_order=True, ignore_nullable=True)
