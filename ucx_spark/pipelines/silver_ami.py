"""AMI's part of the silver step, in one place.

The generic chain (``pipelines/silver.py``) runs every feed the same way and
asks the feed's ``FeedHooks`` for what is particular to it; every feed but AMI
adds nothing. AMI adds, at four points of the chain:

- the batch profile: where the batch's valid readings lie (their local days,
  first and last ``interval_start``: ``silver.ami.span_columns``), one
  aggregation with the rule counts;
- the comparison with current rows and the MERGE: read only the batch's
  ``local_month`` partitions and interval range (``AmiSpan.predicate``, literal
  predicates Delta prunes files by);
- the silver extras: the meter pseudonym computed once per meter of the
  current accounts (``uses_meters``);
- after the MERGE: silver/ami_daily recomputed for the meter-days the batch
  touched and the day after each (``update_daily``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import AMI_DAILY, AMI_PARTITION, spec
from ucx_spark.concurrency import job_tag
from ucx_spark.io.delta import (
    append_table,
    read_path,
    register_table,
    sql_literal_list,
    table_exists,
    table_path,
    upsert,
)
from ucx_spark.silver.ami import daily_targets, span_columns
from ucx_spark.silver.ami_daily import ami_daily


@dataclass(frozen=True)
class AmiSpan:
    """Where a batch's valid readings lie: their local days (and months, silver/ami's partitions)
    and their interval range."""

    days: list[date]
    first: datetime
    last: datetime

    @property
    def months(self) -> list[date]:
        return months_of(self.days)

    def predicate(self, alias: str | None = "t") -> str:
        """SQL predicate on silver/ami rows (of ``alias``) in the span: partitions, then range."""
        p = f"{alias}." if alias else ""
        return (
            f"{p}`{AMI_PARTITION}` IN ({sql_literal_list(self.months)}) AND "
            f"{p}`interval_start` BETWEEN {sql_literal_list([self.first])} AND {sql_literal_list([self.last])}"
        )


def months_of(days: list[date]) -> list[date]:
    """The local months (their first days: silver/ami's ``local_month`` partitions) of ``days``."""
    return sorted({d.replace(day=1) for d in days})


class FeedHooks:
    """What a feed adds to the generic silver chain; this default adds nothing."""

    uses_meters = False  # the silver extras want the current accounts' meter_id

    def profile_columns(self, valid: Column, *, time_zone: str) -> list[Column]:
        """Aggregations computed with the batch's rule counts (one pass)."""
        return []

    def span(self, row: Any) -> AmiSpan | None:
        """Where the batch lies, from the profile row (None: no pruning)."""
        return None

    def after_merge(self, spark: SparkSession, warehouse: str, winners_df: DataFrame, *, feed: str, time_zone: str,
                    run_id: str, created: bool, span: AmiSpan | None) -> tuple[date, ...]:
        """Tables derived from the feed's rows, brought up to date once they are merged; returns
        the local days recomputed."""
        return ()


class AmiHooks(FeedHooks):
    uses_meters = True

    def profile_columns(self, valid: Column, *, time_zone: str) -> list[Column]:
        return span_columns(valid, time_zone=time_zone)

    def span(self, row: Any) -> AmiSpan | None:
        if not row["days"]:
            return None
        return AmiSpan(sorted(row["days"]), row["first"], row["last"])

    def after_merge(self, spark: SparkSession, warehouse: str, winners_df: DataFrame, *, feed: str, time_zone: str,
                    run_id: str, created: bool, span: AmiSpan | None) -> tuple[date, ...]:
        assert span is not None, "an AMI batch with valid rows has a span"
        with job_tag(spark, f"{feed}:daily"):
            return update_daily(spark, warehouse, winners_df, time_zone=time_zone, run_id=run_id, created=created,
                                days=span.days)


NO_HOOKS = FeedHooks()
HOOKS: dict[str, FeedHooks] = {"ami": AmiHooks()}


def hooks(feed: str) -> FeedHooks:
    """The feed's additions to the generic silver chain."""
    return HOOKS.get(feed, NO_HOOKS)


def update_daily(
    spark: SparkSession, warehouse: str, winners_df: DataFrame, *, time_zone: str, run_id: str, created: bool,
    days: list[date],
) -> tuple[date, ...]:
    """Recompute the meter-days the batch touched, and the day after each, into silver/ami_daily.

    ``created``: silver/ami did not exist before this batch, so its every day is
    computed from the table just written (a columnar read of six columns is cheaper
    than deriving the winners again). Otherwise the reads of those days (and of
    the day before them, for the night hour across midnight) are read back from
    silver/ami, pruned to their months and dates.
    """
    path = table_path(warehouse, "silver", AMI_DAILY)
    ami_df = read_path(spark, table_path(warehouse, "silver", "ami"))
    if created:
        daily_df = ami_daily(ami_df, time_zone=time_zone)
    else:
        recompute = sorted(set(days) | {d + timedelta(days=1) for d in days})
        first, last = recompute[0] - timedelta(days=1), recompute[-1]
        months = months_of([first, *recompute])
        targets_df = daily_targets(winners_df)
        reads_df = (
            ami_df.filter(F.col(AMI_PARTITION).isin(months))
            .filter(F.col("local_date").between(first, last))
            .join(targets_df.select("meter_id").distinct(), "meter_id", "left_semi")
        )
        daily_df = ami_daily(reads_df, time_zone=time_zone).join(targets_df, ["meter_id", "local_date"], "left_semi")
        days = recompute
    daily_df = daily_df.withColumn("_run_id", F.lit(run_id))
    if not table_exists(spark, path):
        table = spec("silver", AMI_DAILY)
        append_table(daily_df, path, partition_by=table.partition_by, properties=table.table_properties)
    else:
        months = months_of(days)
        predicate = (
            f"t.`{AMI_PARTITION}` IN ({sql_literal_list(months)}) AND "
            f"t.`local_date` BETWEEN {sql_literal_list([days[0]])} AND {sql_literal_list([days[-1]])}"
        )
        upsert(daily_df, path, keys=spec("silver", AMI_DAILY).keys, target_predicate=predicate)
    register_table(spark, warehouse, "silver", AMI_DAILY)
    return tuple(days)
