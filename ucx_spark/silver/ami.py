"""AMI extras: local date/hour in the utility time zone and the length of a local day (see ami_daily)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.local_time import local_day_minutes, local_timestamp
from ucx_spark.silver.rules import value_col


def with_local_time(df: DataFrame, *, time_zone: str, source: str = "interval_start") -> DataFrame:
    """Adds ``local_date`` (date) and ``local_hour`` (int) of ``source`` in the utility time zone."""
    wall = local_timestamp(F.col(source), time_zone=time_zone)
    return df.withColumns({"local_date": F.to_date(wall), "local_hour": F.hour(wall).cast("int")})


def expected_intervals(local_date: Column, interval_minutes: Column, *, time_zone: str) -> Column:
    """Intervals in the local day: 96 for 15-minute data on a normal day, 92 / 100 on DST days."""
    return F.floor(local_day_minutes(local_date, time_zone=time_zone) / interval_minutes).cast("int")


def span_columns(valid: Column, *, time_zone: str) -> list[Column]:
    """Aggregations over a classified AMI batch (``valid``: the row passed every rule): ``first`` and
    ``last`` interval_start of the valid rows, and ``days``, their distinct local days."""
    start = F.col(value_col("interval_start"))
    day = F.to_date(F.from_utc_timestamp(start, time_zone))
    return [
        F.min(F.when(valid, start)).alias("first"), F.max(F.when(valid, start)).alias("last"),
        F.collect_set(F.when(valid, day)).alias("days"),
    ]


def daily_targets(winners_df: DataFrame) -> DataFrame:
    """(meter_id, local_date) whose silver/ami_daily row a batch of AMI winners changes: each
    meter-day it holds and the day after (whose first night hour looks back at it)."""
    touched_df = winners_df.select("meter_id", "local_date").distinct()
    return touched_df.unionByName(
        touched_df.select("meter_id", F.date_add("local_date", 1).alias("local_date"))
    ).distinct()
