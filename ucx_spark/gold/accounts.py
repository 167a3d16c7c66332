"""Which account holds a meter or premise on a day (contract section 4).

The account active on day d is the one with start_date <= d and (end_date
null or end_date >= d); on a move day two are active and the one with the
latest start_date, then the largest account_id, wins.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.local_time import is_active_on


def with_active_account(
    df: DataFrame,
    accounts_df: DataFrame,
    *,
    key: str,
    day_col: str,
    account_cols: tuple[str, ...] = ("account_id", "household_id"),
) -> DataFrame:
    """Add ``account_cols`` of the account active at ``df[key]`` on ``df[day_col]`` (nulls if none).

    ``df`` needs ``key`` (``meter_id`` or ``premise_id``) and ``day_col``
    (DateType); ``accounts_df`` needs account_id, start_date, end_date, ``key``
    and ``account_cols``. Rows of ``df`` are kept one for one.
    """
    acc = accounts_df.select(
        F.col(key).alias("_acc_key"),
        F.col("start_date").alias("_acc_start"),
        F.col("end_date").alias("_acc_end"),
        F.col("account_id").alias("_acc_order_id"),
        *[F.col(c).alias(f"_acc_{c}") for c in account_cols],
    )
    days = df.select(F.col(key).alias("_acc_key"), F.col(day_col).alias("_acc_day")).distinct()
    rank_window = Window.partitionBy("_acc_key", "_acc_day").orderBy(
        F.col("_acc_start").desc(), F.col("_acc_order_id").desc()
    )
    chosen = (
        days.join(acc, "_acc_key")
        .filter(is_active_on(F.col("_acc_day"), start_date=F.col("_acc_start"), end_date=F.col("_acc_end")))
        .withColumn("_acc_rank", F.row_number().over(rank_window))
        .filter(F.col("_acc_rank") == 1)
        .select("_acc_key", "_acc_day", *[F.col(f"_acc_{c}").alias(c) for c in account_cols])
    )
    joined = df.join(
        chosen,
        (df[key].eqNullSafe(chosen["_acc_key"])) & (df[day_col].eqNullSafe(chosen["_acc_day"])),
        "left",
    )
    return joined.drop("_acc_key", "_acc_day")


THIRD_PARTY_COLUMNS = ("income_band", "household_size", "home_type", "tenure", "year_built", "vehicles")


def premise_household_records(household_matches_df: DataFrame, households_df: DataFrame) -> DataFrame:
    """One third-party household record per matched premise: premise_id + ``THIRD_PARTY_COLUMNS``.

    Needs silver/household_matches (record_id, premise_id, match_method) and
    silver/households (record_id, ``THIRD_PARTY_COLUMNS``). A premise matched
    to several records keeps the one with a known income_band, then the
    smallest record_id, so every run picks the same record.
    """
    rank_window = Window.partitionBy("premise_id").orderBy(
        F.col("income_band").isNull().asc(), F.col("record_id").asc()
    )
    return (
        household_matches_df.filter(F.col("premise_id").isNotNull())
        .select("record_id", "premise_id")
        .join(households_df.select("record_id", *THIRD_PARTY_COLUMNS), "record_id")
        .withColumn("_rank", F.row_number().over(rank_window))
        .filter(F.col("_rank") == 1)
        .select("premise_id", *THIRD_PARTY_COLUMNS)
    )
