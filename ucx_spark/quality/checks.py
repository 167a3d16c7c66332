"""UCX checks computed with Spark and recorded like expectations.

Each check is one aggregation (one Spark job) returning a ``CheckOutcome``;
only the aggregate reaches the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.quality.suites import (
    AMI_COMPLETENESS,
    FRESHNESS,
    REFERENTIAL_INTEGRITY,
    ROW_COUNT_DRIFT,
    ExpectationSpec,
)


@dataclass(frozen=True)
class CheckOutcome:
    success: bool
    observed_value: str
    unexpected_count: int | None = None


@dataclass(frozen=True)
class PreviousCount:
    run_id: str
    row_count: int


ReferenceLookup = Callable[[str], DataFrame]


def referential_integrity(
    df: DataFrame, ref_df: DataFrame, *, column: str, ref_column: str, max_missing_share: float = 0.0
) -> CheckOutcome:
    """Share of rows whose non-null ``column`` has no match in ``ref_df.ref_column``.

    An anti-join written as a left join to the distinct keys with a flag, so
    one pass yields both the rows checked and the rows missing.
    """
    keys_df = ref_df.select(F.col(ref_column).alias("_ucx_fk")).distinct().withColumn("_ucx_hit", F.lit(True))
    row = (
        df.select(F.col(column).alias("_ucx_fk"))
        .filter(F.col("_ucx_fk").isNotNull())
        .join(keys_df, "_ucx_fk", "left")
        .agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("_ucx_hit").isNull(), 1)).alias("missing"))
        .first()
    )
    n, missing = int(row["n"]), int(row["missing"])
    share = missing / n if n else 0.0
    return CheckOutcome(
        share <= max_missing_share,
        f"{missing} of {n} rows ({share:.2%}) have no match (max {max_missing_share:.2%})",
        missing,
    )


def ami_completeness(df: DataFrame, *, min_value: float, worst: int = 5) -> CheckOutcome:
    """Completeness judged per local day: for each day of ``df``, the share of its expected
    intervals that carry a value; a day below ``min_value`` fails the check.

    ``df`` holds silver/ami_daily rows (meter_id, local_date, interval_minutes,
    present_intervals, day_start, day_end, last_interval_end) of the days to
    judge: every meter-day of the days a batch touched, so one broken day is
    seen however long the history is (a mean over the table would hide it).
    An ``M`` read carries no kwh and is missing, not present. A day's expected
    intervals run from its start to the end of the latest read delivered for it
    by any meter (its whole length once it is over), so a day still being
    delivered is judged on what has arrived. unexpected_count is the number of
    days below the threshold; the worst ones are named.
    """
    delivered = F.least(F.col("_horizon"), F.col("day_end"))
    minutes = (F.unix_seconds(delivered) - F.unix_seconds(F.col("day_start"))) / 60
    days_df = (
        df.withColumn("_horizon", F.max("last_interval_end").over(Window.partitionBy("local_date")))
        .withColumn("_expected", F.floor(minutes / F.col("interval_minutes")))
        .groupBy("local_date")
        .agg(
            F.count(F.lit(1)).alias("meter_days"),
            F.sum("present_intervals").alias("present"),
            F.sum("_expected").alias("expected"),
        )
        .withColumn("share", F.when(F.col("expected") > 0, F.col("present") / F.col("expected")))
    )
    row = days_df.agg(
        F.count(F.lit(1)).alias("days"),
        F.sum("meter_days").alias("meter_days"),
        F.count(F.when(F.col("share") < F.lit(min_value), 1)).alias("below"),
        F.slice(
            F.sort_array(F.collect_list(F.when(F.col("share") < F.lit(min_value),
                                               F.struct("share", "local_date", "meter_days"))).alias("w")),
            1, worst,
        ).alias("worst"),
    ).first()
    n_days, below = int(row["days"] or 0), int(row["below"] or 0)
    if n_days == 0:
        return CheckOutcome(True, "no new or changed local days to judge", 0)
    text = f"{n_days} local days judged ({int(row['meter_days'])} meter-days), {below} below {min_value}"
    if below:
        text += ": " + ", ".join(
            f"{w['local_date']} {float(w['share']):.4f} ({int(w['meter_days'])} meters)" for w in row["worst"]
        )
    return CheckOutcome(below == 0, text, below)


def freshness(df: DataFrame, *, column: str, max_age_hours: float, now: datetime) -> CheckOutcome:
    """Age of the latest ``column`` timestamp (epoch arithmetic: no time zone on the driver)."""
    latest = df.agg(F.max(F.col(column)).cast("double").alias("latest")).first()["latest"]
    if latest is None:
        return CheckOutcome(False, f"no {column} values", None)
    age_hours = (now.timestamp() - float(latest)) / 3600.0
    latest_text = datetime.fromtimestamp(float(latest), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CheckOutcome(
        age_hours <= max_age_hours,
        f"latest {column} {latest_text}, {age_hours:.1f} h old (max {max_age_hours} h)",
        None,
    )


def row_count_drift(row_count: int, previous: PreviousCount | None, *, max_change: float) -> CheckOutcome:
    """Relative change of the row count against the previous run's (from the audit table)."""
    if previous is None:
        return CheckOutcome(True, f"{row_count} rows; no previous run", None)
    if previous.row_count == 0:
        change = 0.0 if row_count == 0 else float("inf")
    else:
        change = (row_count - previous.row_count) / previous.row_count
    return CheckOutcome(
        abs(change) <= max_change,
        f"{row_count} rows vs {previous.row_count} in run {previous.run_id} ({change:+.1%}; max ±{max_change:.0%})",
        None,
    )


def run_check(
    spec: ExpectationSpec,
    df: DataFrame,
    *,
    row_count: int,
    reference: ReferenceLookup,
    previous: PreviousCount | None,
    now: datetime,
) -> CheckOutcome:
    """Dispatch one custom check of a suite (kwargs already resolved)."""
    kw = spec.kwargs
    if spec.type == REFERENTIAL_INTEGRITY:
        return referential_integrity(
            df, reference(str(kw["ref_table"])), column=str(kw["column"]), ref_column=str(kw["ref_column"]),
            max_missing_share=float(kw.get("max_missing_share", 0.0)),
        )
    if spec.type == AMI_COMPLETENESS:
        source_df = reference(str(kw["ref_table"])) if kw.get("ref_table") else df
        return ami_completeness(source_df, min_value=float(kw["min_value"]))
    if spec.type == FRESHNESS:
        return freshness(df, column=str(kw["column"]), max_age_hours=float(kw["max_age_hours"]), now=now)
    if spec.type == ROW_COUNT_DRIFT:
        return row_count_drift(row_count, previous, max_change=float(kw["max_change"]))
    raise ValueError(f"unknown check type {spec.type}")
