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

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from ucx_spark.bronze import bronze_schema, missing_required
from ucx_spark.catalog import QUARANTINED_FILES
from ucx_spark.catalog import spec as table_spec
from ucx_spark.concurrency import run_per_feed
from ucx_spark.contract import FEED_ORDER, FEEDS
from ucx_spark.io import delta_log
from ucx_spark.io.csv_arrow import FileSpec, read_landing_files, unreadable_in
from ucx_spark.io.delta import (
    append_table,
    landed_row_counts,
    last_commit,
    partition_values,
    register_table,
    table_exists,
    table_path,
)
from ucx_spark.io.landing import (
    LandingFile,
    RejectedFile,
    UnreadableFile,
    changed_since,
    discover,
    file_sha256,
    read_header,
)
from ucx_spark.progress import bar

log = logging.getLogger(__name__)

FINGERPRINTS_KEY = "fingerprints"  # userMetadata of a bronze append: each file's size, mtime, sha256
REPLACED = "replaced_after_ingest"
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
    # (file, columns) of the landed files with columns the contract does not know (kept in _extra)
    extra_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
        extra = [(f.feed, name, cols) for f in self.ingested for name, cols in f.extra_columns]
        if extra:
            text += "; columns the contract does not know (kept in bronze _extra): " + ", ".join(
                f"{feed}/{name} ({', '.join(cols)})" for feed, name, cols in extra)
        if self.rejected:
            text += f"; {len(self.rejected)} rejected file(s): " + ", ".join(
                f"{r.feed}/{r.name} ({r.reason})" for r in self.rejected
            )
        return text


def recorded_rejections(spark: SparkSession, warehouse: str) -> set[tuple[str, str]]:
    """(feed, file) pairs already in quarantine/_files (a small table: one row per rejected file)."""
    path = table_path(warehouse, "quarantine", QUARANTINED_FILES)
    if not table_exists(spark, path):
        return set()
    rows = spark.read.format("delta").load(path).select("feed", "file").distinct().collect()
    return {(r[0], r[1]) for r in rows}


def _append_files(
    spark: SparkSession,
    path: str,
    feed: str,
    specs: list[FileSpec],
    already: int,
    run_id: str,
    rejected: list[RejectedFile],
) -> list[str]:
    """Append the files' rows in one commit (one Spark job, a task per file). A file that cannot
    be read to its end (e.g. a truncated gzip) is rejected and the others are appended without
    it. Returns the names of the files that landed."""
    import json
    from pathlib import Path

    todo = list(specs)
    prints = {}
    for s in todo:
        st = Path(s.path.removeprefix("file://")).stat()
        prints[s.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(s.path)}
    while todo:
        batch_df = read_landing_files(spark, todo, columns=FEEDS[feed].column_names).withColumns(
            {"_ingested_at": F.current_timestamp(), "_run_id": F.lit(run_id)}
        )
        metadata = json.dumps({FINGERPRINTS_KEY: {s.name: prints[s.name] for s in todo}, "run_id": run_id})
        try:
            append_table(
                batch_df.select(*bronze_schema(feed).fieldNames()), path, txn_app_id=f"ucx-bronze-{feed}",
                txn_version=already + len(todo), partition_by=table_spec("bronze", feed).partition_by,
                properties=table_spec("bronze", feed).table_properties,
                user_metadata=metadata,
            )
            return [s.name for s in todo]
        except Exception as exc:
            bad = unreadable_in(exc)
            if bad is None or bad.index >= len(todo):
                raise
            spec = todo.pop(bad.index)
            log.warning("bronze: %s/%s rejected: %s", feed, spec.name, bad.reason)
            rejected.append(RejectedFile(feed, spec.name, bad.reason))
    return []


def run(spark: SparkSession, *, landing: str, warehouse: str, run_id: str, threads: int = 4) -> BronzeResult:
    """Land the new files of every feed into bronze/<feed>; record rejected files. Feeds are
    independent: ``threads`` of them land side by side (concurrency.run_per_feed).

    Raises FileNotFoundError naming the landing folder when it does not exist.
    """
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    discovery = discover(landing)
    recorded = recorded_rejections(spark, warehouse)
    new_records: list[RejectedFile] = [r for r in discovery.rejected if (r.feed, r.name) not in recorded]
    feeds = [feed for feed in FEED_ORDER if discovery.for_feed(feed)]

    with bar("bronze: feeds", len(feeds)) as advance:

        def land(feed: str) -> tuple[FeedIngest | None, list[RejectedFile]]:
            out = _land_feed(spark, feed, discovery.for_feed(feed), warehouse=warehouse, run_id=run_id,
                             recorded=recorded)
            advance(f"{feed}: {out[0].rows:,} rows" if out[0] else f"{feed}: nothing new")
            return out

        landed = run_per_feed(spark, feeds, land, threads=threads)
    ingested = [ingest for feed in feeds if (ingest := landed[feed][0]) is not None]
    new_records += [record for feed in feeds for record in landed[feed][1]]
    if new_records:
        _record_rejections(spark, warehouse, new_records, run_id)
    return BronzeResult(run_id, tuple(ingested), tuple(new_records))


def _land_feed(
    spark: SparkSession, feed: str, files: tuple[LandingFile, ...], *, warehouse: str, run_id: str,
    recorded: set[tuple[str, str]],
) -> tuple[FeedIngest | None, list[RejectedFile]]:
    """One feed's new files appended in one commit; returns what landed and the rejections to
    record (unreadable files, files missing a required column, and files whose rows landed
    rejected but whose record a crash lost)."""
    records: list[RejectedFile] = []
    path = table_path(warehouse, "bronze", feed)
    state = partition_values(spark, path)  # file -> rejection reason, from the partitions
    lost = sorted(name for name, reason in state.items() if reason is not None and (feed, name) not in recorded)
    if lost:
        counts = landed_row_counts(spark, path, lost)
        records += [RejectedFile(feed, name, str(state[name]), counts.get(name, 0)) for name in lost]
    records += replaced_files(path, [f for f in files if f.name in state and (feed, f.name) not in recorded], feed)
    todo = [f for f in files if f.name not in state and (feed, f.name) not in recorded]
    specs: list[FileSpec] = []
    missing_column: dict[str, str] = {}
    extra_columns: list[tuple[str, tuple[str, ...]]] = []
    for f in todo:
        try:
            header = read_header(spark, f.path)
        except UnreadableFile as exc:
            log.warning("bronze: %s/%s rejected: %s", feed, f.name, exc)
            records.append(RejectedFile(feed, f.name, str(exc)))
            continue
        missing = missing_required(feed, header)
        reason = "missing_column:" + ",".join(missing) if missing else None
        unknown = tuple(c for c in header if c not in FEEDS[feed].column_names)
        if unknown:
            log.warning("bronze: %s/%s has columns the contract does not know: %s", feed, f.name, ", ".join(unknown))
            extra_columns.append((f.name, unknown))
        if reason:
            missing_column[f.name] = reason
        specs.append(FileSpec(f.path, f.name, f.extracted_at, tuple(header), f.gzipped, reason))
    if not specs:
        return None, records
    before = last_commit(spark, path)
    landed = _append_files(spark, path, feed, specs, len(state), run_id, records)
    after = last_commit(spark, path)
    register_table(spark, warehouse, "bronze", feed)
    if not landed:
        return None, records
    per_file: dict[str, int] = {}
    if after is not None and (before is None or after[0] != before[0]):
        rows = int(after[1].get("numOutputRows", 0))
    else:  # an idempotent write skipped by Delta: a rerun after a crash between commit and record
        per_file = landed_row_counts(spark, path, landed)
        rows = sum(per_file.values())
    log.info("bronze: %s landed %d files, %d rows", feed, len(landed), rows)
    rejected_now = [name for name in landed if name in missing_column]
    if rejected_now:
        counts = per_file or landed_row_counts(spark, path, rejected_now)
        records += [RejectedFile(feed, name, missing_column[name], counts.get(name, 0)) for name in rejected_now]
    landed_extra = tuple((name, cols) for name, cols in extra_columns if name in landed)
    return FeedIngest(feed, tuple(landed), rows, landed_extra), records


def ingested_fingerprints(path: str) -> dict[str, dict]:
    """file -> the fingerprint its bronze append recorded (from the commits still in the log)."""
    import json

    out: dict[str, dict] = {}
    for _, info in delta_log.commit_infos(path):
        try:
            data = json.loads(info.get("userMetadata") or "{}")
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        for name, fp in (data.get(FINGERPRINTS_KEY) or {}).items():
            out.setdefault(name, fp)  # newest commit first
    return out


def replaced_files(path: str, ingested: list[LandingFile], feed: str) -> list[RejectedFile]:
    """Landing files already in bronze whose bytes changed since (same name, other content): a
    re-send the contract does not allow. Reported as rejected, never silently ignored or loaded
    twice; detected while the ingest commit is in the log (``delta.logRetentionDuration``)."""
    if not ingested:
        return []
    prints = ingested_fingerprints(path)
    out = []
    for f in ingested:
        fp = prints.get(f.name)
        if fp is not None and changed_since(f.path, fp):
            log.warning("bronze: %s/%s changed after it was ingested: rejected as a re-send", feed, f.name)
            out.append(RejectedFile(feed, f.name, REPLACED))
    return out


def _record_rejections(spark: SparkSession, warehouse: str, records: list[RejectedFile], run_id: str) -> None:
    path = table_path(warehouse, "quarantine", QUARANTINED_FILES)
    unique = {(r.feed, r.name): r for r in records}
    rows = [(r.feed, r.name, r.reason, r.landed_rows, run_id) for r in unique.values()]
    df = spark.createDataFrame(rows, StructType(FILES_SCHEMA.fields[:5])).withColumn(
        "recorded_at", F.current_timestamp()
    )
    current = last_commit(spark, path)
    append_table(df, path, txn_app_id="ucx-quarantine-files", txn_version=0 if current is None else current[0] + 1)
    register_table(spark, warehouse, "quarantine", QUARANTINED_FILES)
