"""AMI extras: local date/hour in the utility time zone and the length of a local day (see ami_daily)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def local_wall_clock(instant: Column, *, time_zone: str) -> Column:
    """The wall clock of a UTC instant in ``time_zone`` (rendered in the UTC session)."""
    return F.from_utc_timestamp(instant, time_zone)


def with_local_time(df: DataFrame, *, time_zone: str, source: str = "interval_start") -> DataFrame:
    """Adds ``local_date`` (date) and ``local_hour`` (int) of ``source`` in the utility time zone."""
    wall = local_wall_clock(F.col(source), time_zone=time_zone)
    return df.withColumns({"local_date": F.to_date(wall), "local_hour": F.hour(wall).cast("int")})


def minutes_in_local_day(local_date: Column, *, time_zone: str) -> Column:
    """1440, or 1380/1500 on the days the utility's clocks spring forward / fall back."""
    start = F.to_utc_timestamp(local_date.cast("timestamp"), time_zone)
    end = F.to_utc_timestamp(F.date_add(local_date, 1).cast("timestamp"), time_zone)
    return ((F.unix_seconds(end) - F.unix_seconds(start)) / 60).cast("int")


def expected_intervals(local_date: Column, interval_minutes: Column, *, time_zone: str) -> Column:
    """Intervals in the local day: 96 for 15-minute data on a normal day, 92 / 100 on DST days."""
    return F.floor(minutes_in_local_day(local_date, time_zone=time_zone) / interval_minutes).cast("int")
