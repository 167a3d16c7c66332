"""gold/household_features: the recent-experience (180d) and open past-due features.

Reuses the hand-built utility of test_gold_household_features (as_of_dates
2024-03-10 and 2024-03-31, America/Chicago), with amount_past_due on the
collections rows so ``past_due_usd_45d`` is computed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from test_gold_household_features import AS_OF, base_rows, compute, future_rows

COLLECTIONS_WITH_AMOUNT = "event_id string, account_id string, event_date date, event_type string, amount_past_due decimal(14,2)"
RECENT = [
    "household_id", "as_of_date", "max_bill_shock_ratio_180d", "unresolved_contacts_180d",
    "outage_minutes_180d", "max_etr_error_minutes_180d", "days_since_past_due_notice", "past_due_usd_45d",
]


def with_amounts(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    out = dict(rows)
    amounts = {"k1": Decimal("80.00"), "k2": Decimal("300.00"), "k3": None}
    out["collections"] = [(*r, amounts[r[0]]) for r in rows["collections"]] + [
        ("k0", "a1", date(2024, 1, 10), "past_due_notice", Decimal("55.00")),  # older notice: not the latest
    ]
    return out


def compute_with_amounts(spark, rows):
    import test_gold_household_features as base

    saved = base.COLLECTIONS
    base.COLLECTIONS = COLLECTIONS_WITH_AMOUNT
    try:
        return compute(spark, rows)
    finally:
        base.COLLECTIONS = saved


@pytest.fixture(scope="module")
def recent_df(spark):
    return compute_with_amounts(spark, with_amounts(base_rows())).cache()


def test_recent_features_hand_computed(spark, recent_df):
    actual = recent_df.filter(F.col("household_id") == "h1").select(*RECENT)
    expected = spark.createDataFrame(
        [
            # Mar 10: bills b1-b4 dated Dec 5 .. Mar 5; b4 200 over the mean 100 of b1-b3 -> 2.0.
            # c2 (Dec 1, unresolved) is within 180 days; o1 120 min, ETR off 60 min.
            # k1 (Feb 1, 80 USD) is the latest past-due notice: 38 days old, still open.
            ("h1", AS_OF[0], 2.0, 1, 120.0, 60.0, 38, 80.0),
            # Mar 31: the same; k1 is 59 days old (> 45): no open past-due amount.
            # o2 started Mar 31 but is restored after as_of: no minutes yet.
            ("h1", AS_OF[1], 2.0, 1, 120.0, 60.0, 59, 0.0),
        ],
        "household_id string, as_of_date date, max_bill_shock_ratio_180d double, unresolved_contacts_180d long, "
        "outage_minutes_180d double, max_etr_error_minutes_180d double, days_since_past_due_notice int, "
        "past_due_usd_45d double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    h3 = recent_df.filter(F.col("household_id") == "h3").select(*RECENT[2:]).first()
    assert (h3.max_bill_shock_ratio_180d, h3.unresolved_contacts_180d, h3.outage_minutes_180d) == (None, 0, 0.0)
    assert (h3.max_etr_error_minutes_180d, h3.days_since_past_due_notice, h3.past_due_usd_45d) == (None, None, 0.0)


def test_recent_features_ignore_the_future(spark, recent_df):
    rows = with_amounts(base_rows())
    extra = future_rows()
    extra["collections"] = [(*r, Decimal("999.00")) for r in extra["collections"]] + [
        ("k4", "a1", date(2024, 4, 1), "past_due_notice", Decimal("999.00")),
    ]
    for name, more in extra.items():
        rows[name] = rows[name] + more
    assert_df_equality(
        compute_with_amounts(spark, rows).select(*RECENT), recent_df.select(*RECENT),
        ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True,
    )


def test_without_amount_past_due_the_open_amount_is_absent(spark):
    df = compute(spark, base_rows())
    assert "past_due_usd_45d" not in df.columns
    assert "days_since_past_due_notice" in df.columns
