"""What-if simulation and model drivers (issue 6).

Tiny DataFrames pin what each scenario changes; the generated utility with
planted effects (``insights_wh``) checks the signs the issue asks for and that
households outside a scenario's scope keep exactly their scores.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import forbidden_columns_in
from ucx_spark.insights.base import load_champions
from ucx_spark.insights.drivers import household_shap, model_drivers
from ucx_spark.insights.whatif import (
    BILL_HISTORY,
    ArrearsModel,
    apply_scenario,
    bill_history,
    fit_arrears_model,
    parse_scenario,
    simulate,
    walk_bills,
)
from ucx_spark.pipelines import drivers as drivers_pipeline
from ucx_spark.pipelines import whatif as whatif_pipeline
from ucx_spark.pipelines.insights_common import read_bill_history, read_snapshot

BILLS_DDL = (
    "household_id string, customer_class string, income_band string, last_bill_usd double, mean_bill_12_usd double, "
    "trailing_mean_bill_usd double, annual_bill_usd double, bill_shock_ratio double, is_bill_shock boolean, "
    "income_midpoint_usd double, energy_burden double"
)


def _bills_df(spark):
    return spark.createDataFrame(
        [
            ("h1", "RES", "lt25k", 100.0, 90.0, 80.0, 1080.0, 1.25, False, 17500.0, 1080.0 / 17500),
            ("h2", "COM", "lt25k", 300.0, 300.0, 300.0, 3600.0, 1.0, False, 17500.0, 3600.0 / 17500),
            ("h3", "RES", None, None, None, None, None, None, None, None, None),
            ("h4", "RES", "50-75k", 146.0, 100.0, 100.0, 1200.0, 1.46, False, 62500.0, 1200.0 / 62500),
        ],
        BILLS_DDL,
    )


def test_rate_increase_changes_bills_shock_and_burden_in_scope_only(spark) -> None:
    scenario = parse_scenario("rate_increase_usd=5", where="customer_class=RES")
    out_df = apply_scenario(_bills_df(spark), scenario, liheap_annual_benefit_usd=600.0)
    expected_df = spark.createDataFrame(
        [
            ("h1", "RES", "lt25k", 105.0, 95.0, 80.0, 1140.0, 105.0 / 80.0, False, 17500.0, 1140.0 / 17500, True),
            ("h2", "COM", "lt25k", 300.0, 300.0, 300.0, 3600.0, 1.0, False, 17500.0, 3600.0 / 17500, False),
            ("h3", "RES", None, None, None, None, None, None, None, None, None, False),
            # the first new bill crosses the 1.5 bill-shock line
            ("h4", "RES", "50-75k", 151.0, 105.0, 100.0, 1260.0, 1.51, True, 62500.0, 1260.0 / 62500, True),
        ],
        BILLS_DDL + ", _touched boolean",
    )
    assert_df_equality(out_df, expected_df, ignore_row_order=True, allow_nan_equality=True, ignore_nullable=True)


def test_rate_increase_scope_is_fixed_before_bills_change(spark) -> None:
    # h1's bill is 100 <= 100, so it is out of scope even though its raised bill would not be.
    scenario = parse_scenario("rate_increase_pct=10", where="last_bill_usd > 100")
    out = {r["household_id"]: r for r in apply_scenario(_bills_df(spark), scenario, liheap_annual_benefit_usd=0).collect()}
    assert out["h1"]["last_bill_usd"] == 100.0 and not out["h1"]["_touched"]
    assert out["h2"]["last_bill_usd"] == pytest.approx(330.0) and out["h2"]["_touched"]
    assert out["h4"]["annual_bill_usd"] == pytest.approx(1320.0)


def test_rate_increase_second_round_raises_the_worst_bill_and_the_past_due_balance_models_see(spark) -> None:
    # h1 carries 1.5 bills past due (150 of a 100 bill); after +5 it carries 1.5 bills of 105.
    # Its worst bill of the window (1.4 x the trailing mean of 80) rises by 5 / 80; today's
    # balance (the expected-arrears outcome's first term) stays 150.
    ddl = ("household_id string, last_bill_usd double, trailing_mean_bill_usd double, bill_shock_ratio double, "
           "max_bill_shock_ratio_180d double, same_season_bill_ratio double, arrears_usd double, "
           "past_due_usd_45d double")
    df = spark.createDataFrame([("h1", 100.0, 80.0, 1.25, 1.4, 1.25, 150.0, 100.0),
                                ("h2", 200.0, 200.0, 1.0, 1.0, None, 0.0, 0.0)], ddl)
    out_df = apply_scenario(df, parse_scenario("rate_increase_usd=5"), liheap_annual_benefit_usd=0.0)
    expected_df = spark.createDataFrame(
        [("h1", 105.0, 80.0, 105 / 80, 1.4 + 5 / 80, 1.25 * 1.05, 157.5, 105.0, True, 150.0),
         ("h2", 205.0, 200.0, 1.025, 1.025, None, 0.0, 0.0, True, 0.0)],
        ddl + ", _touched boolean, _arrears_today double")
    assert_df_equality(out_df, expected_df, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)
    # a balance set by hand is today's balance too
    cleared = apply_scenario(df, parse_scenario("rate_increase_usd=5", sets=["arrears_usd=0"]),
                             liheap_annual_benefit_usd=0.0)
    assert {(r["arrears_usd"], r["_arrears_today"]) for r in cleared.collect()} == {(0.0, 0.0)}


def test_rate_increase_lifts_bill_shock_on_the_columns_gold_really_has(spark) -> None:
    # The snapshot comes from the gold feature function itself, so the what-if is held to the
    # columns gold/household_features keeps (the ratio, not the mean of the bills before the last:
    # a what-if that needed that mean moved no bill shock on a real warehouse).
    from ucx_spark.gold.household_features import bill_features

    bills = [(f"b{m}", "a1", date(2025, m, 2), date(2025, m, 1), amount)
             for m, amount in ((6, 80.0), (7, 80.0), (8, 80.0), (9, 80.0), (10, 120.0), (11, 100.0))]
    bills_df = spark.createDataFrame(bills, "bill_id string, account_id string, bill_date date, period_end date, "
                                            "amount_due double")
    keys_df = spark.createDataFrame([("a1", date(2025, 11, 30))], "account_id string, as_of_date date")
    snap_df = bill_features(keys_df, bills_df).withColumn("household_id", F.lit("h1"))
    assert "trailing_mean_bill_usd" not in snap_df.columns
    before = snap_df.first()
    trailing = (80.0 * 4 + 120.0) / 5  # the bills before the last
    worst = 120.0 / 80.0  # October against its 3 previous bills (80 each)
    assert before["bill_shock_ratio"] == pytest.approx(100.0 / trailing)
    assert before["max_bill_shock_ratio_180d"] == pytest.approx(worst)
    after = apply_scenario(snap_df, parse_scenario("rate_increase_usd=5"), liheap_annual_benefit_usd=0.0).first()
    assert after["_touched"]
    assert after["last_bill_usd"] == pytest.approx(105.0)
    assert after["bill_shock_ratio"] == pytest.approx(105.0 / trailing)
    assert after["max_bill_shock_ratio_180d"] == pytest.approx(worst + 5.0 / trailing)
    assert after["same_season_bill_ratio"] is None  # no bill a year earlier: nothing to scale


def test_bill_history_keeps_the_last_as_of_of_each_of_the_last_12_months(spark) -> None:
    # an as_of date in each month Jan 2025 .. Jan 2026, two in February 2026 (the latest, 2026-02-10, is
    # the last complete day): February counts once, with its last as_of date; a null bill is no bill
    rows = [("h1", date(2025 + (m // 12), m % 12 + 1, 28), 100.0 + m) for m in range(13)]  # 2025-01 .. 2026-01
    rows += [("h1", date(2026, 2, 3), 200.0), ("h1", date(2026, 2, 10), 201.0), ("h2", date(2026, 2, 10), None)]
    df = spark.createDataFrame(rows, "household_id string, as_of_date date, last_bill_usd double")
    got = {r[0]: r[1] for r in bill_history(df).collect()}
    # Feb 2026 (its last as_of, 201) and the 11 months before it (Mar 2025 .. Jan 2026 = 102 .. 112)
    assert got == {"h1": [float(100 + m) for m in range(2, 13)] + [201.0]}
    assert [r[1] for r in bill_history(df, as_of=date(2025, 12, 31)).collect()] == [[float(100 + m) for m in range(12)]]


WALK_DDL = (
    "household_id string, last_bill_usd double, mean_bill_12_usd double, annual_bill_usd double, "
    "bill_shock_ratio double, is_bill_shock boolean, max_bill_shock_ratio_180d double, "
    "same_season_bill_ratio double, income_midpoint_usd double, energy_burden double, touched boolean, "
    f"{BILL_HISTORY} array<double>"
)


def test_the_horizon_walk_describes_each_bill_as_gold_does(spark) -> None:
    flat = [100.0] * 12
    seasonal = [60.0, 50.0, 40.0, 40.0, 60.0, 90.0, 120.0, 110.0, 80.0, 60.0, 60.0, 100.0]
    df = spark.createDataFrame(
        [("flat", 1.0, 1.0, 1.0, 1.0, False, 1.0, 1.0, 20000.0, 0.0, True, flat),
         ("seasonal", 1.0, 1.0, 1.0, 1.0, False, 1.0, 1.0, 20000.0, 0.0, True, seasonal),
         ("short", 1.0, 1.0, 1.0, 1.0, False, 1.0, 1.0, 20000.0, 0.0, True, [80.0, 90.0, 100.0]),
         ("untouched", 1.0, 1.0, 1.0, 1.0, False, 1.0, 1.0, 20000.0, 0.0, False, flat),
         ("no history", 7.0, 7.0, 84.0, 1.5, True, 2.0, 1.0, 20000.0, 0.1, True, None)],
        WALK_DDL,
    )

    def month(k, **kw):
        return {r["household_id"]: r.asDict() for r in walk_bills(df, k, touched=F.col("touched"), **kw).collect()}

    one, two = month(1, add=5.0), month(2, add=5.0)
    # a flat history: the first dearer bill against twelve old ones, the second against 11 + 1 dearer
    assert one["flat"]["last_bill_usd"] == 105.0
    assert one["flat"]["bill_shock_ratio"] == pytest.approx(1.05)
    assert one["flat"]["max_bill_shock_ratio_180d"] == pytest.approx(1.05)
    assert one["flat"]["mean_bill_12_usd"] == pytest.approx((11 * 100 + 105) / 12)
    assert one["flat"]["annual_bill_usd"] == pytest.approx(11 * 100 + 105)
    assert one["flat"]["energy_burden"] == pytest.approx((11 * 100 + 105) / 20000)
    assert one["flat"]["same_season_bill_ratio"] == pytest.approx(1.05)
    assert two["flat"]["bill_shock_ratio"] == pytest.approx(105 / ((11 * 100 + 105) / 12))
    assert two["flat"]["max_bill_shock_ratio_180d"] == pytest.approx(1.05)  # the first dearer bill is still the worst
    # a seasonal history: month k meets the bill of the same month a year earlier (position k)
    assert [month(k)["seasonal"]["last_bill_usd"] for k in (1, 2, 6)] == [60.0, 50.0, 90.0]
    six = month(6)["seasonal"]
    walked = seasonal + seasonal[:6]
    ratios = [walked[p] / np.mean(walked[max(0, p - 3):p]) for p in range(len(walked) - 6, len(walked))]
    assert six["max_bill_shock_ratio_180d"] == pytest.approx(max(ratios))
    assert six["bill_shock_ratio"] == pytest.approx(90.0 / np.mean(walked[-13:-1]))
    assert six["same_season_bill_ratio"] == pytest.approx(1.0) and six["is_bill_shock"] is False
    # three months of history: the year-ago bill is the mean (90); a percentage rise multiplies it
    assert month(1, factor=1.1)["short"]["last_bill_usd"] == pytest.approx(99.0)
    # outside the scenario (touched false) the same bills as the baseline; no history: as it was
    assert one["untouched"]["last_bill_usd"] == 100.0 and one["untouched"]["bill_shock_ratio"] == pytest.approx(1.0)
    assert (one["no history"]["last_bill_usd"], one["no history"]["max_bill_shock_ratio_180d"]) == (7.0, 2.0)
    assert one["no history"]["is_bill_shock"] is True


LIHEAP_DDL = (
    "household_id string, customer_class string, income_band string, is_enrolled_liheap boolean, arrears_usd double, "
    "payments_365d long, payment_share_assistance_365d double, annual_bill_usd double, income_midpoint_usd double, "
    "energy_burden double"
)


LIHEAP_ROWS = [
    # enrolled look-alikes: high burden, arrears
    ("e1", "RES", "lt25k", True, 400.0, 12, 0.2, 2400.0, 17500.0, 2400 / 17500),
    ("e2", "RES", "lt25k", True, 350.0, 12, 0.2, 2300.0, 17500.0, 2300 / 17500),
    ("e3", "RES", "25-50k", True, 300.0, 12, 0.2, 2200.0, 37500.0, 2200 / 37500),
    # eligible, not enrolled: c1 looks most like the enrolled, c4 least
    ("c1", "RES", "lt25k", False, 800.0, 12, 0.0, 2500.0, 17500.0, 2500 / 17500),
    ("c2", "RES", "lt25k", False, 200.0, 12, 0.0, 1500.0, 17500.0, 1500 / 17500),
    ("c3", "RES", "25-50k", False, 100.0, 10, 0.0, 1200.0, 37500.0, 1200 / 37500),
    ("c4", "RES", "25-50k", False, 0.0, 12, 0.0, 900.0, 37500.0, 900 / 37500),
    # never eligible: commercial, higher income
    ("x1", "COM", "lt25k", False, 900.0, 12, 0.0, 5000.0, 17500.0, 5000 / 17500),
    ("x2", "RES", "75-100k", False, 50.0, 12, 0.0, 1400.0, 87500.0, 1400 / 87500),
    ("x3", "RES", "100-150k", False, 0.0, 12, 0.0, 1300.0, 125000.0, 1300 / 125000),
]


def test_liheap_enrolls_the_most_likely_eligible_households_and_pays_down_arrears(spark) -> None:
    rows = LIHEAP_ROWS
    df = spark.createDataFrame(rows, LIHEAP_DDL)
    out = {r["household_id"]: r for r in apply_scenario(df, parse_scenario("liheap_enrollment_pct=+50"), liheap_annual_benefit_usd=600.0).collect()}
    touched = sorted(h for h, r in out.items() if r["_touched"])
    assert len(touched) == 2  # 50% of the 4 eligible
    assert "c1" in touched and "c4" not in touched
    assert not any(out[h]["_touched"] for h in ("e1", "e2", "e3", "x1", "x2", "x3"))
    c1 = out["c1"]
    assert c1["is_enrolled_liheap"] is True
    assert c1["arrears_usd"] == pytest.approx(200.0)  # 800 - 600
    assert c1["payments_365d"] == 13 and c1["payment_share_assistance_365d"] == pytest.approx(1 / 13)
    assert c1["energy_burden"] == pytest.approx((2500 - 600) / 17500)
    # the benefit is paid inside the horizon: expected arrears are owed from today's balance before it
    assert (c1["_arrears_today"], c1["_assistance_usd"]) == (800.0, 600.0)
    for row in rows:
        if row[0] not in touched:
            assert tuple(out[row[0]])[:len(row)] == row, row[0]  # untouched rows come back exactly as they went in
            assert out[row[0]]["_assistance_usd"] == 0.0


def test_the_benefit_counts_at_each_month_end_what_was_paid_by_then(spark) -> None:
    """LIHEAP pays in its months (December to February, equal parts); the expected arrears over
    the 6-month horizon fall by the mean over its month ends of what was paid by each."""

    from ucx_spark.insights.whatif import benefit_in_horizon

    dates = [(date(2025, 12, 31),), (date(2026, 6, 30),), (date(2026, 9, 30),), (date(2026, 3, 31),)]
    got = [r[0] for r in spark.createDataFrame(dates, "d date").select(
        benefit_in_horizon(F.col("d"), benefit_usd=900.0, months=(12, 1, 2))).collect()]
    # Jan 1 part, Feb-Jun 2 parts | only Dec, at the last month end | Dec 1, Jan 2, Feb-Mar 3 | none
    assert got == pytest.approx([300 * (1 + 2 * 5) / 6, 300 * 1 / 6, 300 * (1 + 2 + 3 + 3) / 6, 0.0])
    one = [r[0] for r in spark.createDataFrame(dates[:1], "d date").select(
        benefit_in_horizon(F.col("d"), benefit_usd=900.0, months=(1,))).collect()]
    assert one == pytest.approx([900.0])  # all of it in January: every month end of the horizon sees it

    df = spark.createDataFrame(LIHEAP_ROWS, LIHEAP_DDL).withColumn("as_of_date", F.lit(date(2025, 12, 31)))
    out = {r["household_id"]: r for r in apply_scenario(df, parse_scenario("liheap_enrollment_pct=+50"),
                                                        liheap_annual_benefit_usd=600.0).collect()}
    assert out["c1"]["_touched"] and out["c1"]["_assistance_usd"] == pytest.approx(600.0 * 11 / 18)
    assert out["c1"]["arrears_usd"] == pytest.approx(200.0)  # the models still see today's balance less the year's benefit
    assert out["c4"]["_assistance_schedule"] is None and out["c4"]["_assistance_usd"] == 0.0


def test_what_is_owed_after_a_benefit_that_may_not_come(spark) -> None:
    """Take-up below 1: each benefit month's part comes with that probability (and is larger, so
    the year's expected benefit is the same); what is owed at a month end is in expectation over
    how many parts came by then, never the owed amount less the benefit's mean."""
    from ucx_spark.insights.whatif import benefit_in_horizon, benefit_schedule, owed_after_benefit

    def owed(amount: float, take_up: float) -> float:
        schedule = benefit_schedule(F.lit(date(2025, 12, 31)), benefit_usd=900.0, months=(12, 1, 2), take_up=take_up)
        row = spark.range(1).select(owed_after_benefit(F.lit(amount), schedule).alias("o"),
                                    F.aggregate(schedule, F.lit(0.0), lambda a, x: a + x["w"]).alias("w"),
                                    benefit_in_horizon(F.lit(date(2025, 12, 31)), benefit_usd=900.0, months=(12, 1, 2),
                                                       take_up=take_up).alias("mean")).first()
        assert row["w"] == pytest.approx(1.0) and row["mean"] == pytest.approx(550.0)  # the same benefit on average
        return row["o"]

    # certain: January's 300 then February's 300 (every month end from February on sees 600)
    assert owed(100.0, 1.0) == pytest.approx(0.0)
    assert owed(1000.0, 1.0) == pytest.approx((700 + 5 * 400) / 6)
    # one half: parts of 600; by January none for half, by February none for a quarter, both for a quarter
    assert owed(100.0, 0.5) == pytest.approx((0.5 * 100 + 5 * 0.25 * 100) / 6)
    assert owed(1000.0, 0.5) == pytest.approx((0.5 * 1000 + 0.5 * 400 + 5 * (0.25 * 1000 + 0.5 * 400)) / 6)
    with pytest.raises(ValueError, match="take_up"):
        benefit_schedule(F.lit(date(2025, 12, 31)), benefit_usd=900.0, months=(12, 1, 2), take_up=0.0)


def test_scenario_errors_name_the_setting(spark) -> None:
    with pytest.raises(UcxError, match="rate_increase_usd=X"):
        parse_scenario("rate_hike=5")
    with pytest.raises(UcxError, match="nothing to simulate"):
        parse_scenario(None)
    with pytest.raises(UcxError, match="no_such_feature"):
        apply_scenario(_bills_df(spark), parse_scenario(None, sets=["no_such_feature=1"]), liheap_annual_benefit_usd=0)
    with pytest.raises(UcxError, match="--where"):
        apply_scenario(_bills_df(spark), parse_scenario("rate_increase_usd=5", where="no_col > 3"), liheap_annual_benefit_usd=0)


def test_general_set_changes_one_feature_in_scope(spark) -> None:
    scenario = parse_scenario(None, sets=["last_bill_usd=last_bill_usd * 2"], where="income_band = 'lt25k'")
    out = {r["household_id"]: r for r in apply_scenario(_bills_df(spark), scenario, liheap_annual_benefit_usd=0).collect()}
    assert out["h1"]["last_bill_usd"] == 200.0 and out["h2"]["last_bill_usd"] == 600.0
    assert out["h4"]["last_bill_usd"] == 146.0 and not out["h4"]["_touched"]
    assert out["h1"]["annual_bill_usd"] == 1080.0  # only the named feature moves


def _arrears_history(n_households: int, seed: int):
    """Month-end arrears_usd and bills for households, and disconnect notices (pandas)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    month_ends = pd.date_range("2023-01-31", periods=20, freq="ME").date
    feats, notices = [], []
    for i in range(n_households):
        bill = float(rng.uniform(60, 250))
        late = float(rng.choice([0.0, 0.0, 1 / 12, 0.25, 0.5]))
        autopay = float(rng.choice([0.0, 0.0, 0.5, 1.0]))  # a household on autopay owes (almost) nothing
        for d in month_ends:
            feats.append((f"h{i}", d, float(max(rng.normal(-0.5 + late - 2 * autopay, 1), 0) * bill), bill, late,
                          autopay))
        if rng.random() < 0.3:
            notices.append((f"h{i}", month_ends[int(rng.integers(3, 20))], "disconnect_notice"))
    return pd.DataFrame(feats, columns=["household_id", "as_of_date", "arrears_usd", "mean_bill_12_usd",
                                        "late_bill_share_365d", "payment_share_autopay_365d"]), \
        pd.DataFrame(notices, columns=["household_id", "event_date", "event_type"])


def _expected_arrears_fit(feats, notices):
    """The same least squares written independently with pandas and numpy."""
    from dateutil.relativedelta import relativedelta

    data_end = feats["as_of_date"].max()
    xs, ys = [], []
    by_h = {h: g.set_index("as_of_date") for h, g in feats.groupby("household_id")}
    for h, g in by_h.items():
        nh = notices[notices["household_id"] == h]["event_date"].tolist()
        for d, row in g.iterrows():
            end = d + relativedelta(months=6)
            if end > data_end or any(d + relativedelta(months=-6) < e <= d for e in nh):
                continue  # the window leaves the data, or the household is already in the disconnect process
            later = g[(g.index > d) & (g.index <= end)]["arrears_usd"]
            label = float(any(d < e <= end for e in nh))
            bill, late = row["mean_bill_12_usd"], row["late_bill_share_365d"]
            settled = float(row["arrears_usd"] <= 0)
            ap = row["payment_share_autopay_365d"]
            earlier = g[g.index < d]["arrears_usd"].tail(6)  # the household's previous 6 month ends
            history = earlier.mean() if len(earlier) else row["arrears_usd"]
            xs.append([1.0, row["arrears_usd"], label * bill, bill, late * bill, settled, settled * bill,
                       settled * late * bill, ap, ap * bill, history])
            ys.append(later.mean())
    return np.linalg.lstsq(np.array(xs), np.array(ys), rcond=None)[0], len(ys)


def test_expected_arrears_model_is_the_least_squares_of_the_horizon_balance(spark) -> None:
    feats, notices = _arrears_history(60, seed=4)
    features_df = spark.createDataFrame(feats.assign(last_bill_usd=feats["mean_bill_12_usd"]))
    collections_df = spark.createDataFrame(notices)
    beta, n = _expected_arrears_fit(feats, notices)
    model = fit_arrears_model(features_df, collections_df, min_rows=100)
    assert model.rows == n > 100
    np.testing.assert_allclose([model.intercept, model.arrears, model.notice_bill, model.bill, model.late_bill,
                                model.settled, model.settled_bill, model.settled_late_bill, model.autopay,
                                model.autopay_bill, model.history], beta, rtol=1e-6, atol=1e-6)
    assert model.autopay + model.autopay_bill * 150.0 < 0  # autopay pays the bill when due
    # expected arrears are never negative, whatever the line says
    row = spark.range(1).select(
        ArrearsModel(intercept=-50.0, arrears=1.0, notice_bill=0.0, bill=0.0, rows=1).expected(
            F.lit(10.0), F.lit(0.5), F.lit(100.0)).alias("e")).first()
    assert row["e"] == 0.0
    # a household owing nothing today takes its own level and slopes
    line = ArrearsModel(intercept=10.0, arrears=0.5, notice_bill=0.0, bill=0.1, rows=1, late_bill=2.0, settled=-8.0,
                        settled_bill=-0.05, settled_late_bill=-1.0)
    got = spark.range(1).select(
        line.expected(F.lit(0.0), F.lit(0.0), F.lit(100.0), F.lit(0.0)).alias("clean"),
        line.expected(F.lit(0.0), F.lit(0.0), F.lit(100.0), F.lit(0.25)).alias("late"),
        line.expected(F.lit(40.0), F.lit(0.0), F.lit(100.0), F.lit(0.25)).alias("owing")).first()
    assert (got["clean"], got["late"], got["owing"]) == pytest.approx(
        (10 + 10 - 8 - 5, 10 + 10 + 50 - 8 - 5 - 25, 10 + 20 + 10 + 50))
    # half of the payments by autopay: its level and bill slope, half of each
    auto = replace(line, autopay=-4.0, autopay_bill=-0.02)
    got = spark.range(1).select(auto.expected(F.lit(0.0), F.lit(0.0), F.lit(100.0), F.lit(0.0), F.lit(0.5)).alias("e")).first()
    assert got["e"] == pytest.approx(10 + 10 - 8 - 5 + 0.5 * (-4.0 - 2.0))
    # too little history: the rule of thumb (today's balance + 2 bills x the notice probability)
    assert fit_arrears_model(features_df, collections_df, min_rows=n + 1) == ArrearsModel.rule_of_thumb()
    assert fit_arrears_model(features_df, None) == ArrearsModel.rule_of_thumb()


# ------------------------------------------------------------------ on the generated utility


@pytest.fixture(scope="module")
def champions(insights_wh):
    return load_champions(insights_wh.tracking_uri)


@pytest.fixture(scope="module")
def snap(spark, insights_wh):
    snapshot_df, _ = read_snapshot(spark, str(insights_wh.warehouse))
    return snapshot_df.cache()


def _means(sim_df, *, where=None):
    df = sim_df.filter(where) if where is not None else sim_df
    cols = ["csat", "payment_risk", "expected_arrears_usd", "csat_top2box"]
    return df.agg(*[F.avg(F.col(f"{c}_scenario") - F.col(f"{c}_baseline")).alias(c) for c in cols]).first().asDict()


def _assert_untouched_unchanged(sim_df) -> None:
    untouched = sim_df.filter(~F.col("touched"))
    moved = untouched.filter(
        (F.col("csat_scenario") != F.col("csat_baseline"))
        | (F.col("payment_risk_scenario") != F.col("payment_risk_baseline"))
        | (F.col("expected_arrears_usd_scenario") != F.col("expected_arrears_usd_baseline"))
    )
    assert untouched.count() > 0
    assert moved.count() == 0


def test_rate_increase_lowers_csat_and_raises_payment_risk(spark, snap, champions) -> None:
    sim_df = simulate(snap, parse_scenario("rate_increase_usd=5", where="customer_class=RES"), champions.models,
                      liheap_annual_benefit_usd=600.0, csat_top2box_threshold=3.5).cache()
    touched = sim_df.filter("touched").count()
    assert touched == snap.filter((F.col("customer_class") == "RES") & F.col("last_bill_usd").isNotNull()).count()
    deltas = _means(sim_df, where="touched")
    assert deltas["csat"] < 0
    assert deltas["payment_risk"] > 0
    assert deltas["expected_arrears_usd"] > 0
    _assert_untouched_unchanged(sim_df)
    # commercial accounts are out of scope: every score stays exactly where it was
    com = set(r[0] for r in snap.filter("customer_class = 'COM'").select("household_id").collect())
    assert com and not com & set(r[0] for r in sim_df.filter("touched").select("household_id").collect())


def test_rate_increase_csat_walks_the_horizon_on_both_sides(spark, snap, champions, insights_wh) -> None:
    history_df = read_bill_history(spark, str(insights_wh.warehouse), None)
    scenario = parse_scenario("rate_increase_usd=5", where="customer_class=RES")
    sim_df = simulate(snap, scenario, champions.models, liheap_annual_benefit_usd=600.0, csat_top2box_threshold=3.5,
                      bill_history_df=history_df).cache()
    assert sim_df.count() == snap.count()
    assert _means(sim_df, where="touched")["csat"] < 0
    _assert_untouched_unchanged(sim_df)
    # the baseline walks too: the horizon's CSAT, not today's, for households with a bill history
    today = simulate(snap, scenario, champions.models, liheap_annual_benefit_usd=600.0, csat_top2box_threshold=3.5)
    moved = sim_df.join(today.select("household_id", F.col("csat_baseline").alias("today")), "household_id").filter(
        F.abs(F.col("csat_baseline") - F.col("today")) > 1e-9)
    assert moved.count() > 0
    # payment risk and arrears do not walk: the same as without the history
    assert_df_equality(sim_df.select("household_id", "payment_risk_baseline", "payment_risk_scenario"),
                       today.select("household_id", "payment_risk_baseline", "payment_risk_scenario"),
                       ignore_row_order=True)


def test_more_liheap_enrollment_lowers_expected_arrears(spark, snap, champions) -> None:
    sim_df = simulate(snap, parse_scenario("liheap_enrollment_pct=+20"), champions.models,
                      liheap_annual_benefit_usd=600.0, csat_top2box_threshold=3.5).cache()
    eligible = snap.filter(
        ~F.col("is_enrolled_liheap") & F.col("income_band").isin("lt25k", "25-50k") & (F.col("customer_class") != "COM")
    ).count()
    assert sim_df.filter("touched").count() == round(eligible * 0.2)
    assert _means(sim_df, where="touched")["expected_arrears_usd"] < 0
    assert _means(sim_df)["expected_arrears_usd"] < 0
    # the benefit is paid inside the horizon in its months: the expected arrears of each enrolled
    # household are what it would owe (its scenario features, the benefit not yet paid) less the mean
    # over the horizon's month ends of what was paid by each, never below 0
    from ucx_spark.insights.whatif import (
        ASSISTANCE,
        ASSISTANCE_SCHEDULE,
        apply_scenario,
        benefit_in_horizon,
        household_outcomes,
    )

    as_of = snap.agg(F.max("as_of_date")).first()[0]
    paid = spark.range(1).select(benefit_in_horizon(F.lit(as_of), benefit_usd=600.0, months=(12, 1, 2))).first()[0]
    assert 0 < paid < 600
    by_month_end, parts = [], 0  # what was paid by each month end of the horizon, worked out here by hand
    for k in range(1, 7):
        month = (as_of.month - 1 + k) % 12 + 1
        parts += month in (12, 1, 2)
        by_month_end.append(200.0 * parts)
    assert sum(by_month_end) / 6 == pytest.approx(paid)
    changed = apply_scenario(snap, parse_scenario("liheap_enrollment_pct=+20"), liheap_annual_benefit_usd=600.0)
    touched = changed.filter("_touched").drop("_touched")
    kw = {"csat_top2box_threshold": 3.5}
    got = household_outcomes(touched, champions.models, **kw).select("household_id", F.col("expected_arrears_usd").alias("e"))
    owed = household_outcomes(touched.drop(ASSISTANCE_SCHEDULE).withColumn(ASSISTANCE, F.lit(0.0)), champions.models, **kw) \
        .select("household_id", F.col("expected_arrears_usd").alias("owed"))
    want = sum(F.greatest(F.col("owed") - F.lit(b), F.lit(0.0)) for b in by_month_end) / 6
    both = got.join(owed, "household_id").withColumn("want", want)
    assert both.count() == round(eligible * 0.2)
    assert both.filter(F.abs(F.col("e") - F.col("want")) > 1e-6).count() == 0
    assert both.filter("owed > 0 AND e < owed").count() > 0
    _assert_untouched_unchanged(sim_df)


def test_whatif_run_writes_results_and_an_mlflow_run(spark, insights_wh) -> None:
    import mlflow

    wh = str(insights_wh.warehouse)
    result = whatif_pipeline.run(
        spark, warehouse=wh, tracking_uri=insights_wh.tracking_uri, experiment="ucx-insights-test",
        scenario=parse_scenario("rate_increase_usd=5"), min_households=50, liheap_annual_benefit_usd=600.0,
        csat_top2box_threshold=3.5, bootstrap_replicates=50, confidence_level=0.9, seed=3,
    )
    rows_df = spark.read.format("delta").load(result.path).filter(F.col("run_id") == result.run_id)
    assert forbidden_columns_in(rows_df.schema) == []
    overall = {r["metric"]: r for r in rows_df.filter("segment_type = 'all'").collect()}
    assert set(overall) == {"mean_csat", "csat_top2box_share", "mean_payment_risk", "expected_arrears_usd"}
    csat = overall["mean_csat"]
    assert csat["delta"] < 0 and csat["delta_ci_low"] <= csat["delta"] <= csat["delta_ci_high"]
    assert csat["scenario_value"] == pytest.approx(csat["baseline"] + csat["delta"])
    assert dict(csat["model_versions"]) == result.model_versions and set(result.model_versions) == {"csat", "payment_risk"}
    # every published cell respects the privacy threshold (50 here: the 10% commercial segment is suppressed)
    bad = rows_df.filter((F.col("n") < 50) & (F.col("delta").isNotNull() | ~F.col("is_suppressed"))).count()
    assert bad == 0
    assert rows_df.filter("segment_type = 'customer_class' and segment_value = 'COM'").first()["delta"] is None
    run = mlflow.MlflowClient(tracking_uri=insights_wh.tracking_uri).get_run(result.run_id)
    assert run.data.params["scenario_kind"] == "rate_increase_usd"
    assert run.data.params["model_version.csat"] == result.model_versions["csat"]
    assert run.data.metrics["mean_csat.delta"] == pytest.approx(csat["delta"])


# ------------------------------------------------------------------ drivers


def test_shap_values_add_up_to_the_model_margin(spark, snap, champions) -> None:
    model = champions.models["payment_risk"]
    sample_df = snap.orderBy("household_id").limit(20)
    shap_pdf = household_shap(sample_df, model).groupBy("household_id").agg(F.sum("shap").alias("s")).toPandas()
    import xgboost as xgb

    pdf = sample_df.select("household_id", *model.spec.input_columns).toPandas()
    matrix = xgb.DMatrix(model.spec.matrix(pdf), missing=np.nan, feature_names=list(model.spec.encoded))
    margin = model.predictor.booster.predict(matrix, output_margin=True)
    bias = margin - shap_pdf.set_index("household_id").loc[pdf["household_id"], "s"].to_numpy()
    assert np.allclose(bias, bias[0], atol=1e-4)  # margin = expected value + sum of SHAP, for every household


def test_drivers_find_the_planted_effects_with_their_direction(spark, snap, champions) -> None:
    drivers_df = model_drivers(snap, champions.models["payment_risk"], min_households=15).filter("segment_type = 'all'")
    top = {r["feature"]: r for r in drivers_df.filter("rank <= 5").collect()}
    assert "energy_burden" in top or "income_midpoint_usd" in top or "income_band" in top
    if "energy_burden" in top:
        assert top["energy_burden"]["direction"] == "+"
    csat_df = model_drivers(snap, champions.models["csat"], min_households=15).filter("segment_type = 'all'")
    csat_top = {r["feature"]: r for r in csat_df.filter("rank <= 5").collect()}
    assert "bill_shock_ratio" in csat_top and csat_top["bill_shock_ratio"]["direction"] == "-"
    n_active = snap.count()
    assert {r["n"] for r in csat_df.collect()} == {n_active}


def test_drivers_pipeline_suppresses_small_segments(spark, insights_wh, snap) -> None:
    result = drivers_pipeline.run(spark, warehouse=str(insights_wh.warehouse), tracking_uri=insights_wh.tracking_uri,
                                  run_id="drivers-test", min_households=50)
    df = spark.read.format("delta").load(result.path)
    assert forbidden_columns_in(df.schema) == []
    assert set(r[0] for r in df.select("model_name").distinct().collect()) == {"csat", "ev_adoption", "payment_risk"}
    small = df.filter(F.col("n") < 50)
    assert small.count() > 0  # commercial accounts (~10%) are fewer than 50
    assert small.filter(F.col("mean_abs_shap").isNotNull() | F.col("rank").isNotNull()).count() == 0
    big = df.filter((F.col("n") >= 50) & (F.col("segment_type") == "all"))
    assert big.filter(F.col("mean_abs_shap").isNull()).count() == 0
    assert result.top["csat"][0][1] > 0 and date.fromisoformat(str(df.first()["as_of_date"])) == date(2023, 6, 30)
