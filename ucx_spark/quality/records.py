"""What a quality gate found: one record per expectation (the rows of ``gold/quality_results``) and
the gate's result. Plain data, imported by the validation (``gates``) and the audit table
(``audit``) alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ucx_spark.errors import DataError


@dataclass(frozen=True)
class QualityRecord:
    """One expectation's outcome; the columns of ``gold/quality_results`` in order."""

    run_id: str
    layer: str
    table: str
    suite: str
    expectation_id: str
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    row_count: int | None
    checked_at: datetime


@dataclass(frozen=True)
class GateResult:
    run_id: str
    layer: str
    table: str
    suite: str
    row_count: int
    records: tuple[QualityRecord, ...]
    data_docs: Path | None = None

    @property
    def critical_failures(self) -> tuple[QualityRecord, ...]:
        return tuple(r for r in self.records if not r.success and r.severity == "critical")

    @property
    def warnings(self) -> tuple[QualityRecord, ...]:
        return tuple(r for r in self.records if not r.success and r.severity != "critical")

    @property
    def passed(self) -> bool:
        """False iff a critical expectation failed."""
        return not self.critical_failures

    def report(self) -> str:
        """One line for the gate plus one per failed expectation."""
        head = (
            f"quality gate {self.suite} (run {self.run_id}, {self.row_count} rows): "
            f"{'passed' if self.passed else 'FAILED'}, {len(self.records)} checks, "
            f"{len(self.critical_failures)} critical failures, {len(self.warnings)} warnings"
        )
        lines = [head] + [
            f"  [{r.severity}] {r.expectation_id} ({r.expectation_type}"
            + (f" on {r.column}" if r.column else "") + f"): {r.observed_value}"
            for r in self.critical_failures + self.warnings
        ]
        return "\n".join(lines)

    def raise_for_critical(self) -> None:
        """Raise DataError naming the table, each failed critical expectation and its observed value."""
        if self.passed:
            return
        failed = "; ".join(
            f"{r.expectation_id} ({r.expectation_type}" + (f" on {r.column}" if r.column else "")
            + f"): observed {r.observed_value}"
            for r in self.critical_failures
        )
        docs = f" Data Docs: {self.data_docs}" if self.data_docs else ""
        raise DataError(
            f"quality gate failed for {self.layer}.{self.table} (run {self.run_id}): "
            f"{len(self.critical_failures)} critical expectation(s) failed: {failed}.{docs}"
        )
