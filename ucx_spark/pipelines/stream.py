"""`ucx stream`: household scores that follow events within minutes (Structured Streaming).

One streaming query reads the change data feed of the silver tables that carry
household events (``EVENT_TABLES``: contacts, payments, bills, collections,
surveys, program enrolments, outages at the household's premise), written there
by `ucx pipeline` with the batch path's rules, gates and quarantine. Each
micro-batch (``StreamScorer``):

1. checks its events cheaply (a key, an event time, an account silver knows);
   bad rows go to ``quarantine/_stream_events`` with the rule they broke;
2. keeps, per touched household, the latest event day and the latest commit
   (duplicates in a batch reduce to one household row);
3. computes the household's point-in-time features as of
   max(event day, the as_of_date of its current score) with the gold step's
   own function (``pipelines.gold.features_as_of``; no second implementation);
4. scores them with the champions loaded once at query start
   (``models.score.household_scores``: the batch path's code, model version on
   every row, the same population rules);
5. MERGEs them into ``gold/household_scores`` on (household_id, model_name),
   replacing a row only when the new one is later by (as_of_date, scored_at):
   an older streaming score never overwrites a newer batch score, and `ucx
   score` keeps a streaming row newer than its own as-of date (the reverse).

Exactly once under restart: the MERGE of batch ``n`` carries a Delta
transaction id (``spark.databricks.delta.write.txnAppId`` = the query's id,
from its checkpoint; ``txnVersion`` = ``n``), so a batch replayed after a crash
between its commit and the checkpoint's is skipped by Delta itself. Each
scored row carries ``event_committed_at`` (the latest silver commit that
triggered it) beside ``scored_at``: latency is read from the table.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.catalog import HOUSEHOLD_SCORES, STREAM_EVENTS
from ucx_spark.errors import UcxError
from ucx_spark.gold.household_features import EVENT_DAY_COLUMNS
from ucx_spark.io.delta import append_table, merge_if_later, overwrite_table, read_optional, table_exists, table_path
from ucx_spark.local_time import local_date
from ucx_spark.models.score import MODEL_NAMES, SCORES_SCHEMA, household_scores
from ucx_spark.progress import say

if TYPE_CHECKING:
    from ucx_spark.pipelines.gold import StaticFeatures

# silver tables whose new rows move a household's scores (outages by premise, the rest by account)
EVENT_TABLES = ("contacts", "payments", "bills", "collections", "surveys", "programs", "outages")
EVENT_SCHEMA = "source string, account_id string, premise_id string, event_day date, commit_version long, " \
               "committed_at timestamp"
SCORE_KEYS = ("household_id", "model_name")
SCORE_ORDER = ("as_of_date", "scored_at")
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
MERGE_ATTEMPTS = 3
# at most this many as_of dates' usage features are kept (StreamScorer.static_for)
STATIC_MAX_DATES = 4
# the rules of the in-batch checks (the full GX suites stay in the batch pipeline)
RULE_NO_KEY = "missing_key"
RULE_NO_TIME = "missing_event_time"
RULE_UNKNOWN = "unknown_account"


def default_checkpoint(warehouse: str) -> str:
    return f"{str(warehouse).rstrip('/')}/_stream/scores/checkpoint"


def event_stream(spark: SparkSession, warehouse: str, *, time_zone: str, since: str | None = None,
                 checkpoint: str | None = None) -> DataFrame:
    """The union of the event tables' change feeds as EVENT_SCHEMA rows (inserts and updates'
    new images). ``since`` (a timestamp) starts a new query's feeds there; by default a new query
    starts after each table's latest version (an existing checkpoint always wins)."""
    if since:  # a table without a commit after ``since`` has no changes yet, not an error
        spark.conf.set("spark.databricks.delta.changeDataFeed.timestampOutOfRange.enabled", "true")
    present = [t for t in EVENT_TABLES if table_exists(spark, table_path(warehouse, "silver", t))]
    starts = {} if since else start_versions(spark, warehouse, present, checkpoint)
    parts = []
    for table in present:
        path = table_path(warehouse, "silver", table)
        reader = spark.readStream.format("delta").option("readChangeFeed", "true")
        if since:
            reader = reader.option("startingTimestamp", since)
        else:
            # a change feed starts at a version that exists: the one the query first saw, whose own
            # changes (what was there before the query) are left out below
            reader = reader.option("startingVersion", str(starts[table]))
        df = reader.load(path).filter(F.col("_change_type").isin("insert", "update_postimage"))
        if table in starts:
            df = df.filter(F.col("_commit_version") > F.lit(starts[table]))
        column = EVENT_DAY_COLUMNS[table]
        when = F.col(column)
        day = when.cast("date") if isinstance(df.schema[column].dataType, T.DateType) else local_date(
            when, time_zone=time_zone)

        def key(name: str, frame: DataFrame = df) -> object:
            return F.col(name) if name in frame.columns else F.lit(None).cast("string")

        parts.append(df.select(F.lit(table).alias("source"), key("account_id").alias("account_id"),
                               key("premise_id").alias("premise_id"), day.alias("event_day"),
                               F.col("_commit_version").cast("long").alias("commit_version"),
                               F.col("_commit_timestamp").alias("committed_at")))
    if not parts:
        raise UcxError(f"no silver event table in {warehouse} ({', '.join(EVENT_TABLES)}): run `ucx pipeline` first")
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def start_versions(spark: SparkSession, warehouse: str, tables: list[str], checkpoint: str | None) -> dict[str, int]:
    """The version of each event table a query first saw: kept beside its checkpoint
    (``ucx_start``, written with Spark so any file system holds it), so a restart leaves out
    the same history; a table new to the query starts at its current version."""
    from ucx_spark.io.delta import table_version

    known: dict[str, int] = {}
    where = f"{checkpoint.rstrip('/')}/ucx_start" if checkpoint else None
    if where:
        with contextlib.suppress(Exception):  # no file yet: a new query
            known = {r["table"]: int(r["version"]) for r in spark.read.json(where).collect()}
    missing = [t for t in tables if t not in known]
    if missing:
        for t in missing:
            known[t] = int(table_version(spark, table_path(warehouse, "silver", t)) or 0)
        if where:
            spark.createDataFrame(sorted(known.items()), "table string, version long").coalesce(1).write.mode(
                "overwrite").json(where)
    return known


def check_events(events_df: DataFrame, accounts_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good, bad) events: bad ones carry ``rule`` (RULE_*): no account or premise, no event time,
    or a key silver/accounts does not know."""
    known_accounts = accounts_df.select(F.col("account_id").alias("_a")).distinct().withColumn("_ka", F.lit(True))
    known_premises = accounts_df.select(F.col("premise_id").alias("_p")).distinct().withColumn("_kp", F.lit(True))
    marked = (
        events_df.join(known_accounts, F.col("account_id") == F.col("_a"), "left")
        .join(known_premises, F.col("premise_id") == F.col("_p"), "left")
        .withColumn("rule", F.when(F.col("account_id").isNull() & F.col("premise_id").isNull(), F.lit(RULE_NO_KEY))
                    .when(F.col("event_day").isNull(), F.lit(RULE_NO_TIME))
                    .when(F.col("account_id").isNotNull() & F.col("_ka").isNull(), F.lit(RULE_UNKNOWN))
                    .when(F.col("account_id").isNull() & F.col("_kp").isNull(), F.lit(RULE_UNKNOWN)))
        .drop("_a", "_ka", "_p", "_kp")
    )
    return marked.filter(F.col("rule").isNull()).drop("rule"), marked.filter(F.col("rule").isNotNull())


def _active_on(day: str) -> object:
    return (F.col("start_date") <= F.col(day)) & (F.col("end_date").isNull() | (F.col("end_date") >= F.col(day)))


def touched_households(events_df: DataFrame, accounts_df: DataFrame, scores_df: DataFrame | None) -> DataFrame:
    """household_id, account_id, as_of_date, event_committed_at: one row per household an event
    touched. An account's event touches its household; a premise's (an outage) every account
    active at that premise that day. The household is scored as of max(its latest event day, the
    as_of_date of its current scores), through its account active that day (the latest started);
    a household with no account active then is left out (nothing to score)."""
    accounts = accounts_df.select("account_id", "household_id", "premise_id", "start_date", "end_date")
    by_account = events_df.filter(F.col("account_id").isNotNull()).join(
        accounts.select("account_id", "household_id"), "account_id")
    by_premise = (
        events_df.filter(F.col("account_id").isNull()).drop("account_id")
        .join(accounts, "premise_id").filter(_active_on("event_day"))
    )
    cols = ["household_id", "event_day", "committed_at"]
    per_household = by_account.select(*cols).unionByName(by_premise.select(*cols)).groupBy("household_id").agg(
        F.max("event_day").alias("event_day"), F.max("committed_at").alias("event_committed_at"))
    if scores_df is not None:  # the touched households' current scores only, before any shuffle
        current = scores_df.join(per_household.select("household_id"), "household_id", "left_semi").groupBy(
            "household_id").agg(F.max("as_of_date").alias("_scored_as_of"))
        per_household = per_household.join(current, "household_id", "left")
        as_of = F.greatest(F.col("event_day"), F.coalesce(F.col("_scored_as_of"), F.col("event_day")))
    else:
        as_of = F.col("event_day")
    with_date = per_household.select("household_id", as_of.alias("as_of_date"), "event_committed_at")
    candidates = with_date.join(accounts, "household_id").filter(_active_on("as_of_date"))
    from pyspark.sql.window import Window

    latest = Window.partitionBy("household_id").orderBy(F.desc("start_date"), F.desc("account_id"))
    return (candidates.withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1")
            .select("household_id", "account_id", "as_of_date", "event_committed_at"))


@contextlib.contextmanager
def delta_transaction(spark: SparkSession, app_id: str, version: int) -> Iterator[None]:
    """Delta's idempotent-write session settings around one write: a write with an (app id,
    version) the table has already committed is skipped."""
    spark.conf.set(TXN_APP_ID, app_id)
    spark.conf.set(TXN_VERSION, str(version))
    try:
        yield
    finally:
        spark.conf.unset(TXN_APP_ID)
        spark.conf.unset(TXN_VERSION)


def _conflict(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(k in text for k in ("ConcurrentAppend", "ConcurrentDelete", "ConcurrentTransaction",
                                   "MetadataChanged", "ProtocolChanged", "DELTA_CONCURRENT"))


def publish_scores(scores_df: DataFrame, warehouse: str, *, app_id: str, batch_id: int) -> None:
    """MERGE ``scores_df`` (SCORES_SCHEMA) into gold/household_scores on SCORE_KEYS, later by
    SCORE_ORDER, idempotent per (app_id, batch_id); a concurrent writer's commit (`ucx score`) is
    retried against the new version (the guard decides again)."""
    spark = scores_df.sparkSession
    path = table_path(warehouse, "gold", HOUSEHOLD_SCORES)
    if not table_exists(spark, path):
        overwrite_table(scores_df.limit(0), warehouse, "gold", HOUSEHOLD_SCORES)
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            with delta_transaction(spark, app_id, batch_id):
                merge_if_later(scores_df, path, keys=SCORE_KEYS, order_by=SCORE_ORDER)
            return
        except Exception as exc:
            if attempt == MERGE_ATTEMPTS or not _conflict(exc):
                raise
            time.sleep(0.5 * attempt)


@dataclass
class BatchStats:
    batch_id: int
    events: int
    bad: int
    households: int
    rows: int
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step (checks, features, score, merge)
    jobs: dict[str, int] = field(default_factory=dict)  # Spark jobs per step


@dataclass
class StreamScorer:
    """The ``foreachBatch`` function of ``ucx stream`` (module doc); champions are given loaded."""

    warehouse: str
    time_zone: str
    models: list
    checkpoint: str
    batches: list[BatchStats] = field(default_factory=list)
    app_id: str | None = None
    static: StaticFeatures | None = None  # of the dates scored lately, materialised

    def static_for(self, spark: SparkSession, dates: list[date]) -> StaticFeatures | None:
        """The usage features of every account at ``dates`` (and the AMI span), computed once and
        kept while silver/ami_daily, weather and accounts stay at their versions: no event changes
        them, and they were a quarter of a micro-batch's features (4.7 of 17 s, 18 of 107 Spark
        jobs on the 1,000-household warehouse). None for a batch of more than
        ``STATIC_MAX_DATES`` dates (a replay of old events): it computes them itself."""
        from ucx_spark.pipelines.gold import static_features, static_versions

        if len(dates) > STATIC_MAX_DATES:
            return None
        versions = static_versions(spark, self.warehouse, time_zone=self.time_zone)
        old = self.static
        if old is not None and old.versions == versions and set(dates) <= old.dates:
            return old
        wanted = set(dates)
        if old is not None and old.versions == versions:  # keep the latest dates already asked for
            for d in sorted(old.dates, reverse=True):
                if len(wanted) >= STATIC_MAX_DATES:
                    break
                wanted.add(d)
        new = static_features(spark, self.warehouse, time_zone=self.time_zone, dates=sorted(wanted))
        self.static = replace(new, usage_df=new.usage_df.localCheckpoint(eager=True))
        if old is not None:
            old.usage_df.unpersist()
        return self.static

    def query_id(self, spark: SparkSession) -> str:
        """The query's id from its checkpoint's metadata (it survives restarts; a new checkpoint is
        a new query, whose batch numbers start again at 0)."""
        if self.app_id is None:
            text = "".join(r.value for r in spark.read.text(f"{self.checkpoint.rstrip('/')}/metadata").collect())
            self.app_id = f"ucx-stream-{json.loads(text)['id']}"
        return self.app_id

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        from ucx_spark.pipelines.gold import features_as_of
        from ucx_spark.pipelines.score import outside_populations

        started = time.monotonic()
        spark = batch_df.sparkSession
        # the query's session is a clone with adaptive execution off (stateful streaming needs it
        # off); the batch queries below are the batch path's and run as it runs them (its effect
        # here was not measured apart: the 357 s -> 53 s of docs/stack_notes.md came from the
        # local checkpoints below)
        spark.conf.set("spark.sql.adaptive.enabled", "true")
        app_id = self.query_id(spark)
        # local checkpoints, not caches (here and below): adaptive execution makes every read of a
        # cached relation a stage of its own, and the events and accounts are read several times
        steps: dict[str, float] = {}
        jobs: dict[str, int] = {}
        sc = spark.sparkContext
        group = f"ucx-stream-{batch_id}-"

        def begin(step: str) -> float:
            sc.setJobGroup(group + step, f"ucx stream batch {batch_id}: {step}", interruptOnCancel=True)
            return time.monotonic()

        def end(step: str, mark: float) -> None:
            steps[step] = time.monotonic() - mark
            jobs[step] = len(sc.statusTracker().getJobIdsForGroup(group + step))

        mark = begin("checks")  # from the change feed's rows on
        events_df = batch_df.localCheckpoint(eager=True)
        try:
            n_events = events_df.count()
            if n_events == 0:
                return
            accounts_df = read_optional(spark, self.warehouse, "silver", "accounts")
            if accounts_df is None:
                raise UcxError(f"silver/accounts is missing in {self.warehouse}: run `ucx pipeline` first")
            accounts_df = accounts_df.select("account_id", "household_id", "premise_id", "start_date",
                                             "end_date").localCheckpoint(eager=True)
            good_df, bad_df = check_events(events_df, accounts_df)
            bad_df = bad_df.withColumn("batch_id", F.lit(batch_id).cast("long")).withColumn(
                "query_id", F.lit(app_id)).withColumn("quarantined_at", F.current_timestamp())
            n_bad = bad_df.count()
            if n_bad:
                append_table(bad_df, table_path(self.warehouse, "quarantine", STREAM_EVENTS),
                             txn_app_id=app_id, txn_version=batch_id)
            scores_path = table_path(self.warehouse, "gold", HOUSEHOLD_SCORES)
            current_df = read_optional(spark, self.warehouse, "gold", HOUSEHOLD_SCORES) if table_exists(
                spark, scores_path) else None
            # a local checkpoint, not a cache: the features' plan reads the keys a dozen times (one
            # cut per silver table), and adaptive execution made each read of a cached relation a
            # stage of its own (282 Spark jobs for the features of one household; 86 with this)
            keys_df = touched_households(good_df, accounts_df, current_df).localCheckpoint(eager=True)
            households = keys_df.count()
            rows = 0
            end("checks", mark)
            if households:
                mark = begin("features")
                # computed once, and cut from its plan (a few hundred operators): every model and
                # population rule reads it, and the MERGE analyses its source again (with the
                # lineage kept, the plan of four models' unions held the features' plan a dozen
                # times and the MERGE ran the driver out of heap)
                dates = [r[0] for r in keys_df.select("as_of_date").distinct().limit(STATIC_MAX_DATES + 1).collect()]
                features_df = features_as_of(spark, self.warehouse, time_zone=self.time_zone,
                                             keys_df=keys_df.select("account_id", "as_of_date"),
                                             static=self.static_for(spark, dates))
                features_df = features_df.dropDuplicates(["household_id"]).localCheckpoint(eager=True)
                end("features", mark)
                mark = begin("score")
                scored_at = datetime.now(UTC).replace(microsecond=0)
                outside = outside_populations(spark, self.warehouse, features_df)
                scores_df = household_scores(features_df, self.models, scored_at=scored_at, outside=outside)
                scores_df = scores_df.join(keys_df.select("household_id", "event_committed_at"), "household_id")
                scores_df = scores_df.select(*[F.col(f.name).cast(f.dataType) for f in SCORES_SCHEMA.fields]
                                             ).localCheckpoint(eager=True)
                rows = scores_df.count()
                end("score", mark)
                mark = begin("merge")
                publish_scores(scores_df, self.warehouse, app_id=app_id, batch_id=batch_id)
                end("merge", mark)
                scores_df.unpersist()
                features_df.unpersist()  # a local checkpoint's blocks go with it
            keys_df.unpersist()
            stats = BatchStats(batch_id, n_events, n_bad, households, rows, time.monotonic() - started, steps=steps,
                               jobs=jobs)
            self.batches.append(stats)
            say(f"stream batch {batch_id}: {n_events} events ({n_bad} quarantined), {households} households, "
                f"{rows} score rows in {stats.seconds:.1f} s (" + ", ".join(f"{k} {v:.1f} s {jobs.get(k, 0)} jobs" for k, v in steps.items())
                + ")")
        finally:
            events_df.unpersist()


@dataclass
class StreamResult:
    checkpoint: str
    batches: list[BatchStats]
    models: dict[str, str]
    stopped: str

    def summary(self) -> str:
        events = sum(b.events for b in self.batches)
        bad = sum(b.bad for b in self.batches)
        rows = sum(b.rows for b in self.batches)
        used = ", ".join(f"{m} v{v}" for m, v in self.models.items())
        text = (f"ucx stream: {len(self.batches)} micro-batches, {events:,} events ({bad:,} quarantined), "
                f"{rows:,} score rows merged into gold/household_scores with {used}; {self.stopped}; "
                f"checkpoint {self.checkpoint}")
        busy = [b for b in self.batches if b.households]
        if busy:
            secs = sorted(b.seconds for b in busy)
            last = ", ".join(f"{k} {v:.1f} s" for k, v in busy[-1].steps.items())
            text += (f"\nbatch time (batches with households): median {secs[len(secs) // 2]:.1f} s, max {secs[-1]:.1f} s;"
                     f" the last: {last}")
        return text


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    tracking_uri: str,
    time_zone: str,
    trigger_seconds: float = 15.0,
    available_now: bool = False,
    since: str | None = None,
    checkpoint: str | None = None,
    timeout_seconds: float | None = None,
    models: tuple[str, ...] = MODEL_NAMES,
) -> StreamResult:
    """Start the scoring stream (module doc). ``available_now``: process every event committed so
    far, then stop; otherwise a micro-batch every ``trigger_seconds`` until ``timeout_seconds``
    (None: until stopped). A failed micro-batch stops the query and raises its error."""
    from ucx_spark.insights.base import load_champions

    champions = load_champions(tracking_uri, models=models)
    loaded = list(champions.models.values())
    if not loaded:
        raise UcxError(f"no champion model in {tracking_uri}: run `ucx train` first")
    scores_path = table_path(warehouse, "gold", HOUSEHOLD_SCORES)
    if table_exists(spark, scores_path) and "event_committed_at" not in read_optional(
            spark, warehouse, "gold", HOUSEHOLD_SCORES).columns:
        raise UcxError(f"{scores_path} was written before `ucx stream` existed: run `ucx score` once "
                       "(it adds the event_committed_at column the stream writes)")
    checkpoint = checkpoint or default_checkpoint(warehouse)
    scorer = StreamScorer(warehouse=warehouse, time_zone=time_zone, models=loaded, checkpoint=checkpoint)
    events_df = event_stream(spark, warehouse, time_zone=time_zone, since=since, checkpoint=checkpoint)
    writer = events_df.writeStream.foreachBatch(scorer).option("checkpointLocation", checkpoint).queryName(
        "ucx_stream_scores")
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_seconds} seconds")
    query = writer.start()
    try:
        if available_now:
            query.awaitTermination()
            stopped = "stopped after the events available at start (--available-now)"
        else:
            finished = query.awaitTermination(timeout_seconds) if timeout_seconds else query.awaitTermination()
            stopped = "stopped" if finished else f"stopped after {timeout_seconds:g} s (--timeout)"
    except KeyboardInterrupt:  # Ctrl-C: the way a foreground stream ends; the checkpoint carries on
        stopped = "stopped by Ctrl-C (the next start carries on from the checkpoint)"
    finally:
        if query.isActive:
            query.stop()
    if query.exception() is not None:
        raise UcxError(f"the scoring stream failed: {str(query.exception()).splitlines()[0]}")
    return StreamResult(checkpoint, scorer.batches, {m.model_name: m.version for m in loaded}, stopped)
