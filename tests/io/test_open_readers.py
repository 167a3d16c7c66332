"""Gold stays readable without Spark: delta-rs (the `deltalake` package) reads what Spark wrote."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

from ucx_spark.io.delta import overwrite_table
from ucx_spark.maintain import optimize

KPI_SCHEMA = "month date, segment_type string, segment_value string, kpi string, value double, n long"


def _rows(df: pd.DataFrame) -> list[tuple]:
    out = []
    for r in df.sort_values(["month", "kpi"]).itertuples(index=False):
        value = None if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)) else r.value
        out.append((pd.Timestamp(r.month).date(), r.segment_type, r.segment_value, r.kpi, value, int(r.n)))
    return out


def test_deltalake_reads_gold_written_by_spark(spark, tmp_warehouse: Path) -> None:
    first = [(dt.date(2025, 1, 1), "all", "all", "nps", 10.0, 20)]
    overwrite_table(spark.createDataFrame(first, KPI_SCHEMA), tmp_warehouse, "gold", "cx_kpis")
    current = [
        (dt.date(2025, 1, 1), "all", "all", "csat_top2box", 0.75, 20),
        (dt.date(2025, 1, 1), "all", "all", "fcr", None, 0),
        (dt.date(2025, 2, 1), "all", "all", "nps", -12.5, 18),
    ]
    # Several small files, then the compaction `ucx maintain` runs: readers must not care.
    overwrite_table(spark.createDataFrame(current, KPI_SCHEMA).repartition(3), tmp_warehouse, "gold", "cx_kpis")
    path = tmp_warehouse / "gold" / "cx_kpis"
    optimize(spark, path)

    table = DeltaTable(str(path))
    assert table.version() == 2  # overwrite, overwrite, optimize
    df = table.to_pandas()
    assert sorted(df.columns) == sorted(["month", "segment_type", "segment_value", "kpi", "value", "n"])
    assert _rows(df) == sorted(current, key=lambda r: (r[0], r[3]))
    # Time travel works for open readers too.
    assert _rows(DeltaTable(str(path), version=0).to_pandas()) == first


def test_deltalake_reads_partitioned_table(spark, tmp_warehouse: Path) -> None:
    rows = [("k1", dt.date(2025, 1, d), float(d)) for d in (1, 2, 3)] + [("k2", dt.date(2025, 2, 1), None)]
    df = spark.createDataFrame(rows, "meter_key string, local_date date, kwh double")
    # Written directly: io.delta.overwrite_table(partition_by=...) combines overwriteSchema with the
    # session's dynamic partition overwrite mode, which Delta rejects (reported to the lead).
    df.write.format("delta").partitionBy("meter_key").save(str(tmp_warehouse / "gold" / "meter_daily_usage"))
    got = DeltaTable(str(tmp_warehouse / "gold" / "meter_daily_usage")).to_pandas()
    got = got.sort_values(["meter_key", "local_date"]).reset_index(drop=True)
    assert got["meter_key"].tolist() == ["k1", "k1", "k1", "k2"]
    assert [pd.Timestamp(d).date() for d in got["local_date"]] == [r[1] for r in rows]
    assert got["kwh"].tolist()[:3] == [1.0, 2.0, 3.0] and math.isnan(got["kwh"].tolist()[3])
