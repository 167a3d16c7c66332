"""UCX checks computed with Spark and recorded like expectations.

Each check is one aggregation (one Spark job) returning a ``CheckOutcome``;
only the aggregate reaches the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame
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


def ami_completeness(df: DataFrame, *, min_value: float) -> CheckOutcome:
    """Mean per-meter-day completeness (present / expected intervals) against ``min_value``.

    Needs ``completeness`` (silver/ami_daily_completeness); unexpected_count is
    the number of meter-days below the threshold.
    """
    row = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.avg("completeness").alias("mean"),
        F.count(F.when(F.col("completeness") < F.lit(min_value), 1)).alias("below"),
    ).first()
    n, below = int(row["n"]), int(row["below"])
    if n == 0 or row["mean"] is None:
        return CheckOutcome(False, "no meter-days to measure", 0)
    mean = float(row["mean"])
    return CheckOutcome(
        mean >= min_value,
        f"mean completeness {mean:.4f} over {n} meter-days (min {min_value}); {below} meter-days below",
        below,
    )


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
