"""Row accounting per feed: landed = current + superseded + quarantined (contract section 1).

Each term is counted from its own table (its Delta log's row statistics, or
Spark where those cannot answer exactly), so the identity is a real check:
``landed`` rows of bronze/<feed>, ``current`` rows of silver/<feed>,
``superseded`` rows logged in silver/_superseded for the feed (valid landed
rows beaten by a later extract or identical copies, logged by the silver
step when it happens), ``quarantined`` rows of quarantine/<feed>. A row lost,
double-written or never processed breaks the identity.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from ucx_spark.catalog import SUPERSEDED
from ucx_spark.contract import FEED_ORDER
from ucx_spark.errors import DataError
from ucx_spark.io import delta_log
from ucx_spark.io.delta import table_exists, table_path

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


def feed_counts(spark: SparkSession, warehouse: str) -> list[tuple[str, int, int, int, int]]:
    """(feed, landed, current, superseded, quarantined) for every contract feed (small: 13 rows).

    Each term is the row count of its own table's current snapshot, read from the
    row statistics (``numRecords``) every Delta commit records for the files it
    adds (``io.delta_log``): no Spark job and no data file opened. A table whose
    log cannot be read exactly that way (a file without the statistic, a deletion
    vector) is counted by Spark instead, all of them in one job; superseded rows
    are counted by feed (silver/_superseded is partitioned by feed; an older
    unpartitioned table is counted by Spark). A missing table counts 0.
    """
    counts: dict[tuple[str, str], int] = {}
    by_spark: list[DataFrame] = []
    for feed in FEED_ORDER:
        for term, layer in (("landed", "bronze"), ("current", "silver"), ("quarantined", "quarantine")):
            path = table_path(warehouse, layer, feed)
            if not table_exists(spark, path):
                continue
            logged = delta_log.row_count(path)
            if logged is not None:
                counts[(feed, term)] = logged.get(None, 0)
            else:
                by_spark.append(
                    spark.read.format("delta").load(path).select(F.lit(feed).alias("feed"), F.lit(term).alias("term"))
                )
    sup_path = table_path(warehouse, "silver", SUPERSEDED)
    if table_exists(spark, sup_path):
        by_feed = delta_log.row_count(sup_path, by="feed")
        if by_feed is not None and None not in by_feed:
            counts.update({(str(feed), "superseded"): n for feed, n in by_feed.items()})
        else:
            by_spark.append(spark.read.format("delta").load(sup_path).select("feed", F.lit("superseded").alias("term")))
    if by_spark:
        union_df = reduce(DataFrame.unionAll, by_spark)
        rows = union_df.groupBy("feed", "term").agg(F.count(F.lit(1)).alias("n")).collect()  # <= 52 rows
        counts.update({(r["feed"], r["term"]): int(r["n"]) for r in rows})
    return [
        (
            feed,
            counts.get((feed, "landed"), 0),
            counts.get((feed, "current"), 0),
            counts.get((feed, "superseded"), 0),
            counts.get((feed, "quarantined"), 0),
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
