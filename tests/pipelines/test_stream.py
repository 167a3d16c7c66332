"""`ucx stream` (issue 20): silver's change feed -> point-in-time features -> champions -> MERGE into
gold/household_scores, exactly once, never older over newer.

The guard and the checks run on hand-made tables (fast); the flow runs on a small generated utility
built landing -> gold, trained and batch-scored once for the module (slow): one event to a new score,
streaming equal to batch, and a stream killed with SIGKILL at random points then restarted ending
where an --available-now rebuild from scratch ends.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from ucx_spark.catalog import HOUSEHOLD_SCORES, STREAM_EVENTS
from ucx_spark.config import Config
from ucx_spark.io.delta import overwrite_table, read_table, table_exists, table_path
from ucx_spark.models.score import SCORES_SCHEMA
from ucx_spark.pipelines import stream
from ucx_spark.pipelines.score import keep_newer_stream_rows

REPO = Path(__file__).resolve().parents[2]
KEY = b"stream-pseudonym-key"
T0 = datetime(2026, 1, 1, 12, 0, 0)
# SIGKILLs of the kill-and-replay test: 2 in the default run; UCX_STREAM_KILLS=20 for the full version
KILLS = int(os.environ.get("UCX_STREAM_KILLS", "2"))


def _row(household: str, model: str, score: float, as_of: date, scored_at: datetime, *,
         event: datetime | None = None) -> tuple:
    return (household, model, score, as_of, "1", scored_at, None, None, None, None, "linear", event)


def _scores(spark, rows):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(rows, SCORES_SCHEMA)


def _current(spark, wh):  # type: ignore[no-untyped-def]
    return read_table(spark, wh, "gold", HOUSEHOLD_SCORES).select("household_id", "model_name", "score", "as_of_date")


def test_the_merge_keeps_the_later_row_and_a_replayed_batch_is_skipped(spark, tmp_warehouse):
    wh = str(tmp_warehouse)
    overwrite_table(_scores(spark, [
        _row("h1", "csat", 4.0, date(2025, 6, 30), T0),  # a batch score
        _row("h2", "csat", 3.0, date(2025, 6, 30), T0),
    ]), wh, "gold", HOUSEHOLD_SCORES)
    later = T0 + timedelta(hours=1)
    stream.publish_scores(_scores(spark, [
        _row("h1", "csat", 1.0, date(2025, 6, 15), later, event=later),  # older as-of: never over newer
        _row("h2", "csat", 2.5, date(2025, 6, 30), later, event=later),  # same as-of, scored later: replaces
        _row("h3", "csat", 3.5, date(2025, 7, 2), later, event=later),  # new household: inserted
    ]), wh, app_id="test-app", batch_id=0)
    expected = spark.createDataFrame(
        [("h1", "csat", 4.0, date(2025, 6, 30)), ("h2", "csat", 2.5, date(2025, 6, 30)),
         ("h3", "csat", 3.5, date(2025, 7, 2))], "household_id string, model_name string, score double, as_of_date date")
    assert_df_equality(_current(spark, wh), expected, ignore_row_order=True, ignore_nullable=True)
    version = DeltaTable.forPath(spark, table_path(wh, "gold", HOUSEHOLD_SCORES)).history(1).first()["version"]
    # the same micro-batch again (a restart between the MERGE's commit and the checkpoint's): skipped
    stream.publish_scores(_scores(spark, [_row("h3", "csat", 1.0, date(2025, 7, 9), later + timedelta(hours=1),
                                               event=later)]), wh, app_id="test-app", batch_id=0)
    assert DeltaTable.forPath(spark, table_path(wh, "gold", HOUSEHOLD_SCORES)).history(1).first()["version"] == version
    assert_df_equality(_current(spark, wh), expected, ignore_row_order=True, ignore_nullable=True)
    # the next batch of the same query, and the same batch number of another query, are written
    stream.publish_scores(_scores(spark, [_row("h3", "csat", 1.0, date(2025, 7, 9), later, event=later)]), wh,
                          app_id="test-app", batch_id=1)
    stream.publish_scores(_scores(spark, [_row("h2", "csat", 1.5, date(2025, 7, 9), later, event=later)]), wh,
                          app_id="other-app", batch_id=0)
    got = {r["household_id"]: r["score"] for r in _current(spark, wh).collect()}
    assert got == {"h1": 4.0, "h2": 1.5, "h3": 1.0}


def test_a_batch_score_keeps_a_newer_streaming_row_and_replaces_an_older_one(spark, tmp_warehouse):
    wh = str(tmp_warehouse)
    overwrite_table(_scores(spark, [
        _row("h1", "csat", 2.0, date(2025, 7, 3), T0, event=T0),  # streamed after the batch's date
        _row("h2", "csat", 2.0, date(2025, 6, 20), T0, event=T0),  # streamed before it
        _row("h3", "csat", 2.0, date(2025, 7, 3), T0),  # a batch row (no event): not the stream's
    ]), wh, "gold", HOUSEHOLD_SCORES)
    later = T0 + timedelta(days=1)
    batch = _scores(spark, [_row(h, "csat", 4.0, date(2025, 6, 30), later) for h in ("h1", "h2", "h3", "h4")])
    got = keep_newer_stream_rows(spark, wh, batch, batch.select("household_id", "as_of_date")).select(
        "household_id", "score", "as_of_date")
    expected = spark.createDataFrame(
        [("h1", 2.0, date(2025, 7, 3)), ("h2", 4.0, date(2025, 6, 30)), ("h3", 4.0, date(2025, 6, 30)),
         ("h4", 4.0, date(2025, 6, 30))], "household_id string, score double, as_of_date date")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_events_without_a_key_a_time_or_a_known_account_are_refused_with_their_rule(spark):
    accounts = spark.createDataFrame([("a1", "p1")], "account_id string, premise_id string")
    events = spark.createDataFrame([
        ("contacts", "a1", None, date(2025, 7, 1), 3, T0),
        ("outages", None, "p1", date(2025, 7, 1), 4, T0),
        ("contacts", None, None, date(2025, 7, 1), 3, T0),
        ("payments", "a1", None, None, 5, T0),
        ("bills", "a9", None, date(2025, 7, 1), 6, T0),
        ("outages", None, "p9", date(2025, 7, 1), 7, T0),
    ], stream.EVENT_SCHEMA)
    good, bad = stream.check_events(events, accounts)
    assert sorted(r["commit_version"] for r in good.collect()) == [3, 4]
    assert sorted((r["commit_version"], r["rule"]) for r in bad.collect()) == [
        (3, stream.RULE_NO_KEY), (5, stream.RULE_NO_TIME), (6, stream.RULE_UNKNOWN), (7, stream.RULE_UNKNOWN)]


# --- the flow on a generated utility ------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    cfg: Config
    uri: str
    as_of: date  # the batch scores' as_of_date


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory) -> Scored:
    from ucx_spark.generate import generate_utility
    from ucx_spark.pipelines import medallion
    from ucx_spark.pipelines import score as score_pipeline
    from ucx_spark.pipelines import train as train_pipeline

    root = tmp_path_factory.mktemp("stream")
    landing, warehouse = root / "landing", root / "warehouse"
    generate_utility(spark, str(landing), households=30, months=13, interval_minutes=60, seed=5)
    cfg = Config().with_paths(landing=str(landing), warehouse=str(warehouse))
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="stream-1", gates=False)
    uri = f"sqlite:///{warehouse / '_mlflow' / 'mlflow.db'}"
    train_pipeline.run(spark, warehouse=str(warehouse), tracking_uri=uri, experiment="ucx-stream-test",
                       models=["all"], trials=1, run_id="stream-train", time_zone=cfg.utility.time_zone,
                       require_baseline_lift=False)
    result = score_pipeline.run(spark, warehouse=str(warehouse), tracking_uri=uri, run_id="stream-score",
                                time_zone=cfg.utility.time_zone)
    return Scored(cfg, uri, date.fromisoformat(result.as_of_date))


def _add_contacts(spark, wh: str, account_ids: list[str], day: date, tag: str) -> int:
    """Append one new contact per account to silver/contacts at noon local of ``day`` (a silver
    commit, as `ucx pipeline` makes); returns the commit's version."""
    path = table_path(wh, "silver", "contacts")
    template = spark.read.format("delta").load(path).limit(1)
    rows = None
    for i, account in enumerate(account_ids):
        row = template.select(
            *[F.lit(f"{tag}-{i}").alias(c) if c == "contact_id" else
              F.lit(account).alias(c) if c == "account_id" else
              F.to_utc_timestamp(F.lit(f"{day} 12:00:00").cast("timestamp"), "America/Chicago").alias(c)
              if c == "started_at" else F.col(c) for c in template.columns])
        rows = row if rows is None else rows.unionByName(row)
    households = spark.read.format("delta").load(table_path(wh, "silver", "accounts")).select("account_id", "household_id")
    rows = rows.drop("household_id").join(households, "account_id").select(*template.columns)
    rows.write.format("delta").mode("append").save(path)
    return DeltaTable.forPath(spark, path).history(1).first()["version"]


def _active_accounts(spark, wh: str, day: date, n: int) -> list[str]:
    accounts = read_table(spark, wh, "silver", "accounts").filter(
        (F.col("start_date") <= F.lit(day)) & (F.col("end_date").isNull() | (F.col("end_date") >= F.lit(day))))
    return [r["account_id"] for r in accounts.orderBy("account_id").limit(n).collect()]


@pytest.mark.slow
def test_one_event_flows_to_a_new_score_equal_to_the_batch_score_at_its_date(spark, scored, tmp_path):
    from ucx_spark.pipelines import score as score_pipeline

    wh, tz = scored.cfg.paths.warehouse, scored.cfg.utility.time_zone
    checkpoint = str(tmp_path / "checkpoint")
    scores_path = table_path(wh, "gold", HOUSEHOLD_SCORES)
    before = read_table(spark, wh, "gold", HOUSEHOLD_SCORES,
                        version=DeltaTable.forPath(spark, scores_path).history(1).first()["version"])
    first = stream.run(spark, warehouse=wh, tracking_uri=scored.uri, time_zone=tz, available_now=True,
                       checkpoint=checkpoint)
    assert sum(b.rows for b in first.batches) == 0  # a new stream starts after what is already there
    day = scored.as_of + timedelta(days=1)  # a day no published feature row describes
    account = _active_accounts(spark, wh, day, 1)[0]
    household = read_table(spark, wh, "silver", "accounts").filter(F.col("account_id") == account).first()["household_id"]
    version = _add_contacts(spark, wh, [account], day, "flow")
    committed = DeltaTable.forPath(spark, table_path(wh, "silver", "contacts")).history(1).first()["timestamp"]
    result = stream.run(spark, warehouse=wh, tracking_uri=scored.uri, time_zone=tz, available_now=True,
                        checkpoint=checkpoint)
    assert [(b.events, b.bad, b.households) for b in result.batches if b.events] == [(1, 0, 1)], result.batches
    after = read_table(spark, wh, "gold", HOUSEHOLD_SCORES)
    mine = after.filter(F.col("household_id") == household).collect()
    assert {r["model_name"] for r in mine} == {r["model_name"] for r in before.filter(F.col("household_id") == household).collect()}
    for r in mine:
        assert r["as_of_date"] == day and r["event_committed_at"] == committed, r
        assert r["model_version"] == result.models[r["model_name"]]
    # every other household's rows are as the batch wrote them
    assert_df_equality(after.filter(F.col("household_id") != household), before.filter(F.col("household_id") != household),
                       ignore_row_order=True)
    assert version > 0
    # streaming equals batch: `ucx score --as-of` that day, from the same silver and models
    streamed = {r["model_name"]: r for r in mine}
    score_pipeline.run(spark, warehouse=wh, tracking_uri=scored.uri, run_id="stream-batch", as_of=day, time_zone=tz)
    batch = {r["model_name"]: r for r in read_table(spark, wh, "gold", HOUSEHOLD_SCORES)
             .filter(F.col("household_id") == household).collect()}
    assert set(batch) == set(streamed)
    for model, r in batch.items():
        s = streamed[model]
        assert r["as_of_date"] == day and r["event_committed_at"] is None
        assert (r["score"] is None) == (s["score"] is None) and r["not_scored_reason"] == s["not_scored_reason"]
        if r["score"] is not None:
            assert abs(r["score"] - s["score"]) <= 1e-9, (model, r["score"], s["score"])
            assert [d["feature"] for d in r["top_drivers"]] == [d["feature"] for d in s["top_drivers"]]
        for p in ("p_promoter", "p_detractor"):
            assert (r[p] is None and s[p] is None) or abs(r[p] - s[p]) <= 1e-9


def _stream_process(cfg: Config, checkpoint: str, *, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "UCX_PATHS__WAREHOUSE": cfg.paths.warehouse,
           "UCX_UTILITY__TIME_ZONE": cfg.utility.time_zone, "UCX_SPARK__METASTORE": "none",
           "GX_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, str(REPO / "jobs" / "stream.py"), "--trigger", "1", "--checkpoint", checkpoint,
           "--conf", str(REPO / "conf")]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_a_stream_killed_at_random_points_ends_where_a_rebuild_from_scratch_ends(spark, scored, tmp_path):
    """2 x KILLS + 1 commits of contacts; the stream (its own process, a micro-batch a second) is
    SIGKILLed after every other one, at a random moment, and restarted; then an --available-now catch-up. The scores equal those of a new
    query reading the same commits from scratch over the scores as they were before the replay, and
    the MERGE commits are one per micro-batch that had events (none twice)."""
    wh, tz = scored.cfg.paths.warehouse, scored.cfg.utility.time_zone
    scores_path = table_path(wh, "gold", HOUSEHOLD_SCORES)
    start_version = DeltaTable.forPath(spark, scores_path).history(1).first()["version"]
    checkpoint, log = str(tmp_path / "checkpoint"), tmp_path / "stream.log"
    # the query starts (at the latest versions) before the replay
    stream.run(spark, warehouse=wh, tracking_uri=scored.uri, time_zone=tz, available_now=True, checkpoint=checkpoint)
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    accounts = _active_accounts(spark, wh, scored.as_of, 12)
    rng = random.Random(20)
    kills = 0
    proc = _stream_process(scored.cfg, checkpoint, log=log)
    for i in range(2 * KILLS + 1):
        day = scored.as_of + timedelta(days=2 + i)
        _add_contacts(spark, wh, rng.sample(accounts, 4), day, f"replay{i}")
        time.sleep(rng.uniform(2.0, 12.0))
        if i % 2 == 1:  # a kill after every other commit, at a random moment of the stream's work
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = _stream_process(scored.cfg, checkpoint, log=log)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert kills == KILLS
    final = stream.run(spark, warehouse=wh, tracking_uri=scored.uri, time_zone=tz, available_now=True,
                       checkpoint=checkpoint)
    assert final.stopped.startswith("stopped after the events"), log.read_text()[-3000:]
    got = read_table(spark, wh, "gold", HOUSEHOLD_SCORES).select(
        "household_id", "model_name", "score", "as_of_date", "model_version").cache()
    # every streamed MERGE is one commit per micro-batch that had events, none twice
    history = DeltaTable.forPath(spark, scores_path).history().filter(F.col("version") > start_version)
    merges = history.filter(F.col("operation") == "MERGE").count()
    assert merges >= 1
    assert history.filter(F.col("operation") != "MERGE").count() == 0
    # the rebuild: the scores as they were, a new query from `since`, one catch-up
    rebuilt_wh = tmp_path / "rebuilt"
    start_df = spark.read.format("delta").option("versionAsOf", start_version).load(scores_path)
    got_rows = got.collect()
    start_df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(scores_path)
    stream.run(spark, warehouse=wh, tracking_uri=scored.uri, time_zone=tz, available_now=True,
               checkpoint=str(rebuilt_wh / "checkpoint"), since=since.isoformat(sep=" "))
    rebuilt = read_table(spark, wh, "gold", HOUSEHOLD_SCORES).select(
        "household_id", "model_name", "score", "as_of_date", "model_version")
    assert_df_equality(spark.createDataFrame(got_rows, rebuilt.schema), rebuilt, ignore_row_order=True,
                       ignore_nullable=True)
    # the replay touched the households it should: 20 contacts, each household at its latest day
    assert got.filter(F.col("as_of_date") > scored.as_of).select("household_id").distinct().count() >= 4
    assert table_exists(spark, table_path(wh, "quarantine", STREAM_EVENTS)) is False
    got.unpersist()
