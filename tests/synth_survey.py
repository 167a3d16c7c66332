"""gold/survey_features for the synthetic model warehouses (no tests here).

The real table holds, per survey response, the household's features as of the
day before it (``gold.household_features.survey_features``). The synthetic
warehouses plant their effects on month-end feature rows, so each response takes
the household's latest month-end row dated before it (or its first), which is
what the planted effects act on.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

RESPONSE_FIELDS = [
    T.StructField("response_key", T.StringType()),
    T.StructField("responded_at", T.TimestampType()),
    T.StructField("response_date", T.DateType()),
    T.StructField("survey_type", T.StringType()),
    T.StructField("csat", T.IntegerType()),
    T.StructField("nps", T.IntegerType()),
    T.StructField("ces", T.IntegerType()),
]


def survey_features_df(spark: SparkSession, features: pd.DataFrame, surveys: pd.DataFrame,
                       feature_schema: T.StructType) -> DataFrame:
    rows = []
    by_household = {h: g.sort_values("as_of_date") for h, g in features.groupby("household_id")}
    for s in surveys.itertuples(index=False):
        history = by_household.get(s.household_id)
        if history is None:
            continue
        day = pd.Timestamp(s.responded_at).date()
        before = history[history["as_of_date"] < day]
        row = (before.iloc[-1] if len(before) else history.iloc[0]).to_dict()
        row.update({
            "as_of_date": day - timedelta(days=1),
            "response_key": hashlib.sha256(s.survey_id.encode()).hexdigest()[:32],
            "responded_at": s.responded_at, "response_date": day, "survey_type": "relationship",
            "csat": None if pd.isna(s.csat) else int(s.csat), "nps": None if pd.isna(s.nps) else int(s.nps),
            "ces": None if pd.isna(s.ces) else int(s.ces),
        })
        rows.append(row)
    schema = T.StructType([*feature_schema.fields, *RESPONSE_FIELDS])
    pdf = pd.DataFrame(rows, columns=schema.fieldNames())
    return spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None), schema)
