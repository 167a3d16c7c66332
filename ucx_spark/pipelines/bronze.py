"""Bronze step: land every new landing file exactly once (docs/layers.md, bronze/<feed>).

Exactly-once: the set of ingested files is read from the bronze table itself
(``_source_file``) plus ``quarantine/_files``; each feed's new files are
appended in one Delta commit with an idempotent-write id
(``txnAppId = ucx-bronze-<feed>``, ``txnVersion`` = files in bronze after the
commit), so a crash before the commit leaves nothing and one after it leaves
the files visibly ingested. Rejected files are recorded last; a file whose
rows landed but whose rejection record was lost to a crash is recorded by
the next run (the record is derived from bronze's ``_file_rejected``).
A run with no new file commits nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from ucx_spark.bronze import bronze_schema, missing_required, to_bronze_rows
from ucx_spark.contract import FEED_ORDER
from ucx_spark.io.delta import append_table, last_commit, register_table, table_exists, table_path
from ucx_spark.io.landing import (
    LandingFile,
    RejectedFile,
    UnreadableFile,
    discover,
    read_csv_positional,
    read_header,
)

log = logging.getLogger(__name__)

FILES_TABLE = "_files"
FILES_SCHEMA = StructType(
    [
        StructField("feed", StringType()),
        StructField("file", StringType()),
        StructField("reason", StringType()),
        StructField("landed_rows", LongType()),
        StructField("run_id", StringType()),
        StructField("recorded_at", TimestampType()),
    ]
)


@dataclass(frozen=True)
class FeedIngest:
    feed: str
    files: tuple[str, ...]  # files whose rows landed this run, extract order
    rows: int  # rows landed this run


@dataclass(frozen=True)
class BronzeResult:
    run_id: str
    ingested: tuple[FeedIngest, ...]
    rejected: tuple[RejectedFile, ...]  # rejections recorded in quarantine/_files this run

    @property
    def files_ingested(self) -> int:
        return sum(len(f.files) for f in self.ingested)

    @property
    def rows_landed(self) -> int:
        return sum(f.rows for f in self.ingested)

    def summary(self) -> str:
        text = f"{self.files_ingested} new files, {self.rows_landed:,} rows landed"
        if self.rejected:
            text += f"; {len(self.rejected)} rejected file(s): " + ", ".join(
                f"{r.feed}/{r.name} ({r.reason})" for r in self.rejected
            )
        return text


def recorded_rejections(spark: SparkSession, warehouse: str) -> set[tuple[str, str]]:
    """(feed, file) pairs already in quarantine/_files (a small table: one row per rejected file)."""
    path = table_path(warehouse, "quarantine", FILES_TABLE)
    if not table_exists(spark, path):
        return set()
    rows = spark.read.format("delta").load(path).select("feed", "file").distinct().collect()
    return {(r[0], r[1]) for r in rows}


def ingested_files(spark: SparkSession, path: str) -> dict[str, tuple[str | None, int]]:
    """file -> (file rejection reason or None, landed rows) of a bronze table (one row per file)."""
    if not table_exists(spark, path):
        return {}
    rows = (
        spark.read.format("delta")
        .load(path)
        .groupBy("_source_file")
        .agg(F.max("_file_rejected").alias("reason"), F.count(F.lit(1)).alias("n"))
        .collect()
    )
    return {r[0]: (r[1], int(r[2])) for r in rows}


def _file_rows(spark: SparkSession, f: LandingFile, header: list[str], run_id: str) -> DataFrame:
    raw_df = read_csv_positional(spark, f.path, len(header))
    return to_bronze_rows(
        raw_df, feed=f.feed, header=header, source_file=f.name, extracted_at=f.extracted_at, run_id=run_id
    )


def _append_files(
    spark: SparkSession,
    path: str,
    feed: str,
    parts: list[tuple[LandingFile, DataFrame]],
    already: int,
    rejected: list[RejectedFile],
) -> list[str]:
    """Append the files' rows in one commit; if a file fails mid-read (e.g. a
    truncated gzip), retry file by file and reject the failing ones. Returns
    the names of the files that landed."""
    schema = bronze_schema(feed)
    try:
        batch_df = reduce(DataFrame.unionByName, [df for _, df in parts]).select(*schema.fieldNames())
        append_table(batch_df, path, txn_app_id=f"ucx-bronze-{feed}", txn_version=already + len(parts))
        return [f.name for f, _ in parts]
    except Exception as exc:  # a file broke the batch (e.g. truncated gzip): find it
        if "FAILED_READ_FILE" not in str(exc):
            raise
        if len(parts) == 1:
            f = parts[0][0]
            reason = "unreadable:" + (str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            log.warning("bronze: %s/%s rejected: %s", feed, f.name, reason)
            rejected.append(RejectedFile(feed, f.name, reason))
            return []
    landed: list[str] = []
    for part in parts:
        landed += _append_files(spark, path, feed, [part], already + len(landed), rejected)
    return landed


def run(spark: SparkSession, *, landing: str, warehouse: str, run_id: str) -> BronzeResult:
    """Land the new files of every feed into bronze/<feed>; record rejected files.

    Raises FileNotFoundError naming the landing folder when it does not exist.
    """
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    discovery = discover(landing)
    recorded = recorded_rejections(spark, warehouse)
    new_records: list[RejectedFile] = [r for r in discovery.rejected if (r.feed, r.name) not in recorded]
    ingested: list[FeedIngest] = []
    for feed in FEED_ORDER:
        feed_files = discovery.for_feed(feed)
        if not feed_files:
            continue
        path = table_path(warehouse, "bronze", feed)
        state = ingested_files(spark, path)
        # A file whose rows landed but whose rejection record a crash lost.
        new_records += [
            RejectedFile(feed, name, reason, n)
            for name, (reason, n) in state.items()
            if reason is not None and (feed, name) not in recorded
        ]
        todo = [f for f in feed_files if f.name not in state and (feed, f.name) not in recorded]
        parts: list[tuple[LandingFile, DataFrame]] = []
        missing_column_files: list[str] = []
        for f in todo:
            try:
                header = read_header(spark, f.path)
            except UnreadableFile as exc:
                log.warning("bronze: %s/%s rejected: %s", feed, f.name, exc)
                new_records.append(RejectedFile(feed, f.name, str(exc)))
                continue
            df = _file_rows(spark, f, header, run_id)
            parts.append((f, df))
            if missing_required(feed, header):
                missing_column_files.append(f.name)
        if not parts:
            continue
        before = last_commit(spark, path)
        landed = _append_files(spark, path, feed, parts, len(state), new_records)
        after = last_commit(spark, path)
        register_table(spark, warehouse, "bronze", feed)
        rows = 0
        if after is not None and (before is None or after[0] != before[0]) and len(landed) == len(parts):
            rows = int(after[1].get("numOutputRows", 0))
        elif landed:
            rows = sum(n for name, (_, n) in ingested_files(spark, path).items() if name in landed)
        log.info("bronze: %s landed %d files, %d rows", feed, len(landed), rows)
        ingested.append(FeedIngest(feed, tuple(landed), rows))
        rejected_now = [name for name in missing_column_files if name in landed]
        if rejected_now:
            counts = (
                spark.read.format("delta").load(path)
                .filter(F.col("_source_file").isin(rejected_now))
                .groupBy("_source_file")
                .agg(F.max("_file_rejected"), F.count(F.lit(1)))
                .collect()
            )
            new_records += [RejectedFile(feed, r[0], r[1], int(r[2])) for r in counts]
    if new_records:
        _record_rejections(spark, warehouse, new_records, run_id)
    return BronzeResult(run_id, tuple(ingested), tuple(new_records))


def _record_rejections(spark: SparkSession, warehouse: str, records: list[RejectedFile], run_id: str) -> None:
    path = table_path(warehouse, "quarantine", FILES_TABLE)
    unique = {(r.feed, r.name): r for r in records}
    rows = [(r.feed, r.name, r.reason, r.landed_rows, run_id) for r in unique.values()]
    df = spark.createDataFrame(rows, StructType(FILES_SCHEMA.fields[:5])).withColumn(
        "recorded_at", F.current_timestamp()
    )
    current = last_commit(spark, path)
    append_table(df, path, txn_app_id="ucx-quarantine-files", txn_version=0 if current is None else current[0] + 1)
    register_table(spark, warehouse, "quarantine", FILES_TABLE)
