"""Features the household models need (issue 22), on tiny frames with hand-computed answers:
survey rows that never see their own day, a past-due balance that is never negative, EV
charging runs at interval resolution."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F
from test_gold_household_features import (
    ACCOUNTS,
    AMI,
    BILLS,
    COLLECTIONS,
    CONTACTS,
    MARKETING,
    OUTAGES,
    PAYMENTS,
    PROGRAMS,
    TZ,
    WEATHER,
    base_rows,
    local,
)

from ucx_spark.gold.household_features import payment_features, survey_features
from ucx_spark.silver.ami_daily import ev_runs

SURVEYS = "survey_id string, account_id string, household_id string, responded_at timestamp, survey_type string, " \
          "csat int, nps int, ces int"


def test_each_response_sees_only_what_came_before_its_day(spark) -> None:
    rows = base_rows()

    def df(name: str, ddl: str):  # noqa: ANN202
        return spark.createDataFrame(rows[name], ddl)

    surveys_df = spark.createDataFrame([
        ("s1", "a1", "h1", local(2024, 2, 10, 15), "relationship", 2, 3, None),
        ("s2", "a1", "h1", local(2024, 3, 20, 9), "transactional", 4, 9, 2),
        ("s3", "a1", "h1", local(2024, 3, 20, 18), "relationship", 5, 10, None),  # the same local day as s2
        ("s4", "a3", "h3", local(2024, 3, 25, 12), "relationship", None, None, 6),
    ], SURVEYS)
    got = survey_features(
        surveys_df, df("accounts", ACCOUNTS), time_zone=TZ, ami_df=df("ami", AMI), weather_df=df("weather", WEATHER),
        bills_df=df("bills", BILLS), payments_df=df("payments", PAYMENTS),
        collections_df=df("collections", COLLECTIONS), contacts_df=df("contacts", CONTACTS),
        outages_df=df("outages", OUTAGES), programs_df=df("programs", PROGRAMS),
        marketing_df=df("marketing", MARKETING),
        household_matches_df=spark.createDataFrame([], "record_id string, premise_id string, match_method string"),
        households_df=spark.createDataFrame([], "record_id string, income_band string, household_size int, "
                                                "home_type string, tenure string, year_built int, vehicles int"),
        census_df=spark.createDataFrame([], "zip string, median_household_income double, pct_renter double, "
                                            "pct_below_poverty double, population int"),
        data_start=date(2024, 1, 2),
    )
    cols = ["household_id", "as_of_date", "response_date", "csat", "nps", "survey_responses_prior", "last_csat",
            "last_nps", "days_since_last_survey", "contacts_365d", "history_days"]
    expected = spark.createDataFrame([
        ("h1", date(2024, 2, 9), date(2024, 2, 10), 2, 3, 0, None, None, None, 1, 39),
        # s2 and s3 (same day): both see s1 only, and the contact of Mar 20 is not yet theirs
        ("h1", date(2024, 3, 19), date(2024, 3, 20), 4, 9, 1, 2.0, 3.0, 38, 1, 78),
        ("h1", date(2024, 3, 19), date(2024, 3, 20), 5, 10, 1, 2.0, 3.0, 38, 1, 78),
        ("h3", date(2024, 3, 24), date(2024, 3, 25), None, None, 0, None, None, None, 0, 83),
    ], "household_id string, as_of_date date, response_date date, csat int, nps int, survey_responses_prior long, "
       "last_csat double, last_nps double, days_since_last_survey int, contacts_365d long, history_days int")
    assert_df_equality(got.select(*cols), expected, ignore_row_order=True, ignore_nullable=True)
    keys = got.select("response_key").distinct().count()
    assert keys == 4 and got.filter(F.col("as_of_date") >= F.col("response_date")).count() == 0


def test_past_due_balance_is_never_negative_and_credit_is_its_own_feature(spark) -> None:
    keys_df = spark.createDataFrame(
        [(a, d) for a in ("a1", "a2", "a3") for d in (date(2024, 3, 10), date(2024, 4, 10))],
        "account_id string, as_of_date date")
    bills_df = spark.createDataFrame([
        # a1: pays an opening balance (before its first bill), then b1 in full, b2 half
        ("b1", "a1", date(2024, 1, 31), date(2024, 2, 5), date(2024, 2, 25), Decimal("100.00")),
        ("b2", "a1", date(2024, 2, 29), date(2024, 3, 5), date(2024, 3, 25), Decimal("120.00")),
        # a2: overpays: a credit, never negative arrears
        ("b3", "a2", date(2024, 1, 31), date(2024, 2, 5), date(2024, 2, 25), Decimal("80.00")),
        # a3: never pays two bills
        ("b4", "a3", date(2024, 1, 31), date(2024, 2, 5), date(2024, 2, 25), Decimal("50.00")),
        ("b5", "a3", date(2024, 2, 29), date(2024, 3, 5), date(2024, 3, 25), Decimal("70.00")),
    ], BILLS)
    payments_df = spark.createDataFrame([
        ("y0", "a1", local(2024, 1, 10, 9), Decimal("300.00"), "online"),  # opening balance: not this ledger's
        ("y1", "a1", local(2024, 2, 20, 9), Decimal("100.00"), "online"),
        ("y2", "a1", local(2024, 3, 8, 9), Decimal("60.00"), "online"),
        ("y3", "a2", local(2024, 2, 10, 9), Decimal("200.00"), "online"),
    ], PAYMENTS)
    got = payment_features(keys_df, bills_df, payments_df, time_zone=TZ).select(
        "account_id", "as_of_date", F.col("arrears_usd").cast("double"), F.col("credit_usd").cast("double"),
        F.col("days_past_due").cast("int"), F.round("past_due_bill_ratio", 6).alias("past_due_bill_ratio"))
    expected = spark.createDataFrame([
        # Mar 10: a1's b2 (120, paid 60) is not yet due: nothing past due; Apr 10: 60 past due since Mar 25
        ("a1", date(2024, 3, 10), 0.0, 0.0, 0, 0.0),
        ("a1", date(2024, 4, 10), 60.0, 0.0, 16, 0.5),
        ("a2", date(2024, 3, 10), 0.0, 120.0, 0, 0.0),
        ("a2", date(2024, 4, 10), 0.0, 120.0, 0, 0.0),
        ("a3", date(2024, 3, 10), 50.0, 0.0, 14, round(50 / 70, 6)),
        ("a3", date(2024, 4, 10), 120.0, 0.0, 45, round(120 / 70, 6)),
    ], "account_id string, as_of_date date, arrears_usd double, credit_usd double, days_past_due int, "
       "past_due_bill_ratio double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_ev_charging_runs_at_15_minute_and_hourly_resolution(spark) -> None:
    def reads(meter: str, start: datetime, minutes: int, kws: list[float]) -> list[tuple]:
        from datetime import timedelta

        return [(meter, start + timedelta(minutes=minutes * i), minutes, kw * minutes / 60, "A")
                for i, kw in enumerate(kws)]

    rows = (
        reads("q1", local(2024, 3, 1, 23), 15, [1.0, 7.2, 7.2, 7.2, 7.2, 7.2, 7.2, 1.0])  # 90 min across midnight
        + reads("q2", local(2024, 3, 1, 23, 30), 15, [7.2, 7.2, 7.2, 1.0])  # 45 minutes: too short
        + reads("h1", local(2024, 3, 2, 1), 60, [0.5, 6.0, 0.5])  # one hour at 6 kW
        + reads("d1", local(2024, 3, 2, 12), 60, [8.0, 8.0])  # midday: not a night run
    )
    got = ev_runs(spark.createDataFrame(rows, AMI), time_zone=TZ)
    expected = spark.createDataFrame([
        ("q1", date(2024, 3, 1), 45, 7.2 * 0.75, 90),
        ("q1", date(2024, 3, 2), 45, 7.2 * 0.75, 90),
        ("h1", date(2024, 3, 2), 60, 6.0, 60),
    ], "meter_id string, local_date date, ev_block_minutes int, ev_block_kwh double, longest_ev_block_minutes int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)
