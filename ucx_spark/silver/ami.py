"""AMI extras: local date/hour in the utility time zone and the length of a local day (see ami_daily)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.local_time import local_day_minutes, local_timestamp


def with_local_time(df: DataFrame, *, time_zone: str, source: str = "interval_start") -> DataFrame:
    """Adds ``local_date`` (date) and ``local_hour`` (int) of ``source`` in the utility time zone."""
    wall = local_timestamp(F.col(source), time_zone=time_zone)
    return df.withColumns({"local_date": F.to_date(wall), "local_hour": F.hour(wall).cast("int")})


def expected_intervals(local_date: Column, interval_minutes: Column, *, time_zone: str) -> Column:
    """Intervals in the local day: 96 for 15-minute data on a normal day, 92 / 100 on DST days."""
    return F.floor(local_day_minutes(local_date, time_zone=time_zone) / interval_minutes).cast("int")
