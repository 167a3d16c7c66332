"""Silver: typed, validated, deduplicated feed rows (docs/layers.md, silver/<feed>).

DataFrame -> DataFrame transforms and Column -> Column helpers only; the
silver pipeline step (ucx_spark.pipelines.silver) does the reads and writes.
"""

from __future__ import annotations

from ucx_spark.silver.addresses import match_households, normalize_address
from ucx_spark.silver.ami import expected_intervals, with_local_time
from ucx_spark.silver.ami_daily import ami_daily
from ucx_spark.silver.parse import TimestampColumns, with_timestamp
from ucx_spark.silver.rules import classify
from ucx_spark.silver.text import scrub_free_text

__all__ = [
    "TimestampColumns",
    "ami_daily",
    "classify",
    "expected_intervals",
    "match_households",
    "normalize_address",
    "scrub_free_text",
    "with_timestamp",
    "with_local_time",
]
