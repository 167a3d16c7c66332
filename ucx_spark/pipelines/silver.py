"""Silver step: bronze rows not yet processed -> silver/<feed> + quarantine/<feed>.

Feeds run in ``contract.FEED_ORDER`` (accounts first, so foreign keys see the
current accounts). Per feed, the unit of work is the set of bronze files not
in ``silver/_processed_files``; every write is idempotent so a crash
(SIGKILL) anywhere followed by a rerun gives the same tables as one
uninterrupted run:

1. quarantine/<feed>: insert-only MERGE keyed by (_source_file, _row_number);
2. silver/_superseded: insert-only MERGE keyed by (feed, _source_file,
   _row_number) of every valid row that is not (or no longer) its key's
   current row, computed against silver/<feed> *before* step 3 so a row
   replaced by a crashed run was logged before it vanished;
3. silver/<feed>: MERGE by the contract key with an ordering guard (replace
   only with a later extract), so re-applying a batch changes nothing;
4. (ami) silver/ami_daily_completeness: upsert of the touched meter days,
   recomputed from silver/ami;
5. silver/_processed_files: appended last (idempotent-write id).

silver/household_matches is rebuilt (overwrite) whenever the versions of
silver/accounts or silver/households it was built from are not the current
ones, which also repairs a crash between a feed and the rebuild.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from ucx_spark.contract import FEED_ORDER, FEEDS
from ucx_spark.errors import ConfigError
from ucx_spark.io.delta import (
    append_table,
    insert_new_rows,
    register_table,
    table_exists,
    table_path,
    table_version,
    upsert_if_later,
    upsert_rows,
)
from ucx_spark.pipelines.bronze import ingested_files
from ucx_spark.silver.addresses import match_households
from ucx_spark.silver.ami import daily_completeness
from ucx_spark.silver.parse import require_time_zone, require_utc_session
from ucx_spark.silver.rows import (
    ORDER_COLUMNS,
    quarantine_rows,
    superseded_rows,
    typed_rows,
    winner_rows,
    with_feed_extras,
    with_rank_in_key,
)
from ucx_spark.silver.rules import classify

log = logging.getLogger(__name__)

PROCESSED_TABLE = "_processed_files"
SUPERSEDED_TABLE = "_superseded"
MATCHES_TABLE = "household_matches"
COMPLETENESS_TABLE = "ami_daily_completeness"


@dataclass(frozen=True)
class FeedSilver:
    feed: str
    files: tuple[str, ...]  # bronze files processed this run
    rows: int  # their rows
    valid: int  # rows that passed every rule
    quarantined: int
    rules: tuple[tuple[str, int], ...]  # quarantined rows per rule


@dataclass(frozen=True)
class SilverResult:
    run_id: str
    feeds: tuple[FeedSilver, ...]
    households_total: int | None  # silver/households rows (None: no households or accounts yet)
    households_matched: int | None
    household_match_rate: float | None  # matched / total

    def feed(self, name: str) -> FeedSilver | None:
        return next((f for f in self.feeds if f.feed == name), None)

    def summary(self) -> str:
        rows = sum(f.rows for f in self.feeds)
        bad = sum(f.quarantined for f in self.feeds)
        text = f"{rows:,} bronze rows processed, {bad:,} quarantined"
        by_rule: dict[str, int] = {}
        for f in self.feeds:
            for rule, n in f.rules:
                by_rule[rule] = by_rule.get(rule, 0) + n
        if by_rule:
            text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())) + ")"
        if self.household_match_rate is not None:
            text += (
                f"; third-party households matched to premises: {self.households_matched}/"
                f"{self.households_total} = {self.household_match_rate:.1%}"
            )
        return text


def _read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def processed_files(spark: SparkSession, warehouse: str) -> dict[str, set[str]]:
    """feed -> bronze files already processed into silver (one row per file)."""
    path = table_path(warehouse, "silver", PROCESSED_TABLE)
    out: dict[str, set[str]] = {f: set() for f in FEEDS}
    if table_exists(spark, path):
        for r in _read(spark, path).select("feed", "_source_file").collect():
            out.setdefault(r[0], set()).add(r[1])
    return out


def run(spark: SparkSession, *, warehouse: str, run_id: str, time_zone: str, pseudonym_key: bytes) -> SilverResult:
    """Process every bronze file not yet in silver, feed by feed in FEED_ORDER."""
    require_utc_session(spark)
    require_time_zone(time_zone)
    if not pseudonym_key:
        raise ConfigError("pseudonym_key is empty: set UCX_PSEUDONYM_KEY (contract section 3)")
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    done = processed_files(spark, warehouse)
    results: list[FeedSilver] = []
    for feed in FEED_ORDER:
        r = _process_feed(
            spark, feed, warehouse=warehouse, run_id=run_id, time_zone=time_zone,
            pseudonym_key=pseudonym_key, done=done[feed],
        )
        if r is not None:
            results.append(r)
    total, matched = _refresh_household_matches(spark, warehouse)
    rate = None if not total else matched / total  # type: ignore[operator]
    return SilverResult(run_id, tuple(results), total, matched, rate)


def _refs(spark: SparkSession, warehouse: str, feed: str) -> dict[str, DataFrame]:
    refs: dict[str, DataFrame] = {}
    for fk in FEEDS[feed].foreign_keys:
        path = table_path(warehouse, "silver", fk.feed)
        if table_exists(spark, path):
            refs[fk.column] = _read(spark, path).select(fk.ref_column)
    return refs


def _process_feed(
    spark: SparkSession,
    feed: str,
    *,
    warehouse: str,
    run_id: str,
    time_zone: str,
    pseudonym_key: bytes,
    done: set[str],
) -> FeedSilver | None:
    bronze_path = table_path(warehouse, "bronze", feed)
    if not table_exists(spark, bronze_path):
        return None
    new = sorted(set(ingested_files(spark, bronze_path)) - done)
    if not new:
        return None
    log.info("silver: %s processing %d files", feed, len(new))
    bronze_df = _read(spark, bronze_path).filter(F.col("_source_file").isin(new))
    classified_df = classify(
        bronze_df, feed=feed, time_zone=time_zone, refs=_refs(spark, warehouse, feed)
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r[0]: int(r[1]) for r in classified_df.groupBy("rule").count().collect()}
        valid = counts.pop(None, 0)
        quarantined = sum(counts.values())
        if quarantined:
            q_path = table_path(warehouse, "quarantine", feed)
            insert_new_rows(
                quarantine_rows(classified_df, feed=feed, run_id=run_id), q_path, keys=("_source_file", "_row_number")
            )
            register_table(spark, warehouse, "quarantine", feed)
            log.info("silver: %s quarantine written", feed)
        if valid:
            _merge_valid(spark, classified_df, feed, warehouse=warehouse, run_id=run_id,
                         time_zone=time_zone, pseudonym_key=pseudonym_key)
        _log_processed(spark, warehouse, feed, new, run_id, already=len(done))
    finally:
        classified_df.unpersist()
    rows = valid + quarantined
    log.info("silver: %s %d rows, %d valid, %d quarantined", feed, rows, valid, quarantined)
    return FeedSilver(feed, tuple(new), rows, valid, quarantined, tuple(sorted(counts.items())))


def _merge_valid(
    spark: SparkSession,
    classified_df: DataFrame,
    feed: str,
    *,
    warehouse: str,
    run_id: str,
    time_zone: str,
    pseudonym_key: bytes,
) -> None:
    silver_path = table_path(warehouse, "silver", feed)
    key = FEEDS[feed].key
    ranked_df = with_rank_in_key(typed_rows(classified_df, feed=feed, run_id=run_id), feed=feed).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        current_df = _read(spark, silver_path) if table_exists(spark, silver_path) else None
        superseded_df = superseded_rows(ranked_df, current_df, feed=feed, run_id=run_id)
        if not superseded_df.isEmpty():
            insert_new_rows(
                superseded_df,
                table_path(warehouse, "silver", SUPERSEDED_TABLE),
                keys=("feed", "_source_file", "_row_number"),
            )
            log.info("silver: %s superseded rows logged", feed)
        names_df = None
        if any(c.free_text for c in FEEDS[feed].columns):
            accounts_path = table_path(warehouse, "silver", "accounts")
            if table_exists(spark, accounts_path):
                names_df = _read(spark, accounts_path).select("account_id", "customer_name")
        winners_df = with_feed_extras(
            winner_rows(ranked_df), feed=feed, time_zone=time_zone, pseudonym_key=pseudonym_key, names_df=names_df
        )
        upsert_if_later(winners_df, silver_path, keys=key, order_by=ORDER_COLUMNS)
        register_table(spark, warehouse, "silver", feed)
        log.info("silver: %s merged", feed)
        if feed == "ami":
            _update_completeness(spark, warehouse, winners_df, time_zone=time_zone, created=current_df is None)
    finally:
        ranked_df.unpersist()


def _update_completeness(
    spark: SparkSession, warehouse: str, batch_df: DataFrame, *, time_zone: str, created: bool = False
) -> None:
    """Recompute the meter days the batch touched from silver/ami (after its MERGE) and upsert them.

    ``created``: silver/ami did not exist before this batch, so the batch's rows
    are exactly the table (upsert_if_later appended them as they are) and the
    days are computed from them without reading the table back.
    """
    if created:
        ami_df = batch_df
    else:
        touched_df = batch_df.select("meter_id", "local_date").distinct()
        ami_df = _read(spark, table_path(warehouse, "silver", "ami")).join(
            touched_df, ["meter_id", "local_date"], "left_semi"
        )
    path = table_path(warehouse, "silver", COMPLETENESS_TABLE)
    upsert_rows(daily_completeness(ami_df, time_zone=time_zone), path, keys=("meter_id", "local_date"))
    register_table(spark, warehouse, "silver", COMPLETENESS_TABLE)


def _log_processed(spark: SparkSession, warehouse: str, feed: str, files: list[str], run_id: str, *, already: int) -> None:
    schema = StructType([StructField(n, StringType()) for n in ("feed", "_source_file", "_run_id")])
    df = spark.createDataFrame([(feed, f, run_id) for f in files], schema).withColumn(
        "processed_at", F.current_timestamp()
    )
    path = table_path(warehouse, "silver", PROCESSED_TABLE)
    append_table(df, path, txn_app_id=f"ucx-silver-{feed}", txn_version=already + len(files))
    register_table(spark, warehouse, "silver", PROCESSED_TABLE)


def _refresh_household_matches(spark: SparkSession, warehouse: str) -> tuple[int | None, int | None]:
    """Rebuild silver/household_matches if accounts or households changed since it was built;
    returns (household records, matched records)."""
    acc_path = table_path(warehouse, "silver", "accounts")
    hh_path = table_path(warehouse, "silver", "households")
    if not (table_exists(spark, acc_path) and table_exists(spark, hh_path)):
        return None, None
    built_from = f"accounts@{table_version(spark, acc_path)},households@{table_version(spark, hh_path)}"
    path = table_path(warehouse, "silver", MATCHES_TABLE)
    stored = None
    if table_exists(spark, path):
        from delta.tables import DeltaTable

        stored = DeltaTable.forPath(spark, path).history(1).select("userMetadata").first()[0]
    if stored != built_from:
        matches_df = match_households(_read(spark, hh_path), _read(spark, acc_path))
        (
            matches_df.write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
            .option("userMetadata", built_from)
            .save(path)
        )
        register_table(spark, warehouse, "silver", MATCHES_TABLE)
    row = _read(spark, path).agg(F.count(F.lit(1)), F.count("premise_id")).first()
    return int(row[0]), int(row[1])
