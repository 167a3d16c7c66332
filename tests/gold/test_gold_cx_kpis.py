"""gold/cx_kpis on a tiny utility whose answers are computed by hand below.

Time zone America/Chicago (UTC-6 in winter). AMI spans Jan-Mar 2024, so the
table has the months Jan, Feb (almost no events) and Mar (none).
Accounts: a1 p1 RES R1 11111 (premise matched, lt25k); a2 p2 RES R1 11111
until Jan 20 (p2 unmatched -> unknown); a3 p3 COM C1 22222 from Jan 10 (matched
record without income band -> unknown); a4 p2 RES R2 11111 from Feb 5.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ucx_spark.contract import PROGRAMS
from ucx_spark.gold.cx_kpis import CONTRACT_KPIS, ENERGY_KPI, OUTPUT_COLUMNS, cx_kpis
from ucx_spark.gold.privacy import FORBIDDEN_COLUMNS, suppress_cells

TZ = "America/Chicago"
JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
OUT_DDL = "month date, segment_type string, segment_value string, kpi string, value double, n long"


def ts(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def inputs(spark) -> dict[str, DataFrame]:
    accounts = spark.createDataFrame(
        [
            ("a1", "p1", "m1", date(2023, 1, 1), None, "h1", "RES", "R1", "11111"),
            ("a2", "p2", "m2", date(2023, 6, 1), date(2024, 1, 20), "h2", "RES", "R1", "11111"),
            ("a3", "p3", "m3", date(2024, 1, 10), None, "h3", "COM", "C1", "22222"),
            ("a4", "p2", "m2", date(2024, 2, 5), None, "h4", "RES", "R2", "11111"),
        ],
        "account_id string, premise_id string, meter_id string, start_date date, end_date date, "
        "household_id string, customer_class string, rate_plan string, zip string",
    )
    return {
        "ami_df": spark.createDataFrame(
            [("m1", ts(2024, 1, 15, 6)), ("m1", ts(2024, 4, 1, 4, 0))],  # Mar 31 23:00 local
            "meter_id string, interval_start timestamp",
        ),
        "accounts_df": accounts,
        "household_matches_df": spark.createDataFrame(
            [("r1", "p1", "exact"), ("r3", "p3", "fuzzy")], "record_id string, premise_id string, match_method string"
        ),
        "households_df": spark.createDataFrame(
            [("r1", "lt25k", 2, "single_family", "owner", 1990, 1), ("r3", None, None, None, None, None, None)],
            "record_id string, income_band string, household_size int, home_type string, tenure string, "
            "year_built int, vehicles int",
        ),
        "surveys_df": spark.createDataFrame(
            [
                ("s1", "a1", ts(2024, 1, 10, 12), 5, 10, 2),
                ("s2", "a1", ts(2024, 1, 11, 12), 3, 7, None),
                ("s3", "a2", ts(2024, 1, 12, 12), 4, 3, 4),
                ("s4", "a3", ts(2024, 1, 13, 12), None, None, 6),
                ("s5", "a3", ts(2024, 2, 1, 3), 1, 9, 1),  # Jan 31 21:00 local: January
            ],
            "survey_id string, account_id string, responded_at timestamp, csat int, nps int, ces int",
        ),
        "contacts_df": spark.createDataFrame(
            [
                ("c1", "a1", ts(2024, 1, 5, 15), "phone", 300, True),
                ("c2", "a1", ts(2024, 1, 6, 15), "chat", 100, False),
                ("c3", "a2", ts(2024, 1, 7, 15), "phone", None, None),
                ("c4", "a3", ts(2024, 1, 18, 15), "phone", 500, True),
            ],
            "contact_id string, account_id string, started_at timestamp, channel string, handle_seconds int, "
            "first_contact_resolution boolean",
        ),
        "outages_df": spark.createDataFrame(
            [
                ("o1", "p1", ts(2024, 1, 5, 10), ts(2024, 1, 5, 11, 30), ts(2024, 1, 5, 11)),  # 90 min, ETR off 30
                ("o1", "p2", ts(2024, 1, 5, 10), ts(2024, 1, 5, 12), ts(2024, 1, 5, 11)),  # 120 min, ETR off 60
                ("o2", "p3", ts(2024, 1, 20, 10), None, ts(2024, 1, 20, 12)),  # not restored
            ],
            "outage_id string, premise_id string, started_at timestamp, restored_at timestamp, first_etr timestamp",
        ),
        "programs_df": spark.createDataFrame(
            [
                ("a1", "autopay", date(2023, 5, 1), None),
                ("a1", "ev_rate", date(2023, 1, 1), date(2024, 1, 30)),  # ended before Jan 31
                ("a2", "autopay", date(2023, 7, 1), None),  # a2 not active on Jan 31
                ("a3", "paperless", date(2024, 1, 31), None),  # enrolled on D: counts
            ],
            "account_id string, program string, enrolled_on date, ended_on date",
        ),
        "marketing_df": spark.createDataFrame(
            [
                ("e1", "a1", "email", "delivered", ts(2024, 1, 3, 12)),
                ("e2", "a1", "email", "delivered", ts(2024, 1, 4, 12)),
                ("e3", "a1", "email", "opened", ts(2024, 1, 4, 13)),
                ("e4", "a2", "email", "delivered", ts(2024, 1, 3, 12)),
                ("e5", "a2", "email", "opened", ts(2024, 1, 3, 13)),
                ("e6", "a1", "sms", "opened", ts(2024, 1, 3, 13)),  # not email
                ("e7", "a3", "email", "opened", ts(2024, 2, 3, 13)),  # Feb: opens, no delivery
            ],
            "event_id string, account_id string, channel string, event_type string, occurred_at timestamp",
        ),
        "payments_df": spark.createDataFrame(
            [
                ("y1", "a1", ts(2024, 1, 20, 12), Decimal("80.00"), "online"),
                ("y2", "a3", ts(2024, 1, 25, 12), Decimal("40.00"), "phone"),
            ],
            "payment_id string, account_id string, paid_at timestamp, amount decimal(14,2), method string",
        ),
        "bills_df": spark.createDataFrame(
            [
                ("b1", "a1", date(2024, 1, 1), date(2024, 1, 21), Decimal("100.00")),
                ("b2", "a2", date(2024, 1, 1), date(2024, 1, 21), Decimal("50.00")),
                ("b3", "a3", date(2024, 1, 25), date(2024, 2, 10), Decimal("60.00")),
            ],
            "bill_id string, account_id string, bill_date date, due_date date, amount_due decimal(14,2)",
        ),
        "daily_usage_df": spark.createDataFrame(
            [
                ("h1", date(2024, 1, 1), 20.0),
                ("h1", date(2024, 1, 2), 30.0),
                ("h3", date(2024, 1, 15), 50.0),
                ("h3", date(2024, 1, 16), None),  # a day without kwh
                ("h1", date(2024, 2, 1), 10.0),
                ("h3", date(2024, 2, 1), 90.0),
            ],
            "household_id string, local_date date, kwh double",
        ),
    }


@pytest.fixture(scope="module")
def kpis_df(spark):
    df = cx_kpis(time_zone=TZ, min_households=1, max_household_energy_share=0.6, **inputs(spark))
    return df.cache()


def test_all_segment_january(spark, kpis_df):
    expected_rows = [
        ("csat_top2box", 2 / 4, 3),  # s1 s3 of s1 s2 s3 s5
        ("nps", 100 * (2 / 4 - 1 / 4), 3),  # promoters s1 s5, detractor s3
        ("ces", (2 + 4 + 6 + 1) / 4, 3),
        ("fcr", 2 / 3, 2),  # c1 c2 c4 known; accounts a1 a3
        ("aht_seconds", 400.0, 2),  # phone c1 300, c4 500 (c3 has no handle time)
        ("saidi_minutes", (90 + 120) / 3, 3),  # p1 p2 p3 active in Jan
        ("caidi_minutes", 105.0, 2),
        ("etr_accuracy", 0.5, 2),  # 30 min off is accurate, 60 is not
        ("email_open_rate", 2 / 3, 2),
        ("collection_rate", 120 / 150, 2),  # a3's payment counts; its bill is due in Feb
        (ENERGY_KPI, 50.0, 2),  # (20 + 30 + 50) / 2 households, largest share 0.5 <= 0.6
    ]
    # Active on Jan 31: a1, a3.
    expected_rows += [(f"enrollment_rate:{p}", 0.5 if p in ("autopay", "paperless") else 0.0, 2) for p in PROGRAMS]
    expected = spark.createDataFrame([(JAN, "all", "all", k, v, n) for k, v, n in expected_rows], OUT_DDL)
    actual = kpis_df.filter((F.col("month") == JAN) & (F.col("segment_type") == "all"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_empty_months_undefined_kpis_and_dominance(spark, kpis_df):
    actual = kpis_df.filter((F.col("month") > JAN) & (F.col("segment_type") == "all")).filter(
        F.col("kpi").isin("csat_top2box", "caidi_minutes", "saidi_minutes", "email_open_rate",
                          "collection_rate", "enrollment_rate:autopay", ENERGY_KPI)
    )
    expected = spark.createDataFrame(
        [
            (FEB, "all", "all", "csat_top2box", None, 0),
            (FEB, "all", "all", "caidi_minutes", None, 0),
            (FEB, "all", "all", "saidi_minutes", 0.0, 3),  # p1, p2 (a4), p3; no outage
            (FEB, "all", "all", "email_open_rate", None, 0),  # an open but no delivery: undefined
            (FEB, "all", "all", "collection_rate", 0.0, 1),
            (FEB, "all", "all", "enrollment_rate:autopay", 1 / 3, 3),  # a1 of a1 a3 a4
            (FEB, "all", "all", ENERGY_KPI, None, 2),  # h3 holds 90% > 60%: suppressed, n kept
            (MAR, "all", "all", "csat_top2box", None, 0),
            (MAR, "all", "all", "caidi_minutes", None, 0),
            (MAR, "all", "all", "saidi_minutes", 0.0, 3),
            (MAR, "all", "all", "email_open_rate", None, 0),
            (MAR, "all", "all", "collection_rate", None, 0),
            (MAR, "all", "all", "enrollment_rate:autopay", 1 / 3, 3),
            (MAR, "all", "all", ENERGY_KPI, None, 0),
        ],
        OUT_DDL,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_segments(spark, kpis_df):
    cells = [
        (JAN, "customer_class", "RES", "csat_top2box", 2 / 3, 2),  # s1 s2 s3
        (JAN, "customer_class", "COM", "csat_top2box", 0.0, 1),  # s5
        (JAN, "customer_class", "RES", "saidi_minutes", 105.0, 2),  # p1 (a1), p2 (a2)
        (JAN, "customer_class", "COM", "saidi_minutes", 0.0, 1),  # p3 (a3), outage not restored
        (FEB, "rate_plan", "R2", "saidi_minutes", 0.0, 1),  # p2 now held by a4
        (FEB, "rate_plan", "R1", "saidi_minutes", 0.0, 1),  # p1
        (JAN, "income_band", "lt25k", "csat_top2box", 0.5, 1),  # s1 s2 (a1)
        (JAN, "income_band", "unknown", "csat_top2box", 0.5, 2),  # s3 (a2 unmatched), s5 (a3 null band)
        (JAN, "zip", "22222", "collection_rate", None, 0),  # a3 paid, no bill due in Jan
        (FEB, "zip", "22222", "collection_rate", 0.0, 1),
    ]
    keys = F.struct("month", "segment_type", "segment_value", "kpi")
    wanted = [F.struct(F.lit(m), F.lit(t), F.lit(v), F.lit(k)) for m, t, v, k, _, _ in cells]
    actual = kpis_df.filter(keys.isin(*wanted))
    assert_df_equality(actual, spark.createDataFrame(cells, OUT_DDL), ignore_row_order=True, ignore_nullable=True)


def test_grid_shape_and_no_pii(kpis_df):
    segments = {
        ("all", "all"), ("customer_class", "RES"), ("customer_class", "COM"), ("rate_plan", "R1"),
        ("rate_plan", "R2"), ("rate_plan", "C1"), ("zip", "11111"), ("zip", "22222"),
        ("income_band", "lt25k"), ("income_band", "unknown"),
    }
    kpis = {*CONTRACT_KPIS, ENERGY_KPI}
    rows = kpis_df.select("month", "segment_type", "segment_value", "kpi").collect()
    assert len(rows) == len({tuple(r) for r in rows}) == 3 * len(segments) * len(kpis)
    assert {(r.segment_type, r.segment_value) for r in rows} == segments
    assert {r.kpi for r in rows} == kpis
    assert tuple(kpis_df.columns) == OUTPUT_COLUMNS
    assert not set(kpis_df.columns) & set(FORBIDDEN_COLUMNS)


def test_small_cells_are_suppressed_for_all_segment_too(spark):
    df = cx_kpis(time_zone=TZ, min_households=3, **inputs(spark)).filter(
        (F.col("month") == JAN) & (F.col("segment_type") == "all") & F.col("kpi").isin("csat_top2box", "fcr", "nps")
    )
    expected = spark.createDataFrame(
        [
            (JAN, "all", "all", "csat_top2box", 0.5, 3),  # n = 3: published
            (JAN, "all", "all", "nps", 25.0, 3),
            (JAN, "all", "all", "fcr", None, 2),  # n = 2 < 3: suppressed, n kept
        ],
        OUT_DDL,
    )
    assert_df_equality(df, expected, ignore_row_order=True, ignore_nullable=True)


def test_suppress_cells_rules(spark):
    df = spark.createDataFrame(
        [
            ("small", 1.0, 14, None),
            ("enough", 2.0, 15, None),
            ("dominated", 3.0, 20, 0.16),
            ("share_at_limit", 4.0, 20, 0.15),
            ("no_value", None, 0, None),
        ],
        "cell string, value double, n long, max_household_share double",
    )
    actual = suppress_cells(df, max_share_col="max_household_share")
    expected = spark.createDataFrame(
        [
            ("small", None, 14, None),
            ("enough", 2.0, 15, None),
            ("dominated", None, 20, 0.16),
            ("share_at_limit", 4.0, 20, 0.15),
            ("no_value", None, 0, None),
        ],
        "cell string, value double, n long, max_household_share double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
