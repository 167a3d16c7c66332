"""The bronze schema of a feed and its required-column check (rows are read by io.csv_arrow)."""

from __future__ import annotations

from collections.abc import Sequence

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


def landed_schema(columns: Sequence[str]) -> StructType:
    """What reading landing files gives (io.csv_arrow): ``columns`` as strings, then the lineage
    the read itself knows (every BRONZE_LINEAGE column but the write's _ingested_at and _run_id)."""
    return StructType(
        [StructField(c, StringType()) for c in columns]
        + [
            StructField("_extra", MapType(StringType(), StringType())),
            StructField("_malformed", BooleanType()),
            StructField("_file_rejected", StringType()),
            StructField("_source_file", StringType()),
            StructField("_extracted_at", TimestampType()),
            StructField("_row_number", LongType()),
        ]
    )


def bronze_schema(feed: str) -> StructType:
    """Schema of bronze/<feed>: contract columns as strings, then lineage."""
    return StructType(landed_schema(FEEDS[feed].column_names).fields + [
        StructField("_ingested_at", TimestampType()), StructField("_run_id", StringType())])


def missing_required(feed: str, header: list[str]) -> tuple[str, ...]:
    """Required contract columns of ``feed`` absent from a (lower-cased) header."""
    present = set(header)
    return tuple(c for c in FEEDS[feed].required if c not in present)
