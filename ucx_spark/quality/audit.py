"""The quality audit table ``gold/quality_results`` and the run summary.

One row per (run_id, layer, table, expectation_id) (its catalog key):
re-validating a table in the same run replaces that run's rows for the table
(``io.delta.replace_batches``: a plain append the first time, a ``replaceWhere``
overwrite for a retry), so a retried step does not double-count. The table holds
verdicts and aggregates only, never row values: observed values are counts,
shares and bounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.catalog import QUALITY_RESULTS
from ucx_spark.io.delta import register_table, replace_batches, sql_literal_list, table_exists, table_path
from ucx_spark.quality.checks import PreviousCount
from ucx_spark.quality.records import GateResult, QualityRecord

AUDIT_LAYER, AUDIT_TABLE = "gold", QUALITY_RESULTS
AUDIT_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("layer", T.StringType(), False),
    T.StructField("table", T.StringType(), False),
    T.StructField("suite", T.StringType(), False),
    T.StructField("expectation_id", T.StringType(), False),
    T.StructField("expectation_type", T.StringType(), False),
    T.StructField("column", T.StringType(), True),
    T.StructField("severity", T.StringType(), False),
    T.StructField("success", T.BooleanType(), False),
    T.StructField("observed_value", T.StringType(), True),
    T.StructField("unexpected_count", T.LongType(), True),
    T.StructField("row_count", T.LongType(), True),
    T.StructField("checked_at", T.TimestampType(), False),
])


def audit_path(warehouse: str | Path) -> str:
    return table_path(warehouse, AUDIT_LAYER, AUDIT_TABLE)


def data_docs_index(warehouse: str | Path) -> Path:
    """``<warehouse>/_quality/data_docs/index.html``: the GX Data Docs site a browser opens."""
    return Path(warehouse).resolve() / "_quality" / "data_docs" / "index.html"


def records_df(spark: SparkSession, records: Iterable[QualityRecord]) -> DataFrame:
    assert [f.name for f in fields(QualityRecord)] == AUDIT_SCHEMA.fieldNames()
    return spark.createDataFrame([astuple(r) for r in records], AUDIT_SCHEMA)


def record_results(spark: SparkSession, warehouse: str | Path, *results: GateResult) -> str:
    """Write the results' records to ``gold/quality_results`` (replace_batches); returns the table path."""
    path = audit_path(warehouse)
    records = [r for res in results for r in res.records]
    if records:
        # a run's results per table: appended, or replacing what the run recorded for it before (a retry)
        tables = sorted({(r.run_id, r.layer, r.table) for r in records})
        predicate = " OR ".join(
            f"(run_id = {sql_literal_list([run])} AND layer = {sql_literal_list([layer])} AND "
            f"`table` = {sql_literal_list([table])})" for run, layer, table in tables)
        replace_batches(records_df(spark, records), path, batches=["/".join(t) for t in tables], predicate=predicate)
        register_table(spark, warehouse, AUDIT_LAYER, AUDIT_TABLE)
    return path


def read_results(spark: SparkSession, warehouse: str | Path) -> DataFrame | None:
    path = audit_path(warehouse)
    if not table_exists(spark, path):
        return None
    return spark.read.format("delta").load(path)


# Previous-run row counts by (warehouse, run_id): other runs' results do not change while a run
# goes on, so the audit table is read once per run rather than once per validated table.
_PREVIOUS_COUNTS: dict[tuple[str, str], dict[tuple[str, str], PreviousCount]] = {}


DRIFT_BATCHES = 5  # row-count drift: a batch against the median of this many earlier batches


def previous_row_counts(spark: SparkSession, warehouse: str | Path, *, run_id: str) -> dict[tuple[str, str], PreviousCount]:
    """{(layer, table): the batch size to compare with}: the median row count of the latest
    ``DRIFT_BATCHES`` other runs that validated the table, leaving out the table's first run (a
    first full load is not a daily batch: comparing the next daily extract with it would cry
    wolf every time). From the audit table, one small query; absent when no comparable run exists."""
    key = (str(Path(warehouse).resolve()), run_id)
    if key in _PREVIOUS_COUNTS:
        return _PREVIOUS_COUNTS[key]
    counts: dict[tuple[str, str], PreviousCount] = {}
    results_df = read_results(spark, warehouse)
    if results_df is not None:
        from pyspark.sql import Window

        runs_df = (
            results_df.filter(F.col("row_count").isNotNull())
            .groupBy("layer", "table", "run_id")
            .agg(F.max("row_count").alias("row_count"), F.min("checked_at").alias("checked_at"))
        )
        first = Window.partitionBy("layer", "table").orderBy("checked_at")
        latest = Window.partitionBy("layer", "table").orderBy(F.desc("checked_at"))
        rows = (
            runs_df.withColumn("_first", F.row_number().over(first) == 1)
            .filter(~F.col("_first") & (F.col("run_id") != run_id))
            .withColumn("_recent", F.row_number().over(latest))
            .filter(F.col("_recent") <= DRIFT_BATCHES)
            .collect()  # at most DRIFT_BATCHES rows per audited table
        )
        by_table: dict[tuple[str, str], list] = {}
        for row in rows:
            by_table.setdefault((row["layer"], row["table"]), []).append(row)
        for table_key, batch in by_table.items():
            batch.sort(key=lambda r: r["checked_at"], reverse=True)
            sizes = sorted(int(r["row_count"]) for r in batch)
            mid = len(sizes) // 2
            median = sizes[mid] if len(sizes) % 2 else (sizes[mid - 1] + sizes[mid]) // 2
            counts[table_key] = PreviousCount(batch[0]["run_id"], median, len(batch))
    if len(_PREVIOUS_COUNTS) > 64:
        _PREVIOUS_COUNTS.clear()
    _PREVIOUS_COUNTS[key] = counts
    return counts


def previous_row_count(
    spark: SparkSession, warehouse: str | Path | None, *, layer: str, table: str, run_id: str
) -> PreviousCount | None:
    """Row count the table had in the latest other run that validated it (None if none)."""
    if warehouse is None:
        return None
    return previous_row_counts(spark, warehouse, run_id=run_id).get((layer, table))


@dataclass(frozen=True)
class QualityCheck:
    layer: str
    table: str
    expectation_id: str
    expectation_type: str
    severity: str
    success: bool
    observed_value: str | None


@dataclass(frozen=True)
class QualityReport:
    """The last run's results (``ucx quality``; ``--json`` renders these fields)."""

    warehouse: str
    data_docs: str
    data_docs_built: bool
    run_id: str | None = None
    checks: tuple[QualityCheck, ...] = ()

    @property
    def failures(self) -> tuple[QualityCheck, ...]:
        return tuple(c for c in self.checks if not c.success)

    def summary(self) -> str:
        if self.run_id is None:
            return f"no quality results yet in {audit_path(self.warehouse)}"
        lines = [f"quality results of run {self.run_id}: {len(self.checks)} checks"]
        counts: dict[str, dict[tuple[str, bool], int]] = {}
        for c in self.checks:
            per = counts.setdefault(f"{c.layer}.{c.table}", {})
            per[(c.severity, c.success)] = per.get((c.severity, c.success), 0) + 1
        lines.append(f"  {'table':<36} {'passed':>7} {'critical failed':>16} {'warnings':>9}")
        for name, per in counts.items():
            passed = per.get(("critical", True), 0) + per.get(("warning", True), 0)
            lines.append(
                f"  {name:<36} {passed:>7} {per.get(('critical', False), 0):>16} {per.get(('warning', False), 0):>9}"
            )
        if self.failures:
            lines.append("failures:")
            for c in sorted(self.failures, key=lambda c: (c.severity != "critical", c.layer, c.table)):
                lines.append(f"  [{c.severity}] {c.layer}.{c.table} {c.expectation_id} ({c.expectation_type}): "
                             f"{c.observed_value}")
        else:
            lines.append("no failures")
        lines.append(f"Data Docs: {self.data_docs}" + ("" if self.data_docs_built else " (not built yet)"))
        return "\n".join(lines)


def quality_report(spark: SparkSession, warehouse: str | Path) -> QualityReport:
    """The last run's checks (by layer, table and expectation) and the Data Docs path."""
    docs = data_docs_index(warehouse)
    empty = QualityReport(str(warehouse), str(docs), docs.is_file())
    results_df = read_results(spark, warehouse)
    if results_df is None:
        return empty
    last = results_df.orderBy(F.col("checked_at").desc()).select("run_id").first()
    if last is None:
        return empty
    run_id = str(last["run_id"])
    # One run's results are a few hundred rows: bounded, fine to collect.
    rows = (
        results_df.filter(F.col("run_id") == run_id)
        .orderBy("layer", "table", "expectation_id")
        .select("layer", "table", "expectation_id", "expectation_type", "severity", "success", "observed_value")
        .collect()
    )
    checks = tuple(QualityCheck(r["layer"], r["table"], r["expectation_id"], r["expectation_type"], r["severity"],
                                bool(r["success"]), None if r["observed_value"] is None else str(r["observed_value"]))
                   for r in rows)
    return dataclasses.replace(empty, run_id=run_id, checks=checks)


def summary(spark: SparkSession, warehouse: str | Path) -> str:
    """The last run's results: counts by table, severity and outcome, failures listed, Data Docs path."""
    return quality_report(spark, warehouse).summary()
