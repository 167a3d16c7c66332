"""Row accounting per feed: landed = current + superseded + quarantined (contract section 1).

Each term is counted from its own table, so the identity is a real check:
``landed`` rows of bronze/<feed>, ``current`` rows of silver/<feed>,
``superseded`` rows logged in silver/_superseded for the feed (valid landed
rows beaten by a later extract or identical copies, logged by the silver
step when it happens), ``quarantined`` rows of quarantine/<feed>. A row lost,
double-written or never processed breaks the identity.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from ucx_spark.contract import FEED_ORDER
from ucx_spark.errors import DataError
from ucx_spark.io.delta import table_exists, table_path
from ucx_spark.pipelines.silver import SUPERSEDED_TABLE

ACCOUNTING_SCHEMA = StructType(
    [
        StructField("feed", StringType(), False),
        StructField("landed", LongType(), False),
        StructField("current", LongType(), False),
        StructField("superseded", LongType(), False),
        StructField("quarantined", LongType(), False),
        StructField("balanced", BooleanType(), False),
    ]
)


def _count(spark: SparkSession, path: str) -> int:
    return spark.read.format("delta").load(path).count() if table_exists(spark, path) else 0


def feed_counts(spark: SparkSession, warehouse: str) -> list[tuple[str, int, int, int, int]]:
    """(feed, landed, current, superseded, quarantined) for every contract feed (small: 13 rows)."""
    superseded: dict[str, int] = {}
    sup_path = table_path(warehouse, "silver", SUPERSEDED_TABLE)
    if table_exists(spark, sup_path):
        rows = spark.read.format("delta").load(sup_path).groupBy("feed").agg(F.count(F.lit(1))).collect()
        superseded = {r[0]: int(r[1]) for r in rows}
    return [
        (
            feed,
            _count(spark, table_path(warehouse, "bronze", feed)),
            _count(spark, table_path(warehouse, "silver", feed)),
            superseded.get(feed, 0),
            _count(spark, table_path(warehouse, "quarantine", feed)),
        )
        for feed in FEED_ORDER
    ]


def accounting(spark: SparkSession, warehouse: str) -> DataFrame:
    """One row per feed: ``feed, landed, current, superseded, quarantined, balanced``."""
    rows = [(*r, r[1] == r[2] + r[3] + r[4]) for r in feed_counts(spark, warehouse)]
    return spark.createDataFrame(rows, ACCOUNTING_SCHEMA)


def raise_if_unbalanced(rows: list[tuple[str, int, int, int, int]], *, where: str = "") -> None:
    """DataError naming every (feed, landed, current, superseded, quarantined) row that does not balance."""
    broken = [r for r in rows if r[1] != r[2] + r[3] + r[4]]
    if broken:
        lines = [
            f"{feed}: landed {landed} != current {current} + superseded {sup} + quarantined {q} "
            f"(= {current + sup + q}, difference {landed - current - sup - q})"
            for feed, landed, current, sup, q in broken
        ]
        raise DataError(f"row accounting does not balance{where}: " + "; ".join(lines))


def check_accounting(spark: SparkSession, warehouse: str) -> DataFrame:
    """The accounting DataFrame; raises DataError naming every feed where
    landed != current + superseded + quarantined, with the numbers."""
    rows = feed_counts(spark, warehouse)
    raise_if_unbalanced(rows)
    return spark.createDataFrame([(*r, True) for r in rows], ACCOUNTING_SCHEMA)


def record(spark: SparkSession, *, warehouse: str, run_id: str) -> DataFrame:
    """check_accounting plus a ``run_id`` column (raises DataError when a feed does not balance).

    Writes nothing: the caller stores it (e.g. in a gold audit table).
    """
    return check_accounting(spark, warehouse).withColumn("run_id", F.lit(run_id))
