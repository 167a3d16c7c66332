"""Quality gates at every hop of the medallion (Great Expectations suites in expectations/).

- bronze and silver: after the step, each table that the run touched is
  validated against its suite; results go to gold/quality_results; a critical
  failure stops the pipeline before gold is built (the gold tables keep their
  Delta versions), warnings are shown and recorded.
- gold: each candidate table is validated before it is written
  (``publish_if_passed``): a critical failure leaves the published table at its
  previous Delta version.
Row-level contract rules are enforced earlier, by silver's quarantine, with
Spark filters; the suites here are the table-level verdicts (uniqueness,
referential integrity, completeness, freshness, drift, plausible ranges).
Data Docs are rebuilt once at the end of the run.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from ucx_spark.quality import GateResult, Thresholds, publish_if_passed, quality_context, record_results, validate
from ucx_spark.quality.batch import TableBatch
from ucx_spark.quality.gates import prepare
from ucx_spark.quality.suites import DEFAULT_SUITE_DIR, suite_path


@dataclass
class Gates:
    spark: SparkSession
    warehouse: str
    run_id: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    suite_dir: str | Path = DEFAULT_SUITE_DIR
    results: list[GateResult] = field(default_factory=list)
    publish_seconds: float = 0.0  # gold gates: time in publish() outside the writes
    # tables a check reads instead of the warehouse's, by "layer.table" (e.g. the silver/accounts of this run)
    references: dict[str, DataFrame] = field(default_factory=dict)
    _warming: threading.Thread | None = field(default=None, init=False, repr=False)
    _pending: list[GateResult] = field(default_factory=list, init=False, repr=False)  # publish's, not yet recorded

    def warm_up(self, layers: Iterable[str]) -> None:
        """Start preparing GX for the suites of ``layers`` in a background thread
        (``quality.gates.prepare``: GX's import, the context, the checkpoints) while the caller
        goes on with Spark work (bronze) that hides it. Every gate waits for it first; its failure
        is left for the validation to meet and report."""
        suites = [(layer, path.name.split(".")[1]) for layer in layers
                  for path in sorted(Path(self.suite_dir).glob(f"{layer}.*.yaml"))]

        def work() -> None:
            try:
                prepare(self.warehouse, suites, suite_dir=self.suite_dir, thresholds=self.thresholds)
            except Exception:  # noqa: BLE001 (validate raises it again, in the step that needs it)
                logging.getLogger(__name__).debug("GX warm-up failed", exc_info=True)

        self._warming = threading.Thread(target=work, name="ucx-gx-warm-up", daemon=True)
        self._warming.start()

    def ready(self) -> None:
        """Wait for ``warm_up`` (GX is used by one thread at a time)."""
        if self._warming is not None:
            self._warming.join()
            self._warming = None

    def check_batches(
        self, layer: str, batches: Mapping[str, DataFrame], sources: Mapping[str, TableBatch] | None = None
    ) -> list[GateResult]:
        """Validate each ``layer`` table's batch (the rows this run wrote to it) against the
        table's suite; record; raise DataError on a critical failure. Tables without a suite
        are skipped; a table the run did not touch is not in ``batches``. ``sources`` says where
        a table's batch lies in it, so a small one is read from its files (``quality.batch``)."""
        self.ready()
        context = quality_context(self.warehouse)
        batch: list[GateResult] = []
        for table, df in batches.items():
            if not suite_path(self.suite_dir, layer, table).is_file():
                continue
            batch.append(
                validate(
                    self.spark, df, layer=layer, table=table, run_id=self.run_id, suite_dir=self.suite_dir,
                    context=context, warehouse=self.warehouse, thresholds=self.thresholds, data_docs=False,
                    references=self.references, source=(sources or {}).get(table),
                )
            )
        if batch:
            record_results(self.spark, self.warehouse, *batch)
        self.results.extend(batch)
        for result in batch:
            if result.critical_failures or result.warnings:
                print(result.report(), file=sys.stderr)
        for result in batch:
            result.raise_for_critical()
        return batch

    def publish(
        self, df: DataFrame, table: str, write: Callable[[DataFrame], object],
        references: Mapping[str, DataFrame] | None = None,
    ) -> None:
        """Gold: validate the candidate, write only if no critical expectation failed.

        ``references`` override the warehouse tables a check reads (e.g. the
        silver/ami_daily days changed since the table was last published, which
        its completeness check judges). Adds the time spent outside ``write``
        (validation, audit) to ``publish_seconds``.
        """
        if not suite_path(self.suite_dir, "gold", table).is_file():
            write(df)
            return
        self.ready()
        written = 0.0

        def timed_write(candidate_df: DataFrame) -> None:
            nonlocal written
            start = time.perf_counter()
            write(candidate_df)
            written += time.perf_counter() - start

        start = time.perf_counter()
        try:
            self.results.append(
                publish_if_passed(
                    self.spark, df, timed_write, layer="gold", table=table, run_id=self.run_id,
                    warehouse=self.warehouse, suite_dir=self.suite_dir, context=quality_context(self.warehouse),
                    thresholds=self.thresholds, references={**self.references, **(references or {})},
                    data_docs=False,  # build_docs renders the site once at the end of the run
                    record=self._pending.append,  # record_pending: one commit for the step's gates
                )
            )
        finally:
            self.publish_seconds += time.perf_counter() - start - written

    def record_pending(self) -> None:
        """Write the verdicts of ``publish`` not yet recorded to gold/quality_results, in one
        commit (a gold step's gates, passed or failed)."""
        pending, self._pending = self._pending, []
        if pending:
            record_results(self.spark, self.warehouse, *pending)

    def build_docs(self) -> None:
        """Render the Data Docs site and point its pages at local copies of their scripts and styles
        (quality/docs_offline.py): the site opens the same without internet."""
        from ucx_spark.quality import docs_offline
        from ucx_spark.quality.audit import data_docs_index

        self.ready()
        quality_context(self.warehouse).build_data_docs()
        docs_offline.localise(data_docs_index(self.warehouse).parent)

    def summary(self) -> str:
        checks = sum(len(r.records) for r in self.results)
        failed = sum(1 for r in self.results for rec in r.records if not rec.success)
        return f"{len(self.results)} tables validated, {checks} expectations, {failed} not met (warnings only)"
