"""Silver step: bronze rows not yet processed -> silver/<feed> + quarantine/<feed>.

Feeds run in ``contract.FEED_ORDER`` (accounts first, so foreign keys see the
current accounts). Per feed, the unit of work is the set of bronze files not
in ``silver/_processed_files`` (read from bronze's ``_source_file``
partitions). A small batch (``SMALL_BATCH_ROWS``, by its log) is classified
(typed values, the row-local rules and foreign keys), judged for ambiguous keys
and ranked in one plan kept as a local checkpoint; a larger one is classified
once and cached, and only the rows whose key occurs more than once in it (few,
usually none) go through the windows that find ambiguous keys and rank the
copies. Every write is idempotent so a crash (SIGKILL)
anywhere followed by a rerun gives the same tables as one uninterrupted run:

1. quarantine/<feed>: the bad rows, appended (an insert-only MERGE keyed by
   (_source_file, _row_number) when a crashed run already wrote some);
2. silver/_superseded: every valid row that is not (or no longer) its key's
   current row, computed against silver/<feed> *before* step 3 so a row
   replaced by a crashed run was logged before it vanished (same append rule);
3. silver/<feed>: the batch winners. When no winner's key is current yet (a
   first load, a new day of AMI) they are appended; otherwise a MERGE by the
   contract key with an ordering guard (replace only with a later extract), so
   re-applying a batch changes nothing. silver/ami is partitioned by
   ``local_month``; the comparison with current rows and the MERGE read only
   the batch's months and interval range (literal predicates Delta prunes by);
4. (ami) silver/ami_daily: the meter-days the batch touched (and the next
   day of each, whose first night hour looks back at them) recomputed from
   silver/ami and upserted; ``_run_id`` says which run recomputed a row;
5. silver/_processed_files: every feed's files, in one commit after all feeds
   (idempotent-write id).

silver/household_matches is rebuilt (overwrite) whenever the versions of
silver/accounts or silver/households it was built from are not the current
ones, which also repairs a crash between a feed and the rebuild.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from ucx_spark.catalog import HOUSEHOLD_MATCHES, PROCESSED_FILES, SUPERSEDED, spec
from ucx_spark.concurrency import LOCK, job_tag, run_per_feed
from ucx_spark.contract import FEED_ORDER, FEEDS
from ucx_spark.errors import ConfigError
from ucx_spark.io.delta import (
    append_new_rows,
    append_table,
    landed_row_counts,
    merge_if_later,
    overwrite_table,
    read_path,
    register_table,
    source_files,
    table_exists,
    table_path,
    table_version,
)
from ucx_spark.pipelines.silver_ami import AmiSpan, hooks
from ucx_spark.progress import bar
from ucx_spark.session import release_checkpoint
from ucx_spark.silver.addresses import match_households
from ucx_spark.silver.parse import require_time_zone, require_utc_session
from ucx_spark.silver.rows import (
    ORDER_COLUMNS,
    current_pairs,
    quarantine_rows,
    superseded_against_current,
    superseded_in_batch,
    typed_rows,
    winner_rows,
    with_feed_extras,
    with_rank_in_batch,
    without_rank,
)
from ucx_spark.silver.rules import classify_rows, profile_columns, repeated_keys, value_col, with_ambiguous_key_rule

log = logging.getLogger(__name__)

# A batch with at most this many rows of repeated keys resolves them with a broadcast join.
BROADCAST_MULTI_KEYS = 200_000


@dataclass(frozen=True)
class FeedSilver:
    feed: str
    files: tuple[str, ...]  # bronze files processed this run
    rows: int  # their rows
    valid: int  # rows that passed every rule
    quarantined: int
    rules: tuple[tuple[str, int], ...]  # quarantined rows per rule
    days: tuple[date, ...] = field(default=())  # ami: local days whose silver/ami_daily rows were recomputed


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


def processed_files(spark: SparkSession, warehouse: str) -> dict[str, set[str]]:
    """feed -> bronze files already processed into silver (one row per file)."""
    path = table_path(warehouse, "silver", PROCESSED_FILES)
    out: dict[str, set[str]] = {f: set() for f in FEEDS}
    if table_exists(spark, path):
        for r in read_path(spark, path).select("feed", "_source_file").collect():
            out.setdefault(r[0], set()).add(r[1])
    return out


def feed_waves() -> list[list[str]]:
    """Feeds in the order their foreign keys allow: the referenced ones (no foreign key), then the
    others (which check theirs against the first wave's silver tables)."""
    return [
        [f for f in FEED_ORDER if not FEEDS[f].foreign_keys],
        [f for f in FEED_ORDER if FEEDS[f].foreign_keys],
    ]


def run(
    spark: SparkSession, *, warehouse: str, run_id: str, time_zone: str, pseudonym_key: bytes, threads: int = 4
) -> SilverResult:
    """Process every bronze file not yet in silver: the feeds of each wave (feed_waves) side by
    side, ``threads`` at a time (concurrency.run_per_feed)."""
    require_utc_session(spark)
    require_time_zone(time_zone)
    if not pseudonym_key:
        raise ConfigError("pseudonym_key is empty: set UCX_PSEUDONYM_KEY (contract section 3)")
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    done = processed_files(spark, warehouse)
    results: list[FeedSilver] = []
    deferred: list[tuple[DataFrame, list[str]]] = []
    caches: list[DataFrame] = []
    by_feed: dict[str, FeedSilver | None] = {}
    references = _References(spark, warehouse)

    try:
        with bar("silver: feeds", len(FEEDS)) as advance:

            def work(feed: str) -> FeedSilver | None:
                out = _process_feed(
                    spark, feed, warehouse=warehouse, run_id=run_id, time_zone=time_zone,
                    pseudonym_key=pseudonym_key, done=done[feed], deferred=deferred, caches=caches,
                    references=references,
                )
                advance(f"{feed}: {out.rows:,} rows, {out.quarantined:,} quarantined" if out else f"{feed}: nothing new")
                return out

            for wave in feed_waves():
                references.readable = set(FEEDS) - set(wave)
                by_feed.update(run_per_feed(spark, wave, work, threads=threads))
        results = [r for f in FEED_ORDER if (r := by_feed.get(f)) is not None]
        if deferred:
            with job_tag(spark, "step:superseded"):
                append_new_rows(
                    reduce(DataFrame.unionByName, [df for df, _ in deferred]),
                    table_path(warehouse, "silver", SUPERSEDED),
                    keys=spec("silver", SUPERSEDED).keys, files=sorted({f for _, fs in deferred for f in fs}),
                    partition_by=spec("silver", SUPERSEDED).partition_by,
                )
                register_table(spark, warehouse, "silver", SUPERSEDED)
    finally:
        for cache in caches:
            cache.unpersist()
            release_checkpoint(cache)
        references.release()
    # One commit marks every feed's files processed, after all of them were written: a crash
    # before it reprocesses the batch, which every write above takes idempotently.
    with job_tag(spark, "step:processed"):
        _log_processed(spark, warehouse, [(r.feed, f) for r in results for f in r.files], run_id,
                       already=sum(len(v) for v in done.values()))
    with job_tag(spark, "step:matches"):
        total, matched = _refresh_household_matches(spark, warehouse)
    rate = None if not total else matched / total  # type: ignore[operator]
    return SilverResult(run_id, tuple(results), total, matched, rate)


# A referenced silver table (accounts) with at most this many rows (its log's statistics) is read
# once per step, after the feeds it may change, and shared by every feed that checks a foreign key
# against it or scrubs names with it: one Delta scan instead of one per use (each scan of a Delta
# table first lists its snapshot's files in a Spark job).
SHARED_REFERENCE_MAX_ROWS = 1_000_000


class _References:
    """The silver tables the second wave of feeds reads (foreign keys, names, meters), each read
    on first use by one thread (the others wait) as a local checkpoint of the columns they use
    when the log says it is small, else as a plain Delta read. ``release`` frees the blocks."""

    def __init__(self, spark: SparkSession, warehouse: str) -> None:
        self.spark, self.warehouse = spark, warehouse
        self._frames: dict[str, DataFrame | None] = {}
        self.readable: set[str] = set()  # tables no feed of the running wave writes

    def table(self, name: str) -> DataFrame | None:
        """silver/<name> (None: no such table yet), once the wave that writes it is done."""
        if name not in self.readable:
            raise RuntimeError(f"silver/{name} is read as a reference before its feed's wave is done")
        with LOCK:
            if name not in self._frames:
                self._frames[name] = self._read(name)
            return self._frames[name]

    def _read(self, name: str) -> DataFrame | None:
        from ucx_spark.io import delta_log

        path = table_path(self.warehouse, "silver", name)
        if not table_exists(self.spark, path):
            return None
        df = read_path(self.spark, path)
        wanted = sorted({fk.ref_column for f in FEEDS.values() for fk in f.foreign_keys if fk.feed == name}
                        | ({"account_id", "customer_name", "meter_id"} if name == "accounts" else set()))
        counts = delta_log.row_count(path)
        if counts is None or sum(counts.values()) > SHARED_REFERENCE_MAX_ROWS:
            return df
        with job_tag(self.spark, f"step:reference {name}"):
            return df.select(*wanted).localCheckpoint(eager=True)

    def release(self) -> None:
        for df in self._frames.values():
            if df is not None:
                release_checkpoint(df)
        self._frames.clear()


def _refs(references: _References, feed: str) -> dict[str, DataFrame]:
    refs: dict[str, DataFrame] = {}
    for fk in FEEDS[feed].foreign_keys:
        table_df = references.table(fk.feed)
        if table_df is not None:
            refs[fk.column] = table_df.select(fk.ref_column)
    return refs


@dataclass(frozen=True)
class _Profile:
    """What one aggregation over a classified batch tells."""

    counts: dict[str | None, int]  # rows by first rule broken (None: valid)
    span: AmiSpan | None  # where the valid rows lie, for the feeds that prune by it (silver_ami)
    repeated: bool = False  # some valid key occurs more than once in the batch (rows beaten in it)


def _profile(classified_df: DataFrame, *, feed: str, time_zone: str) -> _Profile:
    """Rows per rule and the feed's own aggregations (silver_ami.FeedHooks): one aggregation
    without a shuffle. Over ranked rows (``__rank``: _resolve_small) the counts are after the
    ambiguity rule and ``repeated`` says whether a row was beaten; the span is of the rows valid
    before that rule either way (``ambiguous_key`` is given to otherwise-valid rows only)."""
    from ucx_spark.contract import RULES

    feed_hooks = hooks(feed)
    ranked = "__rank" in classified_df.columns
    valid = F.col("rule").isNull() | (F.col("rule") == "ambiguous_key") if ranked else F.col("rule").isNull()
    aggs = profile_columns() + feed_hooks.profile_columns(valid, time_zone=time_zone)
    if ranked:
        aggs.append(F.count(F.when(F.col("__rank") > 1, 1)).alias("beaten"))
    row = classified_df.agg(*aggs).first()
    assert row is not None
    counts: dict[str | None, int] = {None: int(row["valid"])}
    counts.update({r: int(row[f"rule_{i}"]) for i, r in enumerate(RULES) if row[f"rule_{i}"]})
    return _Profile(counts, feed_hooks.span(row), ranked and bool(row["beaten"]))


# A batch of at most this many bronze rows (io.delta.landed_row_counts: its files' statistics in
# the log) is classified, judged for ambiguous keys and ranked in one plan kept as a local
# checkpoint, then profiled from it: 8-11 Spark jobs a feed on the 12-household utility, against
# a profile, a count of repeated keys and, when a key repeats, a second plan for its rows (7-15).
# A larger batch finds its repeated keys first (few, usually none) so only their rows take the
# windows.
SMALL_BATCH_ROWS = 200_000


def _resolve_small(
    spark: SparkSession, classified_df: DataFrame, *, feed: str, time_zone: str, caches: list[DataFrame]
) -> tuple[DataFrame, _Profile]:
    """A small batch's classified rows with ``ambiguous_key`` and the rank columns, as a local
    checkpoint (appended to ``caches``), and its profile. The same rows _resolve_large gives: a
    key held by one valid row ranks it first, and its rank columns are dropped with the winners'."""
    with job_tag(spark, f"{feed}:resolve"):
        ranked_df = (
            classified_df.transform(with_ambiguous_key_rule, feed=feed)
            .transform(with_rank_in_batch, feed=feed)
            .localCheckpoint(eager=True)
        )
        caches.append(ranked_df)
        return ranked_df, _profile(ranked_df, feed=feed, time_zone=time_zone)


def _resolve_large(
    spark: SparkSession, classified_df: DataFrame, *, feed: str, time_zone: str, caches: list[DataFrame]
) -> tuple[DataFrame, _Profile]:
    """A large batch, cached (appended to ``caches``) and profiled, then its repeated keys found
    and only their rows ranked (resolve_keys); the profile's counts moved by the ambiguity rule."""
    classified_df = classified_df.persist(StorageLevel.MEMORY_AND_DISK)
    caches.append(classified_df)
    with job_tag(spark, f"{feed}:profile"):
        profile = _profile(classified_df, feed=feed, time_zone=time_zone)
    with job_tag(spark, f"{feed}:keys"):
        resolved_df, n_ambiguous = resolve_keys(classified_df, feed=feed, caches=caches)
    counts = dict(profile.counts)
    if n_ambiguous:  # ambiguous copies move rows from valid to ambiguous_key
        counts[None] -= n_ambiguous
        counts["ambiguous_key"] = counts.get("ambiguous_key", 0) + n_ambiguous
    return resolved_df, replace(profile, counts=counts, repeated=n_ambiguous is not None)


def resolve_keys(
    classified_df: DataFrame, *, feed: str, caches: list[DataFrame] | None = None
) -> tuple[DataFrame, int | None]:
    """Classified rows plus ``ambiguous_key`` and the rank columns (rows.with_rank_in_batch), and
    how many valid rows the ambiguity rule took (None: no valid key occurs more than once in the
    batch, so none).

    The repeated keys are found with one aggregation over the key columns; only
    their rows (few, usually none) take the windows, every other valid row is its
    key's winner. ``classified_df`` should be cached: it is read more than once. With
    ``caches``, the cached repeated keys and the local checkpoint of their ranked rows are
    appended to it (the caller frees them: ``unpersist`` and ``session.release_checkpoint``).
    """
    typed_key = [value_col(k) for k in FEEDS[feed].key]
    multi_df = repeated_keys(classified_df, feed=feed).persist(StorageLevel.MEMORY_AND_DISK)
    n_multi = multi_df.count()
    if n_multi == 0:
        multi_df.unpersist()
        return without_rank(classified_df), None
    if caches is not None:
        caches.append(multi_df)
    small = F.broadcast(multi_df) if n_multi <= BROADCAST_MULTI_KEYS else multi_df
    single_df = without_rank(classified_df.join(small, typed_key, "left_anti"))
    repeated_df = (
        classified_df.join(small, typed_key, "left_semi")
        .transform(with_ambiguous_key_rule, feed=feed)
        .transform(with_rank_in_batch, feed=feed)
    )
    if caches is not None:
        # Ranked once, here in the feed's thread: the rule counts, the quarantine, the winners and
        # the superseded rows (written with every feed's at the end of the step) read the result
        # instead of each running the windows and their shuffles again (12-household run: the
        # step's closing superseded write went from 38 Spark jobs and 12.8 s to 11 and 2.2 s).
        repeated_df = repeated_df.localCheckpoint(eager=True)
        caches.append(repeated_df)
    # classify_rows never gives ambiguous_key: the rule's rows are all among the repeated ones (one
    # job on their checkpoint instead of a grouped count of every row of the batch)
    n_ambiguous = repeated_df.filter(F.col("rule") == "ambiguous_key").count()
    return single_df.unionByName(repeated_df), n_ambiguous


def _process_feed(
    spark: SparkSession,
    feed: str,
    *,
    warehouse: str,
    run_id: str,
    time_zone: str,
    pseudonym_key: bytes,
    done: set[str],
    deferred: list[tuple[DataFrame, list[str]]],
    caches: list[DataFrame],
    references: _References,
) -> FeedSilver | None:
    """One feed's batch; its cached classification is appended to ``caches`` (the caller frees
    it once the rows it ``deferred`` to the end of the step are written)."""
    bronze_path = table_path(warehouse, "bronze", feed)
    if not table_exists(spark, bronze_path):
        return None
    new = sorted(set(source_files(spark, bronze_path)) - done)
    if not new:
        return None
    log.info("silver: %s processing %d files", feed, len(new))
    bronze_df = read_path(spark, bronze_path).filter(F.col("_source_file").isin(new))
    classified_df = classify_rows(bronze_df, feed=feed, time_zone=time_zone, refs=_refs(references, feed))
    days: tuple[date, ...] = ()
    small = sum(landed_row_counts(spark, bronze_path, new).values()) <= SMALL_BATCH_ROWS
    resolve = _resolve_small if small else _resolve_large
    resolved_df, profile = resolve(spark, classified_df, feed=feed, time_zone=time_zone, caches=caches)
    counts = dict(profile.counts)
    valid = counts.pop(None, 0)
    quarantined = sum(counts.values())
    if quarantined:
        with job_tag(spark, f"{feed}:quarantine"):
            append_new_rows(
                quarantine_rows(resolved_df, feed=feed, run_id=run_id),
                table_path(warehouse, "quarantine", feed), keys=spec("quarantine", feed).keys, files=new,
            )
            register_table(spark, warehouse, "quarantine", feed)
        log.info("silver: %s quarantine written", feed)
    if valid:
        with job_tag(spark, f"{feed}:merge"):
            days = _merge_valid(
                spark, typed_rows(resolved_df, feed=feed, run_id=run_id), feed, warehouse=warehouse,
                run_id=run_id, time_zone=time_zone, pseudonym_key=pseudonym_key, files=new, profile=profile,
                deferred=deferred, references=references,
            )
    rows = valid + quarantined
    log.info("silver: %s %d rows, %d valid, %d quarantined", feed, rows, valid, quarantined)
    return FeedSilver(feed, tuple(new), rows, valid, quarantined, tuple(sorted(counts.items())), days)


def _merge_valid(
    spark: SparkSession,
    ranked_df: DataFrame,
    feed: str,
    *,
    warehouse: str,
    run_id: str,
    time_zone: str,
    pseudonym_key: bytes,
    files: list[str],
    profile: _Profile,
    deferred: list[tuple[DataFrame, list[str]]],
    references: _References,
) -> tuple[date, ...]:
    """Steps 2-4 for the valid rows of a batch; returns the local days recomputed in silver/ami_daily."""
    silver_path = table_path(warehouse, "silver", feed)
    key = FEEDS[feed].key
    feed_hooks = hooks(feed)
    names_df = meters_df = None
    scrubs = any(c.free_text for c in FEEDS[feed].columns)
    accounts_df = references.table("accounts") if scrubs or feed_hooks.uses_meters else None
    if accounts_df is not None:
        if scrubs:
            names_df = accounts_df.select("account_id", "customer_name")
        if feed_hooks.uses_meters:
            meters_df = accounts_df.select("meter_id")
    winners_df = with_feed_extras(
        winner_rows(ranked_df), feed=feed, time_zone=time_zone, pseudonym_key=pseudonym_key,
        names_df=names_df, meters_df=meters_df,
    )
    exists = table_exists(spark, silver_path)
    span = profile.span
    # Rows beaten inside the batch exist only when a key occurs twice in it.
    superseded_df = superseded_in_batch(ranked_df, feed=feed, run_id=run_id) if profile.repeated else None
    pair_df = None
    if exists:
        current_df = read_path(spark, silver_path)
        if span is not None:
            current_df = current_df.filter(F.expr(span.predicate(alias=None)))
        pair_df = current_pairs(winners_df, current_df, feed=feed).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        overlapping = pair_df is not None and not pair_df.isEmpty()
        if overlapping:
            against_df = superseded_against_current(pair_df, feed=feed, run_id=run_id)
            superseded_df = against_df if superseded_df is None else superseded_df.unionByName(against_df)
        if superseded_df is not None:
            superseded_df = superseded_df.dropDuplicates(["feed", "_source_file", "_row_number"])
        if overlapping and superseded_df is not None and not superseded_df.isEmpty():
            # Current rows this batch replaces must be logged before the MERGE replaces them
            # (one feed thread at a time: a MERGE into the shared log would conflict with another's).
            with LOCK:
                append_new_rows(
                    superseded_df, table_path(warehouse, "silver", SUPERSEDED),
                    keys=spec("silver", SUPERSEDED).keys, files=files, partition_by=spec("silver", SUPERSEDED).partition_by,
                )
            log.info("silver: %s superseded rows logged", feed)
        elif superseded_df is not None:
            # Only rows beaten inside the batch: a rerun derives them again from the batch, so they
            # join the other feeds' in one commit at the end of the step.
            deferred.append((superseded_df, files))
        if not overlapping:
            # No winner's key is current yet: inserting them all is what the MERGE would do.
            table = spec("silver", feed)
            append_table(winners_df, silver_path, partition_by=table.partition_by, properties=table.table_properties)
        else:
            merge_if_later(winners_df, silver_path, keys=key, order_by=ORDER_COLUMNS,
                           target_predicate=span.predicate() if span is not None else None)
    finally:
        if pair_df is not None:
            pair_df.unpersist()
    with job_tag(spark, f"{feed}:register"):
        register_table(spark, warehouse, "silver", feed)
    log.info("silver: %s merged", feed)
    return feed_hooks.after_merge(spark, warehouse, winners_df, feed=feed, time_zone=time_zone, run_id=run_id,
                                  created=not exists, span=span)


def _log_processed(
    spark: SparkSession, warehouse: str, files: list[tuple[str, str]], run_id: str, *, already: int
) -> None:
    """Append (feed, _source_file) of this run's files to silver/_processed_files in one commit
    (idempotent write: ``txnVersion`` = files processed after it)."""
    if not files:
        return
    schema = StructType([StructField(n, StringType()) for n in ("feed", "_source_file", "_run_id")])
    df = spark.createDataFrame([(feed, f, run_id) for feed, f in files], schema).withColumn(
        "processed_at", F.current_timestamp()
    )
    path = table_path(warehouse, "silver", PROCESSED_FILES)
    append_table(df, path, txn_app_id="ucx-silver", txn_version=already + len(files))
    register_table(spark, warehouse, "silver", PROCESSED_FILES)


def _refresh_household_matches(spark: SparkSession, warehouse: str) -> tuple[int | None, int | None]:
    """Rebuild silver/household_matches if accounts or households changed since it was built;
    returns (household records, matched records). The build's inputs and counts are kept in its
    commit's userMetadata, so a run where neither changed reads them from the log (no Spark job)."""
    import json

    from ucx_spark.io import delta_log

    acc_path = table_path(warehouse, "silver", "accounts")
    hh_path = table_path(warehouse, "silver", "households")
    if not (table_exists(spark, acc_path) and table_exists(spark, hh_path)):
        return None, None
    # each input by version and table id (a rebuilt table may reach its predecessor's version number)
    built_from = (f"accounts@{table_version(spark, acc_path)}#{delta_log.table_id(acc_path)},"
                  f"households@{table_version(spark, hh_path)}#{delta_log.table_id(hh_path)}")
    path = table_path(warehouse, "silver", HOUSEHOLD_MATCHES)
    stored: dict = {}
    version = delta_log.latest_version(path)
    if version is not None:
        text = (delta_log.commit_info(path, version) or {}).get("userMetadata") or ""
        try:
            stored = json.loads(text) if text.startswith("{") else {"built_from": text}
        except ValueError:
            stored = {}
    if stored.get("built_from") == built_from and "records" in stored:
        return int(stored["records"]), int(stored["matched"])
    matches_df = match_households(read_path(spark, hh_path), read_path(spark, acc_path)).cache()
    try:
        row = matches_df.agg(F.count(F.lit(1)), F.count("premise_id")).first()
        total, matched = int(row[0]), int(row[1])
        if version is not None and "records" in stored:
            current_df = read_path(spark, path)
            if (current_df.columns == matches_df.columns and matches_df.exceptAll(current_df).isEmpty()
                    and current_df.exceptAll(matches_df).isEmpty()):
                # The same matches (a new account, no new household record matched): no new version,
                # so gold does not rebuild what it derives from them.
                return total, matched
        meta = json.dumps({"built_from": built_from, "records": total, "matched": matched})
        overwrite_table(matches_df, warehouse, "silver", HOUSEHOLD_MATCHES, user_metadata=meta)
    finally:
        matches_df.unpersist()
    return total, matched
