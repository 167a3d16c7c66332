"""The only SparkSession builder of UCX Spark.

``configure_delta(builder, ...)`` is builder in, builder out, like delta's own
``configure_spark_with_delta_pip``: it adds the Delta SQL extension and catalog
and the Delta jars.  ``build_spark(cfg)`` is called once, at an entry point
(CLI, job, test fixture); library code receives the session.

Jars: ``make setup`` resolves Delta and its runtime dependencies from Maven
Central into ``.jars/delta`` (see conf/maven/pom.xml), so a session starts
without the network.  If that folder is missing, the session falls back to
``spark.jars.packages`` and lets Ivy download them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ucx_spark.config import Config, SparkConfig
from ucx_spark.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DELTA_MAVEN = "io.delta:delta-spark_4.2_2.13:4.4.0"
REPO_ROOT = Path(__file__).resolve().parent.parent


def delta_jars(jars_dir: str) -> list[str]:
    """Absolute paths of the jars in ``jars_dir`` (relative paths are from the repo root)."""
    folder = Path(jars_dir)
    if not folder.is_absolute():
        folder = REPO_ROOT / folder
    return sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []


def configure_delta(builder: SparkSession.Builder, *, jars_dir: str = ".jars/delta") -> SparkSession.Builder:
    """Add Delta Lake to a builder: extension, catalog and jars."""
    jars = delta_jars(jars_dir)
    builder = builder.config(
        "spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension"
    ).config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    if jars:
        return builder.config("spark.jars", ",".join(jars))
    return builder.config("spark.jars.packages", DELTA_MAVEN)


LOG4J_CONFIG = REPO_ROOT / "conf" / "log4j2.properties"
CONSOLE_LEVEL_ENV = "UCX_SPARK_CONSOLE_LOG"  # `ucx --debug` sets it to warn


def driver_log_options(warehouse: Path) -> list[str]:
    """JVM options that send Spark's, Delta's and Hive's WARN lines to <warehouse>/_logs/spark.log
    (conf/log4j2.properties) and keep the terminal for errors (``UCX_SPARK_CONSOLE_LOG=warn``:
    warnings too)."""
    if not LOG4J_CONFIG.is_file():
        return []
    log_dir = warehouse / "_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    level = os.environ.get(CONSOLE_LEVEL_ENV, "error")
    return [f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}", f"-Ducx.logDir={log_dir}",
            f"-Ducx.consoleLevel={level}"]


def configure_ucx(
    builder: SparkSession.Builder,
    spark_cfg: SparkConfig,
    *,
    warehouse: str,
    time_zone: str,
) -> SparkSession.Builder:
    """UCX defaults: master, UTC session time, quiet UI, warehouse and optional Derby metastore."""
    wh = Path(warehouse).resolve()
    builder = (
        builder.master(spark_cfg.master)
        .appName(spark_cfg.app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(spark_cfg.shuffle_partitions))
        .config("spark.driver.memory", spark_cfg.driver_memory)
        .config("spark.ui.enabled", str(spark_cfg.ui_enabled).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(wh / "_catalog"))
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ucx.timeZone", time_zone)
        # pyspark 4 wraps every DataFrame and Column call to record its Python call site for error
        # messages: ~5 extra py4j round trips a call, a third of the ~17,000 that building
        # household_features' plan makes (docs/performance.md); errors still name the operation.
        # spark.extra can turn it back on for debugging.
        .config("spark.python.sql.dataFrameDebugging.enabled", "false")
    )
    java_options = driver_log_options(wh)
    if spark_cfg.metastore == "derby":
        metastore = wh / "_metastore"
        java_options.append(f"-Dderby.system.home={metastore}")
        builder = (
            builder.enableHiveSupport()
            .config("spark.sql.catalogImplementation", "hive")
            # spark.hadoop.*: Hive reads it from the Hadoop configuration; spark-submit drops (and warns
            # about) a bare javax.jdo key
            .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                    f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true")
        )
    else:
        builder = builder.config("spark.sql.catalogImplementation", "in-memory")
    builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
    for key, value in spark_cfg.extra.items():
        if not key.startswith("spark."):
            raise ConfigError(f"spark.extra: '{key}' is not a Spark setting (keys start with 'spark.')")
        builder = builder.config(key, value)
    return builder


def build_spark(spark_cfg: SparkConfig, *, warehouse: str, time_zone: str) -> SparkSession:
    """Build (once, at the entry point) the Delta-enabled session UCX Spark runs on."""
    from pyspark.sql import SparkSession

    # Python workers must run the driver's interpreter, or pandas UDFs find no pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = configure_ucx(SparkSession.builder, spark_cfg, warehouse=warehouse, time_zone=time_zone)
    builder = configure_delta(builder, jars_dir=spark_cfg.jars_dir)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(spark_cfg.log_level.upper())
    quiet_loggers(spark)
    return spark


# Loggers whose warnings are expected in normal operation: bronze reads every
# CSV positionally (its own header check is case-insensitive and order-free),
# so Spark's header-vs-schema warning would fire once per file.
QUIET_LOGGERS = ("org.apache.spark.sql.catalyst.csv.CSVHeaderChecker",)


def quiet_loggers(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm  # py4j gateway: log4j has no Python API
    if jvm is None:
        return
    level = jvm.org.apache.logging.log4j.Level.ERROR
    for name in QUIET_LOGGERS:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)


def new_run_id() -> str:
    """A run id: UTC timestamp and 8 random hex digits (every entry point uses this one)."""
    import uuid
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python process (its JVM is already running)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def start_spark(cfg: Config) -> SparkSession:
    """The one session builder of every entry point (``ucx``, ``ucx demo``, ``jobs/*.py``, the MLflow
    project entry points, through ``commands.execute``), its start shown as a step.

    * In a plain Python process: ``build_spark`` with the configured master and the Delta jars; for
      a non-local master the package is zipped and shipped to the executors (``addPyFile``).
    * Under spark-submit (``spark-submit [--master ...] jobs/pipeline.py``): the driver JVM is up
      with spark-submit's master, jars and ``--conf`` values. Those win: the UCX defaults fill in
      only what the command line left unset, and no ``spark.jars`` is added (the class path is fixed).
    """
    from ucx_spark.progress import step

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if under_spark_submit():
        with step("joining spark-submit's Spark"):
            spark = _submitted_session(cfg)
        spark.sparkContext.setLogLevel(cfg.spark.log_level.upper())
        return spark
    with step(f"starting Spark ({cfg.spark.master})"):
        spark = build_spark(cfg.spark, warehouse=cfg.paths.warehouse, time_zone=cfg.utility.time_zone)
    if not spark.sparkContext.master.startswith("local"):
        _ship_package(spark)
    return spark


def _submitted_session(cfg: Config) -> SparkSession:
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    SparkContext._ensure_initialized()  # connect to spark-submit's gateway
    submitted = SparkConf()  # loadDefaults: every spark.* value the command line set
    builder = configure_ucx(SparkSession.builder, cfg.spark, warehouse=cfg.paths.warehouse,
                            time_zone=cfg.utility.time_zone)
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
        raise ConfigError(
            "Delta Lake is not on the driver's class path: pass the jars to spark-submit "
            f"(--jars $(ls .jars/delta/*.jar | paste -sd,) or --packages {DELTA_MAVEN})"
        ) from exc
    return spark


def _ship_package(spark: SparkSession) -> None:
    """A plain Python process on a cluster master: send the package to the executors."""
    import tempfile

    from ucx_spark.cluster import package_zip

    out = Path(tempfile.mkdtemp(prefix="ucx-pyfiles-")) / "ucx_spark.zip"
    spark.sparkContext.addPyFile(str(package_zip(out)))


def release_checkpoint(df: DataFrame) -> None:
    """Free a local checkpoint's blocks now rather than when the JVM collects its RDD (a frame that
    is not a checkpoint is left alone)."""
    plan = df._jdf.queryExecution().analyzed()
    if plan.nodeName() == "LogicalRDD":
        plan.rdd().unpersist(False)
