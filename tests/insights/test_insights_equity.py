"""Who is treated unfairly (issue 21): gold/equity_audit's metrics, disparity ratios, bootstrap
intervals, flags and suppression on planted frames."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.insights import equity as E

M1, M2 = date(2025, 1, 1), date(2025, 2, 1)


def test_poverty_bands_read_fractions_and_percentages(spark) -> None:
    df = spark.createDataFrame([(0.05,), (12.0,), (0.25,), (41.0,), (None,)], "pct double")
    got = [r[0] for r in df.select(E.poverty_band(F.col("pct"))).collect()]
    assert got == ["lt10pct", "10-20pct", "20-30pct", "30pct_plus", "unknown"]


def test_household_months_and_their_metrics(spark) -> None:
    accounts = spark.createDataFrame([
        ("h1", "P1", date(2024, 1, 1), None),
        ("h2", "P2", date(2024, 6, 1), date(2025, 1, 20)),  # gone in February
    ], "household_id string, premise_id string, start_date date, end_date date")
    months = spark.createDataFrame([(M1,), (M2,)], "month date")
    active = E.active_household_months(accounts, months)
    assert sorted(tuple(r) for r in active.select("household_id", "month").collect()) == [
        ("h1", M1), ("h1", M2), ("h2", M1)]
    collections = spark.createDataFrame([
        ("h1", date(2025, 1, 5), "disconnect_notice"), ("h1", date(2025, 1, 25), "disconnect_notice"),
        ("h1", date(2025, 2, 3), "disconnect"), ("h2", date(2025, 1, 9), "past_due_notice"),
    ], "household_id string, event_date date, event_type string")
    programs = spark.createDataFrame([
        ("h2", "liheap", date(2024, 9, 1), None), ("h1", "autopay", date(2024, 1, 1), None),  # autopay: not audited
    ], "household_id string, program string, enrolled_on date, ended_on date")
    marketing = spark.createDataFrame([
        ("h1", "delivered", datetime(2025, 2, 10, 15)), ("h2", "sent", datetime(2025, 1, 10, 15)),
    ], "household_id string, event_type string, occurred_at timestamp")
    outages = spark.createDataFrame([
        ("O1", "P1", datetime(2025, 1, 3, 10), datetime(2025, 1, 3, 12), datetime(2025, 1, 3, 11)),  # 120 min, 60 late
        ("O1", "P2", datetime(2025, 1, 3, 10), datetime(2025, 1, 3, 11), datetime(2025, 1, 3, 12)),  # 60 min, early
        ("O2", "P1", datetime(2025, 2, 7, 10), datetime(2025, 2, 7, 10, 30), None),  # 30 min, no estimate
    ], "outage_id string, premise_id string, started_at timestamp, restored_at timestamp, first_etr timestamp")
    got = E.household_month_metrics(active, collections_df=collections, programs_df=programs, marketing_df=marketing,
                                    outages_df=outages, time_zone="UTC")
    totals = got.groupBy("household_id", "month", "metric").agg(
        F.sum("numerator").alias("numerator"), F.sum("denominator").alias("denominator"))
    rows = {(r["household_id"], r["month"], r["metric"]): (r["numerator"], r["denominator"]) for r in totals.collect()}
    assert rows[("h1", M1, "disconnect_notices_per_1000")] == (2000.0, 1.0)
    assert rows[("h1", M2, "disconnections_per_1000")] == (1000.0, 1.0)
    assert rows[("h2", M1, "disconnect_notices_per_1000")] == (0.0, 1.0)
    assert rows[("h2", M1, "program_enrollment_rate")] == (1.0, 1.0)
    assert rows[("h1", M1, "program_enrollment_rate")] == (0.0, 1.0)
    assert rows[("h1", M2, "campaign_reach_rate")] == (1.0, 1.0) and rows[("h2", M1, "campaign_reach_rate")] == (0.0, 1.0)
    assert rows[("h1", M1, "outage_minutes_per_household")] == (120.0, 1.0)
    assert rows[("h1", M2, "outage_minutes_per_household")] == (30.0, 1.0)
    assert rows[("h1", M1, "etr_late_minutes")] == (60.0, 1.0) and rows[("h2", M1, "etr_late_minutes")] == (0.0, 1.0)
    assert ("h1", M2, "etr_late_minutes") not in rows  # no estimate told: no ETR row
    # outage rows are clustered by the outage, the others by the household
    clusters = {r[0] for r in got.filter("metric = 'outage_minutes_per_household' AND numerator > 0")
                .select("cluster").collect()}
    assert clusters == {"O1", "O2"}
    assert got.filter("metric = 'disconnect_notices_per_1000' AND cluster != household_id").count() == 0


def _metrics(spark, rows):
    return spark.createDataFrame(rows, "household_id string, month date, metric string, cluster string, "
                                       "numerator double, denominator double")


def test_ratios_intervals_flags_and_small_groups(spark) -> None:
    metric = "disconnect_notices_per_1000"
    # 40 low-income households, 12 with a notice; 40 others, 2 with one; a ZIP of 3 households
    rows, groups = [], []
    for i in range(80):
        band = "lt25k" if i < 40 else "100-150k"
        hit = (i < 12) or (40 <= i < 42)
        rows.append((f"h{i}", M1, metric, f"h{i}", 1000.0 if hit else 0.0, 1.0))
        groups.append((f"h{i}", band, "75001" if i < 77 else "75999", "10-20pct"))
    metrics = _metrics(spark, rows)
    groups_df = spark.createDataFrame(groups, "household_id string, income_band string, zip string, poverty_band string")
    audit = E.equity_audit(metrics, groups_df, min_households=5, replicates=200, seed=7)
    got = audit.filter("period = '2025-01'").select("dimension", "group_value", "n", "numerator", "value", "overall",
                                                    "ratio", "flagged", "is_suppressed")
    overall = 14 * 1000 / 80
    expected = spark.createDataFrame([
        ("income_band", "lt25k", 40, 12000.0, 300.0, overall, 300.0 / overall, True, False),
        ("income_band", "100-150k", 40, 2000.0, 50.0, overall, 50.0 / overall, False, False),
        ("zip", "75001", 77, 14000.0, 14000.0 / 77, overall, (14000.0 / 77) / overall, False, False),
        ("zip", "75999", 3, None, None, overall, None, False, True),
        ("poverty_band", "10-20pct", 80, 14000.0, overall, overall, 1.0, False, False),
    ], "dimension string, group_value string, n long, numerator double, value double, overall double, ratio double, "
       "flagged boolean, is_suppressed boolean")
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)
    low = audit.filter("period = '2025-01' AND group_value = 'lt25k'").first()
    assert 1.0 < low["ci_low"] < low["ratio"] < low["ci_high"]
    high = audit.filter("period = '2025-01' AND group_value = '100-150k'").first()
    assert high["ci_low"] < high["ratio"] < high["ci_high"] < 1.0
    # a group holding the month's only events from few households is never flagged, however high its ratio
    few = _metrics(spark, [(f"h{i}", M1, metric, f"h{i}", 1000.0 if i < 2 else 0.0, 1.0) for i in range(40)])
    few_groups = spark.createDataFrame([(f"h{i}", "lt25k" if i < 10 else "75-100k", "75001", "unknown")
                                        for i in range(40)],
                                       "household_id string, income_band string, zip string, poverty_band string")
    two = E.equity_audit(few, few_groups, min_households=5, replicates=100).filter(
        "period = '2025-01' AND group_value = 'lt25k'").first()
    assert two["ratio"] == pytest.approx(4.0) and two["events"] == 2 and not two["flagged"]
    # one month: the window rows are the month's
    window = audit.filter("period = 'window'").select("dimension", "group_value", "n", "ratio")
    assert_df_equality(window, got.select("dimension", "group_value", "n", "ratio"), ignore_row_order=True)
    # seeded: the same draws again
    again = E.equity_audit(metrics, groups_df, min_households=5, replicates=200, seed=7)
    assert_df_equality(again.select("period", "dimension", "group_value", "ci_low", "ci_high"),
                       audit.select("period", "dimension", "group_value", "ci_low", "ci_high"), ignore_row_order=True)


def test_a_disparity_of_few_outages_is_not_flagged_however_many_homes_they_struck(spark) -> None:
    """One outage striking 20 homes of a ZIP is one event: redrawn as a cluster, its interval is wide."""
    metric = "outage_minutes_per_household"
    rows = [(f"h{i}", M1, metric, f"h{i}", 0.0, 1.0) for i in range(60)]
    rows += [(f"h{i}", M1, metric, "O1", 300.0, 0.0) for i in range(20)]  # ZIP A: one big outage
    rows += [(f"h{i}", M1, metric, f"O{i}", 100.0, 0.0) for i in range(20, 40)]  # ZIP B: twenty small ones
    groups = [(f"h{i}", "lt25k", "A" if i < 20 else "B" if i < 40 else "C", "unknown") for i in range(60)]
    audit = E.equity_audit(_metrics(spark, rows), spark.createDataFrame(
        groups, "household_id string, income_band string, zip string, poverty_band string"),
        min_households=5, replicates=300, seed=3)
    a = audit.filter("period = '2025-01' AND group_value = 'A'").first()
    assert a["ratio"] == pytest.approx(300.0 / (8000.0 / 60))
    assert a["ci_low"] == pytest.approx(0.0) and not a["flagged"]


def test_payment_risk_scores_of_the_latest_date_enter_as_a_metric(spark) -> None:
    scores = spark.createDataFrame([
        ("h1", "payment_risk", 0.4, date(2025, 2, 28)), ("h1", "payment_risk", 0.9, date(2025, 1, 31)),
        ("h2", "payment_risk", 0.1, date(2025, 2, 28)), ("h1", "csat", 3.2, date(2025, 2, 28)),
    ], "household_id string, model_name string, score double, as_of_date date")
    got = E.score_metrics(scores)
    expected = _metrics(spark, [("h1", M2, "payment_risk_predicted", "h1", 0.4, 1.0),
                                ("h2", M2, "payment_risk_predicted", "h2", 0.1, 1.0)])
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
