"""BI over JDBC: the Spark Thrift Server exposes gold.* by name; beeline queries it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ucx_spark.cli import main
from ucx_spark.cluster import free_port
from ucx_spark.serve import ThriftServer, beeline, registration_sql

KPI_ROWS = [
    (dt.date(2025, 1, 1), "all", "all", "csat_top2box", 0.8125, 16),
    (dt.date(2025, 1, 1), "all", "all", "nps", 12.5, 16),
    (dt.date(2025, 1, 1), "all", "all", "fcr", None, 0),
]
KPI_SCHEMA = "month date, segment_type string, segment_value string, kpi string, value double, n long"


@pytest.fixture
def served_warehouse(spark, tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    spark.createDataFrame(KPI_ROWS, KPI_SCHEMA).write.format("delta").save(str(wh / "gold" / "cx_kpis"))
    spark.createDataFrame([("m1", dt.date(2025, 1, 1), 1.5)], "meter_id string, local_date date, kwh double") \
        .write.format("delta").save(str(wh / "silver" / "ami"))
    (wh / "gold" / "not_delta").mkdir()  # a stray folder is not registered
    return wh


def test_registration_sql_covers_every_delta_table(served_warehouse: Path) -> None:
    sql = registration_sql(served_warehouse)
    assert sql[0] == "CREATE DATABASE IF NOT EXISTS `gold`"
    assert sql[1].startswith("CREATE TABLE IF NOT EXISTS `gold`.`cx_kpis` USING DELTA LOCATION '")
    assert sql[1].endswith(f"{served_warehouse.resolve() / 'gold' / 'cx_kpis'}'")
    assert "CREATE DATABASE IF NOT EXISTS `silver`" in sql
    assert not any("not_delta" in s for s in sql)


def test_beeline_reads_gold_by_name(served_warehouse: Path, tmp_path: Path) -> None:
    conf = {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2",
            "spark.default.parallelism": "2"}
    with ThriftServer(served_warehouse, port=free_port(), master="local[2]", driver_memory="1g", conf=conf,
                      log_dir=tmp_path, start_timeout=240) as server:
        assert set(server.registered) == {"`gold`.`cx_kpis`", "`silver`.`ami`"}
        result = beeline(server.port, sql="select kpi, value, n from gold.cx_kpis order by kpi; "
                                          "show tables in silver;")
        assert result.returncode == 0, result.stderr[-3000:]
    lines = [ln.split("> ")[-1] for ln in result.stdout.splitlines() if ln.strip()]
    assert lines[:4] == ["kpi,value,n", "csat_top2box,0.8125,16", "fcr,NULL,0", "nps,12.5,16"], result.stdout
    assert any(ln.startswith("silver,ami,") for ln in lines), result.stdout
    # The registration lives in the persistent Derby metastore the Spark sessions use.
    assert (served_warehouse / "_metastore" / "metastore_db" / "service.properties").is_file()


def test_serve_sql_refuses_a_missing_warehouse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve-sql", "--warehouse", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
