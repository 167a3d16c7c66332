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
    writer = df.write.format("delta").mode("overwrite")
    if overwrite_schema:
        writer = writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    register_table(df.sparkSession, warehouse, layer, table)
    return path
