"""Scoring at scale: the pyfunc model, and the mapInPandas scorer behind
``gold/household_scores``.

A registered model is an MLflow python-function model (``HouseholdModel``,
logged as models-from-code, no pickles) holding an xgboost booster and its
``FeatureSpec``. ``spark_udf`` could serve its ``predict``, but scoring also
needs SHAP drivers, so ``score_frame`` broadcasts the booster once and computes
score and exact TreeSHAP contributions together in one ``mapInPandas`` pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.models.explain import TOP_K, booster_from_bytes, predict, source_contributions, top_drivers
from ucx_spark.models.spec import FeatureSpec

MODEL_NAMES: tuple[str, ...] = ("csat", "ev_adoption", "payment_risk")
MODEL_CODE_PATH = Path(__file__).resolve().parent / "_model_code.py"

DRIVER_TYPE = T.ArrayType(
    T.StructType(
        [T.StructField("feature", T.StringType(), False), T.StructField("contribution", T.DoubleType(), False)]
    ),
    False,
)
SCORES_SCHEMA = T.StructType(
    [
        T.StructField("household_id", T.StringType(), False),
        T.StructField("model_name", T.StringType(), False),
        T.StructField("score", T.DoubleType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("scored_at", T.TimestampType(), False),
        T.StructField("top_drivers", DRIVER_TYPE, False),
    ]
)


class HouseholdModel(mlflow.pyfunc.PythonModel):
    """Python-function model: raw feature columns in, one score per row out."""

    booster: xgb.Booster
    spec: FeatureSpec

    def load_context(self, context: Any) -> None:
        self.spec = FeatureSpec.from_json(Path(context.artifacts["spec"]).read_text(encoding="utf-8"))
        self.booster = xgb.Booster(params={"nthread": 1})
        self.booster.load_model(context.artifacts["booster"])

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow's signature
        return pd.Series(predict(self.booster, self.spec, pd.DataFrame(model_input)), name="score")


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score: its booster bytes and spec."""

    model_name: str
    version: str
    booster_raw: bytes
    spec: FeatureSpec

    @property
    def booster(self) -> xgb.Booster:
        return booster_from_bytes(self.booster_raw)


def load_model(uri: str, *, model_name: str, version: str) -> LoadedModel:
    """Load a pyfunc ``HouseholdModel`` (e.g. ``models:/ucx_csat@champion``) for Spark scoring."""
    pyfunc_model = mlflow.pyfunc.load_model(uri)
    impl = pyfunc_model.unwrap_python_model()
    if not isinstance(impl, HouseholdModel):
        raise TypeError(f"{uri} is not a UCX household model (got {type(impl).__name__})")
    return LoadedModel(model_name, str(version), bytes(impl.booster.save_raw("ubj")), impl.spec)


def score_frame(features_df: DataFrame, model: LoadedModel, *, k: int = TOP_K, keep: tuple[str, ...] = ("household_id", "as_of_date")) -> DataFrame:
    """``keep`` columns + ``score`` double + ``top_drivers`` (k largest |SHAP|, largest first).

    Needs ``model.spec.input_columns`` in ``features_df``. The booster travels
    once per executor as a broadcast; each batch is predicted and explained
    with exact TreeSHAP in the same pass.
    """
    spark = features_df.sparkSession
    payload = spark.sparkContext.broadcast((model.booster_raw, model.spec.to_json()))
    input_cols = model.spec.input_columns
    keep_fields = [features_df.schema[c] for c in keep]
    out_schema = T.StructType(
        [*keep_fields, T.StructField("score", T.DoubleType(), False), T.StructField("top_drivers", DRIVER_TYPE, False)]
    )

    def _score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        raw, spec_json = payload.value
        booster = booster_from_bytes(raw)
        spec = FeatureSpec.from_json(spec_json)
        for pdf in batches:
            scores = predict(booster, spec, pdf)
            contribs, names = source_contributions(booster, spec, pdf)
            out = pdf[list(keep)].copy()
            out["score"] = scores
            out["top_drivers"] = top_drivers(contribs, names, k=k)
            yield out

    return features_df.select(*keep, *[c for c in input_cols if c not in keep]).mapInPandas(_score, out_schema)


def predict_frame(features_df: DataFrame, model: LoadedModel, *, keep: tuple[str, ...]) -> DataFrame:
    """``keep`` columns + ``score`` only (validation, champion re-evaluation)."""
    spark = features_df.sparkSession
    payload = spark.sparkContext.broadcast((model.booster_raw, model.spec.to_json()))
    keep_fields = [features_df.schema[c] for c in keep]
    out_schema = T.StructType([*keep_fields, T.StructField("score", T.DoubleType(), False)])

    def _predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        raw, spec_json = payload.value
        booster = booster_from_bytes(raw)
        spec = FeatureSpec.from_json(spec_json)
        for pdf in batches:
            out = pdf[list(keep)].copy()
            out["score"] = predict(booster, spec, pdf)
            yield out

    cols = list(dict.fromkeys([*keep, *model.spec.input_columns]))
    return features_df.select(*cols).mapInPandas(_predict, out_schema)


def household_scores(
    active_df: DataFrame, models: list[LoadedModel], *, scored_at: datetime, k: int = TOP_K
) -> DataFrame:
    """Rows of gold/household_scores (SCORES_SCHEMA) for every household of ``active_df``
    (household_id, as_of_date, features) and every model."""
    parts = []
    for model in models:
        scored_df = score_frame(active_df, model, k=k)
        parts.append(
            scored_df.select(
                F.col("household_id"),
                F.lit(model.model_name).alias("model_name"),
                F.col("score"),
                F.col("as_of_date"),
                F.lit(model.version).alias("model_version"),
                F.lit(scored_at).cast("timestamp").alias("scored_at"),
                F.col("top_drivers"),
            )
        )
    if not parts:
        raise ValueError("no model to score with")
    result_df = parts[0]
    for part in parts[1:]:
        result_df = result_df.unionByName(part)
    return result_df


def active_households(features_df: DataFrame, accounts_df: DataFrame | None) -> DataFrame:
    """Feature rows of the latest as_of_date whose account is active that day.

    Active (contract section 4): start_date <= day and (end_date null or end_date >= day).
    Without silver/accounts every feature row of the latest date counts as active.
    """
    latest_df = features_df.agg(F.max("as_of_date").alias("_latest"))
    rows_df = features_df.join(F.broadcast(latest_df), F.col("as_of_date") == F.col("_latest")).drop("_latest")
    if accounts_df is None:
        return rows_df.dropDuplicates(["household_id"])
    active_df = (
        accounts_df.join(F.broadcast(latest_df), how="cross")
        .filter((F.col("start_date") <= F.col("_latest")) & (F.col("end_date").isNull() | (F.col("end_date") >= F.col("_latest"))))
        .select("household_id")
        .distinct()
    )
    return rows_df.join(active_df, "household_id", "left_semi").dropDuplicates(["household_id"])
