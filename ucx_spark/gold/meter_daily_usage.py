"""gold/meter_daily_usage: one row per meter and local day (contract section 4).

Columns: meter_key, household_id, local_date, kwh, kwh_on_peak, peak_kw,
intervals_actual, intervals_estimated, intervals_missing, plus
expected_intervals and completeness.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ucx_spark.gold.accounts import with_active_account
from ucx_spark.local_time import local_day_minutes
from ucx_spark.silver.ami_daily import ami_daily

COLUMNS = (
    "meter_key", "household_id", "local_date", "kwh", "kwh_on_peak", "peak_kw",
    "intervals_actual", "intervals_estimated", "intervals_missing",
    "expected_intervals", "completeness",
)


def meter_daily_usage(ami_df: DataFrame, accounts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Daily usage per meter and local day, keyed by pseudonyms, from interval reads.

    Needs ``ami_df`` (silver/ami): meter_id, meter_key, interval_start (UTC),
    interval_minutes, kwh, quality; ``accounts_df`` as meter_daily_usage_from_daily.
    The same as meter_daily_usage_from_daily of silver.ami_daily.ami_daily(ami_df).
    """
    return meter_daily_usage_from_daily(ami_daily(ami_df, time_zone=time_zone), accounts_df, time_zone=time_zone)


def meter_daily_usage_from_daily(daily_df: DataFrame, accounts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Daily usage per meter and local day from silver/ami_daily (its per meter-day sums).

    Needs ``daily_df``: meter_id, meter_key, local_date, kwh, kwh_on_peak, peak_kw,
    intervals_actual/estimated/missing, max_interval_minutes, covered_minutes;
    ``accounts_df`` (silver/accounts): account_id, meter_id, start_date, end_date,
    household_id. Returns ``COLUMNS``; expected_intervals = local day length /
    interval length (the longest of the day; 23 or 25 hours on DST days),
    completeness = minutes covered by A/E intervals / day length. No meter_id or
    account_id leaves this function.
    """
    day_minutes = local_day_minutes(F.col("local_date"), time_zone=time_zone)
    usage_df = daily_df.select(
        "meter_id", "meter_key", "local_date", "kwh", "kwh_on_peak", "peak_kw",
        "intervals_actual", "intervals_estimated", "intervals_missing",
        (day_minutes / F.col("max_interval_minutes")).cast("int").alias("expected_intervals"),
        (F.coalesce(F.col("covered_minutes"), F.lit(0)) / day_minutes).alias("completeness"),
    )
    return with_active_account(
        usage_df, accounts_df, key="meter_id", day_col="local_date", account_cols=("household_id",)
    ).select(*COLUMNS)
