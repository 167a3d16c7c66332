"""A small generated utility for the insights tests (no tests here).

``gold/household_features`` under the real feature names the gold pipeline
writes (bills, burden, arrears, programs, contacts, outages, marketing,
third-party attributes), with planted effects, and the silver tables the
model labels and the insights read. Cheaper than landing -> gold: the insights
only read gold and a few silver tables, and their tests need a few hundred
households with strong, known effects.

Planted (per household and as-of date):

- CSAT (surveys in the 6 months after each as-of date) falls with bill shock
  (last bill / trailing mean), energy burden (annual bill / income midpoint),
  arrears and outage minutes, and rises with first-contact resolution;
- payment risk (a ``disconnect_notice`` in the 6 months after) rises with
  energy burden and arrears, falls with income band and autopay;
- EV adoption (``ev_rate`` in the 12 months after) rises with income,
  ownership, single-family homes, solar and night load;
- LIHEAP: low-income, high-burden households enroll; assistance payments
  cover part of their bills.

As-of dates 2021-12-31, 2022-06-30 (complete label windows) and 2023-06-30
(the scoring date). Customer class ``COM`` accounts (10%) are the "untouched"
group for residential-only scenarios.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from ucx_spark.contract import INCOME_BANDS, PROGRAMS
from ucx_spark.gold.household_features import INCOME_BAND_MIDPOINTS_USD
from ucx_spark.io.delta import overwrite_table

AS_OF_DATES = (date(2021, 12, 31), date(2022, 6, 30), date(2023, 6, 30))
ZIPS = ("73301", "73302", "73303", "73304")
FEATURE_DDL = ", ".join(
    [
        "household_id string", "as_of_date date", "customer_class string", "rate_plan string", "zip string",
        "account_tenure_days int", "last_bill_usd double", "mean_bill_12_usd double", "trailing_mean_bill_usd double",
        "annual_bill_usd double", "bill_shock_ratio double", "is_bill_shock boolean", "arrears_usd double",
        "payments_365d long", "payment_share_assistance_365d double", "payment_share_autopay_365d double",
        "collections_past_due_notice_365d long", "contacts_90d long", "contacts_365d long",
        "contacts_billing_365d long", "fcr_share_365d double", "outages_365d long", "outage_minutes_365d double",
        "email_open_rate_365d double", "email_click_rate_365d double", "marketing_conversions_365d long",
        "has_unsubscribed boolean", "kwh_per_day_90d double", "export_kwh_365d double",
        "night_minus_evening_kw_90d double",
        *(f"is_enrolled_{p} boolean" for p in PROGRAMS),
        "income_band string", "home_type string", "tenure string", "income_midpoint_usd double", "energy_burden double",
    ]
)
SILVER_DDL = {
    "accounts": "account_id string, household_id string, customer_class string, rate_plan string, zip string, "
    "start_date date, end_date date",
    "programs": "account_id string, household_id string, program string, enrolled_on date, ended_on date",
    "collections": "event_id string, account_id string, household_id string, event_date date, event_type string",
    "surveys": "survey_id string, account_id string, household_id string, responded_at timestamp, csat int, nps int, ces int",
    "contacts": "contact_id string, account_id string, household_id string, started_at timestamp, channel string, "
    "reason string",
    "marketing": "event_id string, account_id string, household_id string, campaign_id string, channel string, "
    "event_type string, occurred_at timestamp",
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _day(start: date, end: date, rng: np.random.Generator) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def build_frames(households: int = 500, seed: int = 11) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = households
    ids = [f"hh{i:05d}" for i in range(n)]
    accounts = [f"A{i:05d}" for i in range(n)]
    income_idx = rng.integers(0, len(INCOME_BANDS), size=n)
    income_mid = np.array([INCOME_BAND_MIDPOINTS_USD[INCOME_BANDS[k]] for k in income_idx])
    is_com = rng.random(n) < 0.10
    owner = rng.random(n) < 0.6
    single = rng.random(n) < 0.65
    solar = rng.random(n) < 0.08
    base_bill = np.where(is_com, 260.0, 55.0) + rng.gamma(2.0, 25.0, size=n)
    sat_noise = rng.normal(scale=0.25, size=n)
    ev_latent = -3.0 + 0.45 * income_idx + 0.9 * owner + 0.7 * single + 0.9 * solar + rng.normal(scale=0.4, size=n)
    liheap = (income_idx <= 1) & (~is_com) & (rng.random(n) < 0.35)
    autopay = rng.random(n) < np.where(income_idx >= 3, 0.45, 0.2)
    zips = rng.choice(ZIPS, size=n)

    feats, programs, collections, surveys, contacts, marketing = [], [], [], [], [], []
    for i in range(n):
        programs.append({"account_id": accounts[i], "household_id": ids[i], "program": "paperless",
                         "enrolled_on": date(2019, 5, 1), "ended_on": None} if i % 3 == 0 else None)
        if autopay[i]:
            programs.append({"account_id": accounts[i], "household_id": ids[i], "program": "autopay",
                             "enrolled_on": date(2019, 3, 1), "ended_on": None})
        if liheap[i]:
            programs.append({"account_id": accounts[i], "household_id": ids[i], "program": "liheap",
                             "enrolled_on": date(2020, 10, 1), "ended_on": None})
        if solar[i]:
            programs.append({"account_id": accounts[i], "household_id": ids[i], "program": "solar",
                             "enrolled_on": date(2019, 8, 1), "ended_on": None})
    ev_dates: dict[int, date] = {}
    for i in range(n):
        if rng.random() < _sigmoid(ev_latent[i] + 1.2):
            ev_dates[i] = _day(date(2021, 3, 1), date(2023, 6, 30), rng)
            programs.append({"account_id": accounts[i], "household_id": ids[i], "program": "ev_rate",
                             "enrolled_on": ev_dates[i], "ended_on": None})
    programs = [p for p in programs if p is not None]

    for d_i, d in enumerate(AS_OF_DATES):
        drift = 1.0 + 0.04 * d_i
        trailing = base_bill * drift * rng.lognormal(0.0, 0.05, size=n)
        shock = np.where(rng.random(n) < 0.15, rng.uniform(1.3, 1.9, size=n), rng.lognormal(0.0, 0.06, size=n))
        last = trailing * shock
        annual = 12 * trailing
        assistance = np.where(liheap, 0.35, 0.0)
        burden = annual * (1 - assistance) / income_mid
        risk_logit = -2.5 + 30.0 * burden - 0.35 * income_idx - 1.0 * autopay + rng.normal(scale=0.3, size=n)
        arrears = np.where(rng.random(n) < _sigmoid(risk_logit + 1.0), rng.gamma(2.0, 60.0 + 300 * burden), 0.0)
        outage_min = np.where(rng.random(n) < 0.35, rng.gamma(1.5, 120.0, size=n), 0.0)
        fcr = np.clip(rng.beta(6, 2, size=n), 0, 1)
        contacts90 = rng.poisson(0.5 + 1.5 * (shock > 1.3) + 0.01 * arrears / 10)
        for i in range(n):
            enrolled = {p["program"] for p in programs if p["household_id"] == ids[i] and p["enrolled_on"] <= d}
            night_kw = rng.normal(0.2, 0.3) + (4.0 if i in ev_dates and ev_dates[i] - timedelta(days=150) <= d else 0.0)
            feats.append({
                "household_id": ids[i], "as_of_date": d, "customer_class": "COM" if is_com[i] else "RES",
                "rate_plan": "C1" if is_com[i] else ("R-TOU" if i % 4 == 0 else "R1"), "zip": str(zips[i]),
                "account_tenure_days": 900 + 181 * d_i + i % 400,
                "last_bill_usd": float(last[i]), "mean_bill_12_usd": float(trailing[i]),
                "trailing_mean_bill_usd": float(trailing[i]), "annual_bill_usd": float(annual[i]),
                "bill_shock_ratio": float(shock[i]), "is_bill_shock": bool(shock[i] >= 1.5),
                "arrears_usd": float(arrears[i]), "payments_365d": 12,
                "payment_share_assistance_365d": 0.25 if liheap[i] else 0.0,
                "payment_share_autopay_365d": 0.9 if autopay[i] else 0.0,
                "collections_past_due_notice_365d": int(arrears[i] > 0) * int(rng.integers(1, 4)),
                "contacts_90d": int(contacts90[i]), "contacts_365d": int(contacts90[i] * 3 + rng.poisson(1)),
                "contacts_billing_365d": int(contacts90[i]), "fcr_share_365d": float(fcr[i]),
                "outages_365d": int(outage_min[i] > 0), "outage_minutes_365d": float(outage_min[i]),
                "email_open_rate_365d": float(rng.beta(2, 5)), "email_click_rate_365d": float(rng.beta(1, 12)),
                "marketing_conversions_365d": int(rng.poisson(0.2)), "has_unsubscribed": bool(rng.random() < 0.05),
                "kwh_per_day_90d": float(trailing[i] / 4.2), "export_kwh_365d": float(300.0 * solar[i]),
                "night_minus_evening_kw_90d": float(night_kw),
                **{f"is_enrolled_{p}": p in enrolled for p in PROGRAMS},
                "income_band": INCOME_BANDS[income_idx[i]], "home_type": "single_family" if single[i] else "multi_family",
                "tenure": "owner" if owner[i] else "renter", "income_midpoint_usd": float(income_mid[i]),
                "energy_burden": float(annual[i] / income_mid[i]),
            })
            window_end = d + timedelta(days=182)
            if rng.random() < _sigmoid(risk_logit[i] - 0.3):
                collections.append({"event_id": f"E{len(collections):06d}", "account_id": accounts[i], "household_id": ids[i],
                                    "event_date": _day(d + timedelta(days=1), window_end, rng), "event_type": "disconnect_notice"})
            latent = (4.4 - 1.6 * max(shock[i] - 1.0, 0.0) - 5.0 * burden[i] - 0.3 * np.log1p(arrears[i] / 100)
                      - 0.2 * np.log1p(outage_min[i] / 60) + 0.4 * (fcr[i] - 0.75) + sat_noise[i])
            if rng.random() < 0.55:
                day = _day(d + timedelta(days=1), window_end, rng)
                surveys.append({"survey_id": f"S{len(surveys):06d}", "account_id": accounts[i], "household_id": ids[i],
                                "responded_at": datetime(day.year, day.month, day.day, 15, 30),
                                "csat": int(np.clip(round(latent + rng.normal(scale=0.35)), 1, 5)),
                                "nps": int(np.clip(round(2 * latent), 0, 10)), "ces": 3})
            for k in range(int(contacts90[i])):
                day = _day(d - timedelta(days=89), d, rng)
                contacts.append({"contact_id": f"C{len(contacts):07d}", "account_id": accounts[i], "household_id": ids[i],
                                 "started_at": datetime(day.year, day.month, day.day, 10, k),
                                 "channel": "phone" if i % 3 else "chat", "reason": "billing"})
            for channel, p_open in (("email", 0.3 + 0.4 * (i % 5 == 0)), ("sms", 0.2 + 0.5 * (i % 7 == 0))):
                day = _day(d - timedelta(days=60), d, rng)
                when = datetime(day.year, day.month, day.day, 9, 0)
                marketing.append({"event_id": f"M{len(marketing):07d}", "account_id": accounts[i], "household_id": ids[i],
                                  "campaign_id": f"CMP{d_i}", "channel": channel, "event_type": "delivered", "occurred_at": when})
                if rng.random() < p_open:
                    marketing.append({"event_id": f"M{len(marketing):07d}", "account_id": accounts[i], "household_id": ids[i],
                                      "campaign_id": f"CMP{d_i}", "channel": channel, "event_type": "opened",
                                      "occurred_at": when + timedelta(hours=2)})
    accounts_pdf = pd.DataFrame({
        "account_id": accounts, "household_id": ids, "customer_class": np.where(is_com, "COM", "RES"),
        "rate_plan": [r["rate_plan"] for r in feats[:n]], "zip": zips.astype(str),
        "start_date": [date(2019, 1, 1)] * n,
        "end_date": [date(2023, 1, 15) if i < 5 else None for i in range(n)],
    })
    return {
        "features": pd.DataFrame(feats), "accounts": accounts_pdf, "programs": pd.DataFrame(programs),
        "collections": pd.DataFrame(collections), "surveys": pd.DataFrame(surveys),
        "contacts": pd.DataFrame(contacts), "marketing": pd.DataFrame(marketing),
    }


def build_insights_warehouse(spark: SparkSession, warehouse: Path, *, households: int = 500, seed: int = 11) -> dict[str, pd.DataFrame]:
    """Write gold/household_features and the silver tables; return the pandas frames."""
    from synth_survey import survey_features_df

    frames = build_frames(households, seed)
    features_df = spark.createDataFrame(frames["features"], FEATURE_DDL)
    overwrite_table(features_df, warehouse, "gold", "household_features")
    overwrite_table(survey_features_df(spark, frames["features"], frames["surveys"], features_df.schema),
                    warehouse, "gold", "survey_features")
    for table, ddl in SILVER_DDL.items():
        overwrite_table(spark.createDataFrame(frames[table], ddl), warehouse, "silver", table)
    return frames
