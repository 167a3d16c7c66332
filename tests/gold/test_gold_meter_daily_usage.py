"""gold/meter_daily_usage: DST days, move days, a day with no kwh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from chispa import assert_df_equality
from pyspark.sql import types as T

from ucx_spark.gold.meter_daily_usage import meter_daily_usage
from ucx_spark.gold.privacy import FORBIDDEN_COLUMNS

TZ = "America/Chicago"
AMI_SCHEMA = T.StructType(
    [
        T.StructField("meter_id", T.StringType()),
        T.StructField("meter_key", T.StringType()),
        T.StructField("interval_start", T.TimestampType()),
        T.StructField("interval_minutes", T.IntegerType()),
        T.StructField("kwh", T.DoubleType()),
        T.StructField("quality", T.StringType()),
    ]
)
ACCOUNTS_SCHEMA = T.StructType(
    [
        T.StructField("account_id", T.StringType()),
        T.StructField("meter_id", T.StringType()),
        T.StructField("start_date", T.DateType()),
        T.StructField("end_date", T.DateType()),
        T.StructField("household_id", T.StringType()),
    ]
)
OUT_SCHEMA = T.StructType(
    [
        T.StructField("meter_key", T.StringType()),
        T.StructField("household_id", T.StringType()),
        T.StructField("local_date", T.DateType()),
        T.StructField("kwh", T.DoubleType()),
        T.StructField("kwh_on_peak", T.DoubleType()),
        T.StructField("peak_kw", T.DoubleType()),
        T.StructField("intervals_actual", T.LongType()),
        T.StructField("intervals_estimated", T.LongType()),
        T.StructField("intervals_missing", T.LongType()),
        T.StructField("expected_intervals", T.IntegerType()),
        T.StructField("completeness", T.DoubleType()),
    ]
)


def local_intervals(day: date, minutes: int) -> list[tuple[datetime, int]]:
    """(UTC instant, local hour) of every interval of a local day, DST-aware."""
    tz = ZoneInfo(TZ)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
    out = []
    t = start
    while t < end:
        out.append((t, t.astimezone(tz).hour, t.astimezone(tz).minute))
        t += timedelta(minutes=minutes)
    return out


def test_dst_days_move_day_and_null_day(spark):
    rows = []
    # Spring forward 2024-03-10: 23 local hours, no 02:00. Hourly, 1 kWh each,
    # 3 kWh at 17:00, estimated at 05:00, missing at 03:00.
    spring = local_intervals(date(2024, 3, 10), 60)
    assert len(spring) == 23
    for utc, hour, _ in spring:
        if hour == 3:
            rows.append(("m1", "k1", utc, 60, None, "M"))
        else:
            rows.append(("m1", "k1", utc, 60, 3.0 if hour == 17 else 1.0, "E" if hour == 5 else "A"))
    # The day before the move: one interval at local 16:00 (on peak).
    for utc, hour, _ in local_intervals(date(2024, 3, 9), 60):
        if hour == 16:
            rows.append(("m1", "k1", utc, 60, 2.0, "A"))
    # Fall back 2024-11-03: 25 local hours (01:00 twice). 30-minute intervals of
    # 1 kWh, 1.5 kWh at 20:30 (on peak), 2 kWh at 21:00 (off peak).
    fall = local_intervals(date(2024, 11, 3), 30)
    assert len(fall) == 50
    for utc, hour, minute in fall:
        kwh = 1.5 if (hour, minute) == (20, 30) else 2.0 if (hour, minute) == (21, 0) else 1.0
        rows.append(("m2", "k2", utc, 30, kwh, "A"))
    # A day with no kwh at all, at a meter whose account ended the day before.
    for utc, hour, _ in local_intervals(date(2024, 6, 1), 60):
        if hour in (0, 16):
            rows.append(("m3", "k3", utc, 60, None, "M"))
    ami_df = spark.createDataFrame(rows, AMI_SCHEMA)
    accounts_df = spark.createDataFrame(
        [
            ("a1", "m1", date(2024, 1, 1), date(2024, 3, 10), "h1"),  # moves out on the 10th
            ("a2", "m1", date(2024, 3, 10), None, "h2"),  # moves in on the 10th: wins
            ("a3", "m2", date(2024, 11, 3), None, "h3"),
            ("a4", "m2", date(2024, 11, 3), None, "h4"),  # same start, larger id: wins
            ("a5", "m3", date(2023, 1, 1), date(2024, 5, 31), "h5"),
        ],
        ACCOUNTS_SCHEMA,
    )
    actual = meter_daily_usage(ami_df, accounts_df, time_zone=TZ)
    expected = spark.createDataFrame(
        [
            # 21 x 1 + 3 = 24 kWh; on peak 16..20 = 1+3+1+1+1; 22 of 23 hours covered.
            ("k1", "h2", date(2024, 3, 10), 24.0, 7.0, 3.0, 21, 1, 1, 23, 22 * 60 / 1380),
            ("k1", "h1", date(2024, 3, 9), 2.0, 2.0, 2.0, 1, 0, 0, 24, 60 / 1440),
            # 48 x 1 + 1.5 + 2 = 51.5; on peak = 10 half hours (16:00-20:30) with 20:30 = 1.5
            # -> 9 + 1.5 = 10.5; peak kW = 2 kWh in 30 min = 4 kW.
            ("k2", "h4", date(2024, 11, 3), 51.5, 10.5, 4.0, 50, 0, 0, 50, 1.0),
            ("k3", None, date(2024, 6, 1), None, None, None, 0, 0, 2, 24, 0.0),
        ],
        OUT_SCHEMA,
    )
    assert_df_equality(
        actual, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True
    )
    assert not set(actual.columns) & set(FORBIDDEN_COLUMNS)
