"""Classified bronze rows -> silver rows: winners, superseded rows, feed extras."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.contract import FEEDS
from ucx_spark.identity import household_id, meter_key
from ucx_spark.silver.addresses import normalize_address
from ucx_spark.silver.ami import with_local_time
from ucx_spark.silver.rules import value_col, with_detail
from ucx_spark.silver.text import scrub_free_text

ORDER_COLUMNS = ("_extracted_at", "_source_file")  # extract order: timestamp, then whole file name
SILVER_LINEAGE = ("_source_file", "_extracted_at", "_row_number", "_run_id")
RANK_COLUMNS = ("__rank", "superseded_by_file", "superseded_by_row")
SUPERSEDED_COLUMNS = ("feed", "_source_file", "_row_number", "superseded_by_file", "superseded_by_row", "_run_id")


def quarantine_rows(classified_df: DataFrame, *, feed: str, run_id: str) -> DataFrame:
    """Bad rows as quarantine/<feed> rows: raw contract columns, ``_extra``, lineage, rule, detail
    (built here, for the bad rows only), run id."""
    bad_df = classified_df.filter(F.col("rule").isNotNull())
    if "detail" not in bad_df.columns:
        bad_df = bad_df.transform(with_detail, feed=feed)
    return bad_df.select(
        *FEEDS[feed].column_names,
        "_extra",
        "_source_file",
        "_row_number",
        "_extracted_at",
        "rule",
        "detail",
        F.lit(run_id).alias("_run_id"),
    )


def typed_rows(classified_df: DataFrame, *, feed: str, run_id: str) -> DataFrame:
    """Valid rows with typed contract columns (named as in the contract), lineage and, when the
    frame has them, the rank columns of with_rank_in_batch / without_rank."""
    rank = [c for c in RANK_COLUMNS if c in classified_df.columns]
    return classified_df.filter(F.col("rule").isNull()).select(
        *[F.col(value_col(c)).alias(c) for c in FEEDS[feed].column_names],
        "_source_file",
        "_extracted_at",
        "_row_number",
        F.lit(run_id).alias("_run_id"),
        *rank,
    )


def with_rank_in_batch(classified_df: DataFrame, *, feed: str) -> DataFrame:
    """Adds ``__rank`` (1 = the key's latest valid row: latest extract, then first row of the
    file) and the winner's ``superseded_by_file``/``superseded_by_row`` to the valid rows
    (``rule`` null) of classified rows; null for bad rows. A window over the typed key: the
    silver step runs it only on the rows whose key occurs more than once in the batch."""
    valid = F.col("rule").isNull()
    w = Window.partitionBy(valid, *[value_col(k) for k in FEEDS[feed].key]).orderBy(
        F.col("_extracted_at").desc(), F.col("_source_file").desc(), F.col("_row_number").asc()
    )
    return classified_df.withColumns(
        {
            "__rank": F.when(valid, F.row_number().over(w)),
            "superseded_by_file": F.when(valid, F.first("_source_file").over(w)),
            "superseded_by_row": F.when(valid, F.first("_row_number").over(w)),
        }
    )


def without_rank(classified_df: DataFrame) -> DataFrame:
    """The rank columns for rows whose key occurs once in the batch: every valid row wins."""
    return classified_df.withColumns(
        {
            "__rank": F.when(F.col("rule").isNull(), F.lit(1)),
            "superseded_by_file": F.lit(None).cast("string"),
            "superseded_by_row": F.lit(None).cast("long"),
        }
    )


def superseded_in_batch(ranked_df: DataFrame, *, feed: str, run_id: str) -> DataFrame:
    """Valid batch rows beaten inside the batch (a later extract, or an identical copy in the
    same extract): ``SUPERSEDED_COLUMNS``. Needs typed_rows with rank columns."""
    return ranked_df.filter(F.col("__rank") > 1).select(
        F.lit(feed).alias("feed"), "_source_file", "_row_number", "superseded_by_file", "superseded_by_row",
        F.lit(run_id).alias("_run_id"),
    )


def current_pairs(winners_df: DataFrame, current_df: DataFrame, *, feed: str) -> DataFrame:
    """Batch winners joined by key to the current silver rows of the same key: key, the winner's
    ``_extracted_at``/``_source_file``/``_row_number`` and the current row's as ``__t`` columns."""
    key = FEEDS[feed].key
    cur_df = current_df.select(*key, *[F.col(c).alias("__t" + c) for c in (*ORDER_COLUMNS, "_row_number")])
    return winners_df.select(*key, *ORDER_COLUMNS, "_row_number").join(cur_df, list(key), "inner")


def superseded_against_current(pair_df: DataFrame, *, feed: str, run_id: str) -> DataFrame:
    """From current_pairs: the current rows a later batch winner replaces, and the batch winners
    beaten by an even later current row (a late-arriving earlier extract)."""
    s_ext, s_file = F.col("_extracted_at"), F.col("_source_file")
    t_ext, t_file = F.col("__t_extracted_at"), F.col("__t_source_file")
    batch_later = (s_ext > t_ext) | ((s_ext == t_ext) & (s_file > t_file))
    batch_earlier = (s_ext < t_ext) | ((s_ext == t_ext) & (s_file < t_file))
    replaced = pair_df.filter(batch_later).select(
        F.lit(feed).alias("feed"),
        F.col("__t_source_file").alias("_source_file"),
        F.col("__t_row_number").alias("_row_number"),
        F.col("_source_file").alias("superseded_by_file"),
        F.col("_row_number").alias("superseded_by_row"),
    )
    beaten = pair_df.filter(batch_earlier).select(
        F.lit(feed).alias("feed"),
        "_source_file",
        "_row_number",
        F.col("__t_source_file").alias("superseded_by_file"),
        F.col("__t_row_number").alias("superseded_by_row"),
    )
    return replaced.unionByName(beaten).withColumn("_run_id", F.lit(run_id))


def winner_rows(ranked_df: DataFrame) -> DataFrame:
    return ranked_df.filter(F.col("__rank") == 1).drop(*RANK_COLUMNS)


def with_feed_extras(
    rows_df: DataFrame,
    *,
    feed: str,
    time_zone: str,
    pseudonym_key: bytes,
    names_df: DataFrame | None = None,
    meters_df: DataFrame | None = None,
) -> DataFrame:
    """Silver extras of docs/layers.md: pseudonyms, ami local time (and ``local_month``, the
    partition of silver/ami), normalised addresses, scrubbed free text (``names_df``:
    account_id, customer_name of the current accounts, for the account's own name).

    ``meters_df`` (ami): the distinct meter_id of the accounts; the meter_key HMAC is
    then computed once per meter and joined (broadcast) instead of twice per read."""
    f = FEEDS[feed]
    names = f.column_names
    extras: list[str] = []
    if feed == "ami":
        rows_df = rows_df.transform(with_local_time, time_zone=time_zone)
        if meters_df is not None:
            keys_df = meters_df.select("meter_id").distinct().withColumn(
                "meter_key", meter_key(F.col("meter_id"), key=pseudonym_key)
            )
            rows_df = rows_df.join(F.broadcast(keys_df), "meter_id", "left")
        else:
            rows_df = rows_df.withColumn("meter_key", meter_key(F.col("meter_id"), key=pseudonym_key))
        rows_df = rows_df.withColumn("local_month", F.trunc("local_date", "month"))
        extras += ["local_date", "local_hour", "meter_key", "local_month"]
    if "account_id" in names:
        rows_df = rows_df.withColumn("household_id", household_id(F.col("account_id"), key=pseudonym_key))
        extras.append("household_id")
    if feed == "accounts":
        rows_df = rows_df.withColumns(
            {
                "meter_key": meter_key(F.col("meter_id"), key=pseudonym_key),
                "address_normalized": normalize_address(F.col("service_address")),
            }
        )
        extras += ["meter_key", "address_normalized"]
    if feed == "households":
        rows_df = rows_df.withColumn("address_normalized", normalize_address(F.col("address_line")))
        extras.append("address_normalized")
    free_text = [c.name for c in f.columns if c.free_text]
    if free_text:
        if names_df is not None:
            rows_df = rows_df.join(
                names_df.select("account_id", F.col("customer_name").alias("__name")), "account_id", "left"
            )
        else:
            rows_df = rows_df.withColumn("__name", F.lit(None).cast("string"))
        rows_df = rows_df.withColumns({c: scrub_free_text(F.col(c), F.col("__name")) for c in free_text})
    return rows_df.select(*names, *extras, *SILVER_LINEAGE)
