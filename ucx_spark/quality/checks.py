"""UCX checks computed with Spark and recorded like expectations.

Each check is one aggregation (one Spark job) returning a ``CheckOutcome``;
only the aggregate reaches the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import Column, DataFrame
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
class Acceptance:
    """Local days an operator publishes although their AMI completeness is below the threshold
    (``ucx pipeline --accept-incomplete``), who did and why: recorded with the check's verdict."""

    days: tuple[date, ...]
    reason: str
    by: str


@dataclass(frozen=True)
class PreviousCount:
    """The batch size a new batch is compared with: the median of ``batches`` earlier batches
    (``run_id`` the latest of them)."""

    run_id: str
    row_count: int
    batches: int = 1


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


def meter_lives(daily_df: DataFrame) -> DataFrame:
    """One row per meter of silver/ami_daily rows: its life as the readings show it.

    meter_id, first_date/last_date (local days of its first and last read),
    life_start (start of its first read), life_end (end of its last read) and
    interval_minutes (its latest day's length). One aggregation over the
    daily table (meter-days, not reads).
    """
    return daily_df.groupBy("meter_id").agg(
        F.min("local_date").alias("first_date"),
        F.max("local_date").alias("last_date"),
        F.min("first_interval_start").alias("life_start"),
        F.max("last_interval_end").alias("life_end"),
        F.max_by("interval_minutes", "local_date").alias("life_interval_minutes"),
    )


def expected_meter_days(days_df: DataFrame, lives_df: DataFrame, accounts_df: DataFrame | None) -> DataFrame:
    """The meter-days a utility expects reads for, on the days of ``days_df``.

    ``days_df``: local_date, day_start, day_end, horizon (end of the latest
    read any meter delivered for that day). A meter is expected on a day from
    its first read on (its install, as far as the reads show it) while it
    still reports (it has reads on a later day) or while an account is active
    at it (``accounts_df``: meter_id, start_date, end_date); so a meter that
    sends nothing is counted, and one removed (no later read, no account) is
    not. Its expected window on that day starts at the day's start or its
    first read, whichever is later, and ends at the day's delivery horizon,
    or at its last read on its last day when no account is active there
    (removal). Returns meter_id, local_date, window_start, window_end,
    life_interval_minutes.
    """
    pairs_df = (
        lives_df.join(F.broadcast(days_df), F.col("first_date") <= F.col("local_date"))
    )
    if accounts_df is not None:
        active_df = (
            accounts_df.select("meter_id", "start_date", "end_date")
            .join(days_df.select("local_date"), (F.col("start_date") <= F.col("local_date"))
                  & (F.col("end_date").isNull() | (F.col("end_date") >= F.col("local_date"))))
            .select("meter_id", "local_date").distinct()
            .withColumn("has_account", F.lit(True))
        )
        pairs_df = pairs_df.join(active_df, ["meter_id", "local_date"], "left")
    else:
        pairs_df = pairs_df.withColumn("has_account", F.lit(None).cast("boolean"))
    has_account = F.coalesce(F.col("has_account"), F.lit(False))
    end = F.least(F.col("day_end"), F.col("horizon"))
    return (
        pairs_df.filter((F.col("local_date") <= F.col("last_date")) | has_account)
        .select(
            "meter_id", "local_date", "life_interval_minutes",
            F.greatest(F.col("day_start"), F.col("life_start")).alias("window_start"),
            F.when((F.col("local_date") == F.col("last_date")) & ~has_account, F.least(end, F.col("life_end")))
            .otherwise(end).alias("window_end"),
        )
    )


def _accepted_text(accepted: Acceptance | None) -> str:
    return "" if accepted is None else f" by {accepted.by}, reason: {accepted.reason}"


def ami_completeness(
    df: DataFrame,
    *,
    min_value: float,
    meters_df: DataFrame | None = None,
    accounts_df: DataFrame | None = None,
    min_meters: int = 1,
    accepted: Acceptance | None = None,
    worst: int = 5,
) -> CheckOutcome:
    """The fleet's completeness judged per local day: for each day of ``df``, the share of the
    intervals expected from the meters active that day that carry a value.

    ``df`` holds the silver/ami_daily rows (meter_id, local_date,
    interval_minutes, present_intervals, day_start, day_end, last_interval_end)
    of the days to judge: every meter-day of the days a batch touched, so one
    broken day is seen however long the history is. ``meters_df`` is the
    whole silver/ami_daily (meter lives: ``meter_lives``; default ``df``),
    ``accounts_df`` silver/accounts (meter_id, start_date, end_date): which
    meters a day expects is ``expected_meter_days``, so a meter that sends
    nothing that day counts as missing, and a meter's first or last partial day
    does not. An ``M`` read carries no kwh and is missing. A day still being
    delivered is judged up to the latest read of any meter.

    Only days with at least ``min_meters`` expected meters are judged (a day
    of a handful of meters is one meter's gap, not a broken extract); below
    ``min_value`` such a day fails the check unless ``accepted`` names it (an
    operator publishing known-incomplete history on purpose; who and why go
    into the observed value, i.e. the audit table). Single meters' gaps and the
    days too small to judge are reported, never fatal. unexpected_count is the
    number of failing days; the worst ones are named.
    """
    days_df = df.groupBy("local_date").agg(
        F.min("day_start").alias("day_start"),
        F.max("day_end").alias("day_end"),
        F.max("last_interval_end").alias("horizon"),
    )
    lives_df = meter_lives(meters_df if meters_df is not None else df)
    expected_df = expected_meter_days(days_df, lives_df, accounts_df)
    got_df = df.select("meter_id", "local_date", "present_intervals", "interval_minutes")
    minutes = (F.unix_seconds(F.col("window_end")) - F.unix_seconds(F.col("window_start"))) / 60
    length = F.coalesce(F.col("interval_minutes"), F.col("life_interval_minutes"))
    expected = F.greatest(F.floor(minutes / length), F.lit(0))
    meter_days_df = (
        expected_df.join(got_df, ["meter_id", "local_date"], "left")
        .withColumn("_expected", expected)
        .filter(F.col("_expected") > 0)
        .withColumn("_present", F.least(F.coalesce(F.col("present_intervals"), F.lit(0)), F.col("_expected")))
    )
    accepted_days = list(accepted.days) if accepted else []
    per_day_df = (
        meter_days_df.groupBy("local_date")
        .agg(
            F.count(F.lit(1)).alias("meters"),
            F.count(F.when(F.col("present_intervals").isNull(), 1)).alias("absent"),
            F.count(F.when(F.col("_present") < F.col("_expected") * F.lit(min_value), 1)).alias("gaps"),
            F.sum("_present").alias("present"),
            F.sum("_expected").alias("expected"),
        )
        .withColumn("share", F.col("present") / F.col("expected"))
        .withColumn("judged", F.col("meters") >= F.lit(min_meters))
        .withColumn("low", F.col("share") < F.lit(min_value))
        .withColumn("accepted", F.col("local_date").isin(accepted_days) if accepted_days else F.lit(False))
    )
    judged, low, ok = F.col("judged"), F.col("low"), F.col("accepted")

    def named(cond: Column) -> Column:
        return F.slice(F.sort_array(F.collect_list(F.when(cond, F.struct("share", "local_date", "meters", "absent")))),
                       1, worst)

    row = per_day_df.agg(
        F.count(F.when(judged, 1)).alias("days"),
        F.sum(F.when(judged, F.col("meters"))).alias("meter_days"),
        F.sum(F.when(judged, F.col("absent"))).alias("absent"),
        F.count(F.when(judged & low & ~ok, 1)).alias("below"),
        F.count(F.when(judged & low & ok, 1)).alias("accepted_below"),
        F.count(F.when(~judged, 1)).alias("small_days"),
        F.count(F.when(~judged & low, 1)).alias("small_low"),
        F.sum("gaps").alias("gaps"),
        named(judged & low & ~ok).alias("worst"),
        named(judged & low & ok).alias("worst_accepted"),
    ).first()
    n_days, below = int(row["days"] or 0), int(row["below"] or 0)
    small = int(row["small_days"] or 0)
    if n_days == 0 and small == 0:
        return CheckOutcome(True, "no new or changed local days to judge", 0)

    def listed(items) -> str:
        return ", ".join(
            f"{w['local_date']} {float(w['share']):.4f} ({int(w['meters'])} meters, {int(w['absent'])} sent nothing)"
            for w in items
        )

    text = (
        f"{n_days} local days judged ({int(row['meter_days'] or 0)} meter-days expected, "
        f"{int(row['absent'] or 0)} sent nothing), {below} below {min_value}"
    )
    if below:
        text += ": " + listed(row["worst"])
    if int(row["accepted_below"] or 0):
        text += (f"; {int(row['accepted_below'])} accepted below {min_value}{_accepted_text(accepted)}; "
                 + listed(row["worst_accepted"]))
    if small:
        text += (f"; {small} days with fewer than {min_meters} expected meters not judged "
                 f"({int(row['small_low'] or 0)} of them below {min_value})")
    gaps = int(row["gaps"] or 0)
    if gaps:
        text += f"; {gaps} meter-days below {min_value} (single meters' gaps, reported)"
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


def freshness_pandas(values: Any, *, column: str, max_age_hours: float, now: datetime) -> CheckOutcome:
    """``freshness`` on a batch already handed to pandas (its ``column`` values)."""
    import pandas as pd

    stamps = pd.to_datetime(values, utc=True, errors="coerce").dropna()
    if stamps.empty:
        return CheckOutcome(False, f"no {column} values", None)
    latest = stamps.max().to_pydatetime()
    age_hours = (now.timestamp() - latest.timestamp()) / 3600.0
    return CheckOutcome(
        age_hours <= max_age_hours,
        f"latest {column} {latest.strftime('%Y-%m-%dT%H:%M:%SZ')}, {age_hours:.1f} h old (max {max_age_hours} h)",
        None,
    )


def referential_integrity_pandas(values: Any, ref_keys: frozenset[Any], *, max_missing_share: float = 0.0) -> CheckOutcome:
    """``referential_integrity`` of a pandas batch column against the reference's key set."""
    present = values.dropna()
    n = int(len(present))
    missing = int((~present.isin(ref_keys)).sum()) if n else 0
    share = missing / n if n else 0.0
    return CheckOutcome(
        share <= max_missing_share,
        f"{missing} of {n} rows ({share:.2%}) have no match (max {max_missing_share:.2%})",
        missing,
    )


def row_count_drift(row_count: int, previous: PreviousCount | None, *, max_change: float) -> CheckOutcome:
    """Relative change of the row count against comparable earlier batches (audit.previous_row_counts:
    the median of the last few, the table's first load left out)."""
    if previous is None:
        return CheckOutcome(True, f"{row_count} rows; no comparable earlier batch (a first load is not one)", None)
    if previous.row_count == 0:
        change = 0.0 if row_count == 0 else float("inf")
    else:
        change = (row_count - previous.row_count) / previous.row_count
    return CheckOutcome(
        abs(change) <= max_change,
        f"{row_count} rows vs {previous.row_count} (median of the last {previous.batches} batches, latest run "
        f"{previous.run_id}) ({change:+.1%}; max ±{max_change:.0%})",
        None,
    )


KeyLookup = Callable[[str, str], "frozenset[Any] | None"]


def run_check(
    spec: ExpectationSpec,
    df: DataFrame,
    *,
    row_count: int,
    reference: ReferenceLookup,
    previous: PreviousCount | None,
    now: datetime,
    accepted: Acceptance | None = None,
    small: Any | None = None,
    reference_keys: KeyLookup | None = None,
) -> CheckOutcome:
    """Dispatch one custom check of a suite (kwargs already resolved). ``small``: the batch already
    handed to pandas (a small batch), so freshness and, when ``reference_keys`` can give the
    reference's key set, referential integrity are answered there without a Spark job."""
    kw = spec.kwargs
    if small is not None and spec.type == FRESHNESS and str(kw["column"]) in small.columns:
        return freshness_pandas(small[str(kw["column"])], column=str(kw["column"]),
                                max_age_hours=float(kw["max_age_hours"]), now=now)
    if small is not None and spec.type == REFERENTIAL_INTEGRITY and reference_keys is not None \
            and str(kw["column"]) in small.columns:
        keys = reference_keys(str(kw["ref_table"]), str(kw["ref_column"]))
        if keys is not None:
            return referential_integrity_pandas(small[str(kw["column"])], keys,
                                                max_missing_share=float(kw.get("max_missing_share", 0.0)))
    if spec.type == REFERENTIAL_INTEGRITY:
        return referential_integrity(
            df, reference(str(kw["ref_table"])), column=str(kw["column"]), ref_column=str(kw["ref_column"]),
            max_missing_share=float(kw.get("max_missing_share", 0.0)),
        )
    if spec.type == AMI_COMPLETENESS:
        source_df = reference(str(kw["ref_table"])) if kw.get("ref_table") else df
        return ami_completeness(
            source_df, min_value=float(kw["min_value"]),
            meters_df=reference(str(kw["meters_table"])) if kw.get("meters_table") else None,
            accounts_df=reference(str(kw["accounts_table"])) if kw.get("accounts_table") else None,
            min_meters=int(kw.get("min_meters", 1)), accepted=accepted,
        )
    if spec.type == FRESHNESS:
        return freshness(df, column=str(kw["column"]), max_age_hours=float(kw["max_age_hours"]), now=now)
    if spec.type == ROW_COUNT_DRIFT:
        return row_count_drift(row_count, previous, max_change=float(kw["max_change"]))
    raise ValueError(f"unknown check type {spec.type}")
