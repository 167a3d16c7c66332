"""Damaged tables: found before a run writes anything, set aside, built again from the layer below.

``check_warehouse`` reads every table's log (io/delta_log.damage: the commits a
reader needs, present and valid JSON; every live data file on disk) and stops a
run that would read or write a damaged table, naming it, what is wrong and how to
recover. ``ucx rebuild --table LAYER/TABLE`` is that recovery: the table is moved
(never deleted) to ``<warehouse>/_damaged/LAYER/TABLE-<time>`` and the
bookkeeping that would stop the next ``ucx pipeline`` from building it again is
undone:

- bronze/<feed>: the next run ingests the feed's landing files again (the landing
  zone keeps what was sent; silver has processed those files already and keeps
  its rows);
- silver/<feed>, quarantine/<feed>: the feed's files leave silver/_processed_files,
  so the next run processes every bronze file of the feed again (idempotent:
  current rows, quarantine and superseded rows come out as before);
  silver/ami_daily with AMI; silver/household_matches with the households feed;
  silver/_superseded and silver/_processed_files with every feed;
- gold/<table>: the next run's gold step builds it again from silver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import AMI_DAILY, HOUSEHOLD_MATCHES, PROCESSED_FILES, SUPERSEDED
from ucx_spark.contract import FEEDS
from ucx_spark.errors import DataError, UcxError
from ucx_spark.io import delta_log
from ucx_spark.io.delta import table_exists, table_path

LAYERS = ("bronze", "silver", "quarantine", "gold")
DAMAGED_DIR = "_damaged"


@dataclass(frozen=True)
class RebuildResult:
    table: str
    moved_to: str
    reprocess_feeds: tuple[str, ...]

    def summary(self) -> str:
        again = (f"; the next `ucx pipeline` processes every bronze file of {', '.join(self.reprocess_feeds)} again"
                 if self.reprocess_feeds else "; the next `ucx pipeline` builds it again")
        return f"{self.table} set aside in {self.moved_to}{again}"


def damaged_tables(warehouse: str | Path) -> list[tuple[str, Path, delta_log.Damage]]:
    """(LAYER/TABLE, path, damage) of every damaged Delta table of the warehouse's layers."""
    found = []
    root = Path(warehouse)
    for layer in LAYERS:
        folder = root / layer
        if not folder.is_dir():
            continue
        for table in sorted(p for p in folder.iterdir() if (p / delta_log.LOG_DIR).is_dir()):
            dmg = delta_log.damage(table)
            if dmg is not None:
                found.append((f"{layer}/{table.name}", table, dmg))
    return found


def check_warehouse(warehouse: str | Path) -> None:
    """Raise DataError naming every damaged table, what is wrong and how to recover (module doc)."""
    found = damaged_tables(warehouse)
    if not found:
        return
    lines = []
    for name, path, dmg in found:
        line = f"{name} is damaged: {dmg.detail}."
        if dmg.kind == "missing_file" and dmg.last_good is not None:
            line += (f" Its last version without that file is {dmg.last_good} ({dmg.restore_sql(path)}; the rows of "
                     "later commits are then missing until their files are processed again).")
        elif dmg.kind == "missing_file":
            line += " Every version the log still holds has that file: only a rebuild brings its rows back."
        lines.append(line)
    names = " ".join(f"--table {n}" for n, _, _ in found)
    raise DataError(
        " ".join(lines) + f" Nothing was changed. To recover: `ucx rebuild {names}` sets the table aside in "
        f"{Path(warehouse) / DAMAGED_DIR} (nothing is deleted) and the next `ucx pipeline` builds it again from the "
        "layer below."
    )


def feeds_to_reprocess(layer: str, table: str) -> tuple[str, ...]:
    if layer in ("bronze", "gold"):
        return ()
    if table in FEEDS:
        return (table,)
    if layer == "silver" and table == AMI_DAILY:
        return ("ami",)
    if layer == "silver" and table == HOUSEHOLD_MATCHES:
        return ("households",)
    if layer == "silver" and table in (SUPERSEDED, PROCESSED_FILES):
        return tuple(FEEDS)
    raise UcxError(f"{layer}/{table}: not a table `ucx rebuild` knows how to build again")


def run(spark: SparkSession, *, warehouse: str, table: str, run_id: str) -> RebuildResult:
    """Set ``table`` (LAYER/NAME) aside and undo what would keep the next run from rebuilding it."""
    from ucx_spark.io.lock import warehouse_lock

    layer, _, name = table.partition("/")
    if layer not in LAYERS or not name or "/" in name:
        raise UcxError(f"--table {table!r}: expected LAYER/TABLE with LAYER one of {', '.join(LAYERS)}")
    path = Path(table_path(warehouse, layer, name))
    if not (path / delta_log.LOG_DIR).is_dir():
        raise UcxError(f"--table {table}: no Delta table at {path}")
    feeds = feeds_to_reprocess(layer, name)
    with warehouse_lock(warehouse, run_id=run_id):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = Path(warehouse) / DAMAGED_DIR / layer / f"{name}-{stamp}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(Path(warehouse) / DAMAGED_DIR, 0o700)  # it may hold landed identifiers (bronze, silver)
        os.rename(path, dest)
        processed = table_path(warehouse, "silver", PROCESSED_FILES)
        if feeds and Path(processed) != path and table_exists(spark, processed):
            from delta.tables import DeltaTable

            DeltaTable.forPath(spark, processed).delete(F.col("feed").isin(*feeds))
    return RebuildResult(table, str(dest), feeds)


__all__ = ["RebuildResult", "check_warehouse", "damaged_tables", "feeds_to_reprocess", "run"]
