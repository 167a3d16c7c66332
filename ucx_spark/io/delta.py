"""Delta table locations, reads, writes and catalog registration.

Every table is a Delta table at ``<warehouse>/<layer>/<table>`` (contract
section 2), registered as ``<layer>.<table>`` when the session has a
persistent catalog (``spark.sql.catalogImplementation=hive``).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

LAYERS = ("bronze", "silver", "gold", "quarantine")


def table_path(warehouse: str | Path, layer: str, table: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer '{layer}' (allowed: {', '.join(LAYERS)})")
    return str(Path(warehouse).resolve() / layer / table)


def table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return Path(path, "_delta_log").is_dir() or DeltaTable.isDeltaTable(spark, path)


def read_table(spark: SparkSession, warehouse: str | Path, layer: str, table: str, *, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(table_path(warehouse, layer, table))


def read_optional(spark: SparkSession, warehouse: str | Path, layer: str, table: str) -> DataFrame | None:
    """The table, or None when it does not exist (optional inputs such as silver/accounts)."""
    return read_table(spark, warehouse, layer, table) if table_exists(spark, table_path(warehouse, layer, table)) else None


def table_version(spark: SparkSession, path: str) -> int | None:
    """Latest committed Delta version of the table at ``path``, or None if there is none."""
    from delta.tables import DeltaTable

    if not table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def has_persistent_catalog(spark: SparkSession) -> bool:
    return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive"


def register_table(spark: SparkSession, warehouse: str | Path, layer: str, table: str) -> None:
    """Register ``<layer>.<table>`` over the Delta path when a metastore is configured."""
    if not has_persistent_catalog(spark):
        return
    path = table_path(warehouse, layer, table)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {layer}.`{table}` USING DELTA LOCATION '{path}'")


def overwrite_table(
    df: DataFrame,
    warehouse: str | Path,
    layer: str,
    table: str,
    *,
    partition_by: tuple[str, ...] = (),
    overwrite_schema: bool = True,
) -> str:
    """Replace the table's contents in one Delta commit; returns its path."""
    path = table_path(warehouse, layer, table)
    # A full replace: static mode, or Delta refuses overwriteSchema under the
    # session's dynamic partition overwrite default.
    writer = df.write.format("delta").mode("overwrite").option("partitionOverwriteMode", "static")
    if overwrite_schema:
        writer = writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    register_table(df.sparkSession, warehouse, layer, table)
    return path


# --- Incremental writes used by bronze and silver (one Delta commit each) ---


def append_table(
    df: DataFrame,
    path: str,
    *,
    txn_app_id: str | None = None,
    txn_version: int | None = None,
    partition_by: tuple[str, ...] = (),
) -> None:
    """Append ``df`` in one Delta commit (creating the table if needed).

    With ``txn_app_id``/``txn_version`` the append is an idempotent write:
    Delta skips it when that application id already committed a version
    greater than or equal to ``txn_version``.
    """
    writer = df.write.format("delta").mode("append")
    if txn_app_id is not None and txn_version is not None:
        writer = writer.option("txnAppId", txn_app_id).option("txnVersion", txn_version)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def insert_new_rows(df: DataFrame, path: str, *, keys: tuple[str, ...]) -> None:
    """Insert the rows of ``df`` whose ``keys`` are not in the table yet (idempotent).

    An insert-only MERGE; creates the table from ``df`` when it does not exist.
    Delta commits nothing when no row is new.
    """
    spark = df.sparkSession
    if not table_exists(spark, path):
        df.write.format("delta").mode("append").save(path)
        return
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), cond).whenNotMatchedInsertAll().execute()


def upsert_if_later(df: DataFrame, path: str, *, keys: tuple[str, ...], order_by: tuple[str, ...]) -> None:
    """MERGE ``df`` (one row per key) into the table: insert new keys, replace a
    current row only when the incoming row is later by ``order_by`` (compared
    lexicographically). Re-applying the same rows changes nothing.
    """
    spark = df.sparkSession
    if not table_exists(spark, path):
        df.write.format("delta").mode("append").save(path)
        return
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    later = _lexicographic_greater([f"s.`{c}`" for c in order_by], [f"t.`{c}`" for c in order_by])
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(df.alias("s"), cond)
        .whenMatchedUpdateAll(condition=later)
        .whenNotMatchedInsertAll()
        .execute()
    )


def upsert_rows(df: DataFrame, path: str, *, keys: tuple[str, ...]) -> None:
    """MERGE ``df`` into the table by ``keys``: update matched rows, insert new ones."""
    spark = df.sparkSession
    if not table_exists(spark, path):
        df.write.format("delta").mode("append").save(path)
        return
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(df.alias("s"), cond)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def _lexicographic_greater(left: list[str], right: list[str]) -> str:
    """SQL for (l1, l2, ...) > (r1, r2, ...) on non-null values."""
    head_l, head_r = left[0], right[0]
    if len(left) == 1:
        return f"{head_l} > {head_r}"
    rest = _lexicographic_greater(left[1:], right[1:])
    return f"({head_l} > {head_r} OR ({head_l} = {head_r} AND {rest}))"


def last_commit(spark: SparkSession, path: str) -> tuple[int, dict[str, str]] | None:
    """(version, operationMetrics) of the table's latest commit, or None if there is no table."""
    from delta.tables import DeltaTable

    if not table_exists(spark, path):
        return None
    row = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    return int(row[0]), dict(row[1] or {})


def replace_rows_where(df: DataFrame, path: str, *, predicate: str) -> None:
    """Replace the rows matching ``predicate`` (SQL) with ``df`` in one Delta commit, keeping every
    other row (``replaceWhere``); creates the table from ``df`` when it does not exist. Every row
    of ``df`` must match ``predicate``."""
    spark = df.sparkSession
    writer = df.write.format("delta").mode("overwrite").option("partitionOverwriteMode", "static")
    if table_exists(spark, path):
        writer = writer.option("replaceWhere", predicate)
    writer.save(path)
