"""Maintenance step: OPTIMIZE (compaction, Z-order or clustering) and VACUUM every Delta table.

``run`` walks ``<warehouse>/<layer>/<table>``, records the number of data
files and bytes before and after, and returns a report the CLI prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from ucx_spark.maintain import (
    HEADER,
    SAFE_RETENTION_HOURS,
    ZORDER_BY,
    TableMaintenance,
    check_retention,
    find_tables,
    optimize,
    table_detail,
    vacuum,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceResult:
    tables: list[TableMaintenance] = field(default_factory=list)
    retention_hours: float | None = SAFE_RETENTION_HOURS

    def summary(self) -> str:
        lines = [HEADER, *(t.line() for t in self.tables)]
        before = sum(t.files_before for t in self.tables)
        after = sum(t.files_after for t in self.tables)
        vac = "no VACUUM" if self.retention_hours is None else f"VACUUM RETAIN {self.retention_hours:g} HOURS"
        lines.append(f"{len(self.tables)} table(s); data files {before} -> {after}; {vac}")
        return "\n".join(lines)


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    vacuum_hours: float | None = SAFE_RETENTION_HOURS,
    force_retention: bool = False,
    zorder_by: Mapping[str, Sequence[str]] = ZORDER_BY,
    layers: Sequence[str] = ("bronze", "silver", "gold", "quarantine"),
) -> MaintenanceResult:
    """OPTIMIZE every table (Z-order/clustering where configured), then VACUUM (None: skip), under
    the warehouse's pipeline lock (a VACUUM beside a running pipeline could delete files it is
    about to commit). Each OPTIMIZE and VACUUM is one Delta operation: killed in the middle, a table
    stays at its last committed version and a rerun finishes the job."""
    from ucx_spark.io.lock import warehouse_lock

    if vacuum_hours is not None:
        check_retention(vacuum_hours, force=force_retention)  # refuse before touching anything
    with warehouse_lock(warehouse, run_id=f"maintain-{int(time.time())}"):
        return _run(spark, warehouse=warehouse, vacuum_hours=vacuum_hours, force_retention=force_retention,
                    zorder_by=zorder_by, layers=layers)


def _run(
    spark: SparkSession,
    *,
    warehouse: str,
    vacuum_hours: float | None,
    force_retention: bool,
    zorder_by: Mapping[str, Sequence[str]],
    layers: Sequence[str],
) -> MaintenanceResult:
    done: list[TableMaintenance] = []
    for name, path in find_tables(warehouse, layers):
        started = time.perf_counter()
        before = table_detail(spark, path)
        action = optimize(spark, path, zorder_by=tuple(zorder_by.get(name, ())))
        log.info("maintain: %s optimized", name)
        vacuumed = None
        if vacuum_hours is not None:
            vacuumed = vacuum(spark, path, retention_hours=vacuum_hours, force=force_retention)
            log.info("maintain: %s vacuumed (%d files)", name, vacuumed)
        after = table_detail(spark, path)
        done.append(TableMaintenance(name, action, before.files, after.files, before.size_bytes,
                                     after.size_bytes, vacuumed, time.perf_counter() - started))
    return MaintenanceResult(done, vacuum_hours)
