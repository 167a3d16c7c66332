"""Crash safety: SIGKILL the driver (Python and its JVM) in the middle of
bronze, then of silver, then of gold, rerun the medallion, and get exactly the
tables of an uninterrupted run.

One uninterrupted reference run happens in this process. The crashed
warehouse goes through a chain of runs, each a child process in its own
process group: the first is killed mid-bronze, the rerun mid-silver, the next
mid-gold, and the last completes. Each kill is checked to have landed inside
its layer; at the end every bronze, silver and quarantine table, the three
gold tables and the run's accounting equal the reference's. A chain costs
four child runs instead of six for three independent kill points, and it is
the harder case: every rerun starts from the debris of the previous crash.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

import pytest
from chispa import assert_df_equality
from conftest import TEST_TZ
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.config import Config
from ucx_spark.generate import generate_utility
from ucx_spark.io.delta import read_table, table_path
from ucx_spark.pipelines import accounting, medallion

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KEY = b"crash-pseudonym-key"
AS_OF = [date(2025, 11, 30), date(2025, 12, 31)]
# A subset of the generated feeds keeps the runs short yet covers every special
# path: accounts (pseudonyms, names for scrubbing), households (household
# matching), ami (superseding, completeness, a rejected corrupt file), contacts
# (free text) and surveys (cx_kpis).
FEEDS = ("accounts", "households", "ami", "contacts", "surveys")
GOLD_TABLES = ("meter_daily_usage", "cx_kpis", "household_features")
RUN_DEPENDENT = {"_run_id", "run_id", "_ingested_at", "recorded_at", "processed_at"}
CHILD_TIMEOUT_S = 900
MARKER = "crash-test: committed"

# The child runs the whole medallion. gold.run writes each gold table with
# overwrite_table and logs nothing in between, so the child wraps it to print
# a marker line once a table's Delta commit has returned.
CHILD = f"""
import datetime, logging, sys
sys.path.insert(0, {str(REPO)!r})
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
for name in ("py4j", "pyspark"):
    logging.getLogger(name).setLevel(logging.WARNING)
from ucx_spark.config import Config, SparkConfig
from ucx_spark.session import build_spark
from ucx_spark.pipelines import gold, medallion
import time
landing, warehouse, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
stop_at = sys.argv[4] if len(sys.argv) > 4 else None

def _hold(text):
    # The kill point: the thread that got there waits for the SIGKILL, so the kill lands exactly
    # here however slowly the parent reads (under load the child used to run on past it).
    if stop_at and stop_at in text:
        time.sleep(3600)

class _Hold(logging.Handler):
    def emit(self, record):
        _hold(record.getMessage())
logging.getLogger().addHandler(_Hold())

_overwrite = gold.overwrite_table
def overwrite_table(df, wh, layer, table, *args, **kwargs):
    out = _overwrite(df, wh, layer, table, *args, **kwargs)
    line = f"{MARKER} {{layer}}/{{table}}"
    print(line, file=sys.stderr, flush=True)
    _hold(line)
    return out
gold.overwrite_table = overwrite_table

spark_cfg = SparkConfig(
    master="local[2]", shuffle_partitions=2, driver_memory="1g", log_level="ERROR", ui_enabled=False,
    extra={{
        "spark.default.parallelism": "2",
        "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    }},
)
spark = build_spark(spark_cfg, warehouse=warehouse, time_zone={TEST_TZ!r})
cfg = Config().with_paths(landing=landing, warehouse=warehouse)
medallion.run(spark, cfg=cfg, pseudonym_key={KEY!r}, run_id=run_id, gates=False, as_of_dates={AS_OF!r})
spark.stop()
print("finished", file=sys.stderr, flush=True)
"""

# (kill point, the stderr line to SIGKILL the child at)
KILL_POINTS = {
    # accounts' append is committed; the rejected files are not recorded yet (last in bronze)
    "mid-bronze": "bronze: accounts landed",
    # ami's bad rows are quarantined; its winners, the processed-files mark and gold are not done
    "mid-silver": "silver: ami quarantine written",
    # gold/meter_daily_usage is published; cx_kpis and household_features are not
    "mid-gold": f"{MARKER} gold/meter_daily_usage",
}


@contextmanager
def _child(landing: Path, warehouse: Path, run_id: str, stop_at: str | None = None) -> Iterator[subprocess.Popen]:
    """The medallion in a child process in its own process group, killed on exit or timeout."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "GX_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(landing), str(warehouse), run_id, *([stop_at] if stop_at else [])],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )
    watchdog = threading.Timer(CHILD_TIMEOUT_S, _kill_group, args=(proc.pid,))
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        _kill_group(proc.pid)  # the driver's JVM too, also after a normal exit
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _run_and_kill(landing: Path, warehouse: Path, kill_after: str) -> list[str]:
    """Run the medallion in a child; SIGKILL its process group when it logs ``kill_after``."""
    seen: list[str] = []
    with _child(landing, warehouse, "crashed", stop_at=kill_after) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line.rstrip("\n"))
            if kill_after in line:
                _kill_group(proc.pid)
                proc.wait(timeout=60)
                return seen
    tail = "\n".join(seen[-40:])
    raise AssertionError(f"the child never logged {kill_after!r}; its stderr ended with:\n{tail}")


def _run_to_completion(landing: Path, warehouse: Path, run_id: str) -> None:
    with _child(landing, warehouse, run_id) as proc:
        assert proc.stderr is not None
        lines = [line.rstrip("\n") for line in proc.stderr]
        code = proc.wait(timeout=60)
    tail = "\n".join(lines[-40:])
    assert code == 0 and "finished" in lines, f"rerun failed (exit {code}); stderr ended with:\n{tail}"


def _tables(warehouse: Path) -> list[tuple[str, str]]:
    """Every Delta table of bronze, silver and quarantine, plus the three gold tables."""
    found = [
        (layer, d.name)
        for layer in ("bronze", "silver", "quarantine")
        for d in sorted((warehouse / layer).iterdir())
        if (d / "_delta_log").is_dir()
    ]
    return found + [("gold", t) for t in GOLD_TABLES]


def _comparable(spark, warehouse: Path, layer: str, table: str):
    """The table without run-time columns; maps (bronze _extra) as sorted entries, which sort and
    compare; doubles rounded to 9 significant digits: a sum of doubles depends on the order Spark
    adds its terms, and a crashed warehouse's files (written over several runs) are laid out and
    split differently from the reference's (an aggregate differed in its 16th digit)."""
    df = read_table(spark, warehouse, layer, table)

    def comparable(f):  # noqa: ANN001, ANN202
        if isinstance(f.dataType, T.MapType):
            return F.array_sort(F.map_entries(f.name)).alias(f.name)
        if isinstance(f.dataType, (T.DoubleType, T.FloatType)):
            value = F.col(f.name)
            scale = F.pow(F.lit(10.0), F.lit(8) - F.floor(F.log10(F.abs(value))))
            return F.when((value == 0) | value.isNull() | F.isnan(value), value).otherwise(
                F.round(value * scale) / scale).alias(f.name)
        return F.col(f.name)

    return df.select(*[comparable(f) for f in df.schema.fields if f.name not in RUN_DEPENDENT])


def _assert_same(got_df, expected_df) -> None:
    """Equal as multisets of rows. exceptAll both ways runs in Spark; chispa (which
    collects and compares row by row in Python, slow on bronze/silver ami) only
    runs to describe a difference."""
    same_schema = [(f.name, f.dataType) for f in got_df.schema] == [(f.name, f.dataType) for f in expected_df.schema]
    if same_schema and got_df.exceptAll(expected_df).isEmpty() and expected_df.exceptAll(got_df).isEmpty():
        return
    assert_df_equality(got_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    raise AssertionError("the tables differ")  # e.g. only in a type's nullability


def _exists(warehouse: Path, layer: str, table: str) -> bool:
    return (Path(table_path(warehouse, layer, table)) / "_delta_log").is_dir()


@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory):
    """A tiny generated landing zone and one uninterrupted medallion run over it (in this process)."""
    root = tmp_path_factory.mktemp("crash")
    landing, warehouse = root / "landing", root / "reference"
    # seed=11: with 12 households some seeds (3, 7) produce no survey at all and
    # the generator fails on the empty frame (KeyError 'responded_at').
    generate_utility(spark, str(landing), households=12, months=2, interval_minutes=60, seed=11)
    for d in landing.iterdir():
        if d.is_dir() and d.name not in FEEDS:
            shutil.rmtree(d)
    cfg = Config().with_paths(landing=str(landing), warehouse=str(warehouse))
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="reference", gates=False, as_of_dates=AS_OF)
    tables = _tables(warehouse)
    assert {t for layer, t in tables if layer == "silver"} >= {"ami", "accounts", "_superseded", "_processed_files"}
    return root, landing, warehouse, tables


def _state_at_kill(warehouse: Path) -> dict[str, bool]:
    return {
        "bronze/accounts": _exists(warehouse, "bronze", "accounts"),
        "bronze/surveys": _exists(warehouse, "bronze", "surveys"),
        "quarantine/_files": _exists(warehouse, "quarantine", "_files"),
        "silver/accounts": _exists(warehouse, "silver", "accounts"),
        "silver/ami": _exists(warehouse, "silver", "ami"),
        "silver/surveys": _exists(warehouse, "silver", "surveys"),
        "silver/_processed_files": _exists(warehouse, "silver", "_processed_files"),
        "gold/meter_daily_usage": _exists(warehouse, "gold", "meter_daily_usage"),
        "gold/cx_kpis": _exists(warehouse, "gold", "cx_kpis"),
    }


# What must (True) and must not (False) be on disk when the child is killed,
# proving that the kill landed inside the layer. Feeds land and are processed
# side by side (spark.feed_threads), so which other feed got how far varies;
# the marks each step writes last do not.
EXPECTED_AT_KILL = {
    "mid-bronze": {"bronze/accounts": True, "quarantine/_files": False, "silver/accounts": False},
    "mid-silver": {"bronze/surveys": True, "silver/accounts": True, "silver/_processed_files": False,
                   "gold/meter_daily_usage": False},
    "mid-gold": {"silver/surveys": True, "gold/meter_daily_usage": True, "gold/cx_kpis": False},
}


def test_sigkill_mid_bronze_silver_and_gold_then_rerun_matches_uninterrupted_run(spark, reference) -> None:
    root, landing, reference_wh, tables = reference
    crashed_wh = root / "crashed"

    for point, kill_after in KILL_POINTS.items():
        _run_and_kill(landing, crashed_wh, kill_after)
        at_kill = _state_at_kill(crashed_wh)
        assert {k: at_kill[k] for k in EXPECTED_AT_KILL[point]} == EXPECTED_AT_KILL[point], (point, at_kill)

    _run_to_completion(landing, crashed_wh, "rerun")

    assert _tables(crashed_wh) == tables
    for layer, table in tables:
        _assert_same(_comparable(spark, crashed_wh, layer, table), _comparable(spark, reference_wh, layer, table))
    # The completing run counted exactly what the uninterrupted run counted, and it balances.
    runs = {
        wh: read_table(spark, wh, "gold", "pipeline_runs").where(F.col("run_id") == run_id).drop(*RUN_DEPENDENT)
        for wh, run_id in ((crashed_wh, "rerun"), (reference_wh, "reference"))
    }
    _assert_same(runs[crashed_wh], runs[reference_wh])
    accounting.check_accounting(spark, str(crashed_wh))
