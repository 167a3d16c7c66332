"""gold/meter_daily_usage: one row per meter and local day (contract section 4).

Columns: meter_key, household_id, local_date, kwh, kwh_on_peak, peak_kw,
intervals_actual, intervals_estimated, intervals_missing, plus
expected_intervals and completeness.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.gold.accounts import with_active_account
from ucx_spark.gold.local_time import local_date, local_day_minutes, local_hour

ON_PEAK_HOURS = (16, 20)  # intervals starting 16:00-20:59 local (inclusive hours)

COLUMNS = (
    "meter_key", "household_id", "local_date", "kwh", "kwh_on_peak", "peak_kw",
    "intervals_actual", "intervals_estimated", "intervals_missing",
    "expected_intervals", "completeness",
)


def in_hours(hour: Column, first: int, last: int) -> Column:
    """first <= hour <= last, or a window across midnight when first > last (22..5)."""
    if first <= last:
        return hour.between(first, last)
    return (hour >= first) | (hour <= last)


def with_local_interval(ami_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Add ``_local_date``, ``_local_hour`` (recomputed from interval_start in ``time_zone``) and ``_kw``.

    Recomputed rather than trusting silver's local_date/local_hour so the
    calendar follows the ``time_zone`` parameter. ``_kw`` = kwh * 60 / interval_minutes.
    """
    return (
        ami_df.withColumn("_local_date", local_date(F.col("interval_start"), time_zone=time_zone))
        .withColumn("_local_hour", local_hour(F.col("interval_start"), time_zone=time_zone))
        .withColumn("_kw", F.col("kwh") * F.lit(60.0) / F.col("interval_minutes"))
    )


def _sum_when(cond: Column, value: Column) -> Column:
    """Sum of non-null ``value`` where ``cond``; null when there is none."""
    return F.sum(F.when(cond, value))


def daily_usage_aggregates() -> list[Column]:
    """Aggregates of the contract columns over one meter-day of ``with_local_interval`` rows."""
    quality = F.col("quality")
    on_peak = in_hours(F.col("_local_hour"), *ON_PEAK_HOURS)
    return [
        F.sum("kwh").alias("kwh"),
        _sum_when(on_peak, F.col("kwh")).alias("kwh_on_peak"),
        F.max("_kw").alias("peak_kw"),
        F.count(F.when(quality == "A", 1)).alias("intervals_actual"),
        F.count(F.when(quality == "E", 1)).alias("intervals_estimated"),
        F.count(F.when(quality == "M", 1)).alias("intervals_missing"),
        # A day of mixed interval lengths is rare; the longest sets the expectation.
        F.max("interval_minutes").alias("_interval_minutes"),
        F.sum(F.when(quality.isin("A", "E"), F.col("interval_minutes"))).alias("_covered_minutes"),
    ]


def meter_daily_usage(ami_df: DataFrame, accounts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Daily usage per meter and local day, keyed by pseudonyms.

    Needs ``ami_df`` (silver/ami): meter_id, meter_key, interval_start (UTC),
    interval_minutes, kwh, quality; ``accounts_df`` (silver/accounts):
    account_id, meter_id, start_date, end_date, household_id.
    Returns ``COLUMNS``; expected_intervals = local day length / interval
    length (23 or 25 hours on DST days), completeness = minutes covered by A/E
    intervals / day length. No meter_id or account_id leaves this function.
    """
    daily_df = (
        with_local_interval(ami_df, time_zone=time_zone)
        .groupBy("meter_id", "meter_key", F.col("_local_date").alias("local_date"))
        .agg(*daily_usage_aggregates())
        .withColumn("_day_minutes", local_day_minutes(F.col("local_date"), time_zone=time_zone))
        .withColumn("expected_intervals", (F.col("_day_minutes") / F.col("_interval_minutes")).cast("int"))
        .withColumn("completeness", F.coalesce(F.col("_covered_minutes"), F.lit(0)) / F.col("_day_minutes"))
    )
    return with_active_account(
        daily_df, accounts_df, key="meter_id", day_col="local_date", account_cols=("household_id",)
    ).select(*COLUMNS)
