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
