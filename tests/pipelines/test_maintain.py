"""`ucx maintain`: OPTIMIZE compacts small files (Z-order where configured), VACUUM keeps >= 168 h."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ucx_spark.cli import main
from ucx_spark.errors import UcxError
from ucx_spark.maintain import check_retention, table_detail, vacuum
from ucx_spark.pipelines import maintain


def _ami_df(spark, meters: int, days: int):  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    return (
        spark.range(meters * days * 24)
        .select(
            F.format_string("M%04d", (F.col("id") % meters).cast("int")).alias("meter_id"),
            F.date_add(F.lit("2025-01-01").cast("date"), (F.col("id") / (meters * 24)).cast("int")).alias("local_date"),
            (F.col("id") % 24).cast("int").alias("local_hour"),
            (F.rand(7) * 2).alias("kwh"),
        )
    )


def test_optimize_compacts_and_zorders_then_vacuum_is_safe(spark, tmp_warehouse: Path, capsys) -> None:
    ami = tmp_warehouse / "silver" / "ami"
    # Eight small appends, like eight incremental silver batches.
    for day in range(8):
        _ami_df(spark, 40, 1).selectExpr("meter_id", f"date_add(local_date, {day}) as local_date", "local_hour", "kwh") \
            .repartition(3).write.format("delta").mode("append").save(str(ami))
    kpis = tmp_warehouse / "gold" / "cx_kpis"
    spark.range(30).selectExpr("cast(id as string) as kpi", "cast(id as double) as value") \
        .repartition(5).write.format("delta").save(str(kpis))
    rows_before = spark.read.format("delta").load(str(ami)).count()
    assert table_detail(spark, ami).files == 24

    result = maintain.run(spark, warehouse=str(tmp_warehouse), vacuum_hours=168.0)
    by_name = {t.table: t for t in result.tables}
    assert by_name["silver/ami"].files_before == 24 and by_name["silver/ami"].files_after == 1
    assert by_name["silver/ami"].action == "OPTIMIZE ZORDER BY (meter_id, local_date)"
    assert by_name["gold/cx_kpis"].files_before == 5 and by_name["gold/cx_kpis"].files_after == 1
    # 168 h retention: the replaced files are younger than that, so none is deleted.
    assert by_name["silver/ami"].vacuumed_files == 0
    assert len(list(ami.glob("*.parquet"))) == 25
    assert spark.read.format("delta").load(str(ami)).count() == rows_before
    print(result.summary())
    assert "silver/ami" in capsys.readouterr().out


def test_vacuum_below_168_hours_needs_force(spark, tmp_warehouse: Path) -> None:
    path = tmp_warehouse / "gold" / "t"
    spark.range(10).repartition(4).write.format("delta").save(str(path))
    spark.range(10).coalesce(1).write.format("delta").mode("overwrite").save(str(path))
    with pytest.raises(UcxError, match="below the safe minimum of 168 h"):
        check_retention(24, force=False)
    with pytest.raises(UcxError, match="--force-retention"):
        vacuum(spark, path, retention_hours=0)
    time.sleep(1.1)
    assert vacuum(spark, path, retention_hours=0, force=True) == 4
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled") == "true"
    assert spark.read.format("delta").load(str(path)).count() == 10


def test_cli_maintain_refuses_short_retention_before_starting_spark(tmp_path: Path, capsys) -> None:
    assert main(["maintain", "--warehouse", str(tmp_path), "--vacuum-hours", "1"]) == 2
    assert "below the safe minimum" in capsys.readouterr().err


MAINTAIN_CHILD = """
import logging, sys, time
sys.path.insert(0, {repo!r})
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
for name in ("py4j", "pyspark"):
    logging.getLogger(name).setLevel(logging.WARNING)
stop_at = sys.argv[2]

class _Hold(logging.Handler):
    def emit(self, record):
        if stop_at in record.getMessage():
            time.sleep(3600)  # the kill point: the parent SIGKILLs the process group here
logging.getLogger().addHandler(_Hold())
from ucx_spark.config import SparkConfig
from ucx_spark.session import build_spark
from ucx_spark.pipelines import maintain
spark = build_spark(SparkConfig(master="local[1]", shuffle_partitions=1, driver_memory="1g", log_level="ERROR",
                                ui_enabled=False), warehouse=sys.argv[1], time_zone="UTC")
maintain.run(spark, warehouse=sys.argv[1], vacuum_hours=0.0, force_retention=True)
print("finished", file=sys.stderr, flush=True)
"""


@pytest.mark.slow
def test_a_kill_during_maintain_leaves_tables_readable_and_a_rerun_completes(spark, tmp_warehouse: Path) -> None:
    """SIGKILL `ucx maintain` between one table's OPTIMIZE and its VACUUM (issue 24): every table
    reads as before (same rows, no damaged log), and a rerun compacts and vacuums the rest."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from ucx_spark.pipelines import rebuild

    tables = {"silver/ami": tmp_warehouse / "silver" / "ami", "gold/cx_kpis": tmp_warehouse / "gold" / "cx_kpis"}
    for day in range(4):
        _ami_df(spark, 20, 1).selectExpr("meter_id", f"date_add(local_date, {day}) as local_date", "local_hour", "kwh") \
            .repartition(3).write.format("delta").mode("append").save(str(tables["silver/ami"]))
    spark.range(30).selectExpr("cast(id as string) as kpi", "cast(id as double) as value") \
        .repartition(5).write.format("delta").save(str(tables["gold/cx_kpis"]))
    rows = {n: spark.read.format("delta").load(str(p)).count() for n, p in tables.items()}

    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.Popen([sys.executable, "-c", MAINTAIN_CHILD.format(repo=repo), str(tmp_warehouse),
                             "maintain: silver/ami optimized"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    watchdog = threading.Timer(600, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "maintain: silver/ami optimized" in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-30:])
    assert rebuild.damaged_tables(tmp_warehouse) == []
    assert {n: spark.read.format("delta").load(str(p)).count() for n, p in tables.items()} == rows
    assert table_detail(spark, tables["silver/ami"]).files == 1  # its OPTIMIZE committed before the kill

    result = maintain.run(spark, warehouse=str(tmp_warehouse), vacuum_hours=0.0, force_retention=True)
    by_name = {t.table: t for t in result.tables}
    assert by_name["gold/cx_kpis"].files_after == 1 and by_name["silver/ami"].vacuumed_files >= 12
    assert {n: spark.read.format("delta").load(str(p)).count() for n, p in tables.items()} == rows
    assert len(list(tables["silver/ami"].glob("*.parquet"))) == 1
