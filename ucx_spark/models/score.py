"""Scoring at scale: the pyfunc model, and the mapInPandas scorer behind
``gold/household_scores``.

A registered model is an MLflow python-function model (``HouseholdModel``,
logged as models-from-code, no pickles) holding a serialised predictor
(``predictor.py``: an xgboost booster or the linear baseline) and its
``FeatureSpec``. ``spark_udf`` could serve its ``predict``, but scoring also
needs the drivers, so ``score_frame`` broadcasts the predictor once and computes
score, answer probabilities (NPS) and contributions together in one
``mapInPandas`` pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.models.explain import TOP_K, top_drivers
from ucx_spark.models.predictor import Predictor, make_predictor
from ucx_spark.models.spec import FeatureSpec

MODEL_NAMES: tuple[str, ...] = ("csat", "nps", "ev_adoption", "payment_risk")
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
        T.StructField("score", T.DoubleType(), True),
        T.StructField("as_of_date", T.DateType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("scored_at", T.TimestampType(), False),
        T.StructField("top_drivers", DRIVER_TYPE, True),
        T.StructField("p_promoter", T.DoubleType(), True),
        T.StructField("p_detractor", T.DoubleType(), True),
        # why a household of the table has no score for this model (it is outside the population
        # the model was trained for); null when scored
        T.StructField("not_scored_reason", T.StringType(), True),
        T.StructField("model_kind", T.StringType(), False),  # xgboost | blend | linear (a baseline that won)
        # the silver commit whose event made `ucx stream` score this row (null for `ucx score`'s rows):
        # event-to-score latency is scored_at - event_committed_at
        T.StructField("event_committed_at", T.TimestampType(), True),
    ]
)


class HouseholdModel(mlflow.pyfunc.PythonModel):
    """Python-function model: raw feature columns in, one score per row out (and, for NPS,
    p_promoter and p_detractor)."""

    predictor: Predictor
    spec: FeatureSpec

    def load_context(self, context: Any) -> None:
        self.spec = FeatureSpec.from_json(Path(context.artifacts["spec"]).read_text(encoding="utf-8"))
        payload_path = context.artifacts.get("payload") or context.artifacts["booster"]
        self.predictor = make_predictor(Path(payload_path).read_bytes(), self.spec)

    # Typed as pandas frames: MLflow then neither infers a schema from the hints (the logged
    # signature stays the one given) nor prints its "Add type hints" advice in every scoring worker.
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.Series | pd.DataFrame:
        pred = self.predictor.predict(pd.DataFrame(model_input))
        if pred.p_promoter is None:
            return pd.Series(pred.score, name="score")
        return pd.DataFrame({"score": pred.score, "p_promoter": pred.p_promoter, "p_detractor": pred.p_detractor})


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score: its serialised predictor and spec."""

    model_name: str
    version: str
    payload: bytes
    spec: FeatureSpec

    @property
    def predictor(self) -> Predictor:
        return make_predictor(self.payload, self.spec)

    @property
    def kind(self) -> str:
        return self.spec.kind


def loaded(model_name: str, predictor: Predictor, version: str = "candidate") -> LoadedModel:
    return LoadedModel(model_name, version, predictor.payload(), predictor.spec)


def load_model(uri: str, *, model_name: str, version: str) -> LoadedModel:
    """Load a pyfunc ``HouseholdModel`` (e.g. ``models:/ucx_csat@champion``) for Spark scoring."""
    pyfunc_model = mlflow.pyfunc.load_model(uri)
    impl = pyfunc_model.unwrap_python_model()
    if not isinstance(impl, HouseholdModel):
        raise TypeError(f"{uri} is not a UCX household model (got {type(impl).__name__})")
    return LoadedModel(model_name, str(version), impl.predictor.payload(), impl.spec)


def _broadcast(features_df: DataFrame, model: LoadedModel) -> Any:
    return features_df.sparkSession.sparkContext.broadcast((model.payload, model.spec.to_json()))


def _probabilities(out: pd.DataFrame, pred: Any, n: int) -> None:
    none = np.full(n, np.nan)
    out["p_promoter"] = pred.p_promoter if pred.p_promoter is not None else none
    out["p_detractor"] = pred.p_detractor if pred.p_detractor is not None else none


def score_frame(features_df: DataFrame, model: LoadedModel, *, k: int = TOP_K, keep: tuple[str, ...] = ("household_id", "as_of_date")) -> DataFrame:
    """``keep`` columns + ``score`` double + ``p_promoter``/``p_detractor`` (NPS; else null) +
    ``top_drivers`` (k largest |contribution|, largest first).

    Needs ``model.spec.input_columns`` in ``features_df``. The predictor
    travels once per executor as a broadcast; each batch is predicted and
    explained in the same pass.
    """
    payload = _broadcast(features_df, model)
    input_cols = model.spec.input_columns
    keep_fields = [features_df.schema[c] for c in keep]
    out_schema = T.StructType(
        [*keep_fields, T.StructField("score", T.DoubleType(), False),
         T.StructField("p_promoter", T.DoubleType(), True), T.StructField("p_detractor", T.DoubleType(), True),
         T.StructField("top_drivers", DRIVER_TYPE, False)]
    )

    def _score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        raw, spec_json = payload.value
        predictor = make_predictor(raw, FeatureSpec.from_json(spec_json))
        for pdf in batches:
            pred = predictor.predict(pdf)
            contribs, names = predictor.source_contributions(pdf)
            out = pdf[list(keep)].copy()
            out["score"] = pred.score
            _probabilities(out, pred, len(pdf))
            out["top_drivers"] = top_drivers(contribs, names, k=k)
            yield out

    return features_df.select(*keep, *[c for c in input_cols if c not in keep]).mapInPandas(_score, out_schema)


def predict_frame(features_df: DataFrame, model: LoadedModel, *, keep: tuple[str, ...]) -> DataFrame:
    """``keep`` columns + ``score`` only (validation, champion re-evaluation, what-if)."""
    payload = _broadcast(features_df, model)
    keep_fields = [features_df.schema[c] for c in keep]
    out_schema = T.StructType([*keep_fields, T.StructField("score", T.DoubleType(), False)])

    def _predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        raw, spec_json = payload.value
        predictor = make_predictor(raw, FeatureSpec.from_json(spec_json))
        for pdf in batches:
            out = pdf[list(keep)].copy()
            out["score"] = predictor.predict(pdf).score
            yield out

    cols = list(dict.fromkeys([*keep, *model.spec.input_columns]))
    return features_df.select(*cols).mapInPandas(_predict, out_schema)


def household_scores(
    active_df: DataFrame,
    models: list[LoadedModel],
    *,
    scored_at: datetime,
    k: int = TOP_K,
    outside: dict[str, tuple[DataFrame, str]] | None = None,
) -> DataFrame:
    """Rows of gold/household_scores (SCORES_SCHEMA) for every household of ``active_df``
    (household_id, as_of_date, features) and every model.

    ``outside[model] = (household_id rows, reason)``: households outside the population that model
    was trained for (EV: already adopted; payment risk: already in the disconnection process).
    They get a row with a null score and ``not_scored_reason``, never a number the model was not
    built to give.
    """
    outside = outside or {}
    parts = []
    for model in models:
        common = [
            F.lit(model.model_name).alias("model_name"),
            F.col("as_of_date"),
            F.lit(model.version).alias("model_version"),
            F.lit(scored_at).cast("timestamp").alias("scored_at"),
        ]
        rows_df = active_df
        if model.model_name in outside:
            excluded_df, reason = outside[model.model_name]
            keys_df = excluded_df.select("household_id").distinct()
            rows_df = active_df.join(keys_df, "household_id", "left_anti")
            parts.append(
                active_df.join(keys_df, "household_id", "left_semi").select(
                    "household_id", *common[:1], F.lit(None).cast("double").alias("score"), *common[1:],
                    F.lit(None).cast(DRIVER_TYPE).alias("top_drivers"),
                    F.lit(None).cast("double").alias("p_promoter"), F.lit(None).cast("double").alias("p_detractor"),
                    F.lit(reason).alias("not_scored_reason"), F.lit(model.kind).alias("model_kind"),
                )
            )
        scored_df = score_frame(rows_df, model, k=k)
        parts.append(
            scored_df.select(
                "household_id", *common[:1], F.col("score"), *common[1:], F.col("top_drivers"),
                "p_promoter", "p_detractor", F.lit(None).cast("string").alias("not_scored_reason"),
                F.lit(model.kind).alias("model_kind"),
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
