"""Data-quality gates: suites as files, GX Core 1.x validation, row routing, audit and Data Docs."""

from __future__ import annotations

from ucx_spark.quality.audit import data_docs_index, read_results, record_results, summary
from ucx_spark.quality.gates import Thresholds, publish_if_passed, quality_context, validate
from ucx_spark.quality.records import GateResult, QualityRecord
from ucx_spark.quality.rows import (
    is_row_level,
    quarantine_specs,
    row_condition,
    split_rows,
    with_failed_expectations,
)
from ucx_spark.quality.suites import ExpectationSpec, Suite, build_suites, load_suite, write_suites

__all__ = [
    "ExpectationSpec",
    "GateResult",
    "QualityRecord",
    "Suite",
    "Thresholds",
    "build_suites",
    "data_docs_index",
    "is_row_level",
    "load_suite",
    "publish_if_passed",
    "quarantine_specs",
    "quality_context",
    "read_results",
    "record_results",
    "row_condition",
    "split_rows",
    "summary",
    "validate",
    "with_failed_expectations",
    "write_suites",
]
