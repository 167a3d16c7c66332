"""Crash safety: SIGKILL the driver (Python and its JVM) in the middle of the
silver step, rerun, and get exactly the tables of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from conftest import TEST_KEY, TEST_TZ
from test_silver_pipeline import ACC1, AMI1, AMI2, AMI_MISSING, FILES_RUN1, read, run_all, write_landing

from ucx_spark.io.delta import table_exists, table_path
from ucx_spark.pipelines import accounting

REPO = Path(__file__).resolve().parent.parent
FILES = {k: v for k, v in FILES_RUN1.items() if k in {("accounts", ACC1), ("ami", AMI1), ("ami", AMI2), ("ami", AMI_MISSING)}}
KILL_AFTER = "silver: ami superseded rows logged"  # killed during the ami MERGE or just after it
RUN_DEPENDENT = {"_run_id", "run_id", "_ingested_at", "recorded_at", "processed_at"}
TABLES = [
    ("bronze", "accounts"), ("bronze", "ami"),
    ("silver", "accounts"), ("silver", "ami"), ("silver", "_superseded"), ("silver", "ami_daily_completeness"),
    ("silver", "_processed_files"),
    ("quarantine", "accounts"), ("quarantine", "ami"), ("quarantine", "_files"),
]

CHILD = f"""
import logging, sys
sys.path.insert(0, {str(REPO)!r})
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
for name in ("py4j", "pyspark"):
    logging.getLogger(name).setLevel(logging.WARNING)
from ucx_spark.config import SparkConfig
from ucx_spark.session import build_spark
from ucx_spark.pipelines import bronze, silver
landing, warehouse = sys.argv[1], sys.argv[2]
cfg = SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="1g", log_level="ERROR", ui_enabled=False)
spark = build_spark(cfg, warehouse=warehouse, time_zone={TEST_TZ!r})
bronze.run(spark, landing=landing, warehouse=warehouse, run_id="crashed")
silver.run(spark, warehouse=warehouse, run_id="crashed", time_zone={TEST_TZ!r}, pseudonym_key={TEST_KEY!r})
print("finished", file=sys.stderr, flush=True)
"""


def _run_and_kill(landing: Path, warehouse: Path) -> bool:
    """Run bronze + silver in a child process; SIGKILL its process group at KILL_AFTER."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(landing), str(warehouse)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )
    killed = False
    deadline = time.monotonic() + 600
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if KILL_AFTER in line:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return killed


def _comparable(spark, warehouse: Path, layer: str, table: str):
    df = read(spark, warehouse, layer, table)
    return df.select(*[c for c in df.columns if c not in RUN_DEPENDENT and c != "_extra"])


@pytest.mark.e2e
def test_sigkill_mid_silver_then_rerun_matches_uninterrupted_run(spark, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_landing(landing, FILES)
    crashed_wh, reference_wh = tmp_path / "crashed", tmp_path / "reference"

    assert _run_and_kill(landing, crashed_wh), f"the child never logged '{KILL_AFTER}'"
    run_all(spark, landing, crashed_wh, "rerun")
    run_all(spark, landing, reference_wh, "reference")

    for layer, table in TABLES:
        assert table_exists(spark, table_path(reference_wh, layer, table)), (layer, table)
        assert_df_equality(
            _comparable(spark, crashed_wh, layer, table),
            _comparable(spark, reference_wh, layer, table),
            ignore_row_order=True,
            ignore_nullable=True,
        )
    accounting.check_accounting(spark, str(crashed_wh))
