"""Delta table locations, reads, writes and catalog registration.

Every table is a Delta table at ``<warehouse>/<layer>/<table>`` (contract
section 2), registered as ``<layer>.<table>`` when the session has a
persistent catalog (``spark.sql.catalogImplementation=hive``).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import LAYERS, RESTRICTED_LAYERS
from ucx_spark.io import delta_log


def restrict_layers(warehouse: str | Path) -> list[Path]:
    """Create (or fix) the restricted layers' folders with mode 0700 and return them. Files Delta
    writes inside keep the process umask; the folder's mode is what keeps other users out."""
    import os

    out = []
    for layer in RESTRICTED_LAYERS:
        folder = Path(warehouse).resolve() / layer
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and an older folder may be wider
        out.append(folder)
    return out


def table_path(warehouse: str | Path, layer: str, table: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer '{layer}' (allowed: {', '.join(LAYERS)})")
    return str(Path(warehouse).resolve() / layer / table)


def table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return Path(path, "_delta_log").is_dir() or DeltaTable.isDeltaTable(spark, path)


def read_path(spark: SparkSession, path: str, *, version: int | None = None) -> DataFrame:
    """The Delta table at ``path`` (at ``version``: time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def read_table(spark: SparkSession, warehouse: str | Path, layer: str, table: str, *, version: int | None = None) -> DataFrame:
    return read_path(spark, table_path(warehouse, layer, table), version=version)


def read_optional(spark: SparkSession, warehouse: str | Path, layer: str, table: str) -> DataFrame | None:
    """The table, or None when it does not exist (optional inputs such as silver/accounts)."""
    return read_table(spark, warehouse, layer, table) if table_exists(spark, table_path(warehouse, layer, table)) else None


def table_version(spark: SparkSession, path: str) -> int | None:
    """Latest committed Delta version of the table at ``path``, or None if there is none (read
    from the transaction log: no Spark job)."""
    from delta.tables import DeltaTable

    version = delta_log.latest_version(path)
    if version is not None or not table_exists(spark, path):
        return version
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def has_persistent_catalog(spark: SparkSession) -> bool:
    return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive"


_REGISTERED: set[tuple[int, str, str]] = set()


def register_table(spark: SparkSession, warehouse: str | Path, layer: str, table: str) -> None:
    """Register ``<layer>.<table>`` over the Delta path when a metastore is configured (once per
    session and table: each registration is a round trip to the metastore)."""
    if not has_persistent_catalog(spark):
        return
    path = table_path(warehouse, layer, table)
    key = (id(spark), layer, path)
    if key in _REGISTERED:
        return
    from ucx_spark.concurrency import LOCK

    with LOCK:  # feed threads: one metastore change at a time
        if key in _REGISTERED:
            return
        # Look before creating: a lookup is one metastore call, while CREATE ... IF NOT EXISTS on an
        # existing database or table still analyses the statement (and warns "created concurrently").
        if not spark.catalog.databaseExists(layer):
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
        if not spark.catalog.tableExists(table, layer):
            spark.sql(f"CREATE TABLE IF NOT EXISTS {layer}.`{table}` USING DELTA LOCATION '{path}'")
        _REGISTERED.add(key)


def same_columns(a: DataFrame, b: DataFrame) -> bool:
    """The same column names and types, in the same order."""
    return [(f.name, f.dataType) for f in a.schema.fields] == [(f.name, f.dataType) for f in b.schema.fields]


def overwrite_table(
    df: DataFrame,
    warehouse: str | Path,
    layer: str,
    table: str,
    *,
    partition_by: tuple[str, ...] = (),
    overwrite_schema: bool = True,
    user_metadata: str | None = None,
    keep: str | None = None,
) -> str:
    """Replace the table's contents in one Delta commit (its commit carrying ``user_metadata``);
    returns its path. ``keep``: a SQL predicate on rows another writer owns, which stay as they
    are (``replaceWhere`` on the rest; ``df`` must hold none of them); when the table does not
    exist yet or its columns differ from ``df``'s, the replace is whole (kept rows cannot outlive
    a schema change)."""
    path = table_path(warehouse, layer, table)
    spark = df.sparkSession
    if keep is not None and not (table_exists(spark, path) and same_columns(spark.read.format("delta").load(path), df)):
        keep = None
    # A full replace: static mode, or Delta refuses overwriteSchema under the
    # session's dynamic partition overwrite default.
    writer = df.write.format("delta").mode("overwrite").option("partitionOverwriteMode", "static")
    if keep is not None:
        writer = writer.option("replaceWhere", f"NOT coalesce({keep}, false)")
    elif overwrite_schema:
        writer = writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
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
    properties: dict[str, str] | None = None,
    user_metadata: str | None = None,
) -> None:
    """Append ``df`` in one Delta commit (creating the table if needed, with ``partition_by`` and
    the Delta table ``properties``, e.g. ``delta.dataSkippingNumIndexedCols``); ``user_metadata``
    is recorded with the commit.

    With ``txn_app_id``/``txn_version`` the append is an idempotent write:
    Delta skips it when that application id already committed a version
    greater than or equal to ``txn_version``.
    """
    writer = df.write.format("delta").mode("append")
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    if txn_app_id is not None and txn_version is not None:
        writer = writer.option("txnAppId", txn_app_id).option("txnVersion", txn_version)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if properties and not table_exists(df.sparkSession, path):
        for key, value in properties.items():  # delta.* options of the first write are table properties
            writer = writer.option(key, value)
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


def replace_batches(df: DataFrame, path: str, *, batches: list[str], predicate: str) -> None:
    """Write ``df``, the rows of ``batches`` (names of what it holds, e.g. a run's results for a
    table), replacing the rows of those batches already in the table (``predicate``: SQL selecting
    them; every row of ``df`` satisfies it), in one commit that names its batches in its
    ``userMetadata``. When the log says no batch was written before, the write is a plain append
    (Delta's floor: ~0.3 s against ~1.4 s for a MERGE of a few rows); otherwise (a retry, or a
    table whose older commits named nothing) a ``replaceWhere`` overwrite."""
    import json

    spark = df.sparkSession
    writer = df.write.format("delta").option("userMetadata", json.dumps({BATCHES_KEY: sorted(set(batches))}))
    if table_exists(spark, path):
        logged = names_in_log(path, BATCHES_KEY)
        if logged is None or logged & set(batches):
            writer.mode("overwrite").option("replaceWhere", predicate).save(path)
            return
    writer.mode("append").save(path)


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

    version = delta_log.latest_version(path)
    if version is not None:
        info = delta_log.commit_info(path, version) or {}
        return version, {str(k): str(v) for k, v in (info.get("operationMetrics") or {}).items()}
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


# --- bronze: one partition per landing file ---------------------------------------------------

SOURCE_FILE_COLUMN = "_source_file"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_HEX = "0123456789ABCDEFabcdef"


def unescape_path_name(name: str) -> str:
    """Invert Hive's partition-directory escaping (``%XX`` for special characters)."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c == "%" and i + 2 < len(name) and name[i + 1] in _HEX and name[i + 2] in _HEX:
            out.append(chr(int(name[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def partition_values(spark: SparkSession, path: str) -> dict[str, str | None]:
    """``_source_file`` -> ``_file_rejected`` of a bronze table, read from the paths of its
    partitions (the Delta snapshot's file list; no data file is opened).

    A table written without that partitioning (an older layout) is read with a
    distinct query instead.
    """
    if not table_exists(spark, path):
        return {}
    files = delta_log.live_files(path)
    if files is not None and all(SOURCE_FILE_COLUMN in f.partition_values for f in files.values()):
        return {f.partition_values[SOURCE_FILE_COLUMN]: f.partition_values.get("_file_rejected")  # type: ignore[misc]
                for f in files.values()}
    df = spark.read.format("delta").load(path)
    out: dict[str, str | None] = {}
    for file_path in df.inputFiles():
        values = {}
        for segment in file_path.split("/"):
            name, sep, value = segment.partition("=")
            if sep and name in (SOURCE_FILE_COLUMN, "_file_rejected"):
                values[name] = None if value == NULL_PARTITION else unescape_path_name(value)
        if SOURCE_FILE_COLUMN not in values:
            rows = df.groupBy(SOURCE_FILE_COLUMN).agg(F.max("_file_rejected")).collect()  # one row per file
            return {r[0]: r[1] for r in rows}
        out[values[SOURCE_FILE_COLUMN]] = values.get("_file_rejected")
    return out


def source_files(spark: SparkSession, path: str) -> list[str]:
    """The distinct ``_source_file`` values of a bronze table (see partition_values)."""
    return sorted(partition_values(spark, path))


def landed_row_counts(spark: SparkSession, path: str, files: list[str]) -> dict[str, int]:
    """Rows per landing file of a bronze table, for the given files: from the statistics of the
    log (no Spark job), else one query of their partitions (a data file without the statistic or
    the partitioning, or with deleted rows)."""
    if not files or not table_exists(spark, path):
        return {}
    logged = delta_log.row_count(path, by=SOURCE_FILE_COLUMN)
    if logged is not None and None not in logged:
        return {f: logged[f] for f in files if f in logged}
    rows = (
        spark.read.format("delta").load(path)
        .filter(F.col(SOURCE_FILE_COLUMN).isin(files))
        .groupBy(SOURCE_FILE_COLUMN)
        .count()
        .collect()  # one row per file
    )
    return {r[0]: int(r[1]) for r in rows}


# --- incremental writes that prune the target ---------------------------------------------------


FILES_KEY = "source_files"
BATCHES_KEY = "batches"


def names_in_log(path: str, key: str) -> set[str] | None:
    """The names every data-changing commit of ``path`` lists under ``key`` in its ``userMetadata``
    (``{"source_files": [...]}`` of ``append_new_rows``, ``{"batches": [...]}`` of ``replace_batches``),
    from the log (no Spark job); None when some commit still in the log did not say (an older
    write): the caller must look at the data."""
    import json

    seen: set[str] = set()
    for _, info in delta_log.commit_infos(path):
        if info.get("operation") not in ("WRITE", "MERGE", "CREATE TABLE", "CREATE OR REPLACE TABLE"):
            continue
        try:
            data = json.loads(info.get("userMetadata") or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or key not in data:
            return None
        seen.update(str(f) for f in data[key])
    return seen


def files_in_log(path: str) -> set[str] | None:
    """The landing files whose rows commits of ``path`` say they wrote (see names_in_log)."""
    return names_in_log(path, FILES_KEY)


def append_new_rows(df: DataFrame, path: str, *, keys: tuple[str, ...], files: list[str],
                    partition_by: tuple[str, ...] = ()) -> None:
    """Insert the rows of ``df`` whose ``keys`` are not in the table yet (idempotent), where every
    row of ``df`` comes from one of the landing ``files`` (column ``_source_file``).

    Each commit names its files in its ``userMetadata``, so the usual case, no
    row of these files in the table yet, is decided from the log and is a plain
    append (one job); a rerun after a crash that committed some of them takes
    the insert-only MERGE of ``insert_new_rows``.
    """
    import json

    spark = df.sparkSession
    metadata = json.dumps({FILES_KEY: sorted(set(files))})
    writer = df.write.format("delta").mode("append").option("userMetadata", metadata)
    if table_exists(spark, path):
        logged = files_in_log(path)
        if logged is not None:
            present = bool(logged & set(files))
        else:
            present = bool(spark.read.format("delta").load(path)
                           .filter(F.col(SOURCE_FILE_COLUMN).isin(files)).limit(1).count())
        if present:
            insert_new_rows(df, path, keys=keys)  # a MERGE names no files: later checks read the data
            return
    elif partition_by:  # the layout is chosen when the table is created
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def merge_if_later(
    df: DataFrame, path: str, *, keys: tuple[str, ...], order_by: tuple[str, ...], target_predicate: str | None = None
) -> None:
    """MERGE ``df`` into the table on ``keys``: a key's row is replaced only when the source row is
    later by ``order_by`` (lexicographic), new keys are inserted. ``target_predicate`` (SQL on
    target columns ``t.``, literals only) is added to the ON clause, so Delta reads and rewrites
    only the files it can match (partition and min/max pruning): the rows of ``df`` must all
    satisfy it."""
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    if target_predicate:
        cond = f"({target_predicate}) AND {cond}"
    later = _lexicographic_greater([f"s.`{c}`" for c in order_by], [f"t.`{c}`" for c in order_by])
    (
        DeltaTable.forPath(df.sparkSession, path)
        .alias("t")
        .merge(df.alias("s"), cond)
        .whenMatchedUpdateAll(condition=later)
        .whenNotMatchedInsertAll()
        .execute()
    )


def upsert(df: DataFrame, path: str, *, keys: tuple[str, ...], target_predicate: str | None = None) -> None:
    """MERGE ``df`` into the table by ``keys`` (null-safe): update matched rows, insert new ones;
    creates the table from ``df`` when it does not exist. ``target_predicate`` (SQL on target
    columns ``t.``, literals only) is added to the ON clause, so Delta reads and rewrites only the
    files it can match: the rows of ``df`` must all satisfy it."""
    spark = df.sparkSession
    if not table_exists(spark, path):
        df.write.format("delta").mode("append").save(path)
        return
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    if target_predicate:
        cond = f"({target_predicate}) AND {cond}"
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(df.alias("s"), cond)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def sql_literal_list(values: list[object]) -> str:
    """Values as a SQL list of literals (dates and timestamps as typed literals)."""
    from datetime import date, datetime

    def lit(v: object) -> str:
        if isinstance(v, datetime):
            return f"TIMESTAMP '{v.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        if isinstance(v, date):
            return f"DATE '{v.isoformat()}'"
        if isinstance(v, str):
            return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return str(v)

    return ", ".join(lit(v) for v in values)


def changed_rows(spark: SparkSession, path: str, *, since_version: int, deleted: bool = False,
                 images: bool = False) -> DataFrame | None:
    """Rows inserted or updated after ``since_version`` (Delta change data feed; with ``deleted``,
    the rows deleted too; with ``images``, an update's row before it too, and the columns
    ``_change_type`` and ``_commit_version`` kept), or None when the feed cannot answer (not
    enabled then, or the versions were vacuumed): read the whole table."""
    from pyspark.errors import AnalysisException

    current = table_version(spark, path)
    if current is None or current <= since_version:
        empty = spark.read.format("delta").load(path).limit(0)
        return empty.withColumn("_change_type", F.lit(None).cast("string")).withColumn(
            "_commit_version", F.lit(None).cast("long")) if images else empty
    try:
        df = (
            spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", since_version + 1).load(path)
        )
        df.schema  # noqa: B018 (resolves the versions now: a missing range fails here)
    except AnalysisException:
        return None
    kinds = ("insert", "update_postimage", "delete") if deleted else ("insert", "update_postimage")
    if images:
        return df.filter(F.col("_change_type").isin(*kinds, "update_preimage")).drop("_commit_timestamp")
    return df.filter(F.col("_change_type").isin(*kinds)).drop(
        "_change_type", "_commit_version", "_commit_timestamp"
    )


def _alike_updates(changes_df: DataFrame, *, keys: tuple[str, ...], ignore: tuple[str, ...],
                   **aggs: Column) -> DataFrame:
    """The updates of ``changes_df`` (``changed_rows(..., images=True)``) whose two images agree
    but for ``ignore`` columns: keys, _commit_version and ``aggs`` over the two images."""
    content = F.to_json(F.struct(*[F.col(f"`{c}`") for c in changes_df.columns
                                   if c not in (*ignore, "_change_type", "_commit_version")]))
    return (changes_df.filter(_is_update()).groupBy(*keys, "_commit_version")
            .agg(F.countDistinct(content).alias("_contents"), *[a.alias(n) for n, a in aggs.items()])
            .filter(F.col("_contents") == 1).drop("_contents"))


def _is_update() -> Column:
    return F.col("_change_type").startswith("update_")


def without_unchanged_updates(changes_df: DataFrame, *, keys: tuple[str, ...], ignore: tuple[str, ...] = ()) -> DataFrame:
    """``changed_rows(..., images=True)`` without the updates that changed nothing but ``ignore``
    columns: both images of a key in one commit with the same content. A daily extract that
    re-sends a row as it was (a CIS snapshot of every account) updates silver's lineage
    (``_source_file``, ``_extracted_at``: the next re-send is judged against it) and nothing a
    reader of the row's content can see."""
    same_df = _alike_updates(changes_df, keys=keys, ignore=ignore, _unchanged=F.lit(True))
    return (changes_df.join(same_df, [*keys, "_commit_version"], "left")
            .filter(~(_is_update() & F.coalesce(F.col("_unchanged"), F.lit(False)))).drop("_unchanged"))


def with_dated_updates(changes_df: DataFrame, *, keys: tuple[str, ...], column: str,
                       ignore: tuple[str, ...] = ()) -> DataFrame:
    """``changed_rows(..., images=True)`` plus ``_update_day``: for both images of an update that
    changed nothing but the date ``column`` (and ``ignore`` columns), the earlier of its two
    values (a null, open-ended, is later than any day); null for every other row. An account's
    move-out (its end_date set, or corrected) is such an update: nothing before the earlier end
    date reads differently."""
    dated_df = _alike_updates(changes_df, keys=keys, ignore=(*ignore, column), _update_day=F.min(column))
    return (changes_df.join(dated_df, [*keys, "_commit_version"], "left")
            .withColumn("_update_day", F.when(_is_update(), F.col("_update_day"))))


def commit_metadata(spark: SparkSession, path: str, key: str) -> dict | None:
    """The ``key`` entry of the latest commit whose userMetadata is UCX JSON holding it."""
    import json

    from delta.tables import DeltaTable

    if delta_log.latest_version(path) is not None:  # read from the log: no Spark job
        for _, info in delta_log.commit_infos(path):
            text = info.get("userMetadata")
            if not text or not str(text).startswith("{"):
                continue
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and key in data:
                return data[key]
        return None
    if not table_exists(spark, path):
        return None
    rows = (
        DeltaTable.forPath(spark, path).history()
        .filter(F.col("userMetadata").startswith("{"))
        .orderBy(F.col("version").desc())
        .select("userMetadata")
        .collect()  # one row per commit with metadata: bounded by the log retention
    )
    for r in rows:
        try:
            data = json.loads(r[0])
        except ValueError:
            continue
        if isinstance(data, dict) and key in data:
            return data[key]
    return None
