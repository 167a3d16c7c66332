"""The whole medallion in one call: landing -> bronze -> silver -> gold.

Each step is idempotent and crash-safe on its own (see the step modules), so
this orchestration is a plain sequence: a rerun after any failure or kill
picks up where the committed Delta versions left off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pyspark.sql import SparkSession

from ucx_spark.catalog import AMI_DAILY, CONTACT_INSIGHTS, CX_KPIS, METER_DAILY_USAGE, PIPELINE_RUNS, spec
from ucx_spark.config import Config
from ucx_spark.errors import DataError
from ucx_spark.progress import say, step


@dataclass
class MedallionResult:
    run_id: str
    steps: dict[str, Any] = field(default_factory=dict)
    accounting: list[dict[str, Any]] = field(default_factory=list)
    # wall-clock seconds per step: bronze, gates_bronze, silver, gates_silver, accounting, gold
    # (gold includes its publish gates, also given alone as gates_gold), gates_docs
    timings: dict[str, float] = field(default_factory=dict)
    # (start, end) epoch seconds per step, to attribute Delta commits and Spark jobs after the run
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"run {self.run_id}"]
        for name, result in self.steps.items():
            text = result.summary() if hasattr(result, "summary") else str(result)
            lines.append(f"{name}: {text}")
        if self.accounting:
            lines.append(f"{'feed':<12} {'landed':>10} {'current':>10} {'superseded':>10} {'quarantined':>11}")
            for row in self.accounting:
                lines.append(
                    f"{row['feed']:<12} {row['landed']:>10,} {row['current']:>10,} "
                    f"{row['superseded']:>10,} {row['quarantined']:>11,}"
                )
        return "\n".join(lines)


STEPS = ("bronze", "silver", "gold")


def run(
    spark: SparkSession,
    *,
    cfg: Config,
    pseudonym_key: bytes | None,
    run_id: str,
    gates: bool = True,
    as_of_dates: list[date] | None = None,
    steps: tuple[str, ...] = STEPS,
) -> MedallionResult:
    """The medallion under the warehouse's pipeline lock (``io/lock.py``): a second run on the
    same warehouse stops at once with WarehouseBusyError naming the running one.

    ``steps``: a part of ``STEPS`` for the step jobs (``jobs/bronze.py`` ...), each with the gates
    and bookkeeping it carries in a whole run: bronze its gate on this run's files; silver its
    gate and the row accounting; gold the publish gate and Data Docs. The whole run alone may
    find it has nothing to do."""
    from ucx_spark.errors import ConfigError, UcxError
    from ucx_spark.io.lock import warehouse_lock

    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise ConfigError(f"medallion steps {list(steps)!r}: expected some of {list(STEPS)}")
    if "silver" in steps and not pseudonym_key:
        raise ConfigError("the silver step needs the pseudonym key (UCX_PSEUDONYM_KEY)")
    with warehouse_lock(cfg.paths.warehouse, run_id=run_id):
        try:
            return _run(spark, cfg=cfg, pseudonym_key=pseudonym_key, run_id=run_id, gates=gates,
                        as_of_dates=as_of_dates, steps=tuple(s for s in STEPS if s in steps))
        except UcxError:
            raise
        except Exception as exc:
            storage = storage_error(exc, cfg.paths.warehouse)
            if storage is None:
                raise
            raise storage from exc


# What the OS says (through Python or the JVM) when the warehouse cannot take a write.
STORAGE_FAULTS = ("No space left on device", "Read-only file system", "Disk quota exceeded")


def storage_error(exc: BaseException, warehouse: str) -> Exception | None:
    """A clear DataError for a write the warehouse's storage refused (disk full, read-only, quota),
    naming the warehouse and its free space; None for any other failure."""
    import shutil

    from ucx_spark.errors import DataError

    text = f"{exc}"
    fault = next((f for f in STORAGE_FAULTS if f in text), None)
    if fault is None:
        return None
    try:
        usage = shutil.disk_usage(warehouse)
        space = f"{usage.free / 2**20:,.1f} MiB free of {usage.total / 2**20:,.1f} MiB"
    except OSError:
        space = "free space unknown"
    return DataError(
        f"the warehouse {warehouse} refused a write: {fault} ({space}). Every table is at its last committed "
        "version (a Delta commit is all or nothing; files of the failed write are not part of any version). "
        "Free space (or make the warehouse writable) and rerun `ucx pipeline`: it goes on from what was committed."
    )


def _run(
    spark: SparkSession,
    *,
    cfg: Config,
    pseudonym_key: bytes,
    run_id: str,
    gates: bool,
    as_of_dates: list[date] | None,
    steps: tuple[str, ...] = STEPS,
) -> MedallionResult:
    from ucx_spark.io.delta import restrict_layers
    from ucx_spark.pipelines import bronze, gold, silver
    from ucx_spark.pipelines.gates import Gates
    from ucx_spark.quality import Thresholds

    landing, warehouse = cfg.paths.landing, cfg.paths.warehouse
    result = MedallionResult(run_id=run_id)
    restrict_layers(warehouse)
    # A damaged table (a commit missing or not JSON, a live data file gone) stops the run before
    # it reads or writes anything, naming the table and the recovery (`ucx rebuild`).
    from ucx_spark.pipelines.rebuild import check_warehouse

    check_warehouse(warehouse)
    idle = nothing_to_do(spark, cfg, as_of_dates=as_of_dates) if steps == STEPS else None
    if idle is not None:
        # Nothing landed, silver has every file, gold reflects the current silver: say so and stop
        # (no gate, accounting or gold commit: a run that changes nothing writes nothing).
        say(f"pipeline run {run_id}: nothing to do ({idle})")
        result.steps["idle"] = idle
        return result
    checks = Gates(spark, warehouse, run_id, Thresholds.from_config(cfg.quality))
    if gates:  # GX's import, context and checkpoints are prepared while bronze waits on Spark
        checks.warm_up([layer for layer in ("bronze", "silver", "gold") if layer in steps])

    @contextmanager
    def timed(key: str, name: str) -> Iterator[None]:
        start, wall_start = time.perf_counter(), time.time()
        # Every Spark job of the step carries its name (Spark UI, event log: bench/profile_pipeline.py).
        spark.sparkContext.setLocalProperty("ucx.step", key)
        try:
            with step(name):
                yield
        finally:
            spark.sparkContext.setLocalProperty("ucx.step", None)
        result.timings[key] = time.perf_counter() - start
        result.spans[key] = (wall_start, time.time())

    try:
        if "bronze" in steps:
            with timed("bronze", "bronze: landing -> bronze"):
                bronze_result = bronze.run(
                    spark, landing=landing, warehouse=warehouse, run_id=run_id, threads=cfg.spark.feed_threads
                )
                result.steps["bronze"] = bronze_result
            if gates:
                with timed("gates_bronze", "quality gates: bronze (this run's files)"):
                    checks.check_batches("bronze", bronze_batches(spark, warehouse, bronze_result),
                                         bronze_sources(warehouse, bronze_result))
        if "silver" in steps:
            assert pseudonym_key  # run() checked
            with timed("silver", "silver: bronze -> silver"):
                silver_result = silver.run(
                    spark, warehouse=warehouse, run_id=run_id, time_zone=cfg.utility.time_zone,
                    pseudonym_key=pseudonym_key, threads=cfg.spark.feed_threads,
                )
                result.steps["silver"] = silver_result
            if gates:
                with timed("gates_silver", "quality gates: silver (rows of this run's files, days they touched)"):
                    checks.check_batches("silver", silver_batches(spark, warehouse, silver_result),
                                         silver_sources(warehouse, silver_result))
            with timed("accounting", "accounting: landed = current + superseded + quarantined"):
                result.accounting = record_accounting(spark, warehouse=warehouse, run_id=run_id)
        if "gold" in steps:
            with timed("gold", "gold: silver -> gold"):
                result.steps["gold"] = gold.run(
                    spark,
                    warehouse=warehouse,
                    time_zone=cfg.utility.time_zone,
                    min_households=cfg.privacy.min_households,
                    max_household_energy_share=cfg.privacy.max_household_energy_share,
                    run_id=run_id,
                    as_of_dates=as_of_dates,
                    gate=checks.publish if gates else None,
                )
            if gates:
                result.timings["gates_gold"] = checks.publish_seconds
            checks.record_pending()  # the gold gates' verdicts: one commit to gold/quality_results
    except DataError:
        # A gate stopped the run: its verdicts are recorded and in the Data Docs too (rendered once per run).
        if gates:
            try:
                checks.record_pending()
                if checks.results:
                    checks.build_docs()
            except Exception as exc:  # noqa: BLE001 (the gate's error is the one to report)
                say(f"quality: verdicts not recorded or Data Docs not rendered ({exc})")
        raise
    finally:
        checks.ready()  # the GX warm-up ends with the run, whatever stopped it (GX: one thread at a time)
    if gates:
        if checks.results:
            with timed("gates_docs", "quality: Data Docs"):
                checks.build_docs()
        result.steps["quality"] = checks.summary()
    say(f"pipeline run {run_id}{'' if steps == STEPS else ' (' + ', '.join(steps) + ')'} complete")
    return result


def nothing_to_do(spark: SparkSession, cfg: Config, *, as_of_dates: list[date] | None = None) -> str | None:
    """Why a run would change nothing, or None when it has work: every landing file is in bronze
    (unchanged since) or recorded as rejected, silver has processed every bronze file, and each gold table was last
    built from the current silver versions with the current settings (``catalog.silver_inputs``,
    ``built_from``). Reads only file listings, the Delta logs and two small bookkeeping tables."""
    from ucx_spark.contract import FEED_ORDER
    from ucx_spark.io.delta import commit_metadata, partition_values, table_path
    from ucx_spark.io.landing import discover, has_data_rows
    from ucx_spark.pipelines import bronze, gold, silver

    if as_of_dates is not None:
        return None  # explicit as-of dates: gold decides
    warehouse = cfg.paths.warehouse
    discovery = discover(cfg.paths.landing)
    recorded = bronze.recorded_rejections(spark, warehouse)
    if any((r.feed, r.name) not in recorded for r in discovery.rejected):
        return None
    bronze_files: dict[str, set[str]] = {}
    for feed in FEED_ORDER:
        state = partition_values(spark, table_path(warehouse, "bronze", feed))
        bronze_files[feed] = set(state)
        if any(f.name not in state and (feed, f.name) not in recorded and has_data_rows(f.path, gzipped=f.gzipped)
               for f in discovery.for_feed(feed)):
            return None
        ingested = [f for f in discovery.for_feed(feed) if f.name in state and (feed, f.name) not in recorded]
        if bronze.replaced_files(table_path(warehouse, "bronze", feed), ingested, feed):
            return None  # a re-sent file to report
    done = silver.processed_files(spark, warehouse)
    if any(bronze_files[feed] - done.get(feed, set()) for feed in FEED_ORDER):
        return None
    expected_params = {
        METER_DAILY_USAGE: {"time_zone": cfg.utility.time_zone},
        CX_KPIS: {"time_zone": cfg.utility.time_zone, "min_households": cfg.privacy.min_households,
                  "max_household_energy_share": cfg.privacy.max_household_energy_share, "energy_kpis": False},
        CONTACT_INSIGHTS: {"time_zone": cfg.utility.time_zone, "min_households": cfg.privacy.min_households},
    }
    changes = gold.Changes(spark, warehouse, cfg.utility.time_zone)
    settled = 0
    for table in gold.TABLES:
        built = commit_metadata(spark, table_path(warehouse, "gold", table), gold.BUILT_FROM)
        if not built:
            return None
        params = built.get("params") or {}
        if any(params.get(k) != v for k, v in expected_params.get(table, {"time_zone": cfg.utility.time_zone}).items()):
            return None
        record = gold.inputs_record(warehouse, table)
        if any(built.get(k) != v for k, v in record.items()):
            # inputs that moved only by updates that changed nothing (a CIS snapshot re-sending
            # every account as it was) leave the table as built: gold found so and wrote nothing
            # (asked of the change data feed only now, when the cheap checks have passed)
            built = gold.settled_inputs(built, record | {"params": params}, changes.first_day)
            if not isinstance(built, dict) or any(built.get(k) != v for k, v in record.items()):
                return None
            settled += 1
    files = sum(len(v) for v in bronze_files.values())
    resent = f" ({settled} of them through silver updates that changed nothing)" if settled else ""
    return f"no new landing file ({files} ingested), silver current, gold built from the current silver{resent}"


def bronze_batches(spark: SparkSession, warehouse: str, result: Any) -> dict[str, Any]:
    """bronze/<feed> rows of the files this run landed (their partitions), by feed: the batches
    of ``bronze_sources`` read through Spark."""
    return {feed: source.frame(spark) for feed, source in bronze_sources(warehouse, result).items()}


def bronze_sources(warehouse: str, result: Any) -> dict[str, Any]:
    """Where each bronze batch lies: the partitions of this run's files (quality.batch)."""
    from ucx_spark.io.delta import table_path
    from ucx_spark.quality.batch import TableBatch

    return {
        f.feed: TableBatch(table_path(warehouse, "bronze", f.feed), partitions={"_source_file": frozenset(f.files)})
        for f in result.ingested
        if f.files
    }


def silver_sources(warehouse: str, result: Any) -> dict[str, Any]:
    """Where each silver batch lies: the rows of this run's files (quality.batch); the
    silver/ami_daily batch (whole local days) is read through Spark."""
    from ucx_spark.io.delta import table_path
    from ucx_spark.quality.batch import TableBatch

    return {
        f.feed: TableBatch(table_path(warehouse, "silver", f.feed), rows=("_source_file", frozenset(f.files)))
        for f in result.feeds
        if f.valid
    }


def silver_batches(spark: SparkSession, warehouse: str, result: Any) -> dict[str, Any]:
    """silver/<feed> rows from the files this run processed, and the silver/ami_daily rows of
    every local day whose meter-days it recomputed (all meters of those days: completeness is
    judged per day)."""
    from pyspark.sql import functions as F

    from ucx_spark.io.delta import read_table, table_exists

    batches: dict[str, Any] = {
        feed: source.frame(spark) for feed, source in silver_sources(warehouse, result).items()
        if table_exists(spark, source.path)
    }
    for f in result.feeds:
        if f.feed == "ami" and f.days:
            months = sorted({d.replace(day=1) for d in f.days})
            batches[AMI_DAILY] = (
                read_table(spark, warehouse, "silver", AMI_DAILY)
                .filter(F.col("local_month").isin(months))
                .filter(F.col("local_date").isin(list(f.days)))
            )
    return batches


def record_accounting(spark: SparkSession, *, warehouse: str, run_id: str) -> list[dict[str, Any]]:
    """Write this run's per-feed accounting to gold/pipeline_runs, then fail loudly if it does not balance.

    The audit rows are written first so that an unbalanced run leaves evidence
    of what it counted; the MERGE on (run_id, feed) makes a retried run idempotent.
    """
    from pyspark.sql import functions as F

    from ucx_spark.io.delta import register_table, table_path, upsert
    from ucx_spark.pipelines import accounting

    counts_df = accounting.accounting(spark, warehouse)
    audit_df = counts_df.select(
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("recorded_at"),
        "feed",
        "landed",
        F.col("landed").alias("bronze"),
        "current",
        "superseded",
        "quarantined",
        "balanced",
    )
    upsert(audit_df, table_path(warehouse, "gold", PIPELINE_RUNS), keys=spec("gold", PIPELINE_RUNS).keys)
    register_table(spark, warehouse, "gold", PIPELINE_RUNS)
    rows = [r.asDict() for r in counts_df.collect()]  # 13 rows: one per feed
    accounting.raise_if_unbalanced(
        [(r["feed"], r["landed"], r["current"], r["superseded"], r["quarantined"]) for r in rows],
        where=" (recorded in gold/pipeline_runs)",
    )
    return rows
