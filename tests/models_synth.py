"""A tiny synthetic warehouse for the model tests (no tests here).

~300 households x 3 as-of dates of gold/household_features with planted signal,
and the silver tables the labels come from:

- EV: ``ev_interest`` drives a first ``ev_rate`` / ``ev_charger_rebate`` enrollment date;
- payment risk: ``past_due_count`` drives ``disconnect_notice`` events;
- CSAT: ``satisfaction_index`` drives the survey CSAT; ``contacts_90d`` drives
  who answers (response depends on features only: missing at random).

As-of dates 2021-12-31, 2022-06-30 and 2023-06-30: the last is the scoring
date (and the inferred data end), the first two have complete 6- and 12-month
label windows, so training is out of time (train 2021-12-31, validate 2022-06-30).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from ucx_spark.io.delta import overwrite_table

AS_OF_DATES = (date(2021, 12, 31), date(2022, 6, 30), date(2023, 6, 30))
FEATURE_SCHEMA = T.StructType(
    [
        T.StructField("household_id", T.StringType()),
        T.StructField("as_of_date", T.DateType()),
        T.StructField("ev_interest", T.DoubleType()),
        T.StructField("past_due_count", T.IntegerType()),
        T.StructField("satisfaction_index", T.DoubleType()),
        T.StructField("contacts_90d", T.LongType()),
        T.StructField("kwh_mean", T.DoubleType()),
        T.StructField("is_owner", T.BooleanType()),
        T.StructField("home_type", T.StringType()),
        T.StructField("meter_key", T.StringType()),
    ]
)


def _day(start: date, end: date, rng: np.random.Generator) -> date:
    return start + timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def build_frames(households: int = 300, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"hh{i:05d}" for i in range(households)]
    ev = rng.normal(size=households)
    risk = rng.gamma(1.5, 1.0, size=households)
    sat = rng.normal(size=households)
    contacts = rng.poisson(2.0, size=households)
    owner = rng.random(households) < 0.6
    home = np.where(rng.random(households) < 0.7, "single_family", "multi_family")
    kwh = rng.normal(30, 8, size=households)

    feats = []
    for d_i, d in enumerate(AS_OF_DATES):
        for i, hid in enumerate(ids):
            feats.append(
                {
                    "household_id": hid,
                    "as_of_date": d,
                    "ev_interest": float(ev[i] + rng.normal(scale=0.3)),
                    "past_due_count": int(rng.poisson(risk[i])),
                    "satisfaction_index": float(sat[i] + rng.normal(scale=0.2)) if (i + d_i) % 37 else None,
                    "contacts_90d": int(contacts[i]),
                    "kwh_mean": float(kwh[i]),
                    "is_owner": bool(owner[i]),
                    "home_type": str(home[i]) if i % 50 else None,
                    "meter_key": f"mk{i:05d}",
                }
            )
    features = pd.DataFrame(feats)

    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i:05d}" for i in range(households)],
            "household_id": ids,
            "start_date": [date(2020, 1, 1)] * households,
            # ten households closed before the scoring date: not active then
            "end_date": [date(2023, 1, 15) if i < 10 else None for i in range(households)],
        }
    )

    programs = []
    for i, hid in enumerate(ids):
        p = 1 / (1 + np.exp(-(2.2 * ev[i] - 1.0)))
        if rng.random() < p:
            programs.append(
                {
                    "account_id": f"A{i:05d}",
                    "household_id": hid,
                    "program": "ev_rate" if rng.random() < 0.6 else "ev_charger_rebate",
                    "enrolled_on": _day(date(2021, 6, 1), date(2023, 6, 30), rng),
                    "ended_on": None,
                }
            )
        if rng.random() < 0.3:
            programs.append(
                {"account_id": f"A{i:05d}", "household_id": hid, "program": "autopay", "enrolled_on": date(2020, 3, 1), "ended_on": None}
            )
    collections = []
    for i, hid in enumerate(ids):
        n = rng.poisson(0.35 * risk[i] ** 2)
        for _ in range(int(n)):
            collections.append(
                {
                    "event_id": f"E{len(collections):06d}",
                    "account_id": f"A{i:05d}",
                    "household_id": hid,
                    "event_date": _day(date(2021, 1, 1), date(2023, 6, 30), rng),
                    "event_type": "disconnect_notice",
                }
            )
        collections.append(
            {"event_id": f"E{len(collections):06d}", "account_id": f"A{i:05d}", "household_id": hid,
             "event_date": _day(date(2021, 1, 1), date(2023, 6, 30), rng), "event_type": "past_due_notice"}
        )
    surveys = []
    for i, hid in enumerate(ids):
        latent = float(np.clip(3.2 + 0.9 * sat[i], 1, 5))
        p_answer = 1 / (1 + np.exp(-(-1.2 + 0.5 * (contacts[i] - 2))))
        for start, end in ((date(2022, 1, 1), date(2022, 6, 30)), (date(2022, 7, 1), date(2022, 12, 31)), (date(2023, 1, 1), date(2023, 6, 30))):
            if rng.random() < p_answer:
                day = _day(start, end, rng)
                surveys.append(
                    {
                        "survey_id": f"S{len(surveys):06d}",
                        "account_id": f"A{i:05d}",
                        "household_id": hid,
                        "responded_at": datetime(day.year, day.month, day.day, 15, 30),
                        "csat": int(np.clip(round(latent + rng.normal(scale=0.5)), 1, 5)),
                        "nps": int(np.clip(round(2.4 * latent - 1.5 + rng.normal(scale=1.1)), 0, 10)),
                        "ces": 3,
                    }
                )
    return {
        "features": features,
        "accounts": accounts,
        "programs": pd.DataFrame(programs),
        "collections": pd.DataFrame(collections),
        "surveys": pd.DataFrame(surveys),
    }


SILVER_SCHEMAS = {
    "accounts": "account_id string, household_id string, start_date date, end_date date",
    "programs": "account_id string, household_id string, program string, enrolled_on date, ended_on date",
    "collections": "event_id string, account_id string, household_id string, event_date date, event_type string",
    "surveys": "survey_id string, account_id string, household_id string, responded_at timestamp, csat int, nps int, ces int",
}


def build_synthetic_warehouse(spark: SparkSession, warehouse: Path, *, households: int = 300, seed: int = 7) -> dict[str, pd.DataFrame]:
    from synth_survey import survey_features_df

    frames = build_frames(households, seed)
    overwrite_table(spark.createDataFrame(frames["features"], FEATURE_SCHEMA), warehouse, "gold", "household_features")
    overwrite_table(survey_features_df(spark, frames["features"], frames["surveys"], FEATURE_SCHEMA),
                    warehouse, "gold", "survey_features")
    for table, schema in SILVER_SCHEMAS.items():
        overwrite_table(spark.createDataFrame(frames[table], schema), warehouse, "silver", table)
    return frames
