"""The AMI completeness gate judges what a utility means by a complete day (issue 24).

A fleet of 12 hourly meters over three local days, built as interval reads and
rolled up by the real ``silver.ami_daily.ami_daily``: a meter counts only inside
its life (its first read, its last read or removal), a meter that sends nothing
on a day it should report is missing, a day is judged on the fleet only with at
least ``min_meters`` expected meters, single meters' gaps are reported but not
fatal, and an operator can publish a known-incomplete day on purpose.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession

from ucx_spark.quality.checks import Acceptance, ami_completeness
from ucx_spark.silver.ami_daily import ami_daily

TZ = "America/Chicago"
DAY1 = date(2026, 3, 2)  # local days 2026-03-02..04 (no DST change), 06:00 UTC starts
METERS = [f"M{i:02d}" for i in range(12)]
AMI_DDL = "meter_id string, interval_start timestamp, interval_minutes int, kwh double, quality string"
ACCOUNTS_DDL = "meter_id string, start_date date, end_date date"


def _reads(hours: dict[str, list[tuple[int, int, str]]]) -> list[tuple]:
    """Hourly reads: per meter a list of (day index, hour of the local day, quality) ranges
    expanded below; default every meter every hour of days 0-2 with quality A."""
    rows = []
    for meter in METERS:
        for day, hour, quality in hours.get(meter, [(d, h, "A") for d in range(3) for h in range(24)]):
            start = datetime(2026, 3, 2, 6, tzinfo=UTC).replace(tzinfo=None) + timedelta(days=day, hours=hour)
            rows.append((meter, start, 60, None if quality == "M" else 1.0, quality))
    return rows


def _full(days=range(3), hours=range(24), quality="A") -> list[tuple[int, int, str]]:
    return [(d, h, quality) for d in days for h in hours]


def _daily(spark: SparkSession, hours: dict[str, list[tuple[int, int, str]]]) -> DataFrame:
    return ami_daily(spark.createDataFrame(_reads(hours), AMI_DDL), time_zone=TZ)


def _accounts(spark: SparkSession, ended: dict[str, date] | None = None) -> DataFrame:
    ended = ended or {}
    return spark.createDataFrame([(m, date(2020, 1, 1), ended.get(m)) for m in METERS], ACCOUNTS_DDL)


def _check(spark, daily_df, *, accounts_df=None, min_meters=10, days=None, accepted=None):
    judged_df = daily_df if days is None else daily_df.filter(daily_df.local_date.isin(days))
    return ami_completeness(judged_df, meters_df=daily_df, accounts_df=accounts_df if accounts_df is not None
                            else _accounts(spark), min_value=0.9, min_meters=min_meters, accepted=accepted)


def test_a_clean_fleet_passes(spark):
    out = _check(spark, _daily(spark, {}))
    assert out.success, out.observed_value
    assert out.observed_value.startswith("3 local days judged (36 meter-days expected, 0 sent nothing), 0 below 0.9")


def test_first_partial_day_and_removal_do_not_count_as_missing(spark):
    # M00 is installed at 20:00 local on day 0; M01 is removed at noon on day 2 (its account ended
    # on day 1); M02's reads start on day 1: none of them is missing anything.
    hours = {
        "M00": [(0, h, "A") for h in range(20, 24)] + _full(days=range(1, 3)),
        "M01": _full(days=range(2)) + [(2, h, "A") for h in range(12)],
        "M02": _full(days=range(1, 3)),
    }
    out = _check(spark, _daily(spark, hours), accounts_df=_accounts(spark, ended={"M01": date(2026, 3, 3)}))
    assert out.success, out.observed_value
    assert "0 below 0.9" in out.observed_value and "gaps" not in out.observed_value


def test_a_single_meter_gap_day_is_reported_not_fatal(spark):
    # M03 sends M for every interval of day 1 (the head-end's gap day), M04 nothing on day 2 (its
    # account is active, so it is expected): each day is 11/12 complete, each meter-day reported.
    hours = {"M03": _full(days=[0, 2]) + _full(days=[1], quality="M"), "M04": _full(days=[0, 1])}
    out = _check(spark, _daily(spark, hours))
    assert out.success, out.observed_value
    assert "(36 meter-days expected, 1 sent nothing), 0 below 0.9" in out.observed_value
    assert "2 meter-days below 0.9 (single meters' gaps, reported)" in out.observed_value


def test_a_third_of_the_meters_sending_nothing_fails_closed(spark):
    # the new day 2 arrives from 8 of 12 meters: the other 4 have active accounts and reported before
    hours = {m: _full(days=range(2)) for m in METERS[:4]}
    daily_df = _daily(spark, hours)
    out = _check(spark, daily_df, days=[date(2026, 3, 4)])
    assert not out.success and out.unexpected_count == 1
    assert "1 local days judged (12 meter-days expected, 4 sent nothing), 1 below 0.9: " in out.observed_value
    assert "2026-03-04 0.6667 (12 meters, 4 sent nothing)" in out.observed_value
    # the same meters with their accounts closed before that day (removed) are not expected
    closed = _accounts(spark, ended={m: date(2026, 3, 3) for m in METERS[:4]})
    assert _check(spark, daily_df, accounts_df=closed, days=[date(2026, 3, 4)]).success


def test_small_days_are_reported_not_judged_and_accepted_days_publish(spark):
    hours = {m: _full(days=range(2)) for m in METERS[:4]}
    daily_df = _daily(spark, hours)
    small = _check(spark, daily_df, min_meters=13)
    assert small.success
    assert "0 local days judged" in small.observed_value
    assert "3 days with fewer than 13 expected meters not judged (1 of them below 0.9)" in small.observed_value

    accepted = Acceptance(days=(date(2026, 3, 4),), reason="meters 00-03 radio outage, backfill later", by="ops@host")
    ok = _check(spark, daily_df, accepted=accepted)
    assert ok.success and ok.unexpected_count == 0
    assert ("; 1 accepted below 0.9 by ops@host, reason: meters 00-03 radio outage, backfill later; "
            "2026-03-04 0.6667 (12 meters, 4 sent nothing)") in ok.observed_value
    other_day = Acceptance(days=(date(2026, 3, 3),), reason="wrong day", by="ops@host")
    assert not _check(spark, daily_df, accepted=other_day).success
