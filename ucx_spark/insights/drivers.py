"""Global drivers of each model: mean |SHAP| with direction, overall and by segment.

Per household, exact TreeSHAP values (``pred_contribs``, one-hot columns summed
back to their source feature) come out of a ``mapInPandas`` pass as one row per
(household, feature) with the feature's numeric value; Spark then aggregates by
segment. Direction is the sign of the correlation between a feature's value
and its SHAP value in the segment: ``+`` means higher values raise the score
(more CSAT, more EV adoption, more payment risk), ``-`` the opposite; null for
categorical features (no order) and when |corr| < ``MIN_DIRECTION_CORR``.
Units are the model's margin: CSAT points for ``csat``, log-odds for the
classifiers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.insights.base import suppress, with_segments
from ucx_spark.models.predictor import make_predictor
from ucx_spark.models.score import LoadedModel
from ucx_spark.models.spec import FeatureSpec

MIN_DIRECTION_CORR = 0.05
SHAP_SCHEMA = T.StructType(
    [
        T.StructField("household_id", T.StringType(), False),
        T.StructField("feature", T.StringType(), False),
        T.StructField("feature_value", T.DoubleType(), True),
        T.StructField("shap", T.DoubleType(), False),
    ]
)


def household_shap(snapshot_df: DataFrame, model: LoadedModel) -> DataFrame:
    """One row per household and source feature: household_id, feature, feature_value
    (numeric value, null for categorical features), shap.

    Needs household_id and ``model.spec.input_columns`` in ``snapshot_df``.
    """
    spark = snapshot_df.sparkSession
    payload = spark.sparkContext.broadcast((model.payload, model.spec.to_json()))
    categorical = {name for name, _ in model.spec.categorical}

    def _explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        raw, spec_json = payload.value
        predictor = make_predictor(raw, FeatureSpec.from_json(spec_json))
        for pdf in batches:
            if pdf.empty:
                continue
            contribs, names = predictor.source_contributions(pdf)
            values = np.column_stack(
                [
                    np.full(len(pdf), np.nan)
                    if name in categorical
                    else pd.to_numeric(pdf[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
                    for name in names
                ]
            )
            k = len(names)
            out = pd.DataFrame(
                {
                    "household_id": np.repeat(pdf["household_id"].to_numpy(), k),
                    "feature": np.tile(np.array(names, dtype=object), len(pdf)),
                    "feature_value": values.reshape(-1),
                    "shap": contribs.reshape(-1),
                }
            )
            out["feature_value"] = out["feature_value"].astype("float64").where(out["feature_value"].notna(), None)
            yield out

    cols = list(dict.fromkeys(["household_id", *model.spec.input_columns]))
    return snapshot_df.select(*cols).mapInPandas(_explain, SHAP_SCHEMA)


def model_drivers(
    snapshot_df: DataFrame,
    model: LoadedModel,
    *,
    segments_df: DataFrame | None = None,
    min_households: int,
) -> DataFrame:
    """Rows of gold/model_drivers for one model (without run_id / computed_at).

    ``snapshot_df``: household_id, as_of_date, the model's inputs and the
    segment columns of ``insights.base.SEGMENT_COLUMNS`` present.
    ``segments_df`` (optional): household_id, segment_type, segment_value of
    further segmentations (e.g. personas). Output: model_name, model_version,
    as_of_date, segment_type, segment_value, feature, mean_abs_shap, mean_shap,
    direction, rank (1 = largest mean |SHAP| in the segment), n (households),
    is_suppressed; values null where n < ``min_households``.
    """
    seg_df = with_segments(snapshot_df).select("household_id", "segment_type", "segment_value")
    if segments_df is not None:
        seg_df = seg_df.unionByName(segments_df.select("household_id", "segment_type", "segment_value"))
    as_of = snapshot_df.agg(F.max("as_of_date").alias("as_of_date"))
    shap_df = household_shap(snapshot_df, model)
    agg_df = (
        shap_df.join(seg_df, "household_id")
        .groupBy("segment_type", "segment_value", "feature")
        .agg(
            F.avg(F.abs("shap")).alias("mean_abs_shap"),
            F.avg("shap").alias("mean_shap"),
            F.corr("feature_value", "shap").alias("_corr"),
            F.countDistinct("household_id").alias("n"),
        )
    )
    direction = (
        F.when(F.col("_corr") >= MIN_DIRECTION_CORR, F.lit("+"))
        .when(F.col("_corr") <= -MIN_DIRECTION_CORR, F.lit("-"))
    )
    by_segment = Window.partitionBy("segment_type", "segment_value").orderBy(F.desc("mean_abs_shap"), "feature")
    out_df = (
        agg_df.withColumn("direction", direction)
        .withColumn("rank", F.row_number().over(by_segment))
        .crossJoin(F.broadcast(as_of))
        .select(
            F.lit(model.model_name).alias("model_name"),
            F.lit(model.version).alias("model_version"),
            "as_of_date",
            "segment_type",
            "segment_value",
            "feature",
            "mean_abs_shap",
            "mean_shap",
            "direction",
            F.col("rank").cast("int").alias("rank"),
            F.col("n").cast("long").alias("n"),
        )
    )
    return suppress(out_df, value_cols=["mean_abs_shap", "mean_shap", "direction", "rank"], min_households=min_households)
