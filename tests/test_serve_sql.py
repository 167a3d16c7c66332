"""BI over JDBC: the Spark Thrift Server exposes gold.* by name; beeline queries it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from ucx_spark.cli import main
from ucx_spark.cluster import free_port
from ucx_spark.errors import UcxError
from ucx_spark.serve import ThriftServer, add_user, beeline, hash_password, registration_sql, verify_password

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


@pytest.mark.slow
def test_beeline_reads_gold_by_name(served_warehouse: Path, tmp_path: Path) -> None:
    conf = {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2",
            "spark.default.parallelism": "2"}
    with ThriftServer(served_warehouse, port=free_port(), master="local[2]", driver_memory="1g", conf=conf,
                      log_dir=tmp_path, start_timeout=240) as server:
        assert set(server.registered) == {"`gold`.`cx_kpis`", "`silver`.`ami`"}
        result = beeline(server.port, sql="select kpi, value, n from gold.cx_kpis order by kpi; "
                                          "show tables in silver;")
        assert result.returncode == 0, result.stderr[-3000:]
        # the latest month by a scalar subquery on a date column, as BI tools write it (Delta's
        # metadata-only answer to max(month) broke it under the Thrift server's java.time results)
        latest = beeline(server.port, sql="select kpi, value from gold.cx_kpis "
                                          "where month = (select max(month) from gold.cx_kpis) and kpi = 'nps';")
        assert latest.returncode == 0 and "ClassCastException" not in latest.stdout + latest.stderr, \
            latest.stderr[-3000:]
        assert "nps,12.5" in [ln.split("> ")[-1] for ln in latest.stdout.splitlines()], latest.stdout
    lines = [ln.split("> ")[-1] for ln in result.stdout.splitlines() if ln.strip()]
    assert lines[:4] == ["kpi,value,n", "csat_top2box,0.8125,16", "fcr,NULL,0", "nps,12.5,16"], result.stdout
    assert any(ln.startswith("silver,ami,") for ln in lines), result.stdout
    # The registration lives in the persistent Derby metastore the Spark sessions use.
    assert (served_warehouse / "_metastore" / "metastore_db" / "service.properties").is_file()


def test_serve_sql_refuses_a_missing_warehouse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve-sql", "--warehouse", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_beyond_loopback_needs_authentication(served_warehouse: Path, tmp_path: Path) -> None:
    """Binding 0.0.0.0 without --auth is refused before anything starts."""
    server = ThriftServer(served_warehouse, port=free_port(), host="0.0.0.0", log_dir=tmp_path)
    with pytest.raises(UcxError, match="refusing to serve the warehouse on 0.0.0.0 without authentication"):
        server.start()
    assert server.proc is None
    with pytest.raises(UcxError, match="no SQL user"):
        ThriftServer(served_warehouse, port=free_port(), host="0.0.0.0", auth="password", log_dir=tmp_path).start()


def test_password_hashes_verify_and_the_users_file_is_private(served_warehouse: Path) -> None:
    stored = hash_password("correct horse battery", iterations=1000, salt=b"0123456789abcdef")
    assert stored.startswith("pbkdf2_sha256$1000$") and verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY") and not verify_password("garbage", "x")
    path = add_user(served_warehouse, "analyst", "first-password-1")
    add_user(served_warehouse, "analyst", "second-password-2")  # replaced, not duplicated
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and verify_password(lines[0].split(":", 1)[1], "second-password-2")
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert "second-password-2" not in path.read_text()
    with pytest.raises(UcxError, match="at least 12"):
        add_user(served_warehouse, "bob", "short")
    with pytest.raises(UcxError, match="SQL user name"):
        add_user(served_warehouse, "_ucx_service", "long-enough-password")


@pytest.mark.slow
def test_password_authentication_end_to_end_with_beeline(served_warehouse: Path, tmp_path: Path) -> None:
    """--auth password on 0.0.0.0: HiveServer2 CUSTOM authentication (conf/thrift-auth) lets the
    user in with the right password only; tables are registered by the server's one-time service
    user, whose file is gone once the server stops."""
    add_user(served_warehouse, "analyst", "s3cret-analyst-pass")
    conf = {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2",
            "spark.default.parallelism": "2"}
    with ThriftServer(served_warehouse, port=free_port(), host="0.0.0.0", auth="password", master="local[2]",
                      driver_memory="1g", conf=conf, log_dir=tmp_path, start_timeout=240) as server:
        assert set(server.registered) == {"`gold`.`cx_kpis`", "`silver`.`ami`"}
        service = served_warehouse / "_metastore" / "service_user"
        assert oct(service.stat().st_mode & 0o777) == "0o600"
        ok = beeline(server.port, sql="select count(*) as n from gold.cx_kpis;", user="analyst",
                     password="s3cret-analyst-pass")
        wrong = beeline(server.port, sql="select 1;", user="analyst", password="not-the-password", timeout=120)
        nobody = beeline(server.port, sql="select 1;", user="mallory", password="s3cret-analyst-pass", timeout=120)
        anonymous = beeline(server.port, sql="select 1;", timeout=120)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert [ln.split("> ")[-1] for ln in ok.stdout.splitlines() if ln.strip()][:2] == ["n", "3"], ok.stdout
    for refused in (wrong, nobody, anonymous):
        assert refused.returncode != 0 and "3" not in refused.stdout
        assert re.search(r"(?i)login|authenticat|peer indicated failure", refused.stdout + refused.stderr), refused.stderr[-2000:]
    assert not service.exists()
    assert "s3cret-analyst-pass" not in (tmp_path / "thriftserver.log").read_text(errors="replace")
