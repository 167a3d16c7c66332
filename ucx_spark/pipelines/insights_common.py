"""Reads shared by the insights pipelines: the scoring snapshot and the persona segments."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import HOUSEHOLD_FEATURES, SEGMENTS
from ucx_spark.errors import UcxError
from ucx_spark.insights.base import snapshot
from ucx_spark.insights.whatif import ArrearsModel, arrears_history, bill_history, fit_arrears_model
from ucx_spark.io.delta import read_optional, read_table, table_exists, table_path, table_version


def read_snapshot(spark: SparkSession, warehouse: str) -> tuple[DataFrame, int | None]:
    """(active households at the latest as_of_date of gold/household_features, its Delta version)."""
    path = table_path(warehouse, "gold", HOUSEHOLD_FEATURES)
    if not table_exists(spark, path):
        raise UcxError(f"{path} does not exist: run `ucx pipeline` first")
    version = table_version(spark, path)
    features_df = read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES, version=version)
    return snapshot(features_df, read_optional(spark, warehouse, "silver", "accounts")), version


def read_arrears_model(spark: SparkSession, warehouse: str, features_version: int | None) -> ArrearsModel:
    """The what-if's expected-arrears line fitted on gold/household_features (at the snapshot's
    version) and silver/collections (the rule of thumb when either is missing)."""
    return fit_arrears_model(read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES, version=features_version),
                             read_optional(spark, warehouse, "silver", "collections"))


def read_arrears_history(spark: SparkSession, warehouse: str, features_version: int | None) -> DataFrame:
    """household_id + the household's past-due record at the latest as_of_date of
    gold/household_features (``whatif.arrears_history``), for the expected-arrears line."""
    features_df = read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES, version=features_version)
    latest = features_df.agg(F.max("as_of_date")).first()[0]
    return arrears_history(features_df).filter(F.col("as_of_date") == F.lit(latest)).drop("as_of_date")


def read_bill_history(spark: SparkSession, warehouse: str, features_version: int | None) -> DataFrame:
    """household_id + the household's bills at its last 12 month ends up to the latest as_of_date of
    gold/household_features (``whatif.bill_history``), for the rate scenarios' CSAT walk."""
    return bill_history(read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES, version=features_version))


def read_persona_segments(spark: SparkSession, warehouse: str) -> DataFrame | None:
    """household_id, segment_type ('persona'), segment_value (persona name) from gold/segments, if built."""
    path = table_path(warehouse, "gold", SEGMENTS)
    if not table_exists(spark, path):
        return None
    segments_df = read_table(spark, warehouse, "gold", SEGMENTS)
    if "segmentation" not in segments_df.columns:
        return None
    return segments_df.filter(F.col("segmentation") == "persona").select(
        "household_id", F.lit("persona").alias("segment_type"), F.col("segment_name").alias("segment_value")
    )
