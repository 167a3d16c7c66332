"""Shared plumbing of the spark-submit entry points in jobs/.

The same job file runs three ways:

* ``python jobs/pipeline.py ...``: no JVM yet, so the session comes from
  ``ucx_spark.session.build_spark`` with the configured master and the Delta
  jars (``spark.jars``); for a non-local master the package is zipped and
  shipped to the executors with ``addPyFile``.
* ``spark-submit --master local[2] jobs/pipeline.py ...`` and
* ``spark-submit --master spark://host:7077|yarn|k8s://... --py-files ucx_spark.zip
  --jars <delta jars> jobs/pipeline.py ...``: spark-submit has already started
  the driver JVM with its master, jars and ``--conf`` values.  Those win: the
  UCX defaults (UTC session time, warehouse, shuffle partitions, Delta SQL
  extension and catalog) fill in only what the command line left unset, and
  no ``spark.jars`` is added (the driver's class path is fixed by then).

Jobs stay thin (DESIGN.md rule 5): parse arguments, load config, build the
session, call ``ucx_spark.pipelines.<step>.run``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ucx_spark.config import Config

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def new_run_id() -> str:
    from ucx_spark.session import new_run_id as run_id  # the one definition

    return run_id()


def parser(description: str, *, landing: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    if landing:
        p.add_argument("--landing", metavar="DIR", help="landing zone (default: paths.landing)")
    p.add_argument("--warehouse", metavar="DIR", help="warehouse root (default: paths.warehouse)")
    p.add_argument("--conf", metavar="DIR", help="folder holding base.yaml (default: the repo's conf/)")
    p.add_argument("--env", metavar="NAME", help="overlay conf/<NAME>.yaml (default: $UCX_ENV or local)")
    p.add_argument("--run-id", help="run id (default: a new timestamped id)")
    return p


def step_parser(step: str, description: str) -> argparse.ArgumentParser:
    """A step job's arguments: ``parser``'s and ``--no-gates``."""
    p = parser(f"{description}, with the step's quality gates (and, for silver, the row accounting)",
               landing=step == "bronze")
    p.add_argument("--no-gates", action="store_true", help="skip the Great Expectations gates")
    return p


def step_body(step: str) -> Callable[[SparkSession, Config, argparse.Namespace], object]:
    """The body of ``jobs/<step>.py``: the medallion's ``step`` alone, as ``ucx pipeline`` runs it
    (the same lock, gates, accounting and publish rules), so a scheduler may run the steps as
    separate tasks and get what one ``ucx pipeline`` run gives."""

    def body(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> object:
        from ucx_spark.config import pseudonym_key

        key = pseudonym_key(cfg.pseudonym) if step == "silver" else None  # fail before any work when missing
        from ucx_spark.pipelines import medallion

        return medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=args.run_id, gates=not args.no_gates,
                             steps=(step,))

    return body


def load(args: argparse.Namespace) -> Config:
    from ucx_spark.config import load_config

    conf_dir = args.conf or (str(REPO_CONF) if (REPO_CONF / "base.yaml").is_file() else None)
    cfg = load_config(env=args.env, conf_dir=conf_dir)
    return cfg.with_paths(landing=getattr(args, "landing", None), warehouse=args.warehouse)


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python process (its JVM is already running)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _submitted_session(cfg: Config) -> SparkSession:
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    from ucx_spark.session import configure_ucx

    SparkContext._ensure_initialized()  # connect to spark-submit's gateway
    submitted = SparkConf()  # loadDefaults: every spark.* value the command line set
    builder = configure_ucx(
        SparkSession.builder, cfg.spark, warehouse=cfg.paths.warehouse, time_zone=cfg.utility.time_zone
    )
    builder = builder.config("spark.sql.extensions", DELTA_EXTENSION).config(
        "spark.sql.catalog.spark_catalog", DELTA_CATALOG
    )
    for key, value in submitted.getAll():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    try:
        jvm.java.lang.Class.forName(DELTA_EXTENSION, False, jvm.java.lang.Thread.currentThread().getContextClassLoader())
    except Exception as exc:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        spark.stop()
        from ucx_spark.errors import ConfigError

        raise ConfigError(
            "Delta Lake is not on the driver's class path: pass the jars to spark-submit "
            "(--jars $(ls .jars/delta/*.jar | paste -sd,) or --packages io.delta:delta-spark_4.2_2.13:4.4.0)"
        ) from exc
    return spark


def _ship_package(spark: SparkSession) -> None:
    """Plain ``python jobs/x.py`` on a cluster master: send the package to the executors."""
    from ucx_spark.cluster import package_zip

    out = Path(tempfile.mkdtemp(prefix="ucx-pyfiles-")) / "ucx_spark.zip"
    spark.sparkContext.addPyFile(str(package_zip(out)))


def job_session(cfg: Config) -> SparkSession:
    """The job's session: spark-submit's settings win; otherwise build_spark from config."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if under_spark_submit():
        spark = _submitted_session(cfg)
    else:
        from ucx_spark.session import build_spark

        spark = build_spark(cfg.spark, warehouse=cfg.paths.warehouse, time_zone=cfg.utility.time_zone)
        if not spark.sparkContext.master.startswith("local"):
            _ship_package(spark)
    spark.sparkContext.setLogLevel(cfg.spark.log_level.upper())
    return spark


def run_job(name: str, body: Callable[[SparkSession, Config, argparse.Namespace], object],
            args: argparse.Namespace, *, lock: str = "pipeline") -> int:
    """Load config, take the warehouse's ``lock`` (the pipeline's; a stream's own), build the session, run ``body``; exit 0,
    1 (step failed), 2 (user mistake) or 75 (another run holds the warehouse: ``ucx``'s code, so
    a scheduler retries a busy spark-submit the same way). The lock is taken before the session
    starts: a job on a busy warehouse stops at once, having read and written nothing."""
    from ucx_spark.errors import EXIT_BUSY, DataError, UcxError
    from ucx_spark.io.lock import WarehouseBusyError, warehouse_lock

    spark = None
    try:
        cfg = load(args)
        if not args.run_id:
            args.run_id = new_run_id()
        with warehouse_lock(cfg.paths.warehouse, run_id=args.run_id, job=lock):
            spark = job_session(cfg)
            started = time.perf_counter()
            print(f"[{name}] master={spark.sparkContext.master} run_id={args.run_id} "
                  f"warehouse={Path(cfg.paths.warehouse).resolve()}", flush=True)
            result = body(spark, cfg, args)
            print(f"[{name}] done in {time.perf_counter() - started:.1f}s", flush=True)
        if result is not None:
            summary = getattr(result, "summary", None)
            print(summary() if callable(summary) else result, flush=True)
        return 0
    except WarehouseBusyError as exc:
        print(f"{name}: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except UcxError as exc:
        print(f"{name}: {'data error' if isinstance(exc, DataError) else 'error'}: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DataError) else 2
    finally:
        if spark is not None:
            spark.stop()
