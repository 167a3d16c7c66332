"""Why bills move (issue 21): the CalTRACK daily baseline, weather-normalised annual use, and the
split of a bill's change into weather, days, rate and usage behaviour."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.gold.household_features import daily_temperatures
from ucx_spark.insights import baselines as B


def _year(seed: int = 1, days: int = 365) -> np.ndarray:
    rng = np.random.default_rng(seed)
    doy = np.arange(days)
    return 60 + 20 * np.cos(2 * np.pi * (doy - 200) / 365) + rng.normal(0, 4, days)


@pytest.mark.parametrize(("planted", "model_type"), [
    ({"heating": (0.9, 55.0), "cooling": (1.4, 70.0)}, "hdd_cdd"),
    ({"heating": (0.9, 55.0)}, "hdd_only"),
    ({"cooling": (1.4, 70.0)}, "cdd_only"),
    ({}, "intercept_only"),
])
def test_the_daily_model_finds_the_planted_form_slopes_and_balance_points(planted, model_type) -> None:
    temp = _year()
    rng = np.random.default_rng(2)
    kwh = 12.0 + rng.normal(0, 1.0, len(temp))
    if "heating" in planted:
        slope, bp = planted["heating"]
        kwh += slope * np.maximum(bp - temp, 0)
    if "cooling" in planted:
        slope, bp = planted["cooling"]
        kwh += slope * np.maximum(temp - bp, 0)
    fit = B.fit_daily(temp, kwh)
    assert fit.model_type == model_type
    assert fit.intercept == pytest.approx(12.0, abs=0.5)
    assert fit.days == 365
    for side, (slope_got, bp_got) in {"heating": (fit.heating_slope, fit.heating_balance),
                                      "cooling": (fit.cooling_slope, fit.cooling_balance)}.items():
        if side in planted:
            assert slope_got == pytest.approx(planted[side][0], rel=0.05)
            assert abs(bp_got - planted[side][1]) <= 2
        else:
            assert slope_got is None and bp_got is None
    assert fit.r2 is not None and 0 <= fit.r2 <= 1
    # the selected model's predictions are its least-squares fit: residuals average to zero
    assert float(np.mean(kwh - fit.predict(temp))) == pytest.approx(0.0, abs=1e-6)


def test_a_slope_of_the_wrong_sign_or_too_few_degree_days_never_qualifies() -> None:
    temp = _year()
    rng = np.random.default_rng(3)
    # usage that falls as it gets colder: no heating model may describe it with a negative slope
    falling = 20.0 - 0.5 * np.maximum(60 - temp, 0) + rng.normal(0, 0.5, len(temp))
    fit = B.fit_daily(temp, falling)
    assert fit.heating_slope is None or fit.heating_slope > 0
    assert fit.model_type in ("intercept_only", "cdd_only")
    # a strong heating response, but only 5 days below the one balance point tried: not enough days
    mild = np.full(200, 75.0) + rng.normal(0, 1, 200)
    mild[:5] = 20.0
    usage = 10 + 2.0 * np.maximum(40 - mild, 0) + rng.normal(0, 0.2, 200)
    assert B.fit_daily(mild, usage, balance_points=np.array([40.0])).model_type == "intercept_only"
    mild[:12] = 20.0  # 12 days: it qualifies
    usage = 10 + 2.0 * np.maximum(40 - mild, 0) + rng.normal(0, 0.2, 200)
    assert B.fit_daily(mild, usage, balance_points=np.array([40.0])).model_type == "hdd_only"
    assert B.fit_daily(temp[:20], temp[:20]).model_type == "insufficient_data"


def _usage(spark, rows):
    return spark.createDataFrame(rows, "household_id string, meter_key string, local_date date, kwh double, "
                                       "completeness double")


def test_baseline_days_are_complete_days_with_a_temperature_at_the_households_station(spark) -> None:
    d = date(2025, 1, 1)
    usage = _usage(spark, [
        ("h1", "m1", d, 10.0, 1.0),
        ("h1", "m1", d + timedelta(1), 11.0, 0.5),  # incomplete day: out
        ("h1", "m1", d + timedelta(2), None, 1.0),  # no reading: out
        ("h1", "m1", d + timedelta(3), 12.0, 1.0),  # the station has 6 hours that day: out
        (None, "m2", d, 9.0, 1.0),  # no household at the meter: out
        ("h2", "m2", d, 8.0, 1.0),
    ])
    accounts = spark.createDataFrame([("h1", "S1"), ("h2", "S2")], "household_id string, weather_station_id string")
    weather = spark.createDataFrame(
        [("S1", f"2025-01-01 {h:02d}:00:00", 40.0 + h) for h in range(24)]
        + [("S1", f"2025-01-04 {h:02d}:00:00", 30.0) for h in range(6)]
        + [("S2", f"2025-01-01 {h:02d}:00:00", 50.0) for h in range(24)],
        "station_id string, observed_at string, temp_f double").withColumn("observed_at", F.to_timestamp("observed_at"))
    temps = daily_temperatures(weather, time_zone="UTC")
    got = B.baseline_days(usage, accounts, temps)
    expected = spark.createDataFrame(
        [("h1", "m1", "S1", d, 10.0, 51.5), ("h2", "m2", "S2", d, 8.0, 50.0)],
        "household_id string, meter_key string, station_id string, local_date date, kwh double, mean_temp_f double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def _fits(spark, rows):
    return spark.createDataFrame(rows, "household_id string, meter_key string, station_id string, model_type string, "
                                       "intercept_kwh double, heating_slope_kwh double, heating_balance_f double, "
                                       "cooling_slope_kwh double, cooling_balance_f double")


def _temps(spark, start: date, values: list[float], station: str = "S1"):
    return spark.createDataFrame([(station, start + timedelta(i), float(t), 24) for i, t in enumerate(values)],
                                 "station_id string, local_date date, mean_temp_f double, temp_hours int")


def test_fitted_groups_and_normalised_annual_use_over_two_recorded_years(spark) -> None:
    start = date(2023, 1, 1)
    temp = np.concatenate([_year(5), _year(6)])  # 2023 and 2024 (2024-02-29 is left out of the record)
    days = [start + timedelta(i) for i in range(730)]
    rng = np.random.default_rng(7)
    kwh = 10 + 0.8 * np.maximum(55 - temp, 0) + 1.2 * np.maximum(temp - 72, 0) + rng.normal(0, 0.3, 730)
    days_df = spark.createDataFrame(pd.DataFrame({
        "household_id": "h1", "meter_key": "m1", "station_id": "S1", "local_date": days, "kwh": kwh,
        "mean_temp_f": temp}))
    fits = B.fit_baselines(days_df)
    row = fits.first()
    last = pd.Series(days[-365:])
    assert (row["period_start"], row["period_end"], row["days"]) == (last.iloc[0], last.iloc[-1], 365)
    assert row["data_sufficient"] and row["model_type"] == "hdd_cdd"
    assert row["heating_slope_kwh"] == pytest.approx(0.8, rel=0.05) and row["cooling_slope_kwh"] == pytest.approx(1.2, rel=0.08)
    temps = _temps(spark, start, list(temp))
    got = B.normalised_annual(fits, temps).first()
    # by hand: each calendar day's prediction averaged over the years recorded for it, summed
    fit = B.DailyFit(row["model_type"], row["intercept_kwh"], row["heating_slope_kwh"], row["heating_balance_f"],
                     row["cooling_slope_kwh"], row["cooling_balance_f"])
    record = pd.DataFrame({"day": pd.to_datetime(days), "pred": fit.predict(temp)})
    record = record[~((record.day.dt.month == 2) & (record.day.dt.day == 29))]
    expected = record.groupby(record.day.dt.strftime("%m-%d"))["pred"].mean().sum()
    assert got["normal_days"] == 365
    assert got["nac_kwh"] == pytest.approx(expected, rel=1e-9)
    # a record shorter than a year has no normal year: no NAC
    short = B.normalised_annual(fits, _temps(spark, start, list(temp[:200]))).first()
    assert short["normal_days"] == 200 and short["nac_kwh"] is None


def test_a_bills_change_splits_into_weather_days_rate_and_behaviour_that_sum_to_it(spark) -> None:
    # heating only, 1 kWh per degree day below 60 F, base 10 kWh a day
    fits = _fits(spark, [("h1", "m1", "S1", "hdd_only", 10.0, 1.0, 60.0, None, None),
                         ("h2", "m2", "S1", "insufficient_data", None, None, None, None, None)])
    # January 2024 at 50 F (10 degree days a day), January 2025 at 40 F (20 a day)
    temps = _temps(spark, date(2024, 1, 1), [50.0] * 31).unionByName(_temps(spark, date(2025, 1, 1), [40.0] * 31))
    bills = spark.createDataFrame([
        ("h1", date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 2), 620.0, 62.0),  # $0.10 a kWh
        ("h1", date(2025, 1, 1), date(2025, 1, 31), date(2025, 2, 2), 1000.0, 120.0),  # $0.12 a kWh
        ("h1", date(2025, 2, 1), date(2025, 2, 28), date(2025, 3, 2), 500.0, 60.0),  # no bill a year earlier
        ("h2", date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 2), 300.0, 30.0),
        ("h2", date(2025, 1, 1), date(2025, 1, 31), date(2025, 2, 2), 330.0, 36.0),  # no baseline: no weather part
    ], "household_id string, period_start date, period_end date, bill_date date, kwh double, amount_due double")
    got = B.bill_explanations(bills, fits, temps).filter("period_start >= '2025-01-01'").select(
        "household_id", "period_start", "change_usd", "weather_usd", "days_usd", "rate_usd", "behaviour_usd",
        "weather_kwh", "hdd", "prior_hdd")
    # h1: expected 31 x (10 + 20) = 930 kWh against 31 x (10 + 10) = 620: weather +310 kWh = $31 at
    # last year's $0.10; same days; rate (0.12 - 0.10) x 1000 = $20; behaviour 380 - 310 = 70 kWh = $7
    expected = spark.createDataFrame([
        ("h1", date(2025, 1, 1), 58.0, 31.0, 0.0, 20.0, 7.0, 310.0, 620.0, 310.0),
        ("h1", date(2025, 2, 1), None, None, None, None, None, None, None, None),
        ("h2", date(2025, 1, 1), 6.0, None, 0.0, 3.0, 3.0, None, None, None),
    ], "household_id string, period_start date, change_usd double, weather_usd double, days_usd double, "
       "rate_usd double, behaviour_usd double, weather_kwh double, hdd double, prior_hdd double")
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_the_days_part_is_last_years_daily_use_over_the_extra_days(spark) -> None:
    fits = _fits(spark, [("h1", "m1", "S1", "intercept_only", 20.0, None, None, None, None)])
    temps = _temps(spark, date(2024, 1, 1), [50.0] * 400)
    bills = spark.createDataFrame([
        ("h1", date(2024, 2, 1), date(2024, 2, 29), date(2024, 3, 2), 580.0, 58.0),  # 29 days, 20 kWh a day
        ("h1", date(2025, 2, 1), date(2025, 2, 28), date(2025, 3, 2), 560.0, 56.0),  # 28 days
    ], "household_id string, period_start date, period_end date, bill_date date, kwh double, amount_due double")
    row = B.bill_explanations(bills, fits, temps).filter("period_start = '2025-02-01'").first()
    assert row["days_kwh"] == pytest.approx(-20.0) and row["days_usd"] == pytest.approx(-2.0)
    assert row["weather_usd"] == pytest.approx(0.0) and row["behaviour_usd"] == pytest.approx(0.0)
    assert row["rate_usd"] == pytest.approx(0.0) and row["change_usd"] == pytest.approx(-2.0)
    sentence = B.explain_sentence(row.asDict())
    assert "$2.00 less than the same period a year earlier ($58.00)" in sentence
    assert "-1 days -2.00" in sentence


def test_the_gold_suites_hold_the_tables_to_calTRACKs_rules() -> None:
    from ucx_spark.quality.suites import insight_suites

    suites = {s.table: s for s in insight_suites()}
    baselines = {e.id: e for e in suites["usage_baselines"].expectations}
    assert baselines["key_unique"].kwargs["column_list"] == ["household_id", "meter_key"]
    assert baselines["in_set_model_type"].kwargs["value_set"] == list(B.MODEL_TYPES)
    assert baselines["range_heating_balance_f"].kwargs == {"column": "heating_balance_f", "min_value": 30.0,
                                                           "max_value": 90.0}
    explanations = {e.id for e in suites["bill_explanations"].expectations}
    assert {"key_unique", "range_days", "range_hdd"} <= explanations
