"""gold/household_features: point-in-time features per household and as_of_date.

One row per account active on an as_of_date (household_id = the account's
pseudonym). Every feature uses only rows dated on or before as_of_date (local
time): usage and weather by local date, bills by bill_date (arrears by
due_date), payments, contacts, marketing by the local date of their
timestamp, collections by event_date, programs by enrolled_on, outages by the
local date they started (their minutes only once restored by as_of_date).
Look-back windows end on as_of_date inclusive: "90d" is the 90 days
(as_of_date - 89) .. as_of_date. The ``_180d`` service features describe the
customer's recent experience (outages, ETR misses, bill shock, unresolved
contacts), the half-year a satisfaction survey answer reflects.

Not point in time (silver keeps one current row per key, no history): the
third-party household record and the census row of the zip are today's
values, and a current row's later updates (e.g. a restored_at filled in
later) are judged by their own dates, not by when they were extracted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.contract import COLLECTION_EVENTS, CONTACT_REASONS, PAYMENT_METHODS, PROGRAMS
from ucx_spark.gold.accounts import THIRD_PARTY_COLUMNS, premise_household_records, with_active_account
from ucx_spark.gold.contact_text import NEGATIVE_BELOW, REPEAT_DAYS, sentiment, text_topic
from ucx_spark.gold.contact_text import TOPICS as CONTACT_TOPICS
from ucx_spark.local_time import is_active_on, local_date, minutes_between
from ucx_spark.silver.ami_daily import (
    ami_daily,
)

# Load-shape windows, local hours inclusive.
RECENT_DAYS = 180  # the recent-experience window of the _180d features
PAST_DUE_RECENT_DAYS = 45  # a past-due notice older than this no longer counts as open
EV_SINCE_RECORDS_SLACK_DAYS = 14  # a first charging night this close to the first usage day: owned before

BASE_TEMPERATURE_F = 65.0
# Midpoints of contract.INCOME_BANDS in USD (open-ended bands: a conventional value).
INCOME_BAND_MIDPOINTS_USD: dict[str, float] = {
    "lt25k": 17_500.0,
    "25-50k": 37_500.0,
    "50-75k": 62_500.0,
    "75-100k": 87_500.0,
    "100-150k": 125_000.0,
    "150k_plus": 200_000.0,
}
CENSUS_COLUMNS = ("median_household_income", "pct_renter", "pct_below_poverty", "population")

KEYS = ("account_id", "as_of_date")


# --- helpers ---------------------------------------------------------------------------------

def _ratio(num: Column, den: Column) -> Column:
    """num / den, null when den is null or not positive."""
    return F.when(den > 0, num / den)


def _kw(kwh: Column, hours: Column) -> Column:
    return _ratio(kwh, hours)


def _in_window(day: Column, days: int) -> Column:
    """``day`` within the ``days`` days ending on as_of_date (needs column as_of_date)."""
    ago = F.datediff(F.col("as_of_date"), day)
    return (ago >= 0) & (ago < days)


def as_of_dates_df(spark_df: DataFrame, as_of_dates: Sequence[date]) -> DataFrame:
    """A one-column (as_of_date) DataFrame of the dates, in the session of ``spark_df``."""
    return spark_df.sparkSession.createDataFrame([(d,) for d in sorted(set(as_of_dates))], "as_of_date date")


# The column that places a silver row in time for the features: a feature as of D reads a row
# only when this day (local, for timestamps) is on or before D (``_events_as_of``; outages by their
# start, bills by their issue date, programs by their enrolment). gold.first_changed_day bounds what
# a changed row can change by it.
EVENT_DAY_COLUMNS = {
    "accounts": "start_date", "bills": "bill_date", "payments": "paid_at", "collections": "event_date",
    "programs": "enrolled_on", "contacts": "started_at", "surveys": "responded_at", "outages": "started_at",
    "marketing": "occurred_at", "weather": "observed_at",
}


def _events_as_of(events_df: DataFrame, keys_df: DataFrame, *, day: Column, lookback_days: int | None) -> DataFrame:
    """Rows of ``events_df`` (with account_id) paired with each key whose as_of_date they precede.

    ``day`` is the event's local date; a row dated after as_of_date never pairs,
    so future rows cannot reach a feature. ``lookback_days`` None keeps all history.
    """
    paired = events_df.withColumn("_event_day", day).join(keys_df, "account_id")
    cond = F.col("_event_day") <= F.col("as_of_date")
    if lookback_days is not None:
        cond = cond & _in_window(F.col("_event_day"), lookback_days)
    return paired.filter(cond)


# --- usage -----------------------------------------------------------------------------------

PROFILE_COLUMNS = (
    "kwh", "kwh_on_peak",
    *(f"{p}_{w}" for w in ("afternoon", "evening", "overnight", "night") for p in ("kwh", "hours")),
    "midday_intervals", "midday_export_intervals", "export_kwh", "has_ev_block",
    "peak_kw", "ev_block_minutes", "ev_block_kwh",
)


def daily_load_profile(daily_df: DataFrame, accounts_df: DataFrame) -> DataFrame:
    """account_id, local_date and the daily sums the load-shape features need.

    Needs silver/ami_daily (meter_id, local_date, ``PROFILE_COLUMNS``: see
    silver/ami_daily.py) and silver/accounts (account_id, meter_id, start_date,
    end_date). Each meter-day goes to the account active at the meter on that
    day (move-day rule), so a household never inherits a previous tenant's usage.
    """
    daily = daily_df.select("meter_id", "local_date", *PROFILE_COLUMNS)
    return (
        with_active_account(daily, accounts_df, key="meter_id", day_col="local_date", account_cols=("account_id",))
        .filter(F.col("account_id").isNotNull())
        .drop("meter_id")
    )


def daily_temperatures(weather_df: DataFrame, *, time_zone: str) -> DataFrame:
    """station_id, local_date, mean_temp_f, temp_hours from hourly silver/weather (station_id,
    observed_at, temp_f): the mean over the readings of the local day, and their count."""
    return (weather_df.groupBy("station_id", local_date(F.col("observed_at"), time_zone=time_zone).alias("local_date"))
            .agg(F.avg("temp_f").alias("mean_temp_f"), F.count("temp_f").alias("temp_hours")))


def daily_degree_days(weather_df: DataFrame, *, time_zone: str, base_f: float = BASE_TEMPERATURE_F) -> DataFrame:
    """station_id, local_date, mean_temp_f, hdd, cdd from hourly silver/weather (station_id, observed_at, temp_f)."""
    return (
        daily_temperatures(weather_df, time_zone=time_zone).drop("temp_hours")
        .withColumn("hdd", F.greatest(F.lit(base_f) - F.col("mean_temp_f"), F.lit(0.0)))
        .withColumn("cdd", F.greatest(F.col("mean_temp_f") - F.lit(base_f), F.lit(0.0)))
    )


def degree_day_fit(n: Column, h: Column, c: Column, y: Column, hh: Column, cc: Column, hc: Column,
                   hy: Column, cy: Column) -> tuple[Column, Column, Column]:
    """(base, heating slope, cooling slope) of y = base + heating * HDD + cooling * CDD.

    Closed-form least squares from the sums n, Σh, Σc, Σy, Σh², Σc², Σhc,
    Σhy, Σcy (centred normal equations, Cramer's rule). A regressor without
    variance (e.g. no cooling day) gets a null slope and the fit uses the other.
    """
    eps = 1e-9
    n = F.when(n > 0, n)  # no fit without days; also keeps ANSI mode from dividing by zero
    s_hh = hh - h * h / n
    s_cc = cc - c * c / n
    s_hc = hc - h * c / n
    s_hy = hy - h * y / n
    s_cy = cy - c * y / n
    det = s_hh * s_cc - s_hc * s_hc
    both = (s_hh > eps) & (s_cc > eps) & (F.abs(det) > eps * F.greatest(s_hh * s_cc, F.lit(1.0)))
    heating = F.when(both, (s_cc * s_hy - s_hc * s_cy) / det).when(s_hh > eps, s_hy / s_hh)
    cooling = F.when(both, (s_hh * s_cy - s_hc * s_hy) / det).when(~(s_hh > eps) & (s_cc > eps), s_cy / s_cc)
    base = (y - F.coalesce(heating, F.lit(0.0)) * h - F.coalesce(cooling, F.lit(0.0)) * c) / n
    return base, heating, cooling


def usage_features(
    keys_df: DataFrame,
    profile_df: DataFrame,
    degree_days_df: DataFrame,
    accounts_df: DataFrame,
    *,
    min_regression_days: int = 30,
) -> DataFrame:
    """Usage level, trend, load shape, EV and solar signatures, weather sensitivity per key.

    ``profile_df`` from ``daily_load_profile``; ``degree_days_df`` from
    ``daily_degree_days``; the account's weather_station_id picks the station.
    Regression over the 365 days, on days with kWh and a temperature, when
    there are at least ``min_regression_days`` of them.
    """
    stations = accounts_df.select("account_id", F.col("weather_station_id").alias("station_id"))
    daily = (
        profile_df.join(stations, "account_id", "left")
        .join(degree_days_df, ["station_id", "local_date"], "left")
        .filter(F.col("kwh").isNotNull())
    )
    rows = _events_as_of(daily, keys_df, day=F.col("local_date"), lookback_days=365)
    ago = F.datediff(F.col("as_of_date"), F.col("local_date"))
    last90 = ago < 90
    prior90 = (ago >= 90) & (ago < 180)
    last30 = ago < 30
    prior90_of30 = (ago >= 30) & (ago < 120)
    fit = F.col("hdd").isNotNull()

    def s90(col: str) -> Column:
        return F.sum(F.when(last90, F.col(col)))

    def fsum(expr: Column) -> Column:
        return F.sum(F.when(fit, expr))

    y, hdd, cdd = F.col("kwh"), F.col("hdd"), F.col("cdd")
    agg = rows.groupBy(*KEYS).agg(
        F.count(F.when(last90, 1)).alias("usage_days_90d"),
        F.avg(F.when(last90, y)).alias("kwh_per_day_90d"),
        F.avg(F.when(prior90, y)).alias("kwh_per_day_prior_90d"),
        s90("kwh").alias("_kwh90"),
        s90("kwh_on_peak").alias("_on_peak90"),
        *[s90(f"{p}_{w}").alias(f"_{p}_{w}") for w in ("afternoon", "evening", "overnight", "night")
          for p in ("kwh", "hours")],
        F.avg(F.when(last90, F.coalesce(F.col("has_ev_block"), F.lit(False)).cast("double"))).alias(
            "ev_block_day_share_90d"
        ),
        F.count(F.when(last30 & (F.col("ev_block_minutes") > 0), 1)).alias("ev_block_nights_30d"),
        F.count(F.when(prior90_of30 & (F.col("ev_block_minutes") > 0), 1)).alias("ev_block_nights_prior_90d"),
        F.count(F.when(last30 & F.col("ev_block_minutes").isNotNull(), 1)).alias("_nights_30d"),
        F.count(F.when(prior90_of30 & F.col("ev_block_minutes").isNotNull(), 1)).alias("_nights_prior_90d"),
        # when charging began: the oldest night with a block in the year (long-time owners: as
        # old as the household's records in the window; new buyers: weeks or months)
        F.count(F.when(F.col("ev_block_minutes") > 0, 1)).alias("ev_block_nights_365d"),
        F.max(F.when(F.col("ev_block_minutes") > 0, ago)).alias("_ev_first_ago"),
        F.max(ago).alias("_usage_first_ago"),
        F.avg(F.when(last90 & (F.col("ev_block_minutes") > 0), F.col("ev_block_minutes"))).alias(
            "mean_ev_block_minutes_90d"),
        F.avg(F.when(last90 & (F.col("ev_block_minutes") > 0), F.col("ev_block_kwh"))).alias(
            "mean_ev_block_kwh_90d"),
        F.max(F.when(last90, F.col("peak_kw"))).alias("_peak_kw90"),
        s90("midday_intervals").alias("_midday"),
        s90("midday_export_intervals").alias("_midday_export"),
        F.coalesce(F.sum("export_kwh"), F.lit(0.0)).alias("export_kwh_365d"),
        F.count(F.when(fit, 1)).alias("weather_fit_days"),
        fsum(hdd).alias("_h"), fsum(cdd).alias("_c"), fsum(y).alias("_y"),
        fsum(hdd * hdd).alias("_hh"), fsum(cdd * cdd).alias("_cc"), fsum(hdd * cdd).alias("_hc"),
        fsum(hdd * y).alias("_hy"), fsum(cdd * y).alias("_cy"),
    )
    base, heating, cooling = degree_day_fit(
        F.col("weather_fit_days"), F.col("_h"), F.col("_c"), F.col("_y"), F.col("_hh"), F.col("_cc"),
        F.col("_hc"), F.col("_hy"), F.col("_cy"),
    )
    enough = F.col("weather_fit_days") >= min_regression_days
    evening_kw = _kw(F.col("_kwh_evening"), F.col("_hours_evening"))
    return agg.select(
        *KEYS,
        "usage_days_90d",
        "kwh_per_day_90d",
        "kwh_per_day_prior_90d",
        _ratio(F.col("kwh_per_day_90d"), F.col("kwh_per_day_prior_90d")).alias("usage_trend_ratio"),
        _ratio(F.coalesce(F.col("_on_peak90"), F.lit(0.0)), F.col("_kwh90")).alias("on_peak_share_90d"),
        (evening_kw - _kw(F.col("_kwh_afternoon"), F.col("_hours_afternoon"))).alias("evening_ramp_kw_90d"),
        _kw(F.col("_kwh_overnight"), F.col("_hours_overnight")).alias("overnight_base_kw_90d"),
        "ev_block_day_share_90d",
        "ev_block_nights_30d",
        "ev_block_nights_prior_90d",
        # onset: the share of nights with a charging block in the last 30 days minus the 90 before
        (_ratio(F.col("ev_block_nights_30d").cast("double"), F.col("_nights_30d").cast("double"))
         - F.coalesce(_ratio(F.col("ev_block_nights_prior_90d").cast("double"),
                             F.col("_nights_prior_90d").cast("double")), F.lit(0.0))).alias("ev_block_onset_30d"),
        "mean_ev_block_minutes_90d",
        "mean_ev_block_kwh_90d",
        "ev_block_nights_365d",
        F.col("_ev_first_ago").alias("ev_block_first_days_ago"),
        # charging since the first usage day of the window: an EV owned before the records (or the
        # year) began, not a new one
        F.coalesce(F.col("_ev_first_ago") >= F.col("_usage_first_ago") - F.lit(EV_SINCE_RECORDS_SLACK_DAYS),
                   F.lit(False)).alias("ev_block_since_records_began"),
        _ratio(F.col("kwh_per_day_90d") / 24.0, F.col("_peak_kw90")).alias("load_factor_90d"),
        (_kw(F.col("_kwh_night"), F.col("_hours_night")) - evening_kw).alias("night_minus_evening_kw_90d"),
        _ratio(F.col("_midday_export").cast("double"), F.col("_midday").cast("double")).alias(
            "solar_export_interval_share_90d"
        ),
        "export_kwh_365d",
        "weather_fit_days",
        F.when(enough, base).alias("base_kwh_per_day"),
        F.when(enough, heating).alias("heating_kwh_per_hdd"),
        F.when(enough, cooling).alias("cooling_kwh_per_cdd"),
    )


# --- billing and payments --------------------------------------------------------------------

def bill_features(keys_df: DataFrame, bills_df: DataFrame, *, bill_shock_ratio: float = 1.5) -> DataFrame:
    """Last bill, mean of the last 12, bill shock (last vs mean of the up to 12 bills before it),
    the worst bill of the recent window (each bill vs the mean of its up to 3 previous bills), and
    the last bill against the household's own bill of the same season a year earlier (the 13th
    latest, when it is 335-395 days older).

    Bills count from their bill_date. Needs bill_id, account_id, bill_date, period_end, amount_due.
    annual_bill_usd = 12 x mean of the last 12 bills (monthly billing assumed).
    """
    rows = _events_as_of(bills_df, keys_df, day=F.col("bill_date"), lookback_days=None).withColumn(
        "_amount", F.col("amount_due").cast("double")
    )
    order = Window.partitionBy(*KEYS).orderBy(
        F.col("bill_date").desc(), F.col("period_end").desc(), F.col("bill_id").desc()
    )
    rank = F.col("_rank")
    agg = (
        rows.withColumn("_rank", F.row_number().over(order))
        .filter(rank <= 13)
        .groupBy(*KEYS)
        .agg(
            F.max(F.when(rank == 1, F.col("_amount"))).alias("last_bill_usd"),
            F.avg(F.when(rank <= 12, F.col("_amount"))).alias("mean_bill_12_usd"),
            F.avg(F.when(rank >= 2, F.col("_amount"))).alias("trailing_mean_bill_usd"),
            F.max(F.when(rank == 1, F.col("bill_date"))).alias("_last_date"),
            F.max(F.when(rank == 13, F.col("_amount"))).alias("_year_ago_usd"),
            F.max(F.when(rank == 13, F.col("bill_date"))).alias("_year_ago_date"),
        )
    )
    year_gap = F.datediff(F.col("_last_date"), F.col("_year_ago_date"))
    same_season = F.when(year_gap.between(335, 395), _ratio(F.col("last_bill_usd"), F.col("_year_ago_usd")))
    ratio = _ratio(F.col("last_bill_usd"), F.col("trailing_mean_bill_usd"))
    # Each bill against the mean of the account's up to 3 bills before it: only earlier
    # bills enter, and the bill itself must be dated on or before as_of_date to pair.
    by_account = Window.partitionBy("account_id").orderBy("bill_date", "period_end", "bill_id")
    per_bill = bills_df.select(
        "account_id",
        "bill_date",
        _ratio(
            F.col("amount_due").cast("double"),
            F.avg(F.col("amount_due").cast("double")).over(by_account.rowsBetween(-3, -1)),
        ).alias("_shock"),
    )
    recent = (
        _events_as_of(per_bill, keys_df, day=F.col("bill_date"), lookback_days=RECENT_DAYS)
        .groupBy(*KEYS)
        .agg(F.max("_shock").alias("max_bill_shock_ratio_180d"))
    )
    return agg.join(recent, list(KEYS), "left").select(
        *KEYS,
        "last_bill_usd",
        "mean_bill_12_usd",
        (F.col("mean_bill_12_usd") * 12.0).alias("annual_bill_usd"),
        ratio.alias("bill_shock_ratio"),
        (ratio >= bill_shock_ratio).alias("is_bill_shock"),
        "max_bill_shock_ratio_180d",
        same_season.alias("same_season_bill_ratio"),
    )


def payment_features(keys_df: DataFrame, bills_df: DataFrame, payments_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Past-due balance as a collections analyst reads the ledger, credit, days past due,
    payment method shares (365d), autopay use, late-bill share (365d).

    The ledger at as_of_date D: balance = bills issued (bill_date <= D) minus
    payments made (<= D, from the account's first bill on: earlier ones pay an
    opening balance the data does not show); of it, the bills not yet due
    (bill_date <= D < due_date) are current, the rest is past due:
    ``past_due_usd`` = max(0, balance - not yet due) (never negative), and
    ``credit_usd`` = max(0, -balance) its own feature. ``arrears_usd`` keeps
    its name for the past-due balance. ``days_past_due``: days since the due
    date of the oldest bill that payments (oldest first) have not covered (0
    when nothing is past due); ``past_due_bill_ratio`` = past due / the latest
    bill. A bill due in the 365 days is late when the payments made between its
    bill_date and due_date (local) do not cover its amount_due (payments are not
    allocated to bills for this share).
    """
    paid_day = local_date(F.col("paid_at"), time_zone=time_zone)
    first_bill = bills_df.groupBy("account_id").agg(F.min("bill_date").alias("_first_bill"))
    payments = payments_df.select("account_id", F.col("amount").cast("double").alias("amount"), "method",
                                  paid_day.alias("paid_date"))
    ledger_payments = payments.join(first_bill, "account_id").filter(F.col("paid_date") >= F.col("_first_bill"))
    bills = bills_df.select("account_id", "bill_id", "bill_date", "due_date",
                            F.col("amount_due").cast("double").alias("amount_due"))
    issued_rows = _events_as_of(bills, keys_df, day=F.col("bill_date"), lookback_days=None)
    issued = issued_rows.groupBy(*KEYS).agg(
        F.sum("amount_due").alias("_issued"),
        F.sum(F.when(F.col("due_date") > F.col("as_of_date"), F.col("amount_due"))).alias("_not_due"),
        F.max_by("amount_due", F.struct("bill_date", "bill_id")).alias("_last_bill"),
    )
    ledger_paid = (
        _events_as_of(ledger_payments.drop("_first_bill"), keys_df, day=F.col("paid_date"), lookback_days=None)
        .groupBy(*KEYS).agg(F.sum("amount").alias("_ledger_paid"))
    )
    # The oldest due bill not covered: bills due by D in due order, cumulative amounts vs all paid.
    due_order = Window.partitionBy(*KEYS).orderBy("due_date", "bill_id").rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    oldest_open = (
        issued_rows.filter(F.col("due_date") <= F.col("as_of_date"))
        .withColumn("_cum_due", F.sum("amount_due").over(due_order))
        .join(ledger_paid, list(KEYS), "left")
        .filter(F.col("_cum_due") > F.coalesce(F.col("_ledger_paid"), F.lit(0.0)) + F.lit(0.005))
        .groupBy(*KEYS).agg(F.min("due_date").alias("_oldest_open_due"))
    )
    paid_rows = _events_as_of(payments, keys_df, day=F.col("paid_date"), lookback_days=None)
    in365 = _in_window(F.col("paid_date"), 365)
    paid = paid_rows.groupBy(*KEYS).agg(
        F.count(F.when(in365, 1)).alias("payments_365d"),
        *[F.count(F.when(in365 & (F.col("method") == m), 1)).alias(f"_n_{m}") for m in PAYMENT_METHODS],
    )
    bill_rows = _events_as_of(bills, keys_df, day=F.col("due_date"), lookback_days=365)
    on_time = (
        bill_rows.join(
            payments.select("account_id", F.col("paid_date"), F.col("amount").alias("_pay")), "account_id", "left"
        )
        .groupBy(*KEYS, "bill_id", "amount_due")
        .agg(F.sum(F.when(F.col("paid_date").between(F.col("bill_date"), F.col("due_date")), F.col("_pay")))
             .alias("_paid_by_due"))
        .withColumn("_late", (F.coalesce(F.col("_paid_by_due"), F.lit(0.0)) < F.col("amount_due")).cast("double"))
        .groupBy(*KEYS)
        .agg(F.avg("_late").alias("late_bill_share_365d"), F.count("*").alias("bills_due_365d"))
    )
    n = F.col("payments_365d")
    balance = F.coalesce(F.col("_issued"), F.lit(0.0)) - F.coalesce(F.col("_ledger_paid"), F.lit(0.0))
    # in cents: the balance is a difference of sums of doubles, whose last bits depend on the order
    # Spark adds them (a settled ledger read 2e-15 USD past due in one plan and 0 in another)
    past_due = F.round(F.greatest(balance - F.coalesce(F.col("_not_due"), F.lit(0.0)), F.lit(0.0)), 2)
    return (
        keys_df.join(issued, list(KEYS), "left")
        .join(ledger_paid, list(KEYS), "left")
        .join(oldest_open, list(KEYS), "left")
        .join(paid, list(KEYS), "left")
        .join(on_time, list(KEYS), "left")
        .select(
            *KEYS,
            past_due.alias("arrears_usd"),
            F.round(F.greatest(-balance, F.lit(0.0)), 2).alias("credit_usd"),
            F.when(past_due > 0.005, F.datediff(F.col("as_of_date"), F.col("_oldest_open_due")))
            .otherwise(F.lit(0)).alias("days_past_due"),
            _ratio(past_due, F.col("_last_bill")).alias("past_due_bill_ratio"),
            F.coalesce(n, F.lit(0)).alias("payments_365d"),
            *[_ratio(F.col(f"_n_{m}").cast("double"), n.cast("double")).alias(f"payment_share_{m}_365d")
              for m in PAYMENT_METHODS],
            F.coalesce(F.col("_n_autopay") > 0, F.lit(False)).alias("uses_autopay_payment_365d"),
            F.coalesce(F.col("bills_due_365d"), F.lit(0)).alias("bills_due_365d"),
            "late_bill_share_365d",
        )
    )


def collection_features(keys_df: DataFrame, collections_df: DataFrame) -> DataFrame:
    """collections_<event_type>_365d counts, days since the latest past-due notice (365d) and,
    when the table has amount_past_due, ``past_due_usd_45d``: the amount of the latest
    past-due notice if it is at most ``PAST_DUE_RECENT_DAYS`` old (else 0).
    Needs account_id, event_date, event_type [, amount_past_due]."""
    rows = _events_as_of(collections_df, keys_df, day=F.col("event_date"), lookback_days=365)
    notice = F.col("event_type") == "past_due_notice"
    extra: list[Column] = [
        F.min(F.when(notice, F.datediff(F.col("as_of_date"), F.col("event_date")))).alias(
            "days_since_past_due_notice"
        )
    ]
    if "amount_past_due" in collections_df.columns:
        latest = F.max_by(
            F.when(notice, F.col("amount_past_due").cast("double")),
            F.when(notice, F.struct(F.col("event_date"), F.col("event_id"))),
        )
        extra.append(latest.alias("_latest_past_due_usd"))
    ago = F.datediff(F.col("as_of_date"), F.col("event_date"))
    disconnect = F.col("event_type") == "disconnect_notice"
    agg = rows.groupBy(*KEYS).agg(
        *[F.count(F.when(F.col("event_type") == t, 1)).alias(f"collections_{t}_365d") for t in COLLECTION_EVENTS],
        F.count(F.when(notice & (ago < 45), 1)).alias("past_due_notices_45d"),
        F.count(F.when(notice & (ago < 90), 1)).alias("past_due_notices_90d"),
        F.count(F.when(disconnect & (ago < 90), 1)).alias("disconnect_notices_90d"),
        *extra,
    )
    if "amount_past_due" not in collections_df.columns:
        return agg
    open_notice = F.col("days_since_past_due_notice") <= PAST_DUE_RECENT_DAYS
    return agg.withColumn(
        "past_due_usd_45d", F.when(open_notice, F.coalesce(F.col("_latest_past_due_usd"), F.lit(0.0))).otherwise(0.0)
    ).drop("_latest_past_due_usd")


# --- service ---------------------------------------------------------------------------------

def contact_features(keys_df: DataFrame, contacts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Contacts in 90d/365d, by reason (365d), FCR share and mean handle time (365d), contacts
    without first-contact resolution in the recent window and the trailing year, complaints in the
    recent window; what the transcripts say (``gold.contact_text``): negative-sentiment contacts in
    90d, contacts by the topic read from the text (365d), and repeated contacts (365d: followed by
    another within 7 days, counted once that next contact is on or before as_of_date)."""
    nxt = F.lead("started_at").over(Window.partitionBy("account_id").orderBy("started_at", "contact_id"))
    text = F.col("transcript") if "transcript" in contacts_df.columns else F.lit(None).cast("string")
    read = (contacts_df.withColumn("_negative", sentiment(text) <= F.lit(NEGATIVE_BELOW))
            .withColumn("_topic", F.when(text.isNotNull(), text_topic(text)))
            .withColumn("_repeat_day", F.when(nxt <= F.col("started_at") + F.expr(f"INTERVAL {REPEAT_DAYS} DAYS"),
                                              local_date(nxt, time_zone=time_zone))))
    rows = _events_as_of(read, keys_df, day=local_date(F.col("started_at"), time_zone=time_zone),
                         lookback_days=365)
    fcr = F.col("first_contact_resolution")
    return rows.groupBy(*KEYS).agg(
        F.count(F.when(_in_window(F.col("_event_day"), 90) & F.col("_negative"), 1)).alias("negative_contacts_90d"),
        F.count(F.when(F.col("_repeat_day") <= F.col("as_of_date"), 1)).alias("repeat_contacts_365d"),
        *[F.count(F.when(F.col("_topic") == t, 1)).alias(f"contacts_topic_{t}_365d") for t in CONTACT_TOPICS],
        F.count(F.when(_in_window(F.col("_event_day"), 90), 1)).alias("contacts_90d"),
        F.count(F.when(_in_window(F.col("_event_day"), RECENT_DAYS) & ~fcr, 1)).alias("unresolved_contacts_180d"),
        F.count(F.when(~fcr, 1)).alias("unresolved_contacts_365d"),
        F.count(F.when(_in_window(F.col("_event_day"), RECENT_DAYS) & (F.col("reason") == "complaint"), 1)).alias(
            "complaints_180d"),
        F.count("*").alias("contacts_365d"),
        *[F.count(F.when(F.col("reason") == r, 1)).alias(f"contacts_{r}_365d") for r in CONTACT_REASONS],
        F.avg(F.when(fcr.isNotNull(), fcr.cast("double"))).alias("fcr_share_365d"),
        F.avg("handle_seconds").alias("mean_handle_seconds_365d"),
    )


def outage_features(keys_df: DataFrame, outages_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Outages at the household's premise since its start_date: count, minutes, mean and worst |ETR
    error|, the worst and mean signed error (restored - first ETR: late is positive, worse than
    early), restorations more than 30 minutes late, the longest outage (365d); minutes and the
    worst |ETR error| of the recent window (180d).

    ``keys_df`` needs premise_id and start_date too. Minutes and ETR error
    only for outages restored on or before as_of_date (local).
    """
    outages = outages_df.select(
        "premise_id",
        local_date(F.col("started_at"), time_zone=time_zone).alias("_started_day"),
        local_date(F.col("restored_at"), time_zone=time_zone).alias("_restored_day"),
        minutes_between(F.col("started_at"), F.col("restored_at")).alias("_minutes"),
        F.abs(minutes_between(F.col("first_etr"), F.col("restored_at"))).alias("_etr_error"),
        minutes_between(F.col("first_etr"), F.col("restored_at")).alias("_etr_late"),
    )
    rows = (
        keys_df.select(*KEYS, "premise_id", "start_date")
        .join(outages, "premise_id")
        .filter(_in_window(F.col("_started_day"), 365) & (F.col("_started_day") >= F.col("start_date")))
    )
    restored = F.col("_restored_day") <= F.col("as_of_date")
    recent = restored & _in_window(F.col("_started_day"), RECENT_DAYS)
    return rows.groupBy(*KEYS).agg(
        F.count("*").alias("outages_365d"),
        F.coalesce(F.sum(F.when(restored, F.col("_minutes"))), F.lit(0.0)).alias("outage_minutes_365d"),
        F.avg(F.when(restored, F.col("_etr_error"))).alias("mean_etr_error_minutes_365d"),
        F.coalesce(F.sum(F.when(recent, F.col("_minutes"))), F.lit(0.0)).alias("outage_minutes_180d"),
        F.max(F.when(recent, F.col("_etr_error"))).alias("max_etr_error_minutes_180d"),
        F.max(F.when(restored, F.col("_etr_error"))).alias("max_etr_error_minutes_365d"),
        F.max(F.when(restored, F.greatest(F.col("_etr_late"), F.lit(0.0)))).alias("max_etr_late_minutes_365d"),
        F.avg(F.when(restored, F.col("_etr_late"))).alias("mean_etr_signed_error_minutes_365d"),
        F.count(F.when(restored & (F.col("_etr_late") > 30), 1)).alias("etr_missed_late_365d"),
        F.max(F.when(restored, F.col("_minutes"))).alias("longest_outage_minutes_365d"),
    )


def program_features(keys_df: DataFrame, programs_df: DataFrame) -> DataFrame:
    """is_enrolled_<program> on as_of_date for every program of contract.PROGRAMS."""
    rows = _events_as_of(programs_df, keys_df, day=F.col("enrolled_on"), lookback_days=None).filter(
        is_active_on(F.col("as_of_date"), start_date=F.col("enrolled_on"), end_date=F.col("ended_on"))
    )
    return rows.groupBy(*KEYS).agg(
        *[F.max(F.col("program") == p).alias(f"is_enrolled_{p}") for p in PROGRAMS]
    )


def marketing_features(keys_df: DataFrame, marketing_df: DataFrame, *, time_zone: str) -> DataFrame:
    """Email open and click rates (365d, per delivered), conversions (365d), has_unsubscribed (ever)."""
    rows = _events_as_of(marketing_df, keys_df, day=local_date(F.col("occurred_at"), time_zone=time_zone),
                         lookback_days=None)
    in365 = _in_window(F.col("_event_day"), 365)
    email = in365 & (F.col("channel") == "email")
    event = F.col("event_type")
    agg = rows.groupBy(*KEYS).agg(
        F.count(F.when(email & (event == "delivered"), 1)).alias("_delivered"),
        F.count(F.when(email & (event == "opened"), 1)).alias("_opened"),
        F.count(F.when(email & (event == "clicked"), 1)).alias("_clicked"),
        F.count(F.when(in365 & (event == "converted"), 1)).alias("marketing_conversions_365d"),
        F.max(event == "unsubscribed").alias("has_unsubscribed"),
    )
    delivered = F.col("_delivered").cast("double")
    return agg.select(
        *KEYS,
        _ratio(F.col("_opened").cast("double"), delivered).alias("email_open_rate_365d"),
        _ratio(F.col("_clicked").cast("double"), delivered).alias("email_click_rate_365d"),
        "marketing_conversions_365d",
        "has_unsubscribed",
    )


def survey_history_features(keys_df: DataFrame, surveys_df: DataFrame, *, time_zone: str) -> DataFrame:
    """What the household said before: responses dated (local) on or before as_of_date, so a
    response's own day is never its feature (training rows sit the day before a response).

    survey_responses_prior (count), last_csat/last_nps/last_ces (the latest answer to each),
    mean_csat_prior/mean_nps_prior, days_since_last_survey. Needs account_id, survey_id,
    responded_at, csat, nps, ces.
    """
    rows = _events_as_of(surveys_df, keys_df, day=local_date(F.col("responded_at"), time_zone=time_zone),
                         lookback_days=None)
    order = F.struct(F.col("responded_at"), F.col("survey_id"))

    def latest(col: str) -> Column:
        return F.max_by(F.col(col).cast("double"), F.when(F.col(col).isNotNull(), order))

    return rows.groupBy(*KEYS).agg(
        F.count("*").alias("survey_responses_prior"),
        latest("csat").alias("last_csat"),
        latest("nps").alias("last_nps"),
        latest("ces").alias("last_ces"),
        F.avg(F.col("csat").cast("double")).alias("mean_csat_prior"),
        F.avg(F.col("nps").cast("double")).alias("mean_nps_prior"),
        F.min(F.datediff(F.col("as_of_date"), F.col("_event_day"))).alias("days_since_last_survey"),
    )


# --- assembly --------------------------------------------------------------------------------

def active_households(accounts_df: DataFrame, as_of_df: DataFrame) -> DataFrame:
    """Accounts active on each as_of_date (account columns + as_of_date)."""
    return accounts_df.crossJoin(F.broadcast(as_of_df)).filter(
        is_active_on(F.col("as_of_date"), start_date=F.col("start_date"), end_date=F.col("end_date"))
    )


def _income_midpoint(band: Column) -> Column:
    expr = F.lit(None).cast("double")
    for name, value in INCOME_BAND_MIDPOINTS_USD.items():
        expr = F.when(band == name, F.lit(value)).otherwise(expr)
    return expr


COUNT_FEATURES_ZERO_WHEN_ABSENT = (
    "usage_days_90d", "weather_fit_days", "contacts_90d", "contacts_365d",
    *(f"contacts_{r}_365d" for r in CONTACT_REASONS),
    "negative_contacts_90d", "repeat_contacts_365d", *(f"contacts_topic_{t}_365d" for t in CONTACT_TOPICS),
    *(f"collections_{t}_365d" for t in COLLECTION_EVENTS),
    "outages_365d", "marketing_conversions_365d", "unresolved_contacts_180d",
    "unresolved_contacts_365d", "complaints_180d", "etr_missed_late_365d", "past_due_notices_45d",
    "past_due_notices_90d", "disconnect_notices_90d", "survey_responses_prior", "ev_block_nights_30d",
    "ev_block_nights_prior_90d", "ev_block_nights_365d",
)
FLAG_FEATURES_FALSE_WHEN_ABSENT = (*(f"is_enrolled_{p}" for p in PROGRAMS), "has_unsubscribed", "ev_block_since_records_began")
FLOAT_FEATURES_ZERO_WHEN_ABSENT = (
    "export_kwh_365d", "outage_minutes_365d", "outage_minutes_180d", "past_due_usd_45d", "arrears_usd", "credit_usd",
)
INT_FEATURES_ZERO_WHEN_ABSENT = ("days_past_due",)


ACCOUNT_COLUMNS = (
    "account_id", "household_id", "premise_id", "meter_id", "start_date", "end_date",
    "customer_class", "rate_plan", "zip", "weather_station_id",
)


def usage_part(
    keys_df: DataFrame,
    accounts_df: DataFrame,
    *,
    ami_daily_df: DataFrame,
    weather_df: DataFrame,
    time_zone: str,
    base_temperature_f: float = BASE_TEMPERATURE_F,
    min_regression_days: int = 30,
) -> DataFrame:
    """``usage_features`` of ``keys_df`` (account_id, as_of_date) from silver/ami_daily and the
    weather: the part of ``household_features`` no household event changes (``ucx stream`` keeps
    it per as_of_date instead of computing it per micro-batch)."""
    accounts = accounts_df.select(*ACCOUNT_COLUMNS)
    profile_df = daily_load_profile(ami_daily_df, accounts)
    degree_days_df = daily_degree_days(weather_df, time_zone=time_zone, base_f=base_temperature_f)
    return usage_features(keys_df, profile_df, degree_days_df, accounts, min_regression_days=min_regression_days)


def household_features(
    accounts_df: DataFrame,
    *,
    as_of_dates: Sequence[date],
    time_zone: str,
    ami_df: DataFrame | None = None,
    ami_daily_df: DataFrame | None = None,
    weather_df: DataFrame,
    bills_df: DataFrame,
    payments_df: DataFrame,
    collections_df: DataFrame,
    contacts_df: DataFrame,
    outages_df: DataFrame,
    programs_df: DataFrame,
    marketing_df: DataFrame,
    household_matches_df: DataFrame,
    households_df: DataFrame,
    census_df: DataFrame,
    surveys_df: DataFrame | None = None,
    keys_df: DataFrame | None = None,
    data_start: date | None = None,
    base_temperature_f: float = BASE_TEMPERATURE_F,
    min_regression_days: int = 30,
    bill_shock_ratio: float = 1.5,
    usage_df: DataFrame | None = None,
) -> DataFrame:
    """gold/household_features: one row per account active on each of ``as_of_dates``, or, with
    ``keys_df`` (account_id, as_of_date), one row per key whose account exists (the rows training
    needs at other dates, e.g. the day before each survey response; ``as_of_dates`` is then ignored).
    ``surveys_df`` adds what the household said before (``survey_history_features``); ``data_start`` (the
    first day of the data) adds ``history_days``. ``usage_df``: ``usage_part`` of these keys (or of more) computed
    already (``ucx stream``'s cache); the AMI and weather inputs are then not read.

    Inputs are silver tables (docs/layers.md). Output: household_id,
    as_of_date, customer_class, rate_plan, zip, account_tenure_days, the
    usage, billing, payment, collections, contact, outage, program and
    marketing features of the functions above, the third-party record of the
    premise (``THIRD_PARTY_COLUMNS``, is_matched), income_midpoint_usd,
    energy_burden (annual bill / income midpoint) and census_<column> of the
    zip. Never account_id, meter_id or premise_id.
    """
    accounts = accounts_df.select(*ACCOUNT_COLUMNS)
    if keys_df is None:
        base_df = active_households(accounts, as_of_dates_df(accounts_df, as_of_dates))
    else:
        base_df = accounts.join(keys_df.select(*KEYS).dropDuplicates(list(KEYS)), "account_id")
    keys_df = base_df.select(*KEYS)
    if usage_df is None:
        if ami_daily_df is None:
            if ami_df is None:
                raise ValueError("household_features needs ami_daily_df (silver/ami_daily) or ami_df (silver/ami)")
            ami_daily_df = ami_daily(ami_df, time_zone=time_zone)
        usage_df = usage_part(keys_df, accounts, ami_daily_df=ami_daily_df, weather_df=weather_df, time_zone=time_zone,
                              base_temperature_f=base_temperature_f, min_regression_days=min_regression_days)
    parts = [
        usage_df,
        bill_features(keys_df, bills_df, bill_shock_ratio=bill_shock_ratio),
        payment_features(keys_df, bills_df, payments_df, time_zone=time_zone),
        collection_features(keys_df, collections_df),
        contact_features(keys_df, contacts_df, time_zone=time_zone),
        outage_features(base_df.select(*KEYS, "premise_id", "start_date"), outages_df, time_zone=time_zone),
        program_features(keys_df, programs_df),
        marketing_features(keys_df, marketing_df, time_zone=time_zone),
    ]
    if surveys_df is not None:
        parts.append(survey_history_features(keys_df, surveys_df, time_zone=time_zone))
    df = base_df.select(
        *KEYS, "household_id", "premise_id", "customer_class", "rate_plan", "zip",
        F.datediff(F.col("as_of_date"), F.col("start_date")).alias("account_tenure_days"),
    )
    for part in parts:
        df = df.join(part, list(KEYS), "left")
    records = premise_household_records(household_matches_df, households_df).withColumn("is_matched", F.lit(True))
    census = census_df.select("zip", *[F.col(c).alias(f"census_{c}") for c in CENSUS_COLUMNS])
    df = df.join(records, "premise_id", "left").join(census, "zip", "left")
    # One select for the fill-ins: each withColumn would re-analyse this large plan.
    filled: dict[str, Column] = {c: F.col(c) for c in df.columns}
    filled["is_matched"] = F.coalesce(F.col("is_matched"), F.lit(False))
    filled["income_midpoint_usd"] = _income_midpoint(F.col("income_band"))
    filled["energy_burden"] = _ratio(F.col("annual_bill_usd"), filled["income_midpoint_usd"])
    for c in COUNT_FEATURES_ZERO_WHEN_ABSENT:
        if c in filled:  # survey_responses_prior only with surveys_df
            filled[c] = F.coalesce(F.col(c), F.lit(0)).cast("long")
    for c in FLAG_FEATURES_FALSE_WHEN_ABSENT:
        filled[c] = F.coalesce(F.col(c), F.lit(False))
    for c in FLOAT_FEATURES_ZERO_WHEN_ABSENT:
        if c in filled:  # past_due_usd_45d only when collections carry amount_past_due
            filled[c] = F.coalesce(F.col(c), F.lit(0.0))
    for c in INT_FEATURES_ZERO_WHEN_ABSENT:
        filled[c] = F.coalesce(F.col(c), F.lit(0)).cast("int")
    # How much history the windows saw (days of data up to as_of_date, at most a year): a training
    # row early in the data sees less than a scoring row; the models see that, and training keeps
    # only full-history rows when it has enough of them (models/train.py).
    if data_start is not None:
        filled["history_days"] = F.least(
            F.datediff(F.col("as_of_date"), F.lit(data_start)) + 1, F.lit(365)).cast("int")
    leading = ["household_id", "as_of_date", "customer_class", "rate_plan", "zip", "account_tenure_days"]
    rest = [c for c in filled if c not in (*leading, "account_id", "premise_id")]
    ordered = [*leading, *[c for c in rest if c not in THIRD_PARTY_COLUMNS], *THIRD_PARTY_COLUMNS]
    return df.select(*[filled[c].alias(c) for c in dict.fromkeys(ordered)])


def survey_response_keys(surveys_df: DataFrame, *, time_zone: str) -> DataFrame:
    """One row per survey response with an answer: account_id, as_of_date (the day before the
    local response date), household_id, response_key (sha2 of survey_id, 32 hex), responded_at,
    response_date, survey_type, csat, nps, ces."""
    day = local_date(F.col("responded_at"), time_zone=time_zone)
    return surveys_df.filter(F.col("csat").isNotNull() | F.col("nps").isNotNull() | F.col("ces").isNotNull()).select(
        "account_id",
        F.date_sub(day, 1).alias("as_of_date"),
        "household_id",
        F.substring(F.sha2(F.col("survey_id"), 256), 1, 32).alias("response_key"),
        "responded_at",
        day.alias("response_date"),
        "survey_type",
        F.col("csat").cast("int").alias("csat"),
        F.col("nps").cast("int").alias("nps"),
        F.col("ces").cast("int").alias("ces"),
    )


def survey_features(
    surveys_df: DataFrame, accounts_df: DataFrame, *, time_zone: str, since: date | None = None, **inputs: object
) -> DataFrame:
    """gold/survey_features: one row per survey response (``survey_response_keys``) with the
    household's features as of the day before it, computed by ``household_features`` with the
    same inputs (``inputs``: its keyword arguments), so the response-level training rows and the
    month-end scoring rows come from one definition of every feature. ``since``: only the responses
    whose features are as of that day or later (the household's earlier answers still count)."""
    responses_df = survey_response_keys(surveys_df, time_zone=time_zone)
    if since is not None:
        responses_df = responses_df.filter(F.col("as_of_date") >= F.lit(since))
    features_df = household_features(
        accounts_df, as_of_dates=(), time_zone=time_zone, surveys_df=surveys_df,
        keys_df=responses_df.select("account_id", "as_of_date"), **inputs,  # type: ignore[arg-type]
    )
    return responses_df.drop("account_id").join(features_df, ["household_id", "as_of_date"])
