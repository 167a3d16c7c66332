"""AMI extras: local date/hour in the utility time zone and daily completeness."""

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


def daily_completeness(ami_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Per meter and local day: ``meter_id, local_date, interval_minutes, expected_intervals,
    present_intervals, completeness``.

    Needs silver ami rows (meter_id, local_date, interval_minutes, kwh). A
    present interval is a current row with a kwh (quality A or E); a meter
    day with mixed interval lengths is judged by its most frequent length.
    """
    return (
        ami_df.groupBy("meter_id", "local_date")
        .agg(
            F.mode("interval_minutes").alias("interval_minutes"),
            F.count("kwh").cast("int").alias("present_intervals"),
        )
        .withColumn(
            "expected_intervals",
            expected_intervals(F.col("local_date"), F.col("interval_minutes"), time_zone=time_zone),
        )
        .withColumn("completeness", F.col("present_intervals") / F.col("expected_intervals"))
        .select("meter_id", "local_date", "interval_minutes", "expected_intervals", "present_intervals", "completeness")
    )
