"""gold/household_features: hand-computed features, degree-day fit, point in time.

Time zone America/Chicago. as_of_dates 2024-03-10 and 2024-03-31.
a1 (h1, premise p1, meter m1, station w1) active since 2023-06-01: one noon
reading a day Jan 2 - Mar 31 with kwh = 10 + 0.5 HDD + 1.2 CDD; bills 100,
100, 100, 200; payments; contacts; outages; programs; marketing.
a2 (h2) held meter m2 until Mar 15, a3 (h3) from Mar 16: a3 has an EV block
and solar export, and never sees a2's 100 kWh.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ucx_spark.gold.household_features import household_features
from ucx_spark.gold.privacy import FORBIDDEN_COLUMNS

TZ = "America/Chicago"
AS_OF = [date(2024, 3, 10), date(2024, 3, 31)]
LOCAL = ZoneInfo(TZ)

ACCOUNTS = (
    "account_id string, household_id string, premise_id string, meter_id string, start_date date, "
    "end_date date, customer_class string, rate_plan string, zip string, weather_station_id string"
)
AMI = "meter_id string, interval_start timestamp, interval_minutes int, kwh double, quality string"
WEATHER = "station_id string, observed_at timestamp, temp_f double"
BILLS = "bill_id string, account_id string, period_end date, bill_date date, due_date date, amount_due decimal(14,2)"
PAYMENTS = "payment_id string, account_id string, paid_at timestamp, amount decimal(14,2), method string"
COLLECTIONS = "event_id string, account_id string, event_date date, event_type string"
CONTACTS = (
    "contact_id string, account_id string, started_at timestamp, channel string, reason string, "
    "handle_seconds int, first_contact_resolution boolean"
)
OUTAGES = "outage_id string, premise_id string, started_at timestamp, restored_at timestamp, first_etr timestamp"
PROGRAMS = "account_id string, program string, enrolled_on date, ended_on date"
MARKETING = "event_id string, account_id string, channel string, event_type string, occurred_at timestamp"


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A local wall-clock time as a UTC instant."""
    return datetime(y, mo, d, h, mi, tzinfo=LOCAL).astimezone(UTC)


def temp_on(i: int) -> float:
    return 40.0 + (i * 7) % 50  # 40..89 F: heating and cooling days


def kwh_for(temp: float) -> float:
    return 10.0 + 0.5 * max(65.0 - temp, 0.0) + 1.2 * max(temp - 65.0, 0.0)


def base_rows() -> dict[str, list[tuple]]:
    ami, weather = [], []
    first = date(2024, 1, 2)
    for i in range(90):  # Jan 2 .. Mar 31
        d = first + timedelta(days=i)
        t = temp_on(i)
        weather.append(("w1", local(d.year, d.month, d.day, 12), t))
        ami.append(("m1", local(d.year, d.month, d.day, 12), 60, kwh_for(t), "A"))
    ami += [
        ("m2", local(2024, 3, 10, 12), 60, 100.0, "A"),  # a2's, not a3's
        ("m2", local(2024, 3, 20, 23), 60, 4.0, "A"),
        ("m2", local(2024, 3, 21, 0), 60, 5.0, "A"),  # 2nd night hour >= 3 kW: EV block on Mar 21
        ("m2", local(2024, 3, 21, 12), 60, -1.0, "A"),  # midday export
        ("m2", local(2024, 3, 21, 13), 60, 0.5, "A"),
        ("m2", local(2024, 3, 22, 1), 60, None, "M"),  # a day without kwh
    ]
    return {
        "accounts": [
            ("a1", "h1", "p1", "m1", date(2023, 6, 1), None, "RES", "R1", "11111", "w1"),
            ("a2", "h2", "p2", "m2", date(2024, 1, 1), date(2024, 3, 15), "RES", "R1", "11111", "w1"),
            ("a3", "h3", "p2", "m2", date(2024, 3, 16), None, "RES", "EV1", "11111", "w1"),
        ],
        "ami": ami,
        "weather": weather,
        "bills": [
            ("b1", "a1", date(2023, 11, 30), date(2023, 12, 5), date(2023, 12, 25), Decimal("100.00")),
            ("b2", "a1", date(2023, 12, 31), date(2024, 1, 5), date(2024, 1, 25), Decimal("100.00")),
            ("b3", "a1", date(2024, 1, 31), date(2024, 2, 5), date(2024, 2, 25), Decimal("100.00")),
            ("b4", "a1", date(2024, 2, 29), date(2024, 3, 5), date(2024, 3, 25), Decimal("200.00")),
        ],
        "payments": [
            ("y1", "a1", local(2023, 12, 20, 9), Decimal("100.00"), "online"),  # b1 on time
            ("y2", "a1", local(2024, 1, 30, 9), Decimal("100.00"), "online"),  # b2 late
            ("y3", "a1", local(2024, 2, 20, 9), Decimal("100.00"), "autopay"),  # b3 on time
            ("y4", "a1", local(2024, 3, 20, 9), Decimal("150.00"), "online"),  # b4 short: late
        ],
        "collections": [
            ("k1", "a1", date(2024, 2, 1), "past_due_notice"),
            ("k2", "a1", date(2023, 1, 15), "disconnect_notice"),  # older than 365 days
        ],
        "contacts": [
            ("c1", "a1", local(2024, 3, 20, 10), "phone", "billing", 300, True),
            ("c2", "a1", local(2023, 12, 1, 10), "phone", "outage", 100, False),
            ("c3", "a1", local(2024, 3, 31, 23, 30), "chat", "billing", None, None),  # last local minute of as_of
        ],
        "outages": [
            ("o1", "p1", local(2024, 2, 10, 4), local(2024, 2, 10, 6), local(2024, 2, 10, 5)),  # 120 min, ETR off 60
            ("o2", "p1", local(2024, 3, 31, 20), local(2024, 4, 1, 1), None),  # restored after as_of
            ("o3", "p2", local(2024, 3, 1, 4), local(2024, 3, 1, 5), None),  # before a3 moved in
        ],
        "programs": [("a1", "autopay", date(2023, 7, 1), None), ("a1", "ev_rate", date(2023, 7, 1), date(2024, 3, 1))],
        "marketing": [
            ("e1", "a1", "email", "delivered", local(2024, 2, 1, 9)),
            ("e2", "a1", "email", "delivered", local(2024, 3, 1, 9)),
            ("e3", "a1", "email", "opened", local(2024, 3, 1, 10)),
            ("e4", "a1", "email", "clicked", local(2024, 3, 1, 11)),
        ],
    }


def future_rows() -> dict[str, list[tuple]]:
    """Rows dated after 2024-03-31 local: none may change a feature of either as_of_date."""
    return {
        "accounts": [("a4", "h4", "p4", "m4", date(2024, 4, 1), None, "COM", "C1", "22222", "w1")],
        "ami": [
            ("m1", local(2024, 4, 1, 12), 60, 999.0, "A"),
            ("m2", local(2024, 4, 1, 0), 60, 9.0, "A"),  # a night hour after as_of
            ("m2", local(2024, 4, 1, 12), 60, -9.0, "A"),
        ],
        "weather": [("w1", local(2024, 4, 1, 0, 30), 120.0)],
        "bills": [("b5", "a1", date(2024, 3, 31), date(2024, 4, 5), date(2024, 4, 25), Decimal("999.00"))],
        "payments": [("y5", "a1", local(2024, 4, 1, 0, 30), Decimal("999.00"), "mail")],
        "collections": [("k3", "a1", date(2024, 4, 2), "disconnect")],
        "contacts": [("c4", "a1", local(2024, 4, 1, 0, 1), "phone", "complaint", 999, False)],
        "outages": [("o4", "p1", local(2024, 4, 1, 0, 1), local(2024, 4, 1, 2), local(2024, 4, 1, 1))],
        "programs": [("a1", "solar", date(2024, 4, 1), None), ("a3", "ev_rate", date(2024, 4, 1), None)],
        "marketing": [("e5", "a1", "email", "unsubscribed", local(2024, 4, 1, 0, 0))],
    }


def compute(spark, rows: dict[str, list[tuple]]) -> DataFrame:
    def df(name: str, ddl: str) -> DataFrame:
        return spark.createDataFrame(rows[name], ddl)

    return household_features(
        df("accounts", ACCOUNTS),
        as_of_dates=AS_OF,
        time_zone=TZ,
        ami_df=df("ami", AMI),
        weather_df=df("weather", WEATHER),
        bills_df=df("bills", BILLS),
        payments_df=df("payments", PAYMENTS),
        collections_df=df("collections", COLLECTIONS),
        contacts_df=df("contacts", CONTACTS),
        outages_df=df("outages", OUTAGES),
        programs_df=df("programs", PROGRAMS),
        marketing_df=df("marketing", MARKETING),
        household_matches_df=spark.createDataFrame([("r1", "p1", "exact")], "record_id string, premise_id string, match_method string"),
        households_df=spark.createDataFrame(
            [("r1", "lt25k", 3, "single_family", "renter", 1975, 2)],
            "record_id string, income_band string, household_size int, home_type string, tenure string, "
            "year_built int, vehicles int",
        ),
        census_df=spark.createDataFrame(
            [("11111", 52000.0, 40.0, 12.5, 9000)],
            "zip string, median_household_income double, pct_renter double, pct_below_poverty double, population int",
        ),
    )


@pytest.fixture(scope="module")
def features_df(spark):
    return compute(spark, base_rows()).cache()


def test_rows_only_for_active_accounts_and_no_pii(features_df):
    keys = {(r.household_id, r.as_of_date) for r in features_df.select("household_id", "as_of_date").collect()}
    assert keys == {("h1", AS_OF[0]), ("h2", AS_OF[0]), ("h1", AS_OF[1]), ("h3", AS_OF[1])}
    assert features_df.count() == 4
    assert not set(features_df.columns) & set(FORBIDDEN_COLUMNS)


def test_hand_computed_features(spark, features_df):
    cols = [
        "household_id", "as_of_date", "account_tenure_days",
        "last_bill_usd", "mean_bill_12_usd", "bill_shock_ratio", "is_bill_shock", "arrears_usd",
        "late_bill_share_365d", "payment_share_online_365d", "uses_autopay_payment_365d", "energy_burden",
        "collections_past_due_notice_365d", "collections_disconnect_notice_365d",
        "contacts_90d", "contacts_365d", "contacts_billing_365d", "fcr_share_365d", "mean_handle_seconds_365d",
        "outages_365d", "outage_minutes_365d", "mean_etr_error_minutes_365d",
        "is_enrolled_autopay", "is_enrolled_ev_rate", "email_open_rate_365d", "email_click_rate_365d",
        "has_unsubscribed", "income_band", "census_pct_renter",
        "usage_days_90d", "kwh_per_day_90d", "ev_block_day_share_90d", "solar_export_interval_share_90d",
        "export_kwh_365d", "on_peak_share_90d",
    ]
    actual = features_df.filter(F.col("as_of_date") == AS_OF[1]).select(*cols)
    h1_usage = sum(kwh_for(temp_on(i)) for i in range(90)) / 90
    expected = spark.createDataFrame(
        [
            # h1: last bill 200 over the trailing mean 100; mean of 4 bills 125; billed 500, paid 450;
            # b2 and b4 late of 4; 3 of 4 payments online; 12 x 125 / 17500 (lt25k midpoint).
            ("h1", AS_OF[1], 304, 200.0, 125.0, 2.0, True, 50.0, 0.5, 0.75, True, 1500 / 17500,
             1, 0, 2, 3, 2, 0.5, 200.0, 2, 120.0, 60.0, True, False, 0.5, 0.5, False, "lt25k", 40.0,
             90, h1_usage, 0.0, 0.0, 0.0, 0.0),
            # h3: 2 days with kWh (4.0, 4.5); the block on Mar 21 of 2 days; 1 of 2 midday intervals
            # exports 1 kWh; outage o3 predates the move-in; too few days for a weather fit.
            ("h3", AS_OF[1], 15, None, None, None, None, 0.0, None, None, False, None,
             0, 0, 0, 0, 0, None, None, 0, 0.0, None, False, False, None, None, False, None, 40.0,
             2, 4.25, 0.5, 0.5, 1.0, 0.0),
        ],
        actual.schema,
    )
    assert_df_equality(actual.drop("kwh_per_day_90d"), expected.drop("kwh_per_day_90d"),
                       ignore_row_order=True, ignore_nullable=True)
    got = {r.household_id: r.kwh_per_day_90d for r in features_df.filter(F.col("as_of_date") == AS_OF[1]).collect()}
    assert got["h1"] == pytest.approx(h1_usage)
    assert got["h3"] == pytest.approx(4.25)
    h2 = features_df.filter(F.col("household_id") == "h2").select("usage_days_90d", "kwh_per_day_90d").first()
    assert (h2.usage_days_90d, h2.kwh_per_day_90d) == (1, 100.0)


def test_degree_day_regression_recovers_known_slopes(features_df):
    for row in features_df.filter(F.col("household_id") == "h1").collect():
        assert row.base_kwh_per_day == pytest.approx(10.0, abs=1e-6)
        assert row.heating_kwh_per_hdd == pytest.approx(0.5, abs=1e-6)
        assert row.cooling_kwh_per_cdd == pytest.approx(1.2, abs=1e-6)
    assert features_df.filter(F.col("as_of_date") == AS_OF[0]).first() is not None
    days = {r.as_of_date: r.weather_fit_days for r in features_df.filter(F.col("household_id") == "h1").collect()}
    assert days == {AS_OF[0]: 69, AS_OF[1]: 90}


def test_future_rows_change_nothing(spark, features_df):
    rows = base_rows()
    for name, extra in future_rows().items():
        rows[name] = rows[name] + extra
    with_future = compute(spark, rows)
    # equal up to the order doubles are summed in (the shuffle may differ between two runs); a
    # future row that leaked would move a feature by far more than 1e-9
    assert_approx_df_equality(with_future, features_df, 1e-9, ignore_row_order=True,
                              ignore_nullable=True, allow_nan_equality=True)


def test_ev_charging_onset_tells_a_new_ev_from_one_owned_before_the_records(spark) -> None:
    """A household charging since its first usage day owned the EV before the records began; one
    whose charging began 60 days ago bought it then (the signal of a coming EV-rate enrollment)."""
    from datetime import timedelta

    from ucx_spark.gold.household_features import PROFILE_COLUMNS, usage_features

    as_of = date(2024, 12, 31)

    def day(account: str, ago: int, charging: bool) -> tuple:
        values = {c: 0.0 for c in PROFILE_COLUMNS}
        values.update(kwh=20.0, has_ev_block=charging, ev_block_minutes=120 if charging else 0,
                      ev_block_kwh=14.4 if charging else 0.0, midday_intervals=0, midday_export_intervals=0)
        return (account, as_of - timedelta(days=ago), *(values[c] for c in PROFILE_COLUMNS))

    # new: 200 days of usage, charging every other night for the last 60; old: 150 days of usage,
    # charging every other night from the first; none: never charges
    rows = [day("new", ago, ago < 60 and ago % 2 == 0) for ago in range(200)]
    rows += [day("old", ago, ago % 2 == 1) for ago in range(150)]
    rows += [day("none", ago, False) for ago in range(100)]
    types = {"has_ev_block": "boolean", "midday_intervals": "long", "midday_export_intervals": "long",
             "ev_block_minutes": "int"}
    schema = "account_id string, local_date date, " + ", ".join(f"{c} {types.get(c, 'double')}" for c in PROFILE_COLUMNS)
    profile_df = spark.createDataFrame(rows, schema)
    keys_df = spark.createDataFrame([(a, as_of) for a in ("new", "old", "none")], "account_id string, as_of_date date")
    accounts_df = spark.createDataFrame([(a, "S1") for a in ("new", "old", "none")],
                                        "account_id string, weather_station_id string")
    degree_days_df = spark.createDataFrame([], "station_id string, local_date date, mean_temp_f double, "
                                               "hdd double, cdd double")
    got = usage_features(keys_df, profile_df, degree_days_df, accounts_df).select(
        "account_id", "ev_block_nights_365d", "ev_block_first_days_ago", "ev_block_since_records_began")
    expected = spark.createDataFrame(
        [("new", 30, 58, False), ("old", 75, 149, True), ("none", 0, None, False)],
        "account_id string, ev_block_nights_365d long, ev_block_first_days_ago int, "
        "ev_block_since_records_began boolean")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_what_the_transcripts_say_as_of_each_day(spark) -> None:
    """Issue 21: negative-sentiment contacts (90 days), contacts by the topic read from the
    transcript (365 days) and repeated contacts (followed by another within 7 days), each as of
    the day: a repeat counts only once the contact that repeats it has happened (never from the
    future), a contact without a transcript has no topic and no sentiment."""
    from ucx_spark.gold.household_features import contact_features

    keys = spark.createDataFrame([("a1", d) for d in (date(2024, 1, 12), date(2024, 1, 31), date(2024, 5, 15))],
                                 "account_id string, as_of_date date")
    contacts = spark.createDataFrame([
        ("c1", "a1", datetime(2024, 1, 10, 15, tzinfo=UTC), "phone", "billing", 300, False,
         "Customer asked why the bill went up."),
        ("c2", "a1", datetime(2024, 1, 14, 15, tzinfo=UTC), "phone", "complaint", 600, False,
         "Caller furious about a terrible, unfair bill and asked for a supervisor."),
        ("c3", "a1", datetime(2024, 3, 1, 15, tzinfo=UTC), "ivr", "outage", 90, True, None),
        ("c4", "a1", datetime(2024, 3, 20, 15, tzinfo=UTC), "chat", "outage", 200, True,
         "Power out since the storm; asked when it will be restored."),
    ], "contact_id string, account_id string, started_at timestamp, channel string, reason string, "
       "handle_seconds int, first_contact_resolution boolean, transcript string")
    got = contact_features(keys, contacts, time_zone="UTC").select(
        "as_of_date", "negative_contacts_90d", "repeat_contacts_365d", "contacts_topic_billing_365d",
        "contacts_topic_outage_365d", "contacts_topic_other_365d", "contacts_365d")
    expected = spark.createDataFrame([
        (date(2024, 1, 12), 0, 0, 1, 0, 0, 1),   # c2 has not happened: c1 is no repeat yet
        (date(2024, 1, 31), 1, 1, 2, 0, 0, 2),   # c1 repeated by c2 (4 days); c2 reads angry
        (date(2024, 5, 15), 0, 1, 2, 1, 0, 4),   # c2 out of the 90 days; c3 (no transcript) no topic; c4 19 days after c3
    ], "as_of_date date, negative_contacts_90d long, repeat_contacts_365d long, contacts_topic_billing_365d long, "
       "contacts_topic_outage_365d long, contacts_topic_other_365d long, contacts_365d long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
