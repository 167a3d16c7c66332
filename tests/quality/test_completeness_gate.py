"""The AMI completeness gate judges the local days a batch touched, not a mean over history.

The case that failed open (issue 13): after a clean run, a late AMI correction
extract re-sends the last local day for every meter, a third of the meters'
reads marked ``M`` with no kWh. A mean over all meter-days barely moves; the
day itself is 2/3 complete. The pipeline must stop before gold and keep gold
at its version, stay stopped on the next run (silver already holds the broken
day), and publish once a corrected extract completes the day.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from ucx_spark.config import Config
from ucx_spark.errors import DataError
from ucx_spark.generate import generate_utility
from ucx_spark.io.delta import read_table, table_path, table_version
from ucx_spark.pipelines import medallion
from ucx_spark.quality import data_docs_index

KEY = b"completeness-key"


@pytest.fixture(scope="module")
def clean_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("completeness")
    landing, warehouse = root / "landing", root / "warehouse"
    generate_utility(spark, str(landing), households=12, months=2, interval_minutes=60, seed=3)
    cfg = Config().with_paths(landing=str(landing), warehouse=str(warehouse))
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="c-1")
    return cfg


def _last_day(spark, cfg: Config) -> tuple[str, list]:
    """The last local day of silver/ami and its reads (one local day of a 12-household utility)."""
    ami = read_table(spark, cfg.paths.warehouse, "silver", "ami")
    last_day = ami.agg(F.max("local_date")).first()[0]
    rows = (
        ami.filter(F.col("local_date") == last_day)
        .select("meter_id", F.date_format("interval_start", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("ts"),
                "interval_minutes", "kwh")
        .orderBy("meter_id", "ts")
        .collect()
    )
    return str(last_day), rows


def _resend(cfg: Config, rows: list, name: str, *, missing_every: int | None) -> int:
    """A landing extract re-sending ``rows`` (quality A), every ``missing_every``-th meter's as M."""
    meters = sorted({r["meter_id"] for r in rows})
    broken = set(meters[::missing_every]) if missing_every else set()
    lines = ["meter_id,interval_start,interval_minutes,kwh,quality"]
    for r in rows:
        if r["meter_id"] in broken:
            lines.append(f"{r['meter_id']},{r['ts']},{r['interval_minutes']},,M")
        else:
            lines.append(f"{r['meter_id']},{r['ts']},{r['interval_minutes']},{r['kwh']},A")
    Path(cfg.paths.landing, "ami", name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(broken)


@pytest.mark.slow
def test_a_third_of_a_day_missing_fails_closed_until_corrected(spark, clean_run):
    cfg = clean_run
    wh = cfg.paths.warehouse
    usage_path = table_path(wh, "gold", "meter_daily_usage")
    published = table_version(spark, usage_path)
    before_df = read_table(spark, wh, "gold", "meter_daily_usage")
    before = before_df.agg(F.count(F.lit(1)), F.sum("intervals_actual"), F.sum("intervals_missing")).first()

    day, reads = _last_day(spark, cfg)
    assert all(r["kwh"] is not None for r in reads)
    broken = _resend(cfg, reads, "ami_20260201T060000Z_correction.csv", missing_every=3)
    assert broken >= 3
    with pytest.raises(DataError) as err:
        medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="c-2")
    message = str(err.value)
    assert "silver.ami_daily" in message and "ami_completeness" in message
    assert f"{day} 0.6" in message  # the day and its share (2/3 of the meters' reads carry a value)
    assert table_version(spark, usage_path) == published

    # Silver already holds the broken day: a run without new files must still refuse to publish it.
    with pytest.raises(DataError) as again:
        medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="c-3")
    assert "gold.meter_daily_usage" in str(again.value) and day in str(again.value)
    assert table_version(spark, usage_path) == published
    # Each stopped run's verdicts are in the Data Docs (rendered once, as the run stopped).
    docs = data_docs_index(wh).parent / "validations"
    assert list((docs / "silver" / "ami_daily" / "c-2").rglob("*.html"))
    assert list((docs / "gold" / "meter_daily_usage" / "c-3").rglob("*.html"))
    after = read_table(spark, wh, "gold", "meter_daily_usage").agg(
        F.count(F.lit(1)), F.sum("intervals_actual"), F.sum("intervals_missing")
    ).first()
    assert tuple(after) == tuple(before)
    failed = (
        read_table(spark, wh, "gold", "quality_results")
        .filter(F.col("run_id").isin("c-2", "c-3") & ~F.col("success") & (F.col("severity") == "critical"))
        .select("run_id", "layer", "table", "expectation_id", "unexpected_count")
        .collect()
    )
    assert sorted(tuple(r) for r in failed) == [
        ("c-2", "silver", "ami_daily", "ami_completeness", 1),
        ("c-3", "gold", "meter_daily_usage", "ami_completeness", 1),
    ]

    # A later extract with every read of that day present completes it: gold is published again.
    _resend(cfg, reads, "ami_20260202T060000Z_fix.csv", missing_every=None)
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="c-4")
    assert table_version(spark, usage_path) > published
    fixed = read_table(spark, wh, "gold", "meter_daily_usage").filter(F.col("local_date") == day)
    assert fixed.agg(F.sum("intervals_missing")).first()[0] == 0


def test_a_day_still_being_delivered_is_judged_on_what_arrived(spark):
    """The trailing day of an extract cut mid-day is complete up to its latest read."""
    from datetime import date, datetime

    from ucx_spark.quality.checks import ami_completeness

    day_start, day_end = datetime(2026, 1, 5, 6), datetime(2026, 1, 6, 6)
    rows = [
        # m1 and m2 delivered up to 18:00 UTC (12 of 24 hours), all with values
        ("m1", date(2026, 1, 5), 60, 12, day_start, day_end, day_start, datetime(2026, 1, 5, 18)),
        ("m2", date(2026, 1, 5), 60, 12, day_start, day_end, day_start, datetime(2026, 1, 5, 18)),
        # a full day where one of two meters has a third of its reads missing
        ("m1", date(2026, 1, 4), 60, 24, datetime(2026, 1, 4, 6), day_start, datetime(2026, 1, 4, 6), day_start),
        ("m2", date(2026, 1, 4), 60, 16, datetime(2026, 1, 4, 6), day_start, datetime(2026, 1, 4, 6), day_start),
    ]
    df = spark.createDataFrame(
        rows,
        "meter_id string, local_date date, interval_minutes int, present_intervals int, day_start timestamp, "
        "day_end timestamp, first_interval_start timestamp, last_interval_end timestamp",
    )
    ok = ami_completeness(df.filter(F.col("local_date") == date(2026, 1, 5)), meters_df=df, min_value=0.9)
    assert ok.success and ok.unexpected_count == 0
    bad = ami_completeness(df, min_value=0.9)
    assert not bad.success and bad.unexpected_count == 1
    assert "2026-01-04 0.8333 (2 meters, 0 sent nothing)" in bad.observed_value
    assert ami_completeness(df.limit(0), min_value=0.9).success


def _shift_day(rows: list, days: int) -> list:
    from datetime import datetime, timedelta

    out = []
    for r in rows:
        ts = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(days=days)
        out.append({**r.asDict(), "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


@pytest.mark.slow
def test_a_new_day_a_third_of_the_meters_never_sent_fails_closed_until_accepted(spark, clean_run):
    """A daily extract from 8 of 12 meters (the others have active accounts and reported the day
    before) stops before gold; an operator may publish it deliberately, and that is audited."""
    from dataclasses import replace
    from datetime import date

    cfg = clean_run
    wh = cfg.paths.warehouse
    usage_path = table_path(wh, "gold", "meter_daily_usage")
    published = table_version(spark, usage_path)
    day, reads = _last_day(spark, cfg)
    meters = sorted({r["meter_id"] for r in reads})
    silent = set(meters[::3])
    new_day = date.fromordinal(date.fromisoformat(day).toordinal() + 1).isoformat()
    sent = [r for r in _shift_day(reads, 1) if r["meter_id"] not in silent]
    lines = ["meter_id,interval_start,interval_minutes,kwh,quality"]
    lines += [f"{r['meter_id']},{r['ts']},{r['interval_minutes']},{r['kwh']},A" for r in sent]
    Path(cfg.paths.landing, "ami", "ami_20260203T060000Z_daily.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DataError) as err:
        medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="c-5")
    message = str(err.value)
    assert "silver.ami_daily" in message and "ami_completeness" in message
    assert f"{new_day} 0.6667 (12 meters, {len(silent)} sent nothing)" in message
    assert table_version(spark, usage_path) == published

    # Published on purpose: the day, who and why are in the audit table; gold moves on.
    accepting = replace(cfg, quality=replace(cfg.quality, accept_incomplete_days=(new_day,),
                                             accept_incomplete_reason="4 meters' radios down; backfill due"))
    import os

    os.environ["UCX_OPERATOR"] = "ops-oncall"
    try:
        medallion.run(spark, cfg=accepting, pseudonym_key=KEY, run_id="c-6")
    finally:
        del os.environ["UCX_OPERATOR"]
    assert table_version(spark, usage_path) > published
    record = (
        read_table(spark, wh, "gold", "quality_results")
        .filter((F.col("run_id") == "c-6") & (F.col("table") == "meter_daily_usage")
                & (F.col("expectation_id") == "ami_completeness"))
        .select("success", "observed_value").first()
    )
    assert record["success"]
    assert "0 below 0.9; 1 accepted below 0.9 by ops-oncall@" in record["observed_value"]
    assert f"reason: 4 meters' radios down; backfill due; {new_day} 0.6667" in record["observed_value"]
    got = read_table(spark, wh, "gold", "meter_daily_usage").filter(F.col("local_date") == new_day).count()
    assert got == len(meters) - len(silent)
