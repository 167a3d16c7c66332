"""Why bills move (issue 21): a daily degree-day baseline per household (the CalTRACK daily
method), weather-normalised annual consumption, and each bill's change against the same
period a year earlier split into weather, number of days, rate and usage behaviour.

DataFrame in, DataFrame out; the reads and writes are ``pipelines/baselines.py``.

**The baseline** (CalTRACK 2.0, daily methods, section 3): for each household at its meter,
the last 365 days of complete usage (gold/meter_daily_usage, completeness 1) against the
day's mean temperature at the account's weather station (a day with at least
``MIN_TEMP_HOURS`` hourly readings). Four candidate models are fitted by least squares:

- intercept only: ``kwh = a``;
- heating only: ``kwh = a + b_h * max(bp_h - T, 0)`` for every balance point ``bp_h`` of
  ``BALANCE_POINTS_F`` (30-90 F, 1 F steps);
- cooling only: ``kwh = a + b_c * max(T - bp_c, 0)``, the same grid;
- heating and cooling: both terms, every pair with ``bp_h <= bp_c``.

A candidate qualifies when each of its slopes is positive with a two-sided p-value below
``MAX_P_VALUE`` (0.1) and its degree days are sufficient (at least ``MIN_NONZERO_DD_DAYS``
days with degree days, at least ``MIN_TOTAL_DD`` degree days in all); the qualified
candidate with the highest adjusted R^2 is the model (intercept only, adjusted R^2 0, always
qualifies). ``data_sufficient`` says whether the period holds 365 days with at least 90% of
them usable (CalTRACK's baseline sufficiency); a shorter history is still fitted and marked.
CV(RMSE) is ``sqrt(SSE / (n - p)) / mean(kwh)`` with ``p`` the model's parameters.

**Weather-normalised annual consumption** (``nac_kwh``): the model applied to the station's
own record of every calendar day (Feb 29 left out), averaged over the years recorded for that
day, summed over the 365 days. Averaging the predictions, not the temperatures, keeps the
degree days of cold and hot spells (a model applied to averaged temperatures would miss
them). Null when the record does not cover every calendar day.

The slopes are in kWh per degree-day (F); the intercept is the base load in kWh per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

BALANCE_POINTS_F = np.arange(30.0, 91.0)  # CalTRACK 2.0, 3.2.4: 30-90 F
MIN_NONZERO_DD_DAYS = 10
MIN_TOTAL_DD = 20.0
MAX_P_VALUE = 0.1
BASELINE_DAYS = 365
SUFFICIENT_SHARE = 0.9
MIN_FIT_DAYS = 30  # fewer usable days: no model (model_type insufficient_data)
MIN_TEMP_HOURS = 12  # a day's mean temperature needs half its hours
MODEL_TYPES = ("intercept_only", "hdd_only", "cdd_only", "hdd_cdd", "insufficient_data")

FIT_COLUMNS = (
    "household_id", "meter_key", "station_id", "period_start", "period_end", "days", "data_sufficient",
    "model_type", "intercept_kwh", "heating_slope_kwh", "heating_balance_f", "cooling_slope_kwh",
    "cooling_balance_f", "r2", "adj_r2", "cvrmse",
)
FIT_SCHEMA = (
    "household_id string, meter_key string, station_id string, period_start date, period_end date, days int, "
    "data_sufficient boolean, model_type string, intercept_kwh double, heating_slope_kwh double, "
    "heating_balance_f double, cooling_slope_kwh double, cooling_balance_f double, r2 double, adj_r2 double, "
    "cvrmse double"
)


@dataclass(frozen=True)
class DailyFit:
    """One household's selected model (slopes and balance points null where the model has none)."""

    model_type: str
    intercept: float | None
    heating_slope: float | None = None
    heating_balance: float | None = None
    cooling_slope: float | None = None
    cooling_balance: float | None = None
    r2: float | None = None
    adj_r2: float | None = None
    cvrmse: float | None = None
    days: int = 0

    def predict(self, temp: np.ndarray) -> np.ndarray:
        """Expected kWh per day at these daily mean temperatures."""
        out = np.full(np.shape(temp), float(self.intercept or 0.0))
        if self.heating_slope is not None:
            out = out + self.heating_slope * np.maximum(self.heating_balance - temp, 0.0)
        if self.cooling_slope is not None:
            out = out + self.cooling_slope * np.maximum(temp - self.cooling_balance, 0.0)
        return out


def _p_values(t: np.ndarray, df: int) -> np.ndarray:
    from scipy import stats

    return 2.0 * stats.t.sf(np.abs(t), df)


def _sufficient(x: np.ndarray) -> np.ndarray:
    """Per column of degree days: enough days with degree days and enough degree days in all."""
    return ((x > 0).sum(axis=0) >= MIN_NONZERO_DD_DAYS) & (x.sum(axis=0) >= MIN_TOTAL_DD)


def fit_daily(temp: np.ndarray, kwh: np.ndarray, *, balance_points: np.ndarray = BALANCE_POINTS_F) -> DailyFit:
    """The CalTRACK daily model of ``kwh`` against daily mean ``temp`` (see the module doc).

    Every candidate of the balance-point grid is solved at once from centred sums (closed-form
    least squares, one and two regressors), so a year of days costs a few matrix products.
    """
    temp = np.asarray(temp, dtype=float)
    y = np.asarray(kwh, dtype=float)
    n = len(y)
    if n < MIN_FIT_DAYS:
        return DailyFit("insufficient_data", None, days=n)
    y_mean = float(y.mean())
    yc = y - y_mean
    syy = float(yc @ yc)

    def cvrmse(sse: float, params: int) -> float | None:
        return float(np.sqrt(max(sse, 0.0) / (n - params)) / y_mean) if y_mean > 0 else None

    best = DailyFit("intercept_only", y_mean, r2=0.0, adj_r2=0.0, cvrmse=cvrmse(syy, 1), days=n)
    if syy <= 1e-12 * max(1.0, y_mean * y_mean) * n:
        return best  # no variation to explain
    bp = np.asarray(balance_points, dtype=float)
    heat = np.maximum(bp[None, :] - temp[:, None], 0.0)  # n x m degree days per balance point
    cool = np.maximum(temp[:, None] - bp[None, :], 0.0)
    hc, cc = heat - heat.mean(axis=0), cool - cool.mean(axis=0)
    s_hh, s_cc = (hc * hc).sum(axis=0), (cc * cc).sum(axis=0)
    s_hy, s_cy = hc.T @ yc, cc.T @ yc
    eps = 1e-9
    candidates: list[DailyFit] = [best]
    with np.errstate(divide="ignore", invalid="ignore"):
        for kind, s_xx, s_xy, x in (("hdd_only", s_hh, s_hy, heat), ("cdd_only", s_cc, s_cy, cool)):
            slope = s_xy / s_xx
            sse = syy - slope * s_xy
            p = _p_values(slope / np.sqrt(sse / (n - 2) / s_xx), n - 2)
            adj = 1.0 - (sse / syy) * (n - 1) / (n - 2)
            ok = _sufficient(x) & (s_xx > eps) & (slope > 0) & (p < MAX_P_VALUE)
            if ok.any():
                i = int(np.nanargmax(np.where(ok, adj, -np.inf)))
                a = y_mean - slope[i] * x[:, i].mean()
                terms = ({"heating_slope": float(slope[i]), "heating_balance": float(bp[i])} if kind == "hdd_only"
                         else {"cooling_slope": float(slope[i]), "cooling_balance": float(bp[i])})
                candidates.append(DailyFit(kind, float(a), **terms, r2=float(1 - sse[i] / syy), adj_r2=float(adj[i]),
                                           cvrmse=cvrmse(float(sse[i]), 2), days=n))
        s_hc = hc.T @ cc  # m x m: heating balance point i, cooling balance point j
        det = s_hh[:, None] * s_cc[None, :] - s_hc * s_hc
        b_h = (s_cc[None, :] * s_hy[:, None] - s_hc * s_cy[None, :]) / det
        b_c = (s_hh[:, None] * s_cy[None, :] - s_hc * s_hy[:, None]) / det
        sse2 = syy - b_h * s_hy[:, None] - b_c * s_cy[None, :]
        s2 = sse2 / (n - 3)
        p_h = _p_values(b_h / np.sqrt(s2 * s_cc[None, :] / det), n - 3)
        p_c = _p_values(b_c / np.sqrt(s2 * s_hh[:, None] / det), n - 3)
        adj2 = 1.0 - (sse2 / syy) * (n - 1) / (n - 3)
        ok2 = ((bp[:, None] <= bp[None, :]) & _sufficient(heat)[:, None] & _sufficient(cool)[None, :]
               & (det > eps * np.maximum(s_hh[:, None] * s_cc[None, :], 1.0))
               & (b_h > 0) & (b_c > 0) & (p_h < MAX_P_VALUE) & (p_c < MAX_P_VALUE))
        if ok2.any():
            i, j = np.unravel_index(int(np.nanargmax(np.where(ok2, adj2, -np.inf))), adj2.shape)
            a = y_mean - b_h[i, j] * heat[:, i].mean() - b_c[i, j] * cool[:, j].mean()
            candidates.append(DailyFit(
                "hdd_cdd", float(a), heating_slope=float(b_h[i, j]), heating_balance=float(bp[i]),
                cooling_slope=float(b_c[i, j]), cooling_balance=float(bp[j]), r2=float(1 - sse2[i, j] / syy),
                adj_r2=float(adj2[i, j]), cvrmse=cvrmse(float(sse2[i, j]), 3), days=n))
    return max(candidates, key=lambda c: c.adj_r2 if c.adj_r2 is not None else -np.inf)


def baseline_days(usage_df: DataFrame, accounts_df: DataFrame, temps_df: DataFrame) -> DataFrame:
    """The days a baseline is fitted on: household_id, meter_key, station_id, local_date, kwh,
    mean_temp_f, for every complete day of gold/meter_daily_usage (a household at the meter,
    completeness 1) whose station has the day's temperature (``MIN_TEMP_HOURS`` readings).

    ``accounts_df`` (silver/accounts): household_id, weather_station_id.
    """
    stations = accounts_df.select("household_id", F.col("weather_station_id").alias("station_id")) \
        .dropDuplicates(["household_id"])
    temps = temps_df.filter(F.col("temp_hours") >= MIN_TEMP_HOURS).select("station_id", "local_date", "mean_temp_f")
    return (
        usage_df.filter(F.col("household_id").isNotNull() & F.col("kwh").isNotNull()
                        & (F.col("completeness") >= 0.999))
        .select("household_id", "meter_key", "local_date", "kwh")
        .join(stations, "household_id")
        .join(temps, ["station_id", "local_date"])
        .select("household_id", "meter_key", "station_id", "local_date", "kwh", "mean_temp_f")
    )


def _fit_group(pdf: pd.DataFrame) -> pd.DataFrame:
    """One household at one meter: its last ``BASELINE_DAYS`` usable days fitted (``fit_daily``)."""
    days = pd.to_datetime(pdf["local_date"])
    end = days.max()
    window = pdf[days > end - pd.Timedelta(days=BASELINE_DAYS)]
    start = pd.to_datetime(window["local_date"]).min()
    fit = fit_daily(window["mean_temp_f"].to_numpy(), window["kwh"].to_numpy())
    span = (end - start).days + 1
    sufficient = span >= BASELINE_DAYS and len(window) >= SUFFICIENT_SHARE * BASELINE_DAYS
    row = {
        "household_id": pdf["household_id"].iloc[0], "meter_key": pdf["meter_key"].iloc[0],
        "station_id": pdf["station_id"].iloc[0], "period_start": start.date(), "period_end": end.date(),
        "days": int(len(window)), "data_sufficient": bool(sufficient), "model_type": fit.model_type,
        "intercept_kwh": fit.intercept, "heating_slope_kwh": fit.heating_slope,
        "heating_balance_f": fit.heating_balance, "cooling_slope_kwh": fit.cooling_slope,
        "cooling_balance_f": fit.cooling_balance, "r2": fit.r2, "adj_r2": fit.adj_r2, "cvrmse": fit.cvrmse,
    }
    return pd.DataFrame([row], columns=list(FIT_COLUMNS))


def fit_baselines(days_df: DataFrame) -> DataFrame:
    """One model per household and meter (``FIT_COLUMNS``) from ``baseline_days``: the groups are
    fitted on the executors (``applyInPandas``; a group is one household's year, ~365 rows)."""
    return days_df.groupBy("household_id", "meter_key", "station_id").applyInPandas(_fit_group, FIT_SCHEMA)


def predicted_kwh(temp: Column) -> Column:
    """A fitted row's expected kWh on a day of mean temperature ``temp`` (its columns by name)."""
    heating = F.coalesce(F.col("heating_slope_kwh") * F.greatest(F.col("heating_balance_f") - temp, F.lit(0.0)),
                         F.lit(0.0))
    cooling = F.coalesce(F.col("cooling_slope_kwh") * F.greatest(temp - F.col("cooling_balance_f"), F.lit(0.0)),
                         F.lit(0.0))
    return F.col("intercept_kwh") + heating + cooling


def normalised_annual(fits_df: DataFrame, temps_df: DataFrame) -> DataFrame:
    """``fits_df`` with ``nac_kwh`` and ``normal_days`` (see the module doc): the model over every
    calendar day of the station's record (Feb 29 out), averaged over the years of each day."""
    record = (temps_df.filter(F.col("temp_hours") >= MIN_TEMP_HOURS)
              .filter(~((F.month("local_date") == 2) & (F.dayofmonth("local_date") == 29)))
              .select("station_id", F.date_format("local_date", "MM-dd").alias("calendar_day"), "mean_temp_f"))
    per_day = (fits_df.filter(F.col("intercept_kwh").isNotNull()).select(
        "household_id", "meter_key", "station_id", "intercept_kwh", "heating_slope_kwh", "heating_balance_f",
        "cooling_slope_kwh", "cooling_balance_f")
        .join(record, "station_id")
        .groupBy("household_id", "meter_key", "calendar_day")
        .agg(F.avg(predicted_kwh(F.col("mean_temp_f"))).alias("kwh")))
    nac = per_day.groupBy("household_id", "meter_key").agg(
        F.sum("kwh").alias("_sum"), F.count(F.lit(1)).alias("normal_days"))
    return (fits_df.join(nac, ["household_id", "meter_key"], "left")
            .withColumn("normal_days", F.coalesce(F.col("normal_days"), F.lit(0)).cast("int"))
            .withColumn("nac_kwh", F.when(F.col("normal_days") == 365, F.col("_sum")))
            .drop("_sum"))


def baseline_through(last_day: date) -> date:
    """The last day of the last complete month of data that ends on ``last_day``: the baselines
    are fitted through it (``ucx pipeline`` refits them when a month completes, not on every
    daily load; the bills are explained as they come, against the latest baselines)."""
    next_day = last_day + timedelta(days=1)
    return last_day if next_day.day == 1 else next_day.replace(day=1) - timedelta(days=1)


def usage_baselines(usage_df: DataFrame, accounts_df: DataFrame, temps_df: DataFrame, *, through: date) -> DataFrame:
    """gold/usage_baselines: ``FIT_COLUMNS`` plus normal_days and nac_kwh, one row per household
    and meter, from gold/meter_daily_usage, silver/accounts and the stations' daily temperatures
    (``gold.household_features.daily_temperatures``, the features' own): every day up to
    ``through`` (``baseline_through``) and none after."""
    usage = usage_df.filter(F.col("local_date") <= F.lit(through))
    temps = temps_df.filter(F.col("local_date") <= F.lit(through))
    return normalised_annual(fit_baselines(baseline_days(usage, accounts_df, temps)), temps)


# --------------------------------------------------------------------------- why a bill moved

DD_NAMES = {"hdd": "heating degree days", "cdd": "cooling degree days"}
PRIOR_BILL_TOLERANCE_DAYS = 15  # the bill a year earlier starts within this many days of a year before


MODEL_COLUMNS = ("household_id", "station_id", "model_type", "intercept_kwh", "heating_slope_kwh", "heating_balance_f",
                 "cooling_slope_kwh", "cooling_balance_f")


def _period_weather(bills_df: DataFrame, fits_df: DataFrame, temps_df: DataFrame) -> DataFrame:
    """Per bill (household_id, period_start, period_end): the baseline's expected kWh over the
    period's days, and its heating and cooling degree days at the model's balance points (a day
    without a temperature counts at the mean of those with one; no temperature at all: null)."""
    days = (bills_df.select("household_id", "period_start", "period_end",
                            F.explode(F.sequence("period_start", "period_end")).alias("local_date"))
            .join(fits_df.filter(F.col("intercept_kwh").isNotNull()).select(*MODEL_COLUMNS), "household_id")
            .join(temps_df.filter(F.col("temp_hours") >= MIN_TEMP_HOURS)
                  .select("station_id", "local_date", "mean_temp_f"), ["station_id", "local_date"], "left"))
    t = F.col("mean_temp_f")
    period_days = F.datediff("period_end", "period_start") + 1
    return days.groupBy("household_id", "period_start", "period_end").agg(
        (F.avg(F.when(t.isNotNull(), predicted_kwh(t))) * F.first(period_days)).alias("expected_kwh"),
        (F.avg(F.when(t.isNotNull(), F.greatest(F.col("heating_balance_f") - t, F.lit(0.0))))
         * F.first(period_days)).alias("hdd"),
        (F.avg(F.when(t.isNotNull(), F.greatest(t - F.col("cooling_balance_f"), F.lit(0.0))))
         * F.first(period_days)).alias("cdd"),
        F.first("model_type").alias("model_type"),
    )


def bill_explanations(bills_df: DataFrame, fits_df: DataFrame, temps_df: DataFrame) -> DataFrame:
    """gold/bill_explanations: each bill of silver/bills (household_id, period_start, period_end,
    bill_date, kwh, amount_due) against the household's bill for the same period a year earlier
    (the one starting closest to a year before, within ``PRIOR_BILL_TOLERANCE_DAYS``), its change
    split so that the parts sum to ``change_usd``:

    - ``days_kwh = (d1 - d0) * k0 / d0``: last year's daily use over the extra (or missing) days;
    - ``weather_kwh = d1 * (E1 / d1 - E0 / d0)``: what the household's baseline expects per day
      from this period's temperatures against last year's, over this period's days;
    - ``behaviour_kwh``: the rest of the kWh change (``k1 - k0`` minus the two above);
    - in dollars at last year's price per kWh ``p0 = a0 / k0``, and ``rate_usd = (p1 - p0) * k1``
      (a fixed charge is part of the price per kWh, so a bill of fewer kWh shows a dearer rate).

    A household without a baseline has a null weather part (the behaviour part holds it); a bill
    without a prior bill, or where either bill has no positive kWh, has null parts. ``hdd``/``cdd``
    are the degree days of each period at the model's balance points (what an agent says:
    "12% more heating degree days than last year"). ``fits_df`` is gold/usage_baselines.
    """
    bills = bills_df.filter(F.col("household_id").isNotNull()).select(
        "household_id", "period_start", "period_end", "bill_date",
        (F.datediff("period_end", "period_start") + 1).alias("days"), "kwh", "amount_due")
    weather = _period_weather(bills, fits_df, temps_df)
    with_weather = bills.join(weather, ["household_id", "period_start", "period_end"], "left")
    prior = with_weather.select(*[F.col(c).alias(f"prior_{c}") for c in with_weather.columns])
    gap = F.abs(F.datediff(F.col("prior_period_start"), F.add_months(F.col("period_start"), -12)))
    closest = Window.partitionBy("household_id", "period_start", "period_end").orderBy(gap, F.col("prior_period_end").desc())
    paired = (with_weather.join(prior, (F.col("prior_household_id") == F.col("household_id"))
                                & (gap <= PRIOR_BILL_TOLERANCE_DAYS), "left")
              .withColumn("_rank", F.row_number().over(closest)).filter("_rank = 1"))
    k1, k0, d1, d0 = F.col("kwh"), F.col("prior_kwh"), F.col("days"), F.col("prior_days")
    a1, a0 = F.col("amount_due"), F.col("prior_amount_due")
    ok = (k1 > 0) & (k0 > 0)
    p0 = F.when(ok, a0 / k0)
    days_kwh = F.when(ok, (d1 - d0) * k0 / d0)
    weather_kwh = F.when(ok, d1 * (F.col("expected_kwh") / d1 - F.col("prior_expected_kwh") / d0))
    behaviour_kwh = F.when(ok, (k1 - k0) - days_kwh - F.coalesce(weather_kwh, F.lit(0.0)))
    return paired.select(
        "household_id", "period_start", "period_end", "bill_date", "days", "kwh", "amount_due",
        "prior_period_start", "prior_period_end", "prior_days", "prior_kwh", "prior_amount_due",
        (a1 - a0).alias("change_usd"), (p0 * weather_kwh).alias("weather_usd"), (p0 * days_kwh).alias("days_usd"),
        F.when(ok, (a1 / k1 - p0) * k1).alias("rate_usd"), (p0 * behaviour_kwh).alias("behaviour_usd"),
        weather_kwh.alias("weather_kwh"), days_kwh.alias("days_kwh"), behaviour_kwh.alias("behaviour_kwh"),
        "hdd", "prior_hdd", "cdd", "prior_cdd", "model_type",
    )


def explain_sentence(row: dict) -> str:
    """What a contact-center agent says about one row of gold/bill_explanations."""
    if row.get("prior_amount_due") is None:
        return (f"Bill for {row['period_start']} to {row['period_end']}: ${row['amount_due']:,.2f}; "
                "no bill for the same period a year earlier to compare with.")
    change = row["change_usd"]
    head = (f"Bill for {row['period_start']} to {row['period_end']}: ${row['amount_due']:,.2f}, "
            f"${abs(change):,.2f} {'more' if change >= 0 else 'less'} than the same period a year earlier "
            f"(${row['prior_amount_due']:,.2f}).")
    if row.get("rate_usd") is None:
        return head + " No split: one of the two bills has no positive kWh."
    parts = []
    if row.get("weather_usd") is not None:
        weather = f"weather {row['weather_usd']:+,.2f}"
        dd = [(k, row.get(k), row.get(f"prior_{k}")) for k in ("hdd", "cdd")]
        said = [f"{DD_NAMES[name]} {now:.0f} vs {before:.0f}" for name, now, before in dd
                if now is not None and before is not None and (now > 0 or before > 0)]
        parts.append(weather + (f" ({', '.join(said)})" if said else ""))
    parts.append(f"{row['days'] - row['prior_days']:+d} days {row['days_usd']:+,.2f}")
    parts.append(f"rate {row['rate_usd']:+,.2f}")
    parts.append(f"usage habits {row['behaviour_usd']:+,.2f}")
    return head + " Why: " + "; ".join(parts) + "."
