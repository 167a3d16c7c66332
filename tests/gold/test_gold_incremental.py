"""Gold recomputes only what changed silver rows can change (issue 19).

A new day after the last as_of_date changes no published feature: household_features
and survey_features are left as they are (no commit), meter_daily_usage recomputes
the new days only. A corrected past day recomputes only the as_of_dates (and survey
responses) on or after it; the result equals a rebuild from scratch of the same
silver tables.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from chispa import assert_approx_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ucx_spark.catalog import AMI_DAILY, spec
from ucx_spark.io.delta import append_table, read_table, table_path, table_version, upsert
from ucx_spark.pipelines import gold
from ucx_spark.pipelines.gold import empty_silver_schema
from ucx_spark.silver.ami_daily import ami_daily

TZ = "America/Chicago"
GOLD_TABLES = ("meter_daily_usage", "cx_kpis", "household_features", "survey_features")
H1, H2 = "1" * 32, "2" * 32


def _reads(spark, first: str, hours: int, *, boost_on: date | None = None) -> DataFrame:
    """Hourly reads of meters m1 and m2 from ``first`` (UTC) on; kWh follows the hour of day, and
    m1's reads of ``boost_on`` (UTC date) are tripled (a corrected extract)."""
    base = spark.range(hours).select(
        (F.lit(datetime.fromisoformat(first).replace(tzinfo=UTC)).cast("timestamp")
         + F.make_interval(hours=F.col("id").cast("int"))).alias("interval_start"))
    df = base.crossJoin(spark.createDataFrame([("m1", "k1", 1.0), ("m2", "k2", 2.0)], "meter_id string, meter_key string, f double"))
    kwh = F.round(F.col("f") * (0.5 + F.hour("interval_start") / 24.0), 3)
    if boost_on is not None:
        kwh = F.when((F.col("meter_id") == "m1") & (F.to_date("interval_start") == F.lit(boost_on)), kwh * 3).otherwise(kwh)
    return df.select("meter_id", "meter_key", "interval_start", F.lit(60).alias("interval_minutes"),
                     kwh.alias("kwh"), F.lit("A").alias("quality"))


def _lineage(df: DataFrame, extract: str) -> DataFrame:
    """silver's lineage columns, as the silver step writes them."""
    return df.withColumn("_source_file", F.lit(f"accounts_{extract}.csv")).withColumn(
        "_extracted_at", F.lit(datetime.strptime(extract, "%Y%m%d").replace(tzinfo=UTC)))


def _silver(spark, wh: str) -> None:
    accounts = _lineage(spark.createDataFrame(
        [(a, f"c{i}", f"p{i}", f"m{i}", "Name", "1 Main St", "Town", "TX", "75001", "RES", "R1", "w1",
          date(2023, 6, 1), None, "x@example.com", "555-0100", h)
         for i, (a, h) in enumerate([("a1", H1), ("a2", H2)], start=1)],
        empty_silver_schema("accounts"),
    ), "20240401")
    surveys = spark.createDataFrame(
        [("s1", "a1", datetime(2024, 2, 15, 17, tzinfo=UTC), "relationship", None, 4, 8, None, None, H1),
         ("s2", "a1", datetime(2024, 3, 20, 17, tzinfo=UTC), "transactional", None, 2, 3, 5, None, H1),
         ("s3", "a2", datetime(2024, 3, 25, 17, tzinfo=UTC), "relationship", None, 5, 10, None, None, H2)],
        empty_silver_schema("surveys"),
    )
    # hourly temperatures at station w1, colder in January (the baselines' weather)
    weather = spark.range(95 * 24).select(
        F.lit("w1").alias("station_id"),
        (F.lit(datetime(2024, 1, 1, 6, tzinfo=UTC)).cast("timestamp")
         + F.make_interval(hours=F.col("id").cast("int"))).alias("observed_at"),
        F.round(F.lit(30.0) + F.col("id") / 60.0 + 8 * F.sin(F.col("id") * 0.2618), 1).alias("temp_f"))
    contacts = spark.createDataFrame(
        [("c1", "a1", datetime(2024, 2, 5, 15, tzinfo=UTC), "phone", "billing", 300, True,
          "Customer asked why the bill went up.", H1),
         ("c2", "a1", datetime(2024, 2, 8, 15, tzinfo=UTC), "phone", "billing", 420, False,
          "Caller angry about a terrible, unfair bill.", H1),
         ("c3", "a2", datetime(2024, 3, 12, 15, tzinfo=UTC), "chat", "outage", 200, True,
          "Power out since the storm, asked when it will be restored.", H2)],
        empty_silver_schema("contacts"),
    )
    bills = _bills(spark, [("b1", date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 2), 610.0, "80.00"),
                           ("b2", date(2024, 2, 1), date(2024, 2, 29), date(2024, 3, 2), 540.0, "71.50")])
    for name, df in (("accounts", accounts), ("surveys", surveys), ("weather", weather),
                     ("contacts", contacts), ("bills", bills)):  # as the silver step creates them
        append_table(df, table_path(wh, "silver", name), properties=spec("silver", name).table_properties)
    daily = ami_daily(_reads(spark, "2024-01-01T06:00:00", 91 * 24), time_zone=TZ).withColumn("_run_id", F.lit("s1"))
    daily_table = spec("silver", AMI_DAILY)
    append_table(daily, table_path(wh, "silver", AMI_DAILY), partition_by=daily_table.partition_by,
                 properties=daily_table.table_properties)


def _bills(spark, rows: list[tuple]) -> DataFrame:
    """Household H1's bills: (bill_id, period_start, period_end, bill_date, kwh, amount_due)."""
    from decimal import Decimal

    return spark.createDataFrame(
        [(b, "a1", start, end, issued, issued, kwh, Decimal(due), H1) for b, start, end, issued, kwh, due in rows],
        empty_silver_schema("bills"))


def _upsert_days(spark, wh: str, reads: DataFrame, days: list[date]) -> None:
    """silver/ami_daily of ``days`` recomputed from ``reads`` (the silver step's upsert)."""
    daily = ami_daily(reads, time_zone=TZ).filter(F.col("local_date").isin(days)).withColumn("_run_id", F.lit("s2"))
    upsert(daily, table_path(wh, "silver", "ami_daily"), keys=("meter_id", "local_date"))


def test_a_new_day_after_the_last_as_of_date_changes_no_feature_and_a_corrected_day_recomputes_from_it(
    spark, tmp_path
):
    wh = str(tmp_path / "wh")
    _silver(spark, wh)
    first = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r1", min_households=1)
    assert first.as_of_dates == (date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31))
    assert dict(first.rows)["survey_features"] == 3 and not first.partial
    hf_path, sf_path = table_path(wh, "gold", "household_features"), table_path(wh, "gold", "survey_features")
    built = (table_version(spark, hf_path), table_version(spark, sf_path))

    # April 1-3 local (April 1 had one read): no month has ended since, no response lies after them.
    _upsert_days(spark, wh, _reads(spark, "2024-04-01T05:00:00", 3 * 24),
                 [date(2024, 4, 1), date(2024, 4, 2), date(2024, 4, 3)])
    later = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r2", min_households=1)
    # the baselines are built through March 31: April's days refit nothing until April is complete
    assert {"household_features", "survey_features", "usage_baselines", "bill_explanations",
            "contact_insights"} <= set(later.unchanged)
    assert (table_version(spark, hf_path), table_version(spark, sf_path)) == built
    assert dict(later.partial) == {"meter_daily_usage": "3 changed days from 2024-04-01"}  # only they recomputed

    # m1's March 10 corrected (its reads tripled): the March 31 features and the two responses
    # after March 10 are recomputed; January 31, February 29 and the February response stay.
    march_10 = date(2024, 3, 10)
    _upsert_days(spark, wh, _reads(spark, "2024-03-08T06:00:00", 4 * 24, boost_on=march_10),
                 [march_10, date(2024, 3, 11)])
    corrected = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r3", min_households=1)
    # (the features were last built before April 1-3 came: those days count as changed for them too)
    assert dict(corrected.partial) == {"meter_daily_usage": f"2 changed days from {march_10}",
                                       "household_features": f"changes from {march_10}",
                                       "survey_features": f"changes from {march_10}"}
    assert table_version(spark, hf_path) == built[0] + 1 and table_version(spark, sf_path) == built[1] + 1
    assert "usage_baselines" not in corrected.unchanged and "bill_explanations" not in corrected.unchanged
    baselines = read_table(spark, wh, "gold", "usage_baselines")
    assert baselines.filter(F.col("period_end") == date(2024, 3, 31)).count() == 2 == baselines.count()

    # The same silver tables, gold from scratch: the same rows.
    fresh = str(tmp_path / "fresh")
    shutil.copytree(Path(wh, "silver"), Path(fresh, "silver"))
    gold.run(spark, warehouse=fresh, time_zone=TZ, run_id="f1", min_households=1)
    for table in ("meter_daily_usage", "household_features", "survey_features", "usage_baselines",
                  "contact_insights"):
        got, want = (read_table(spark, w, "gold", table).drop("run_id", "created_at") for w in (wh, fresh))
        assert got.count() == want.count() > 0
        assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True,
                                  allow_nan_equality=True)
    march = read_table(spark, wh, "gold", "household_features").filter(
        (F.col("household_id") == H1) & (F.col("as_of_date") == date(2024, 3, 31))).first()
    january = read_table(spark, fresh, "gold", "household_features").filter(
        (F.col("household_id") == H1) & (F.col("as_of_date") == date(2024, 1, 31))).first()
    assert march is not None and january is not None and march.kwh_per_day_90d > january.kwh_per_day_90d


def _account(i: int, h: str, start: date, spark) -> DataFrame:
    return _lineage(spark.createDataFrame(
        [(f"a{i}", f"c{i}", f"p{i}", f"m{i}", "Name", "1 Main St", "Town", "TX", "75001", "RES", "R1", "w1",
          start, None, "x@example.com", "555-0100", h)], empty_silver_schema("accounts")), "20240402")


def _survey(sid: str, account: str, at: datetime, csat: int, h: str, spark) -> DataFrame:
    return spark.createDataFrame([(sid, account, at, "relationship", None, csat, 7, None, None, h)],
                                 empty_silver_schema("surveys"))


def test_a_daily_extract_of_other_feeds_recomputes_from_its_first_dated_row(spark, tmp_path):
    """A new account and a new survey response after the last month end (a daily CIS extract):
    household_features is left as it is (no commit), survey_features recomputes from the response's
    day; a response back-dated into March recomputes the March 31 features and the responses after
    it; every table equals a rebuild from scratch. A snapshot re-sending every account as it was
    changes nothing; a changed (not new) account rebuilds whole."""
    from delta.tables import DeltaTable

    wh = str(tmp_path / "wh")
    _silver(spark, wh)
    gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r1", min_households=1)
    hf_path = table_path(wh, "gold", "household_features")
    built = table_version(spark, hf_path)
    h3 = "3" * 32
    accounts_path, surveys_path = table_path(wh, "silver", "accounts"), table_path(wh, "silver", "surveys")
    append_table(_account(3, h3, date(2024, 4, 2), spark), accounts_path)
    append_table(_survey("s4", "a2", datetime(2024, 4, 2, 17, tzinfo=UTC), 3, H2, spark), surveys_path)
    append_table(_bills(spark, [("b3", date(2024, 3, 1), date(2024, 3, 31), date(2024, 4, 2), 500.0, "66.25")]),
                 table_path(wh, "silver", "bills"))
    daily = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r2", min_households=1)
    assert "household_features" in daily.unchanged and table_version(spark, hf_path) == built
    # an account that starts after the last meter-day changes no published meter-day
    assert "meter_daily_usage" in daily.unchanged
    assert dict(daily.partial)["survey_features"] == "changes from 2024-04-02"  # its features: April 1 on
    # the new bill is explained in the run that lands it; the baselines (through March 31) stay
    assert dict(daily.partial)["bill_explanations"] == "changes from 2024-04-02" and "usage_baselines" in daily.unchanged
    assert read_table(spark, wh, "gold", "bill_explanations").count() == 3
    assert read_table(spark, wh, "gold", "survey_features").count() == 4

    append_table(_survey("s5", "a2", datetime(2024, 3, 5, 17, tzinfo=UTC), 1, H2, spark), surveys_path)
    late = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r3", min_households=1)
    assert dict(late.partial) == {"household_features": "changes from 2024-03-05",
                                  "survey_features": "changes from 2024-03-05",
                                  "contact_insights": "changes from 2024-03-05"}  # (its survey comments)
    assert table_version(spark, hf_path) == built + 1

    fresh = str(tmp_path / "fresh")
    shutil.copytree(Path(wh, "silver"), Path(fresh, "silver"))
    gold.run(spark, warehouse=fresh, time_zone=TZ, run_id="f1", min_households=1)
    for table in ("household_features", "survey_features", "bill_explanations", "contact_insights"):
        got, want = (read_table(spark, w, "gold", table).drop("run_id", "created_at") for w in (wh, fresh))
        assert got.count() == want.count() > 0
        assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True,
                                  allow_nan_equality=True)

    # tomorrow's CIS snapshot re-sends every account as it was: silver records the later extract
    # (lineage), and nothing a feature reads moved
    DeltaTable.forPath(spark, accounts_path).update("true", {
        "_source_file": F.lit("accounts_20240403.csv"),
        "_extracted_at": F.lit(datetime(2024, 4, 3, tzinfo=UTC))})
    versions = {t: table_version(spark, table_path(wh, "gold", t)) for t in GOLD_TABLES}
    resent = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r3b", min_households=1)
    assert set(resent.unchanged) == set(gold.TABLES), resent  # not one gold table rewritten
    assert {t: table_version(spark, table_path(wh, "gold", t)) for t in GOLD_TABLES} == versions

    # an existing account changed (its attributes hold at every date): no day bounds it
    DeltaTable.forPath(spark, accounts_path).update("account_id = 'a1'", {"rate_plan": F.lit("R2")})
    changed = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r4", min_households=1)
    assert "household_features" not in dict(changed.partial) and "household_features" not in changed.unchanged

    # a move-out (the next extract sets a1's end_date, then corrects it to a later day): the update
    # changed only end_date, so it is dated by the earlier of its end dates, not rebuilt whole
    DeltaTable.forPath(spark, accounts_path).update("account_id = 'a1'", {
        "end_date": F.lit(date(2024, 3, 10)), "_source_file": F.lit("accounts_20240405.csv")})
    moved = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r5", min_households=1)
    assert dict(moved.partial)["household_features"] == "changes from 2024-03-10"
    assert dict(moved.partial)["contact_insights"] == "changes from 2024-03-10"
    # a meter-day takes the household of the account active on its day: March 10 through April 1
    # (the local day of the last reads, 01:00 CDT) recomputed
    assert dict(moved.partial)["meter_daily_usage"] == "23 changed days from 2024-03-10"
    DeltaTable.forPath(spark, accounts_path).update("account_id = 'a1'", {
        "end_date": F.lit(date(2024, 3, 28)), "_source_file": F.lit("accounts_20240406.csv")})
    corrected = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r6", min_households=1)
    assert dict(corrected.partial)["household_features"] == "changes from 2024-03-10"
    assert dict(corrected.partial)["meter_daily_usage"] == "23 changed days from 2024-03-10"
    again = str(tmp_path / "again")
    shutil.copytree(Path(wh, "silver"), Path(again, "silver"))
    gold.run(spark, warehouse=again, time_zone=TZ, run_id="f2", min_households=1)
    for table in (*GOLD_TABLES, "contact_insights", "bill_explanations"):
        got, want = (read_table(spark, w, "gold", table).drop("run_id", "created_at") for w in (wh, again))
        assert got.count() == want.count() > 0
        assert_approx_df_equality(got, want, 1e-9, ignore_row_order=True, ignore_nullable=True,
                                  allow_nan_equality=True)
    march = read_table(spark, wh, "gold", "household_features").filter(F.col("as_of_date") == date(2024, 3, 31))
    assert march.filter(F.col("household_id") == H1).count() == 0  # a1 moved out on March 28: not active on the 31st
