"""Delta table maintenance: compaction, Z-order or liquid clustering, VACUUM.

Layout decisions (issue 7), by the queries that hit each table:

* ``silver/ami`` (the big one: households x 96 reads a day) is read by meter
  and date range (daily usage, features per household, agent look-ups of one
  meter) and rewritten by recent dates.  It is laid out by **Z-order on
  (meter_id, local_date)**, applied by OPTIMIZE, so a one-meter query reads a
  handful of files and a one-day query skips most of the rest through the
  per-file min/max statistics Delta keeps.  If the silver writer instead
  declares liquid clustering (``CLUSTER BY (meter_id, local_date)``), the
  table's own clustering columns win and OPTIMIZE clusters incrementally.
  Partitioning by local month is the alternative for very large utilities
  (months >= ~1 GB each); the Z-order columns below still apply inside each
  partition (partition columns are dropped from ZORDER BY automatically).
* gold tables are small, aggregated and read whole by BI: compaction only.
* bronze is append-only, one commit per landed file: compaction keeps the
  number of files bounded.

VACUUM never uses a retention below 168 hours (Delta's own default check)
unless ``force_retention`` is given: readers and time travel within the last
7 days depend on the old files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from ucx_spark.catalog import AMI_DAILY, HOUSEHOLD_FEATURES, HOUSEHOLD_SCORES, METER_DAILY_USAGE
from ucx_spark.errors import UcxError

SAFE_RETENTION_HOURS = 168.0

# "<layer>/<table>" -> columns for ZORDER BY (ignored when the table uses liquid clustering).
ZORDER_BY: Mapping[str, tuple[str, ...]] = {
    "silver/ami": ("meter_id", "local_date"),
    f"silver/{AMI_DAILY}": ("meter_id", "local_date"),
    f"gold/{METER_DAILY_USAGE}": ("meter_key", "local_date"),
    f"gold/{HOUSEHOLD_FEATURES}": ("household_id",),
    f"gold/{HOUSEHOLD_SCORES}": ("household_id",),
}


@dataclass(frozen=True)
class TableDetail:
    files: int
    size_bytes: int
    partition_columns: tuple[str, ...]
    clustering_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableMaintenance:
    table: str
    action: str
    files_before: int
    files_after: int
    size_before: int
    size_after: int
    vacuumed_files: int | None
    seconds: float

    def line(self) -> str:
        vac = "-" if self.vacuumed_files is None else str(self.vacuumed_files)
        return (f"{self.table:<40} {self.action:<40} {self.files_before:>6} -> {self.files_after:<6} "
                f"{self.size_before / 1e6:>9.2f} -> {self.size_after / 1e6:<9.2f} {vac:>8} {self.seconds:>7.1f}")


HEADER = (f"{'table':<40} {'action':<40} {'files before -> after':<22} {'MB before -> after':<22}"
          f" {'vacuumed':>8} {'seconds':>7}")


def _delta_ref(path: str | Path) -> str:
    return "delta.`" + str(path).replace("`", "``") + "`"


def _quote_cols(cols: Sequence[str]) -> str:
    return ", ".join("`" + c.replace("`", "``") + "`" for c in cols)


def table_detail(spark: SparkSession, path: str | Path) -> TableDetail:
    """Number of data files, bytes and layout of the current version (DESCRIBE DETAIL)."""
    row = spark.sql(f"DESCRIBE DETAIL {_delta_ref(path)}").first()
    assert row is not None
    data = row.asDict()
    return TableDetail(
        files=int(data.get("numFiles") or 0),
        size_bytes=int(data.get("sizeInBytes") or 0),
        partition_columns=tuple(data.get("partitionColumns") or ()),
        clustering_columns=tuple(data.get("clusteringColumns") or ()),
    )


def zorder_columns(spark: SparkSession, path: str | Path, wanted: Sequence[str], detail: TableDetail) -> tuple[str, ...]:
    """``wanted`` minus partition columns and columns the table lacks (OPTIMIZE rejects both)."""
    present = set(spark.read.format("delta").load(str(path)).columns)
    return tuple(c for c in wanted if c in present and c not in detail.partition_columns)


def optimize(spark: SparkSession, path: str | Path, *, zorder_by: Sequence[str] = ()) -> str:
    """Compact small files; Z-order by ``zorder_by`` or cluster a liquid-clustered table."""
    detail = table_detail(spark, path)
    if detail.clustering_columns:
        spark.sql(f"OPTIMIZE {_delta_ref(path)}")
        return f"OPTIMIZE (cluster by {', '.join(detail.clustering_columns)})"
    cols = zorder_columns(spark, path, zorder_by, detail) if zorder_by else ()
    if cols:
        spark.sql(f"OPTIMIZE {_delta_ref(path)} ZORDER BY ({_quote_cols(cols)})")
        return f"OPTIMIZE ZORDER BY ({', '.join(cols)})"
    spark.sql(f"OPTIMIZE {_delta_ref(path)}")
    return "OPTIMIZE (compaction)"


def check_retention(retention_hours: float, *, force: bool) -> None:
    if retention_hours < 0:
        raise UcxError(f"VACUUM retention must be >= 0 hours, got {retention_hours}")
    if retention_hours < SAFE_RETENTION_HOURS and not force:
        raise UcxError(
            f"VACUUM retention {retention_hours:g} h is below the safe minimum of {SAFE_RETENTION_HOURS:g} h "
            "(7 days): running readers, streams and time travel may need those files. "
            "Pass --force-retention if you are sure."
        )


def vacuum(spark: SparkSession, path: str | Path, *, retention_hours: float = SAFE_RETENTION_HOURS,
           force: bool = False) -> int:
    """Delete files no longer referenced and older than the retention; returns how many were deleted."""
    check_retention(retention_hours, force=force)
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(key, "true")
    if retention_hours < SAFE_RETENTION_HOURS:
        spark.conf.set(key, "false")
    try:
        before = _data_files_on_disk(path)
        spark.sql(f"VACUUM {_delta_ref(path)} RETAIN {retention_hours:g} HOURS")
        return max(0, before - _data_files_on_disk(path))
    finally:
        spark.conf.set(key, previous)


def _data_files_on_disk(path: str | Path) -> int:
    root = Path(path)
    return sum(1 for p in root.rglob("*.parquet") if "_delta_log" not in p.parts) if root.is_dir() else 0


def find_tables(warehouse: str | Path, layers: Sequence[str] = ("bronze", "silver", "gold", "quarantine")) -> list[tuple[str, Path]]:
    """("<layer>/<table>", path) of every Delta table under the warehouse."""
    root = Path(warehouse).resolve()
    out: list[tuple[str, Path]] = []
    for layer in layers:
        folder = root / layer
        if folder.is_dir():
            out.extend((f"{layer}/{p.name}", p) for p in sorted(folder.iterdir()) if (p / "_delta_log").is_dir())
    return out
