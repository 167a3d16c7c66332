"""silver/ami_daily: one row per meter and local day, everything gold needs from interval reads.

Gold never reads interval-level silver/ami: meter_daily_usage, the load-shape
and EV features of household_features, the AMI completeness gate and the KPI
month span all come from this table, which is ~24-96x smaller than the reads
and is maintained incrementally by the silver step (only the meter-days a
batch touched are recomputed). Every aggregate is the one gold used to take
from the reads, so the published values are unchanged:

- usage: ``kwh`` (sum of non-null kwh), ``kwh_on_peak`` (16:00-20:59 local),
  ``peak_kw`` (max kwh * 60 / interval_minutes), ``intervals_actual``/
  ``_estimated``/``_missing`` (rows by quality), ``max_interval_minutes``
  and ``covered_minutes`` (minutes of A/E intervals; gold's expected
  intervals and completeness);
- completeness (the silver definition the gate judges): ``interval_minutes``
  (the day's most frequent length), ``expected_intervals`` (local day length /
  that length, 92/100 for 15-minute data on DST days), ``present_intervals``
  (rows with a kwh: an ``M`` read is missing), ``completeness``; ``day_start``
  and ``day_end`` (the UTC instants of the local day's bounds),
  ``first_interval_start`` (start of the day's earliest read: a meter's life
  starts there on its first day) and ``last_interval_end`` (end of the day's
  latest read: how far delivery got);
- load shape: kWh and hours with kWh in the afternoon, evening, overnight and
  night windows, midday intervals and those exporting, exported kWh;
- ``has_ev_block``: a night hour at >= ``EV_BLOCK_KW`` right after another one
  (hourly kW = kWh of the UTC hour * 60 / minutes of it with kWh; the block's
  second hour gives its local date; null when the day has no night hour).
  The hour before a day's first night hour belongs to the previous day, so a
  day is recomputed from the reads of the day before it too.
- EV charging at interval resolution (15-minute or hourly alike): runs of
  consecutive night intervals each at >= ``EV_BLOCK_KW`` lasting at least
  ``EV_RUN_MIN_MINUTES``; per local day (of each interval) the minutes and kWh
  of such runs (``ev_block_minutes``, ``ev_block_kwh``) and the longest run
  that touches the day (``longest_ev_block_minutes``); 0 on a day with night
  reads and no run, null without night reads.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.contract import INTERVAL_MINUTES
from ucx_spark.local_time import local_timestamp
from ucx_spark.silver.ami import expected_intervals

ON_PEAK_HOURS = (16, 20)  # intervals starting 16:00-20:59 local (inclusive hours)
AFTERNOON_HOURS = (12, 15)
EVENING_HOURS = (17, 20)
OVERNIGHT_BASE_HOURS = (1, 4)
NIGHT_HOURS = (22, 5)  # EV charging window, across midnight
MIDDAY_HOURS = (10, 15)  # solar window
EV_BLOCK_KW = 3.0  # a "sustained block": two consecutive night hours at >= 3 kW each
EV_RUN_MIN_MINUTES = 60  # interval resolution: a run of night intervals at >= EV_BLOCK_KW lasting an hour or more
SHAPE_WINDOWS = (
    ("afternoon", AFTERNOON_HOURS), ("evening", EVENING_HOURS),
    ("overnight", OVERNIGHT_BASE_HOURS), ("night", NIGHT_HOURS),
)

KEY = ("meter_id", "local_date")
COLUMNS = (
    "meter_id", "local_date", "local_month", "meter_key",
    "kwh", "kwh_on_peak", "peak_kw", "intervals_actual", "intervals_estimated", "intervals_missing",
    "max_interval_minutes", "covered_minutes",
    "interval_minutes", "expected_intervals", "present_intervals", "completeness",
    "day_start", "day_end", "first_interval_start", "last_interval_end",
    *(f"{p}_{w}" for w, _ in SHAPE_WINDOWS for p in ("kwh", "hours")),
    "midday_intervals", "midday_export_intervals", "export_kwh", "has_ev_block",
    "ev_block_minutes", "ev_block_kwh", "longest_ev_block_minutes",
)


def in_hours(hour: Column, first: int, last: int) -> Column:
    """first <= hour <= last, or a window across midnight when first > last (22..5)."""
    if first <= last:
        return hour.between(first, last)
    return (hour >= first) | (hour <= last)


KWH_DECIMALS = 6  # reads carry at most 3 decimals (Wh): sums rounded here do not depend on the order Spark adds them


def _kwh_sum(value: Column) -> Column:
    """A day's sum of kWh, rounded to KWH_DECIMALS: a double sum depends on the order of its terms
    (file layout, partitioning), so two runs over the same reads could differ in the last bits."""
    return F.round(F.sum(value), KWH_DECIMALS)


def _daily_aggregates(*, has_meter_key: bool = True) -> list[Column]:
    hour, kwh, quality = F.col("_local_hour"), F.col("kwh"), F.col("quality")
    has_kwh = kwh.isNotNull()
    minutes = F.col("interval_minutes")
    shape: list[Column] = []
    for name, hours in SHAPE_WINDOWS:
        inside = in_hours(hour, *hours)
        shape += [
            _kwh_sum(F.when(inside, kwh)).alias(f"kwh_{name}"),
            (F.sum(F.when(inside & has_kwh, minutes)) / 60.0).alias(f"hours_{name}"),
        ]
    midday = in_hours(hour, *MIDDAY_HOURS) & has_kwh
    return [
        (F.first("meter_key") if has_meter_key else F.lit(None).cast("string")).alias("meter_key"),
        _kwh_sum(kwh).alias("kwh"),
        _kwh_sum(F.when(in_hours(hour, *ON_PEAK_HOURS), kwh)).alias("kwh_on_peak"),
        F.max(kwh * F.lit(60.0) / minutes).alias("peak_kw"),
        F.count(F.when(quality == "A", 1)).alias("intervals_actual"),
        F.count(F.when(quality == "E", 1)).alias("intervals_estimated"),
        F.count(F.when(quality == "M", 1)).alias("intervals_missing"),
        F.max(minutes).alias("max_interval_minutes"),
        F.sum(F.when(quality.isin("A", "E"), minutes)).alias("covered_minutes"),
        *[F.count(F.when(minutes == m, 1)).alias(f"_n{m}") for m in INTERVAL_MINUTES],
        F.count(kwh).cast("int").alias("present_intervals"),
        F.min("interval_start").alias("first_interval_start"),
        F.max(F.timestamp_add("MINUTE", minutes, F.col("interval_start"))).alias("last_interval_end"),
        *shape,
        F.count(F.when(midday, 1)).alias("midday_intervals"),
        F.count(F.when(midday & (kwh < 0), 1)).alias("midday_export_intervals"),
        _kwh_sum(F.when(kwh < 0, -kwh)).alias("export_kwh"),
    ]


def most_frequent_length() -> Column:
    """The day's most frequent interval length from the ``_n<minutes>`` counts (the contract's
    lengths only), the shorter on a tie: a counting aggregate Spark hashes, where ``mode`` would
    sort every meter-day's rows."""
    best = F.lit(None).cast("int")
    best_n = F.lit(0).cast("long")
    for m in INTERVAL_MINUTES:  # ascending: a later length must have strictly more rows to win
        n = F.col(f"_n{m}")
        best = F.when(n > best_n, F.lit(m)).otherwise(best)
        best_n = F.greatest(best_n, n)
    return best


def ev_blocks(ami_df: DataFrame, *, time_zone: str, block_kw: float = EV_BLOCK_KW) -> DataFrame:
    """meter_id, local_date, has_ev_block from interval reads (see the module docstring).

    Only night-hour buckets can form a block (both of its hours are night
    hours), so only those are aggregated and ordered.
    """
    hour_start = F.date_trunc("hour", "interval_start")
    hourly = (
        ami_df.withColumn("_hour_start", hour_start)
        .withColumn("_hour", F.hour(local_timestamp(F.col("_hour_start"), time_zone=time_zone)))
        .filter(in_hours(F.col("_hour"), *NIGHT_HOURS))
        .groupBy("meter_id", "_hour_start", "_hour")
        .agg(
            F.sum("kwh").alias("_kwh"),
            F.sum(F.when(F.col("kwh").isNotNull(), F.col("interval_minutes"))).alias("_minutes"),
        )
        .withColumn("_kw", F.when(F.col("_minutes") > 0, F.col("_kwh") * 60.0 / F.col("_minutes")))
    )
    order = Window.partitionBy("meter_id").orderBy("_hour_start")
    prev_start = F.lag("_hour_start").over(order)
    prev_kw = F.lag("_kw").over(order)
    is_block = (
        (F.col("_hour") != NIGHT_HOURS[0])
        & ((F.unix_timestamp("_hour_start") - F.unix_timestamp(prev_start)) == 3600)
        & (F.col("_kw") >= block_kw)
        & (prev_kw >= block_kw)
    )
    return (
        hourly.withColumn("_block", F.coalesce(is_block, F.lit(False)))
        .groupBy("meter_id", F.to_date(local_timestamp(F.col("_hour_start"), time_zone=time_zone)).alias("local_date"))
        .agg(F.max("_block").alias("has_ev_block"))
    )


def ev_runs(ami_df: DataFrame, *, time_zone: str, block_kw: float = EV_BLOCK_KW,
            min_minutes: int = EV_RUN_MIN_MINUTES) -> DataFrame:
    """meter_id, local_date, ev_block_minutes, ev_block_kwh, longest_ev_block_minutes (see the
    module docstring) of the days with a qualifying run.

    Only night intervals at >= ``block_kw`` are ordered (a window per meter):
    a run continues while each interval starts where the previous one ended.
    """
    wall = local_timestamp(F.col("interval_start"), time_zone=time_zone)
    kw = F.col("kwh") * F.lit(60.0) / F.col("interval_minutes")
    high_df = (
        ami_df.filter(F.col("kwh").isNotNull() & in_hours(F.hour(wall), *NIGHT_HOURS) & (kw >= block_kw))
        .select("meter_id", "interval_start", "interval_minutes", "kwh", F.to_date(wall).alias("local_date"))
    )
    order = Window.partitionBy("meter_id").orderBy("interval_start")
    prev_end = F.lag(F.timestamp_add("MINUTE", F.col("interval_minutes"), F.col("interval_start"))).over(order)
    runs_df = (
        high_df.withColumn("_new", F.coalesce(prev_end != F.col("interval_start"), F.lit(True)).cast("int"))
        .withColumn("_run", F.sum("_new").over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    )
    lengths_df = runs_df.groupBy("meter_id", "_run").agg(F.sum("interval_minutes").alias("_run_minutes"))
    return (
        runs_df.join(lengths_df, ["meter_id", "_run"])
        .filter(F.col("_run_minutes") >= min_minutes)
        .groupBy("meter_id", "local_date")
        .agg(
            F.sum("interval_minutes").cast("int").alias("ev_block_minutes"),
            _kwh_sum(F.col("kwh")).alias("ev_block_kwh"),
            F.max("_run_minutes").cast("int").alias("longest_ev_block_minutes"),
        )
    )


def ami_daily(ami_df: DataFrame, *, time_zone: str) -> DataFrame:
    """``COLUMNS`` per meter and local day of silver ami rows.

    Needs meter_id, interval_start (UTC), interval_minutes, kwh, quality and
    meter_key (null in the output when the reads do not carry it). A day's ``has_ev_block`` needs the reads of the day before it
    (for the hour across midnight): pass them along and drop that day after.
    """
    wall = local_timestamp(F.col("interval_start"), time_zone=time_zone)
    daily = (
        ami_df.withColumns({"_local_date": F.to_date(wall), "_local_hour": F.hour(wall)})
        .groupBy("meter_id", F.col("_local_date").alias("local_date"))
        .agg(*_daily_aggregates(has_meter_key="meter_key" in ami_df.columns))
        .withColumn("interval_minutes", most_frequent_length())
        .join(ev_blocks(ami_df, time_zone=time_zone), list(KEY), "left")
        .join(ev_runs(ami_df, time_zone=time_zone), list(KEY), "left")
    )
    has_night = F.col("hours_night").isNotNull()
    return daily.select(
        *[
            F.trunc("local_date", "month").alias(c) if c == "local_month"
            else expected_intervals(F.col("local_date"), F.col("interval_minutes"), time_zone=time_zone).alias(c)
            if c == "expected_intervals"
            else (F.col("present_intervals") / expected_intervals(
                F.col("local_date"), F.col("interval_minutes"), time_zone=time_zone)).alias(c)
            if c == "completeness"
            else F.to_utc_timestamp(F.col("local_date").cast("timestamp"), time_zone).alias(c)
            if c == "day_start"
            else F.to_utc_timestamp(F.date_add("local_date", 1).cast("timestamp"), time_zone).alias(c)
            if c == "day_end"
            else F.when(has_night, F.coalesce(F.col(c), F.lit(0))).alias(c)
            if c in ("ev_block_minutes", "ev_block_kwh", "longest_ev_block_minutes")
            else F.col(c)
            for c in COLUMNS
        ]
    )
