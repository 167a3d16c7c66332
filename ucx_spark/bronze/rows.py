"""Positional raw CSV rows -> bronze rows of one feed (DataFrame -> DataFrame)."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from ucx_spark.contract import FEEDS

BRONZE_LINEAGE = (
    "_extra", "_malformed", "_file_rejected", "_source_file", "_extracted_at",
    "_row_number", "_ingested_at", "_run_id",
)


def bronze_schema(feed: str) -> StructType:
    """Schema of bronze/<feed>: contract columns as strings, then lineage."""
    return StructType(
        [StructField(c, StringType()) for c in FEEDS[feed].column_names]
        + [
            StructField("_extra", MapType(StringType(), StringType())),
            StructField("_malformed", BooleanType()),
            StructField("_file_rejected", StringType()),
            StructField("_source_file", StringType()),
            StructField("_extracted_at", TimestampType()),
            StructField("_row_number", LongType()),
            StructField("_ingested_at", TimestampType()),
            StructField("_run_id", StringType()),
        ]
    )


def missing_required(feed: str, header: list[str]) -> tuple[str, ...]:
    """Required contract columns of ``feed`` absent from a (lower-cased) header."""
    present = set(header)
    return tuple(c for c in FEEDS[feed].required if c not in present)


def to_bronze_rows(
    raw_df: DataFrame,
    *,
    feed: str,
    header: list[str],
    source_file: str,
    extracted_at: datetime,
    run_id: str,
) -> DataFrame:
    """Map positional columns ``c0..`` (as read by io.landing) to bronze/<feed>.

    Needs ``c<i>`` for each header field, ``_malformed``, ``_row_number``.
    Contract columns absent from the header are null; header fields not in the
    contract go to ``_extra``; a file missing a required column gets
    ``_file_rejected = 'missing_column:<col>[,<col>...]'`` on every row.
    """
    contract_cols = FEEDS[feed].column_names
    position = {name: i for i, name in enumerate(header)}
    extras = [name for name in header if name not in contract_cols]
    missing = missing_required(feed, header)
    if extras:
        extra_col = F.create_map(*[x for name in extras for x in (F.lit(name), F.col(f"c{position[name]}"))])
    else:
        extra_col = F.create_map().cast(MapType(StringType(), StringType()))
    rejected = F.lit("missing_column:" + ",".join(missing)) if missing else F.lit(None).cast(StringType())
    return raw_df.select(
        *[
            (F.col(f"c{position[c]}") if c in position else F.lit(None).cast(StringType())).alias(c)
            for c in contract_cols
        ],
        extra_col.alias("_extra"),
        F.col("_malformed").cast(BooleanType()).alias("_malformed"),
        rejected.alias("_file_rejected"),
        F.lit(source_file).alias("_source_file"),
        F.lit(extracted_at).cast(TimestampType()).alias("_extracted_at"),
        F.col("_row_number").cast(LongType()).alias("_row_number"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
    )
