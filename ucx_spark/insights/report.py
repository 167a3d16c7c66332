"""The CX report: one self-contained HTML page (inline CSS, inline PNG plots).

Two halves:

- ``collect_*``: bounded hand-offs from Spark to the driver. Each aggregates in
  Spark first and brings back a model-sized pandas frame (months x KPIs, a
  histogram, the top drivers, a few scenarios, a few personas, programs).
- :func:`render_html`: pure rendering of a :class:`ReportInputs` into HTML with
  matplotlib figures (``Figure`` objects, Agg canvas, no pyplot state) as
  base64 PNG. No external URL, script or font: the page reads offline.

Privacy: the report shows aggregates only, never a household id; a cell whose
households are fewer than ``min_households`` is shown as suppressed (a gap in a
trend, a missing bar, "suppressed" in a table). Every section whose table is
missing says which command computes it instead of failing.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ucx_spark.catalog import (
    BILL_EXPLANATIONS,
    CAMPAIGN_TARGETS,
    CONTACT_INSIGHTS,
    CX_KPIS,
    EQUITY_AUDIT,
    HOUSEHOLD_SCORES,
    MODEL_DRIVERS,
    PROGRAM_SATURATION,
    SEGMENT_PROFILES,
    USAGE_BASELINES,
    WHATIF_RESULTS,
)
from ucx_spark.insights.equity import MIN_FLAG_EVENTS
from ucx_spark.insights.maturity import LEVELS, Capability, overall_level

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pyspark.sql import DataFrame

ALL = "all"
CSAT_BIN_WIDTH = 0.25
TOP_DRIVERS = 10
MAX_SEGMENTATIONS = 4
WHATIF_METRICS: tuple[str, ...] = ("mean_csat", "csat_top2box_share", "mean_payment_risk", "expected_arrears_usd")
LOWER_IS_BETTER = frozenset({"mean_payment_risk", "expected_arrears_usd"})

# Which command fills each table the report reads (shown when the table is missing).
HOW_TO_COMPUTE: dict[str, str] = {
    f"gold/{CX_KPIS}": "ucx pipeline",
    f"gold/{HOUSEHOLD_SCORES}": "ucx train` then `ucx score",
    "silver/surveys": "ucx pipeline",
    f"gold/{MODEL_DRIVERS}": "ucx drivers",
    f"gold/{WHATIF_RESULTS}": "ucx whatif",
    f"gold/{SEGMENT_PROFILES}": "ucx segment",
    f"gold/{PROGRAM_SATURATION}": "ucx saturation",
    f"gold/{CAMPAIGN_TARGETS}": "ucx target",
    f"gold/{CONTACT_INSIGHTS}": "ucx pipeline",
    f"gold/{USAGE_BASELINES}": "ucx pipeline",
    f"gold/{BILL_EXPLANATIONS}": "ucx pipeline",
    f"gold/{EQUITY_AUDIT}": "ucx equity",
}

# KPI panels of the trend section: one panel per KPI, the enrollment rates share one.
KPI_LABELS: dict[str, str] = {
    "csat_top2box": "CSAT top-2-box share", "nps": "NPS", "ces": "CES (1-7)", "fcr": "First-contact resolution",
    "aht_seconds": "Average handle time (s)", "saidi_minutes": "SAIDI (min)", "caidi_minutes": "CAIDI (min)",
    "etr_accuracy": "ETR accuracy", "email_open_rate": "Email open rate", "collection_rate": "Collection rate",
}
ENROLLMENT_PREFIX = "enrollment_rate:"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


# --------------------------------------------------------------------------- inputs


@dataclass
class CsatDistributions:
    """Predicted (gold/household_scores, model csat) and surveyed (silver/surveys) CSAT."""

    predicted_bins: pd.DataFrame | None = None  # bin_low, households (null = suppressed)
    predicted_levels: pd.DataFrame | None = None  # csat 1-5, households (predicted, rounded)
    predicted_summary: dict[str, Any] = field(default_factory=dict)  # households, mean, top2box_share, as_of_date
    surveyed_levels: pd.DataFrame | None = None  # csat 1-5, responses, households
    surveyed_summary: dict[str, Any] = field(default_factory=dict)  # responses, households, mean, top2box_share, window
    nps: dict[str, Any] = field(default_factory=dict)  # predicted, households, as_of_date, survey, survey_month, survey_n


@dataclass
class ReportInputs:
    utility_name: str
    generated_at: datetime
    min_households: int
    as_of_date: date | None = None
    table_versions: dict[str, int] = field(default_factory=dict)
    kpis: pd.DataFrame | None = None  # month, kpi, value, n (segment all)
    csat: CsatDistributions = field(default_factory=CsatDistributions)
    drivers: pd.DataFrame | None = None  # model_name, model_version, feature, mean_abs_shap, mean_shap, direction, rank, n, is_suppressed
    drivers_source: str = ""
    whatif: pd.DataFrame | None = None  # scenario, metric, baseline, scenario_value, delta, delta_ci_low/high, n, n_touched, is_suppressed
    segments: pd.DataFrame | None = None  # segmentation, segment_id, segment_name, n, numeric profile columns
    saturation: pd.DataFrame | None = None  # program, numeric columns
    contacts: pd.DataFrame | None = None  # month, source, topic, volume, households, rates, n, is_suppressed (segment all)
    baselines: pd.DataFrame | None = None  # model_type, n, sufficient, median_nac_kwh, median_cvrmse (gold/usage_baselines)
    bill_changes: pd.DataFrame | None = None  # month, n, change_usd and its parts (means), is_suppressed
    equity: pd.DataFrame | None = None  # the window's cells of gold/equity_audit (income band, poverty band; flagged ZIPs)
    equity_flagged_months: int = 0  # flagged cells of single months
    maturity: list[Capability] = field(default_factory=list)
    quality: pd.DataFrame | None = None  # layer, table, expectations, not_met, critical_not_met, rows_checked (latest run)
    quality_failed: pd.DataFrame | None = None  # layer, table, expectation_type, column, severity, observed_value (latest run)
    quality_run: dict[str, Any] = field(default_factory=dict)  # run_id, checked_at
    data_docs: str | None = None  # path of the Data Docs index (text: the report links nothing outside itself)


# --------------------------------------------------------------------------- bounded hand-offs


def collect_kpis(cx_kpis_df: DataFrame) -> pd.DataFrame:
    """gold/cx_kpis for segment ``all``: months x KPIs (a few hundred rows)."""
    from pyspark.sql import functions as F

    out = (
        cx_kpis_df.where((F.col("segment_type") == ALL) & (F.col("segment_value") == ALL))
        .select(F.col("month"), F.col("kpi"), F.col("value").cast("double").alias("value"), F.col("n").cast("long").alias("n"))
        .toPandas()
    )
    out["month"] = pd.to_datetime(out["month"])
    return out.sort_values(["kpi", "month"]).reset_index(drop=True)


def collect_predicted_csat(
    scores_df: DataFrame, *, min_households: int, top2box_threshold: float, bin_width: float = CSAT_BIN_WIDTH
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Histogram (bins of ``bin_width`` over 1-5), rounded levels and a summary of the latest csat scores.

    One Spark aggregation by bin (households, sum of scores, households at or above the top-2-box
    threshold); levels, mean and share are exact sums of the bins. Bins and levels with fewer than
    ``min_households`` households are null (suppressed). ``bin_width`` must divide 0.5 so levels
    (the score rounded half up) are unions of bins.
    """
    from pyspark.sql import functions as F

    csat_df = scores_df.where(F.col("model_name") == "csat")
    latest_df = csat_df.join(F.broadcast(csat_df.agg(F.max("as_of_date").alias("as_of_date"))), "as_of_date")
    score = F.least(F.greatest(F.col("score"), F.lit(1.0)), F.lit(5.0))
    n_bins = round(4.0 / bin_width)
    per_bin = round(0.5 / bin_width)
    raw = (
        latest_df.dropDuplicates(["household_id"])
        .select("as_of_date", score.alias("score"))
        .groupBy(F.least(F.floor((F.col("score") - 1.0) / bin_width), F.lit(n_bins - 1)).cast("int").alias("b"))
        .agg(F.count(F.lit(1)).alias("households"), F.sum("score").alias("score_sum"),
             F.sum((F.col("score") >= top2box_threshold).cast("long")).alias("top2"), F.max("as_of_date").alias("as_of_date"))
        .toPandas()
    )
    bins = pd.DataFrame({"b": range(n_bins)}).merge(raw, on="b", how="left").fillna({"households": 0, "score_sum": 0.0, "top2": 0})
    bins["bin_low"] = 1.0 + bins["b"] * bin_width
    # round half up: [1, 1.5) -> 1, [1.5, 2.5) -> 2, ..., [4.5, 5] -> 5
    bins["csat"] = ((bins["b"] + per_bin) // (2 * per_bin) + 1).clip(upper=5)
    levels = bins.groupby("csat", as_index=False)["households"].sum()
    households = int(bins["households"].sum())
    summary: dict[str, Any] = {"households": households, "as_of_date": raw["as_of_date"].max() if len(raw) else None,
                               "threshold": top2box_threshold}
    if households >= min_households:
        summary.update(mean=float(bins["score_sum"].sum()) / households, top2box_share=float(bins["top2"].sum()) / households)
    for frame in (bins, levels):
        frame["households"] = frame["households"].astype("float")
        frame.loc[(frame["households"] > 0) & (frame["households"] < min_households), "households"] = math.nan
    return bins[["bin_low", "households"]], levels, summary


def collect_nps(scores_df: DataFrame | None, kpis: pd.DataFrame | None, *, min_households: int) -> dict[str, Any]:
    """The utility's NPS as if every household answered (100 x (mean p_promoter - mean
    p_detractor) of the latest nps scores; suppressed below ``min_households``) beside the survey
    NPS of the latest month that has one (gold/cx_kpis): one small aggregation."""
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    if scores_df is not None:
        nps_df = scores_df.where((F.col("model_name") == "nps") & F.col("score").isNotNull())
        row = nps_df.agg(F.count(F.lit(1)).alias("n"), F.avg("p_promoter").alias("p"), F.avg("p_detractor").alias("d"),
                         F.max("as_of_date").alias("as_of")).first()
        if row is not None and row["n"]:
            out.update(households=int(row["n"]), as_of_date=row["as_of"])
            if int(row["n"]) >= min_households:
                out["predicted"] = 100.0 * (float(row["p"]) - float(row["d"]))
    if kpis is not None and not kpis.empty:
        surveyed = kpis[(kpis["kpi"] == "nps") & kpis["value"].notna()].sort_values("month")
        if not surveyed.empty:
            last = surveyed.iloc[-1]
            out.update(survey=float(last["value"]), survey_month=last["month"], survey_n=int(last["n"]))
    return out


def collect_surveyed_csat(surveys_df: DataFrame, *, min_households: int, window_days: int = 365) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Responses per CSAT level (1-5) in the ``window_days`` up to the latest response.

    One Spark aggregation: a rollup over the level gives each level and the total (distinct
    households cannot be summed over levels). Levels with fewer than ``min_households`` households
    are null (suppressed).
    """
    from pyspark.sql import functions as F

    who = "household_id" if "household_id" in surveys_df.columns else "account_id"
    rated_df = surveys_df.where(F.col("csat").between(1, 5))
    window_df = rated_df.crossJoin(F.broadcast(rated_df.agg(F.max("responded_at").alias("_last")))).where(
        F.col("responded_at") > F.col("_last") - F.expr(f"INTERVAL {window_days} DAYS")
    )
    raw = (
        window_df.rollup(F.col("csat").cast("int").alias("csat"))
        .agg(F.count(F.lit(1)).alias("responses"), F.countDistinct(who).alias("households"),
             F.sum("csat").alias("csat_sum"), F.min("responded_at").alias("first"), F.max("responded_at").alias("last"))
        .toPandas()
    )
    total = raw[raw["csat"].isna()]
    levels = pd.DataFrame({"csat": range(1, 6)}).merge(raw[raw["csat"].notna()].astype({"csat": "int"}), on="csat", how="left")
    levels = levels.fillna({"responses": 0, "households": 0})[["csat", "responses", "households"]]
    if total.empty or not int(total["responses"].iloc[0]):
        return levels.astype({"responses": "float"}), {"responses": 0, "households": 0}
    t = total.iloc[0]
    summary: dict[str, Any] = {"responses": int(t["responses"]), "households": int(t["households"]),
                               "first": t["first"], "last": t["last"], "window_days": window_days}
    if summary["households"] >= min_households:
        summary.update(mean=float(t["csat_sum"]) / summary["responses"],
                       top2box_share=float(levels.loc[levels["csat"] >= 4, "responses"].sum()) / summary["responses"])
    levels["responses"] = levels["responses"].astype("float")
    levels.loc[(levels["households"] > 0) & (levels["households"] < min_households), "responses"] = math.nan
    return levels, summary


def collect_model_drivers(drivers_df: DataFrame, *, top: int = TOP_DRIVERS) -> pd.DataFrame:
    """gold/model_drivers, segment ``all``, latest as_of_date and computation per model, ``top`` ranks."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    all_df = drivers_df.where(F.col("segment_type") == ALL)
    order = [F.col("as_of_date").desc_nulls_last()]
    if "computed_at" in drivers_df.columns:
        order.append(F.col("computed_at").desc_nulls_last())
    latest_df = (
        all_df.withColumn("_r", F.dense_rank().over(Window.partitionBy("model_name").orderBy(*order)))
        .where((F.col("_r") == 1) & (F.col("rank") <= top))
    )
    wanted = ["model_name", "model_version", "as_of_date", "feature", "mean_abs_shap", "mean_shap", "direction", "rank", "n",
              "is_suppressed"]
    return latest_df.select(*[c for c in wanted if c in drivers_df.columns]).toPandas().sort_values(["model_name", "rank"])


def collect_drivers_from_scores(scores_df: DataFrame, *, min_households: int, top: int = TOP_DRIVERS) -> pd.DataFrame:
    """Fallback when gold/model_drivers is absent: aggregate the per-household ``top_drivers``.

    mean_abs_shap = sum of |contribution| over households / households scored (a feature missing
    from a household's top drivers counts 0), so it underestimates features that rarely rank high.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = scores_df.groupBy("model_name").agg(F.max("as_of_date").alias("as_of_date"))
    latest_df = scores_df.join(latest, ["model_name", "as_of_date"], "left_semi")
    households_df = latest_df.groupBy("model_name").agg(
        F.countDistinct("household_id").alias("n"), F.first("model_version").alias("model_version"),
        F.max("as_of_date").alias("as_of_date"),
    )
    agg_df = (
        latest_df.select("model_name", F.explode("top_drivers").alias("d"))
        .groupBy("model_name", F.col("d.feature").alias("feature"))
        .agg(F.sum(F.abs("d.contribution")).alias("_abs"), F.sum("d.contribution").alias("_sum"))
        .join(households_df, "model_name")
        .withColumn("mean_abs_shap", F.col("_abs") / F.col("n"))
        .withColumn("mean_shap", F.col("_sum") / F.col("n"))
        .withColumn("direction", F.when(F.col("mean_shap") > 0, "+").when(F.col("mean_shap") < 0, "-"))
        .withColumn("rank", F.row_number().over(Window.partitionBy("model_name").orderBy(F.col("mean_abs_shap").desc())))
        .withColumn("is_suppressed", F.col("n") < min_households)
        .where(F.col("rank") <= top)
    )
    out = agg_df.select("model_name", "model_version", "as_of_date", "feature", "mean_abs_shap", "mean_shap", "direction",
                        "rank", "n", "is_suppressed").toPandas()
    for c in ("mean_abs_shap", "mean_shap", "direction"):
        out[c] = out[c].where(~out["is_suppressed"].astype(bool))
    return out.sort_values(["model_name", "rank"]).reset_index(drop=True)


def collect_whatif(whatif_df: DataFrame) -> pd.DataFrame:
    """gold/whatif_results: segment ``all`` of the latest run of each scenario."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    all_df = whatif_df.where(F.col("segment_type") == ALL)
    order = F.col("created_at").desc_nulls_last() if "created_at" in whatif_df.columns else F.col("run_id").desc()
    latest_runs = (
        all_df.select("scenario", "run_id", *(["created_at"] if "created_at" in whatif_df.columns else []))
        .withColumn("_r", F.row_number().over(Window.partitionBy("scenario").orderBy(order)))
        .where(F.col("_r") == 1).select("scenario", "run_id")
    )
    wanted = ["scenario", "run_id", "as_of_date", "metric", "baseline", "scenario_value", "delta", "delta_ci_low",
              "delta_ci_high", "n", "n_touched", "is_suppressed"]
    return (all_df.join(latest_runs, ["scenario", "run_id"], "left_semi")
            .select(*[c for c in wanted if c in whatif_df.columns]).toPandas()
            .sort_values(["scenario", "metric"]).reset_index(drop=True))


_ID_COLUMNS = {"household_id", "segmentation", "segment_id", "segment_name", "n", "is_suppressed", "as_of_date",
               "run_id", "computed_at", "created_at", "segment_type", "segment_value"}


def collect_quality(results_df: DataFrame, *, failed_limit: int = 25) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The latest run's gate results from gold/quality_results: one row per layer and table (a few
    dozen), the expectations not met (at most ``failed_limit``), and the run's id and time."""
    from pyspark.sql import functions as F

    latest = results_df.groupBy("run_id").agg(F.max("checked_at").alias("at")).orderBy(F.desc("at")).first()
    if latest is None:
        return pd.DataFrame(), pd.DataFrame(), {}
    run_df = results_df.filter(F.col("run_id") == latest["run_id"])
    per_table = (
        run_df.groupBy("layer", "table")
        .agg(
            F.count(F.lit(1)).alias("expectations"),
            F.count(F.when(~F.col("success"), 1)).alias("not_met"),
            F.count(F.when(~F.col("success") & (F.col("severity") == "critical"), 1)).alias("critical_not_met"),
            F.max("row_count").alias("rows_checked"),
        )
        .orderBy(F.expr("CASE layer WHEN 'bronze' THEN 0 WHEN 'silver' THEN 1 ELSE 2 END"), "table")
        .toPandas()  # one row per table
    )
    failed = (
        run_df.filter(~F.col("success"))
        .select("layer", "table", "expectation_type", "column", "severity", "observed_value")
        .orderBy(F.desc(F.col("severity") == "critical"), "layer", "table")
        .limit(failed_limit)
        .toPandas()
    )
    return per_table, failed, {"run_id": latest["run_id"], "checked_at": latest["at"]}


def collect_segment_profiles(profiles_df: DataFrame | None, segments_df: DataFrame | None) -> pd.DataFrame:
    """Persona profiles: gold/segment_profiles as written (small), else means of gold/segments by segment.

    Read defensively: only ``segment_id`` (or ``segment_name``) is required; numeric columns are profile dimensions.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
    if profiles_df is not None:
        df = profiles_df
        if "as_of_date" in df.columns:  # the latest profiles of each segmentation (they are recomputed separately)
            by = Window.partitionBy("segmentation") if "segmentation" in df.columns else Window.partitionBy()
            df = df.withColumn("_latest", F.max("as_of_date").over(by)).where(F.col("as_of_date") == F.col("_latest"))
        keep = [f.name for f in df.schema.fields if f.name not in ("household_id", "_latest")
                and isinstance(f.dataType, (*numeric, T.StringType, T.BooleanType, T.DateType))]
        return df.select(*keep).limit(500).toPandas()
    assert segments_df is not None
    df = segments_df
    if "as_of_date" in df.columns:
        df = df.where(F.col("as_of_date") == df.agg(F.max("as_of_date")).first()[0])
    keys = [c for c in ("segmentation", "segment_id", "segment_name") if c in df.columns]
    nums = [f.name for f in df.schema.fields if isinstance(f.dataType, numeric) and f.name not in _ID_COLUMNS]
    who = F.countDistinct("household_id") if "household_id" in df.columns else F.count("*")
    return df.groupBy(*keys).agg(who.alias("n"), *[F.avg(c).alias(c) for c in nums]).limit(500).toPandas()


def collect_saturation(saturation_df: DataFrame) -> pd.DataFrame:
    """gold/program_saturation (segment ``all`` and the latest as_of_date when those columns exist)."""
    from pyspark.sql import functions as F

    df = saturation_df
    if "segment_type" in df.columns:
        df = df.where(F.col("segment_type") == ALL)
    if "as_of_date" in df.columns:
        df = df.where(F.col("as_of_date") == df.agg(F.max("as_of_date")).first()[0])
    return df.drop(*[c for c in ("household_id",) if c in df.columns]).limit(200).toPandas()


CONTACT_MONTHS = 12
CONTACT_RATES: tuple[tuple[str, str], ...] = (
    ("mean_sentiment", "mean sentiment"), ("negative_share", "negative"), ("complaint_share", "complaints"),
    ("fcr_rate", "first-contact resolution"), ("repeat_7d_rate", "again within 7 days"),
    ("reason_agreement", "agent code agrees"),
)


def collect_contacts(insights_df: DataFrame, *, months: int = CONTACT_MONTHS) -> pd.DataFrame:
    """gold/contact_insights, segment ``all``, its latest ``months`` months (at most 6 topics of
    contacts and 6 of survey comments each)."""
    from pyspark.sql import functions as F

    df = insights_df.where(F.col("segment") == ALL)
    latest = [r[0] for r in df.select("month").distinct().orderBy(F.desc("month")).limit(months).collect()]
    return (df.where(F.col("month").isin(latest)).drop("run_id", "created_at", "segment")
            .orderBy("month", "topic").toPandas())


BILL_PARTS: tuple[tuple[str, str], ...] = (
    ("weather_usd", "weather"), ("days_usd", "number of days"), ("rate_usd", "rate"), ("behaviour_usd", "usage habits"),
)


def collect_baselines(baselines_df: DataFrame, *, min_households: int) -> pd.DataFrame:
    """gold/usage_baselines by model type: households, with a sufficient year, median normalised
    annual use and CV(RMSE) (medians of fewer than ``min_households`` households left out)."""
    from pyspark.sql import functions as F

    out = (baselines_df.groupBy("model_type").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("data_sufficient").cast("int")).alias("sufficient"),
        F.percentile_approx("nac_kwh", 0.5).alias("median_nac_kwh"),
        F.percentile_approx("cvrmse", 0.5).alias("median_cvrmse"),
    ).orderBy(F.desc("n")).toPandas())  # five model types at most
    small = out["n"] < min_households
    out.loc[small, ["median_nac_kwh", "median_cvrmse"]] = None
    return out


def collect_bill_changes(explanations_df: DataFrame, *, min_households: int, months: int = 12) -> pd.DataFrame:
    """gold/bill_explanations by month of the bill period's start, the latest ``months``: households
    with a bill a year earlier (``n``), their mean change and its mean parts; a month of fewer than
    ``min_households`` households keeps its count only."""
    from pyspark.sql import functions as F

    split = explanations_df.where(F.col("rate_usd").isNotNull()).withColumn("month", F.trunc("period_start", "month"))
    out = (split.groupBy("month").agg(
        F.countDistinct("household_id").alias("n"), F.avg("change_usd").alias("change_usd"),
        *[F.avg(F.coalesce(F.col(c), F.lit(0.0))).alias(c) for c, _ in BILL_PARTS],
    ).orderBy(F.desc("month")).limit(months).toPandas())  # ``months`` rows
    out["is_suppressed"] = out["n"] < min_households
    out.loc[out["is_suppressed"], ["change_usd", *[c for c, _ in BILL_PARTS]]] = None
    return out.sort_values("month").reset_index(drop=True)


EQUITY_METRICS: tuple[tuple[str, str], ...] = (
    ("disconnect_notices_per_1000", "disconnect notices / 1,000 / month"),
    ("disconnections_per_1000", "disconnections / 1,000 / month"),
    ("program_enrollment_rate", "program enrollment"), ("campaign_reach_rate", "campaign reach"),
    ("outage_minutes_per_household", "outage minutes / household / month"), ("etr_late_minutes", "ETR late minutes"),
    ("payment_risk_predicted", "predicted payment risk"),
)


def collect_equity(audit_df: DataFrame) -> tuple[pd.DataFrame, int]:
    """gold/equity_audit's window cells by income and poverty band (a few dozen), the flagged ZIPs
    of the window (at most 50), and how many single-month cells are flagged."""
    from pyspark.sql import functions as F

    window = audit_df.where(F.col("period") == "window")
    keep = (F.col("dimension").isin("income_band", "poverty_band")) | ((F.col("dimension") == "zip") & F.col("flagged"))
    cells = (window.where(keep).orderBy("metric", "dimension", "group_value")
             .select("dimension", "group_value", "metric", "n", "value", "overall", "ratio", "ci_low", "ci_high",
                     "flagged", "is_suppressed").limit(500).toPandas())
    monthly = audit_df.where((F.col("period") != "window") & F.col("flagged")).count()
    return cells, int(monthly)


# --------------------------------------------------------------------------- rendering helpers


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure, *, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "share":
        return f"{float(value):.1%}"
    if kind == "int":
        return f"{int(value):,}"
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:,.2f}"


def _table(headers: list[str], rows: Iterable[list[str]], *, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _absent(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def _closed(out: list[str], *html_parts: str) -> str:
    """A section's parts so far, then ``html_parts``, closed."""
    return "".join([*out, *html_parts]) + "</section>"


def _missing(table: str, reason: str = "") -> str:
    command = HOW_TO_COMPUTE.get(table, "ucx pipeline")
    why = f" ({html.escape(reason)})" if reason else ""
    return (f'<p class="missing">Not yet computed: <code>{html.escape(table)}</code> is not in this warehouse{why}; '
            f"run <code>{html.escape(command)}</code>.</p>")


SUPPRESSED = '<span class="suppressed">suppressed</span>'


def _is_kpi_share(kpi: str) -> bool:
    return kpi.startswith(ENROLLMENT_PREFIX) or kpi in ("csat_top2box", "fcr", "etr_accuracy", "email_open_rate", "collection_rate")


# --------------------------------------------------------------------------- sections


def _section_header(inp: ReportInputs) -> str:
    versions = _table(["table", "Delta version"],
                      ([html.escape(t), str(v)] for t, v in sorted(inp.table_versions.items())), cls="compact")
    as_of = inp.as_of_date.isoformat() if inp.as_of_date else "unknown (no scores or features)"
    return (
        f"<header><h1>{html.escape(inp.utility_name)}: customer experience report</h1>"
        f'<p class="meta">As of <b>{html.escape(as_of)}</b> · generated at {html.escape(inp.generated_at.isoformat(timespec="seconds"))}'
        f" · cells with fewer than {inp.min_households} households are suppressed</p></header>"
        f'<details><summary>Warehouse table versions read ({len(inp.table_versions)})</summary>{versions}</details>'
    )


def _section_kpis(inp: ReportInputs) -> str:
    out = ['<section id="kpis"><h2>KPI trends by month</h2>']
    if inp.kpis is None:
        out.append(_missing(f"gold/{CX_KPIS}"))
        return _closed(out)
    k = inp.kpis
    panels = [kpi for kpi in KPI_LABELS if kpi in set(k["kpi"])]
    enrollment = sorted(x for x in set(k["kpi"]) if x.startswith(ENROLLMENT_PREFIX) and k.loc[k["kpi"] == x, "value"].notna().any())
    n_panels = len(panels) + (1 if enrollment else 0)
    if n_panels:
        cols = 3
        rows = math.ceil(n_panels / cols)
        fig = _figure(12, 2.6 * rows)
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()  # months line up across panels
        for ax, kpi in zip(axes, panels, strict=False):
            part = k[k["kpi"] == kpi]
            ax.plot(part["month"], part["value"], marker="o", ms=3, color=PALETTE[0])  # NaN (suppressed/undefined) = gap
            ax.set_title(KPI_LABELS[kpi], fontsize=10)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        if enrollment:
            ax = axes[len(panels)]
            for i, kpi in enumerate(enrollment):
                part = k[k["kpi"] == kpi]
                ax.plot(part["month"], part["value"], label=kpi.removeprefix(ENROLLMENT_PREFIX), color=PALETTE[i % len(PALETTE)])
            ax.set_title("Program enrollment rates", fontsize=10)
            ax.legend(fontsize=6, ncols=2)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        for ax in axes[:n_panels]:
            ax.tick_params(axis="x", labelbottom=True, labelrotation=30)
        out.append(_png(fig, alt="KPI trends by month"))
        out.append('<p class="note">Gaps are months where the KPI is undefined (no data) or suppressed (fewer than '
                   f"{inp.min_households} households).</p>")
    # The latest month with any value: a table with n, so readers see what is suppressed.
    valued = k[k["value"].notna()]
    if len(valued):
        last = valued["month"].max()
        rows_ = []
        for _, r in k[k["month"] == last].iterrows():
            if pd.isna(r["value"]):
                shown = SUPPRESSED if (r["n"] or 0) > 0 else "no data"
            else:
                shown = _fmt(r["value"], "share" if _is_kpi_share(r["kpi"]) else "num")
            rows_.append([html.escape(r["kpi"]), shown, _fmt(r["n"], "int")])
        out.append(f"<h3>Latest month: {last:%Y-%m}</h3>")
        out.append(_table(["KPI", "value", "n (households)"], rows_, cls="compact kpi-latest"))
    else:
        out.append('<p class="missing">gold/cx_kpis holds no value for segment <code>all</code> yet.</p>')
    return _closed(out)


def _mark_suppressed(ax: Any, xs: Iterable[float], values: pd.Series) -> None:
    """A grey "s" where a bar is suppressed (null), so a gap is not read as zero."""
    for x, v in zip(xs, values, strict=False):
        if pd.isna(v):
            ax.annotate("s", (x, 0), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        color="#777777")


def _section_csat(inp: ReportInputs) -> str:
    c = inp.csat
    out = ['<section id="csat"><h2>CSAT: predicted for every household vs surveyed</h2>']
    if c.predicted_bins is None:
        out.append(_missing(f"gold/{HOUSEHOLD_SCORES}"))
    if c.surveyed_levels is None:
        out.append(_missing("silver/surveys"))
    if c.predicted_bins is None and c.surveyed_levels is None:
        return _closed(out)
    fig = _figure(12, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    if c.predicted_bins is not None:
        b = c.predicted_bins
        ax1.bar(b["bin_low"], b["households"].fillna(0), width=CSAT_BIN_WIDTH, align="edge", color=PALETTE[0], edgecolor="white")
        _mark_suppressed(ax1, b["bin_low"] + CSAT_BIN_WIDTH / 2, b["households"])
        ax1.set_title(f"Predicted CSAT, {c.predicted_summary.get('households', 0):,} households", fontsize=10)
        ax1.set_xlabel("predicted CSAT (1-5)")
        ax1.set_ylabel("households")
        ax1.set_xlim(1, 5)
    else:
        ax1.set_visible(False)
    width = 0.38
    x = pd.Series(range(1, 6), dtype="float")
    if c.predicted_levels is not None:
        pl = c.predicted_levels
        share = pl["households"] / max(float(c.predicted_summary.get("households", 0)), 1.0)
        ax2.bar(x - width / 2, share.fillna(0), width=width, label="predicted (rounded)", color=PALETTE[0])
        _mark_suppressed(ax2, x - width / 2, pl["households"])
    if c.surveyed_levels is not None and c.surveyed_summary.get("responses"):
        sl = c.surveyed_levels
        share = sl["responses"] / float(c.surveyed_summary["responses"])
        ax2.bar(x + width / 2, share.fillna(0), width=width, label="surveyed", color=PALETTE[1])
        _mark_suppressed(ax2, x + width / 2, sl["responses"])
    ax2.set_xticks(range(1, 6))
    ax2.set_xlabel("CSAT level")
    ax2.set_ylabel("share")
    ax2.set_title("Distribution by level", fontsize=10)
    ax2.legend(fontsize=8)
    out.append(_png(fig, alt="CSAT predicted vs surveyed"))
    ps, ss = c.predicted_summary, c.surveyed_summary
    rows = []
    if c.predicted_bins is not None:
        rows.append(["predicted (gold/household_scores, model csat)", _fmt(ps.get("households"), "int"), "—",
                     _fmt(ps.get("mean")) if "mean" in ps else SUPPRESSED,
                     _fmt(ps.get("top2box_share"), "share") if "top2box_share" in ps else SUPPRESSED,
                     f"as of {html.escape(str(ps.get('as_of_date')))}; top-2-box = score ≥ {ps.get('threshold')}"])
    if c.surveyed_levels is not None:
        window = (f"{ss['first']:%Y-%m-%d} to {ss['last']:%Y-%m-%d}" if ss.get("first") else "no responses")
        rows.append(["surveyed (silver/surveys, csat 1-5)", _fmt(ss.get("households"), "int"), _fmt(ss.get("responses"), "int"),
                     _fmt(ss.get("mean")) if "mean" in ss else SUPPRESSED,
                     _fmt(ss.get("top2box_share"), "share") if "top2box_share" in ss else SUPPRESSED,
                     f"responses {html.escape(window)}; top-2-box = csat 4 or 5"])
    out.append(_table(["source", "households", "responses", "mean CSAT", "top-2-box", "basis"], rows, cls="compact csat-summary"))
    if c.nps:
        n = c.nps
        nps_rows = [
            ["predicted, every household (gold/household_scores, model nps)", _fmt(n.get("households"), "int"),
             f"{n['predicted']:+.1f}" if "predicted" in n else SUPPRESSED,
             f"as of {html.escape(str(n.get('as_of_date')))}; 100 x (mean p_promoter - mean p_detractor)"],
            ["surveyed (gold/cx_kpis)", _fmt(n.get("survey_n"), "int"),
             f"{n['survey']:+.1f}" if "survey" in n else "—",
             f"month {n['survey_month']:%Y-%m}" if "survey_month" in n else "no month with enough answers"],
        ]
        out.append(_table(["NPS", "households", "NPS", "basis"], nps_rows, cls="compact nps-summary"))
    suppressed = 0
    for frame, col in ((c.predicted_bins, "households"), (c.predicted_levels, "households"), (c.surveyed_levels, "responses")):
        if frame is not None:
            suppressed += int(frame[col].isna().sum())
    if suppressed:
        out.append(f'<p class="note">{suppressed} bar(s) with fewer than {inp.min_households} households are suppressed (marked “s”, not drawn).</p>')
    return _closed(out)


def _section_drivers(inp: ReportInputs) -> str:
    out = ['<section id="drivers"><h2>Top drivers per model</h2>']
    d = inp.drivers
    if _absent(d):
        return _closed(out, _missing(f"gold/{MODEL_DRIVERS}", "and no gold/household_scores to approximate from"))
    out.append(f'<p class="note">Source: {html.escape(inp.drivers_source)}. Bars: mean |SHAP| (contribution to the score); '
               "colour: direction of the mean contribution (red raises the score, blue lowers it).</p>")
    models = list(dict.fromkeys(d["model_name"]))
    fig = _figure(12, 0.3 * TOP_DRIVERS + 1.2)
    axes = fig.subplots(1, max(len(models), 1), squeeze=False).ravel()
    for ax, model in zip(axes, models, strict=False):
        part = d[(d["model_name"] == model)].sort_values("rank", ascending=False)
        shown = part[~part["is_suppressed"].astype(bool)] if "is_suppressed" in part else part
        colors = ["#d62728" if x == "+" else "#1f77b4" if x == "-" else "#999999" for x in shown.get("direction", [])]
        ax.barh(shown["feature"], shown["mean_abs_shap"], color=colors)
        ax.set_title(model, fontsize=10)
        ax.tick_params(labelsize=7)
    out.append(_png(fig, alt="Top drivers per model"))
    rows = []
    for _, r in d.iterrows():
        suppressed = bool(r.get("is_suppressed", False))
        rows.append([html.escape(str(r["model_name"])), html.escape(str(r.get("model_version", ""))), str(int(r["rank"])),
                     html.escape(str(r["feature"])), SUPPRESSED if suppressed else _fmt(r["mean_abs_shap"]),
                     "" if suppressed or pd.isna(r.get("direction")) else html.escape(str(r["direction"])),
                     _fmt(r.get("n"), "int")])
    out.append(f"<details><summary>Driver table ({len(rows)} rows)</summary>"
               + _table(["model", "version", "rank", "feature", "mean |SHAP|", "direction", "n"], rows, cls="compact") + "</details>")
    return _closed(out)


def _section_whatif(inp: ReportInputs) -> str:
    out = ['<section id="whatif"><h2>What-if scenarios</h2>']
    w = inp.whatif
    if _absent(w):
        return _closed(out, _missing(f"gold/{WHATIF_RESULTS}"))
    metrics = [m for m in WHATIF_METRICS if m in set(w["metric"])] + sorted(set(w["metric"]) - set(WHATIF_METRICS))
    scenarios = sorted(set(w["scenario"]))
    fig = _figure(12, 0.45 * len(scenarios) * math.ceil(len(metrics) / 2) + 1.6 * math.ceil(len(metrics) / 2))
    axes = fig.subplots(math.ceil(len(metrics) / 2), 2, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        part = w[(w["metric"] == metric)].set_index("scenario").reindex(scenarios)
        ok = part["delta"].notna() & ~part.get("is_suppressed", pd.Series(False, index=part.index)).fillna(False).astype(bool)
        y = list(range(len(scenarios)))
        delta = part["delta"].where(ok).fillna(0.0)
        lo = (part["delta"] - part.get("delta_ci_low", part["delta"])).where(ok).fillna(0.0).clip(lower=0)
        hi = (part.get("delta_ci_high", part["delta"]) - part["delta"]).where(ok).fillna(0.0).clip(lower=0)
        good = [(v <= 0) if metric in LOWER_IS_BETTER else (v >= 0) for v in delta]
        ax.barh(y, delta, xerr=[lo, hi], color=[PALETTE[2] if g else PALETTE[3] for g in good], capsize=3)
        labels = [s if len(s) <= 40 else s[:39] + "…" for s in scenarios]
        ax.set_yticks(y, [t if k else f"{t} (suppressed)" for t, k in zip(labels, ok, strict=False)], fontsize=7)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"Δ {metric}", fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    out.append(_png(fig, alt="What-if deltas with confidence intervals"))
    rows = []
    for _, r in w.iterrows():
        suppressed = bool(r.get("is_suppressed", False)) or pd.isna(r.get("delta"))
        ci = f"[{_fmt(r.get('delta_ci_low'))}, {_fmt(r.get('delta_ci_high'))}]"
        rows.append([html.escape(str(r["scenario"])), html.escape(str(r["metric"])),
                     *([SUPPRESSED] * 4 if suppressed else [_fmt(r.get("baseline")), _fmt(r.get("scenario_value")),
                                                            _fmt(r.get("delta")), ci]),
                     _fmt(r.get("n"), "int"), _fmt(r.get("n_touched"), "int")])
    out.append('<p class="note">Latest run of each scenario, whole utility (segment <code>all</code>); bars show the '
               "change from the baseline with its bootstrap confidence interval (green: an improvement, red: a deterioration).</p>")
    out.append(_table(["scenario", "metric", "baseline", "scenario", "delta", "delta CI", "n", "n touched"], rows,
                      cls="compact whatif"))
    return _closed(out)


_X_HINTS = ("energy_burden", "burden", "annual_bill", "bill", "kwh", "arrears")
_Y_HINTS = ("outcome_mean", "csat", "satisfaction", "payment_risk", "risk", "income", "arrears", "contacts")
_PROFILE_TABLE_HINTS = ("outcome_mean", "energy_burden", "income", "annual_bill", "arrears", "kwh", "csat", "risk")


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in _ID_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c]) and frame[c].notna().any()]


def _by_hints(columns: list[str], hints: tuple[str, ...], *, exclude: tuple[str | None, ...] = ()) -> str | None:
    for h in hints:
        for c in columns:
            if h in c.lower() and c not in exclude:
                return c
    return None


def _pick_axes(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """Two profile dimensions with values: a cost axis (burden, bill) and an outcome or means axis."""
    numeric = _numeric_columns(frame)
    x = _by_hints(numeric, _X_HINTS)
    y = _by_hints(numeric, _Y_HINTS, exclude=(x,))
    rest = [c for c in numeric if c not in (x, y)]
    x = x or (rest.pop(0) if rest else None)
    y = y or (rest.pop(0) if rest else None)
    return x, y


def _section_segments(inp: ReportInputs) -> str:
    out = ['<section id="segments"><h2>Segment map: personas</h2>']
    s = inp.segments
    if _absent(s):
        return _closed(out, _missing(f"gold/{SEGMENT_PROFILES}", "nor gold/segments"))
    s = s.copy()
    if "segmentation" not in s.columns:
        s["segmentation"] = "segments"
    # personas first, then the other segmentations; segments in id order
    order = [c for c in ("segmentation", "segment_id", "segment_name") if c in s.columns]
    s = s.assign(_first=s["segmentation"] != "persona").sort_values(["_first", *order]).drop(columns="_first")
    s = s.reset_index(drop=True)
    if "segment_name" not in s.columns:
        s["segment_name"] = s["segment_id"].astype(str) if "segment_id" in s.columns else [f"segment {i}" for i in range(len(s))]
    if "n" not in s.columns:
        s["n"] = math.nan
    small = s["n"].notna() & (s["n"] < inp.min_households)
    if "is_suppressed" in s.columns:
        small |= s["is_suppressed"].fillna(False).astype(bool)
    segmentations = list(dict.fromkeys(s["segmentation"]))[:MAX_SEGMENTATIONS]
    axes_of = {seg: _pick_axes(s[(s["segmentation"] == seg) & ~small]) for seg in segmentations}
    segmentations = [seg for seg in segmentations if all(axes_of[seg])]
    if segmentations:
        fig = _figure(12, 4.2 * math.ceil(len(segmentations) / 2))
        axes = fig.subplots(math.ceil(len(segmentations) / 2), 2, squeeze=False).ravel()
        for ax, seg in zip(axes, segmentations, strict=False):
            x, y = axes_of[seg]
            part = s[(s["segmentation"] == seg) & ~small]
            sizes = part["n"].fillna(1).astype(float)
            ax.scatter(part[x], part[y], s=60 + 1400 * sizes / max(float(sizes.max() or 1), 1.0), alpha=0.55,
                       color=[PALETTE[i % len(PALETTE)] for i in range(len(part))], edgecolors="black", linewidths=0.5)
            for _, r in part.iterrows():
                ax.annotate(f"{r['segment_name']}\n(n={_fmt(r['n'], 'int')})", (r[x], r[y]), fontsize=7, ha="center", va="center")
            ax.set_xlabel(x, fontsize=8)
            ax.set_ylabel(y, fontsize=8)
            ax.set_title(str(seg), fontsize=10)
            ax.margins(0.25)
            ax.tick_params(labelsize=7)
        for ax in axes[len(segmentations):]:
            ax.set_visible(False)
        out.append(_png(fig, alt="Segment map"))
        out.append('<p class="note">Bubbles: segments placed on two of their profile means (axis labels), sized by '
                   f"households; segments under {inp.min_households} households are not drawn.</p>")
    else:
        out.append('<p class="note">The segment profiles hold fewer than two numeric dimensions: no map drawn.</p>')
    numeric = _numeric_columns(s)
    preferred = [c for h in _PROFILE_TABLE_HINTS for c in numeric if h in c.lower()]
    dims = list(dict.fromkeys(preferred + numeric))[:6]
    has_definition = "definition" in s.columns
    rows = []
    for i, r in s.iterrows():
        values = [SUPPRESSED] * len(dims) if small[i] else [_fmt(r[c]) for c in dims]
        definition = [html.escape(str(r["definition"])) if pd.notna(r["definition"]) else ""] if has_definition else []
        rows.append([html.escape(str(r["segmentation"])), html.escape(str(r["segment_name"])), *definition,
                     _fmt(r["n"], "int"), *values])
    headers = ["segmentation", "segment", *(["definition"] if has_definition else []), "n", *dims]
    out.append(_table(headers, rows, cls="compact segments"))
    return _closed(out)


SATURATION_TABLE_COLUMNS = ("n", "eligible_households", "enrolled_households", "enrollment_rate", "modelled_potential",
                            "potential_rate", "reachable_new_12m", "reachable_rate_12m")


def _with_potential_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """potential_rate = (enrolled + modelled potential) / active households, when the table has those counts."""
    if "potential_rate" not in frame.columns and {"enrolled_households", "modelled_potential", "active_households"} <= set(frame.columns):
        active = frame["active_households"].where(frame["active_households"] > 0)
        frame = frame.assign(potential_rate=(frame["enrolled_households"] + frame["modelled_potential"]) / active)
    return frame


def _saturation_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Rate columns of the three bars: enrolled, potential, reachable within the horizon (found by name)."""
    rates = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
             and ("rate" in c.lower() or "share" in c.lower()) and "conversion" not in c.lower()
             and "eligible_" not in c.lower()]
    found: dict[str, str] = {}
    for role, hints in (("enrolled", ("enrollment_rate", "enrolled", "enrollment")), ("potential", ("potential",)),
                        ("reachable", ("reachable",))):
        match = _by_hints(rates, hints, exclude=tuple(found.values()))
        if match:
            found[role] = match
    return found


def _section_saturation(inp: ReportInputs) -> str:
    out = ['<section id="saturation"><h2>Program saturation</h2>']
    p = inp.saturation
    if _absent(p):
        return _closed(out, _missing(f"gold/{PROGRAM_SATURATION}"))
    p = _with_potential_rate(p.copy())
    if "program" not in p.columns:
        p["program"] = [f"program {i}" for i in range(len(p))]
    small = p["n"].notna() & (p["n"] < inp.min_households) if "n" in p.columns else pd.Series(False, index=p.index)
    if "is_suppressed" in p.columns:
        small |= p["is_suppressed"].fillna(False).astype(bool)
    roles = _saturation_columns(p)
    if roles:
        shown = p[~small]
        fig = _figure(12, 0.5 * max(len(shown), 1) * len(roles) / 2 + 1.5)
        ax = fig.subplots()
        height = 0.8 / len(roles)
        for j, (role, col) in enumerate(roles.items()):
            ax.barh([i + j * height for i in range(len(shown))], shown[col].fillna(0), height=height,
                    label=f"{role} ({col})", color=PALETTE[j])
        ax.set_yticks([i + height * (len(roles) - 1) / 2 for i in range(len(shown))], list(shown["program"]), fontsize=8)
        ax.legend(fontsize=8)
        ax.set_title("Share of active households: enrolled now, potential, reachable within the horizon", fontsize=10)
        out.append(_png(fig, alt="Program saturation"))
        if "potential_rate" in roles.values() and "modelled_potential" in p.columns:
            out.append('<p class="note">potential_rate = (enrolled households + modelled potential) / active households.</p>')
    else:
        out.append('<p class="note">No enrolled/potential/reachable columns recognised: table only.</p>')
    numeric = [c for c in p.columns if c not in ("program", "segment_type", "segment_value", "is_suppressed", "run_id",
                                                 "computed_at", "created_at", "horizon_months", "campaign_capture")
               and pd.api.types.is_numeric_dtype(p[c]) and not pd.api.types.is_bool_dtype(p[c])]
    cols = list(dict.fromkeys([c for c in SATURATION_TABLE_COLUMNS if c in numeric] + numeric))[:8]
    rows = []
    for i, r in p.iterrows():
        counts = {c for c in cols if c == "n" or c.endswith("_households")}
        rows.append([html.escape(str(r["program"])),
                     *[_fmt(r[c], "int") if c == "n" else SUPPRESSED if small[i] else
                       _fmt(r[c], "int" if c in counts else "num") for c in cols]])
    out.append(_table(["program", *cols], rows, cls="compact saturation"))
    return _closed(out)


def _section_contacts(inp: ReportInputs) -> str:
    out = ['<section id="contacts"><h2>What customers say</h2>']
    c = inp.contacts
    if _absent(c):
        return _closed(out, _missing(f"gold/{CONTACT_INSIGHTS}"))
    out.append('<p class="note">Topics are read from the contact transcripts (not the agents\' reason codes); '
               "sentiment is VADER's compound score (-1 to 1, negative at or below -0.05). Cells of fewer than "
               f"{inp.min_households} households show their counts only.</p>")
    comments, c = c[c["source"] == "survey_comment"], c[c["source"] == "contact"]
    if c.empty:
        return _closed(out, '<p class="note">No contact in the latest months.</p>', _comments_table(comments))
    shown = c[~c["is_suppressed"].fillna(False).astype(bool)]
    if not shown.empty:
        fig = _figure(12, 3.2)
        ax_volume, ax_mood = fig.subplots(1, 2)
        for j, (topic, rows) in enumerate(c.groupby("topic", sort=True)):
            ax_volume.plot(pd.to_datetime(rows["month"]), rows["volume"], marker="o", label=topic, color=PALETTE[j])
            kept = shown[shown["topic"] == topic]
            ax_mood.plot(pd.to_datetime(kept["month"]), kept["mean_sentiment"], marker="o", label=topic,
                         color=PALETTE[j])
        ax_volume.set_title("Contacts by topic", fontsize=10)
        ax_mood.set_title("Mean sentiment by topic (published cells)", fontsize=10)
        ax_mood.axhline(0, color="#999", linewidth=0.8)
        ax_volume.legend(fontsize=8)
        for ax in (ax_volume, ax_mood):
            ax.tick_params(labelsize=8)
        out.append(_png(fig, alt="Contacts and sentiment by topic"))
    last = c[c["month"] == c["month"].max()]
    rows = []
    for _, r in last.iterrows():
        hidden = bool(r["is_suppressed"])
        rows.append([html.escape(str(r["topic"])), _fmt(r["volume"], "int"), _fmt(r["n"], "int"),
                     *[SUPPRESSED if hidden else _fmt(r[col], "num" if col == "mean_sentiment" else "share")
                       for col, _ in CONTACT_RATES]])
    out.append(f"<p>Latest month: <b>{html.escape(str(last['month'].iloc[0]))}</b></p>")
    out.append(_table(["topic", "contacts", "households", *[label for _, label in CONTACT_RATES]], rows,
                      cls="compact contacts"))
    return _closed(out, _comments_table(comments))


def _comments_table(comments: pd.DataFrame) -> str:
    """Survey comments by month and topic: what respondents write about, how it reads, the CSAT they gave."""
    if comments.empty:
        return '<p class="note">No survey comment in the latest months.</p>'
    rows = []
    for _, r in comments.sort_values(["month", "topic"], ascending=[False, True]).iterrows():
        hidden = bool(r["is_suppressed"])
        rows.append([html.escape(str(r["month"])), html.escape(str(r["topic"])), _fmt(r["volume"], "int"),
                     _fmt(r["n"], "int"),
                     *[SUPPRESSED if hidden else _fmt(r[col], kind) for col, kind in (
                         ("mean_sentiment", "num"), ("negative_share", "share"), ("mean_csat", "num"))]])
    return ("<h3>Survey comments</h3><p class=\"note\">The free-text comments of survey responses, read like the "
            "transcripts: topic, sentiment, and the mean CSAT of the respondents who wrote them.</p>"
            + _table(["month", "topic", "comments", "households", "mean sentiment", "negative", "mean CSAT"], rows,
                     cls="compact comments"))


def _section_bills(inp: ReportInputs) -> str:
    out = ['<section id="bills"><h2>Why bills move</h2>']
    if _absent(inp.baselines):
        return _closed(out, _missing(f"gold/{USAGE_BASELINES}"))
    out.append('<p class="note">Each household\'s daily use against the day\'s mean temperature (the CalTRACK daily '
               "method: heating and cooling balance points searched over 30-90 F, the model with the best adjusted "
               "R&sup2; among those whose slopes are positive and significant); normalised annual use is that model "
               "over the station's recorded years. Each bill is compared with the same period a year earlier and its "
               "change split into weather, number of days, rate and usage habits (<code>ucx explain-bill</code> says "
               f"it for one household). Months of fewer than {inp.min_households} households show their counts only.</p>")
    rows = [[html.escape(str(r["model_type"])), _fmt(r["n"], "int"), _fmt(r["sufficient"], "int"),
             _fmt(r["median_nac_kwh"]), _fmt(r["median_cvrmse"])] for _, r in inp.baselines.iterrows()]
    out.append(_table(["model", "households", "with a full year", "median normalised annual kWh", "median CV(RMSE)"],
                      rows, cls="compact baselines"))
    b = inp.bill_changes
    if b is None or b.empty:
        out.append('<p class="note">No bill has a bill for the same period a year earlier yet.</p>')
        return _closed(out)
    shown = b[~b["is_suppressed"].astype(bool)]
    if not shown.empty:
        fig = _figure(12, 3.2)
        ax = fig.subplots()
        x = np.arange(len(shown))
        up, down = np.zeros(len(shown)), np.zeros(len(shown))
        for j, (col, label) in enumerate(BILL_PARTS):
            v = shown[col].astype(float).to_numpy()
            base = np.where(v >= 0, up, down)
            ax.bar(x, v, bottom=base, label=label, color=PALETTE[j], width=0.7)
            up, down = up + np.clip(v, 0, None), down + np.clip(v, None, 0)
        ax.plot(x, shown["change_usd"].astype(float), color="black", marker="o", label="mean change")
        ax.axhline(0, color="#999", linewidth=0.8)
        ax.set_xticks(x, [str(m)[:7] for m in shown["month"]], fontsize=8)
        ax.set_title("Mean change of a bill against a year earlier, and its parts ($)", fontsize=10)
        ax.legend(fontsize=8, ncols=5)
        out.append(_png(fig, alt="Bill changes against a year earlier by part"))
    rows = [[html.escape(str(r["month"])[:7]), _fmt(r["n"], "int"),
             *[SUPPRESSED if r["is_suppressed"] else _fmt(r[c]) for c in ("change_usd", *[c for c, _ in BILL_PARTS])]]
            for _, r in b.iterrows()]
    out.append(_table(["month", "households", "mean change $", *[f"{label} $" for _, label in BILL_PARTS]], rows,
                      cls="compact bills"))
    return _closed(out)


def _section_equity(inp: ReportInputs) -> str:
    out = ['<section id="equity"><h2>Who is treated unfairly</h2>']
    e = inp.equity
    if _absent(e):
        return _closed(out, _missing(f"gold/{EQUITY_AUDIT}"))
    out.append('<p class="note">Each group\'s rate over the audit window against the whole utility\'s. The 95% interval '
               "of a count (notices, disconnections, enrolled and reached households) is exact, from the group's share "
               "of the events; outage metrics redraw outages, not homes (one outage strikes a whole feeder); predicted "
               "risk redraws households. A ratio above 1.25 whose interval lies above 1, backed by at least "
               f"{MIN_FLAG_EVENTS} households or outages with an event, is flagged. Groups of fewer than "
               f"{inp.min_households} households keep their counts only. With many cells some flags are chance: read "
               "a flag as a question to ask, not a finding.</p>")
    flagged = e[e["flagged"].astype(bool)]
    out.append(f"<p>Flagged over the window: <b>{len(flagged)}</b>; in single months: <b>{inp.equity_flagged_months}</b>.</p>")
    income = e[(e["dimension"] == "income_band") & ~e["is_suppressed"].astype(bool)]
    if not income.empty:
        fig = _figure(12, 3.4)
        ax = fig.subplots()
        labels = [label for metric, label in EQUITY_METRICS if metric in set(income["metric"])]
        bands = sorted(set(income["group_value"]))
        width = 0.8 / max(len(bands), 1)
        for j, band in enumerate(bands):
            rows = income[income["group_value"] == band].set_index("metric")
            xs, ys, lo, hi = [], [], [], []
            for i, (metric, _) in enumerate([m for m in EQUITY_METRICS if m[0] in set(income["metric"])]):
                if metric in rows.index and pd.notna(rows.loc[metric, "ratio"]):
                    r = rows.loc[metric]
                    xs.append(i - 0.4 + (j + 0.5) * width)
                    ys.append(float(r["ratio"]))
                    lo.append(float(r["ratio"]) - float(r["ci_low"]) if pd.notna(r["ci_low"]) else 0.0)
                    hi.append(float(r["ci_high"]) - float(r["ratio"]) if pd.notna(r["ci_high"]) else 0.0)
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", label=band, color=PALETTE[j % len(PALETTE)], capsize=2)
        ax.axhline(1.0, color="#999", linewidth=0.8)
        ax.axhline(1.25, color="#c33", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_title("Ratio to the utility by income band, audit window (95% interval)", fontsize=10)
        ax.legend(fontsize=7, ncols=4)
        out.append(_png(fig, alt="Disparity ratios by income band"))
    names = dict(EQUITY_METRICS)
    rows = []
    for _, r in e.iterrows():
        hidden = bool(r["is_suppressed"])
        interval = "—" if hidden or pd.isna(r["ci_low"]) else f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        rows.append([html.escape(names.get(r["metric"], r["metric"])), html.escape(str(r["dimension"])),
                     html.escape(str(r["group_value"])), _fmt(r["n"], "int"),
                     SUPPRESSED if hidden else _fmt(r["value"]), _fmt(r["overall"]),
                     SUPPRESSED if hidden else _fmt(r["ratio"]), interval, "flagged" if r["flagged"] else ""])
    out.append(_table(["metric", "dimension", "group", "households", "value", "utility", "ratio", "95% interval", ""],
                      rows, cls="compact equity"))
    return _closed(out)


def _section_quality(inp: ReportInputs) -> str:
    out = ['<section id="quality"><h2>Data quality gates</h2>']
    if inp.quality is None or inp.quality.empty:
        # not an insight table a command computes on demand: the gates of `ucx pipeline` write it
        return "".join(out) + ('<p class="note">No quality-gate results in this warehouse (<code>gold/quality_results</code>): '
                               "the gates of <code>ucx pipeline</code> write them.</p></section>")
    q = inp.quality
    total, not_met, critical = int(q["expectations"].sum()), int(q["not_met"].sum()), int(q["critical_not_met"].sum())
    run = inp.quality_run
    out.append(
        f'<p class="meta">Run <code>{html.escape(str(run.get("run_id", "")))}</code>, checked '
        f'{html.escape(str(run.get("checked_at", "")))} UTC: {len(q)} tables, {total:,} expectations, '
        f"{not_met} not met ({critical} critical). Every bad row is in quarantine with the rule it broke."
        + (f" Every expectation's result: Great Expectations Data Docs, <code>{html.escape(inp.data_docs)}</code>"
           " (opens offline)." if inp.data_docs else "")
        + "</p>"
    )
    rows = [[html.escape(str(r["layer"])), html.escape(str(r["table"])), _fmt(r["rows_checked"], "int"),
             _fmt(r["expectations"], "int"), _fmt(r["not_met"], "int"), _fmt(r["critical_not_met"], "int")]
            for _, r in q.iterrows()]
    out.append(_table(["layer", "table", "rows checked", "expectations", "not met", "critical not met"], rows, cls="compact"))
    if inp.quality_failed is not None and not inp.quality_failed.empty:
        out.append("<h3>Expectations not met</h3>")
        out.append(_table(
            ["layer", "table", "expectation", "column", "severity", "observed"],
            ([html.escape(str(r[c])) if r[c] is not None else "" for c in
              ("layer", "table", "expectation_type", "column", "severity", "observed_value")]
             for _, r in inp.quality_failed.iterrows()),
            cls="compact",
        ))
    return _closed(out)


def _code_spans(text: str) -> str:
    """Escape ``text`` and turn `backtick` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _section_maturity(inp: ReportInputs) -> str:
    out = ['<section id="maturity"><h2>CX maturity self-assessment</h2>']
    if not inp.maturity:
        return "".join(out) + '<p class="missing">No inventory.</p></section>'
    common = overall_level(inp.maturity)
    k = sum(c.level_name == common for c in inp.maturity)
    out.append(f"<p>Scored from what this warehouse holds; levels are cumulative (a level counts only when the ones "
               f"below it are met). Most common level: <b>{common}</b> ({k} of {len(inp.maturity)} capabilities).</p>")
    rows = []
    for cap in inp.maturity:
        badge = f'<span class="level l{cap.level}">{html.escape(cap.level_name)}</span>'
        evidence = "<ul>" + "".join(f"<li>{html.escape(e)}</li>" for e in cap.evidence) + "</ul>"
        rows.append([html.escape(cap.name), badge, evidence, _code_spans(cap.next_step)])
    out.append(_table(["capability", "level", "evidence", "next level needs"], rows, cls="maturity"))
    counts = " · ".join(f"{name}: {sum(c.level == i for c in inp.maturity)}" for i, name in enumerate(LEVELS))
    out.append(f'<p class="note">{counts}</p>')
    return _closed(out)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1220px;margin:0 auto;padding:20px 28px;background:#fff}
h1{font-size:26px;margin:0 0 6px;color:#0b3d6e} h2{font-size:20px;border-bottom:2px solid #0b3d6e;padding-bottom:4px;margin-top:32px}
h3{font-size:15px} .meta{color:#555;margin:0 0 10px} nav a{margin-right:14px;color:#0b3d6e}
img.plot{max-width:100%;display:block;margin:8px 0} table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d6d9de;padding:4px 8px;text-align:left;vertical-align:top} th{background:#eef1f5}
table.compact td{padding:2px 8px} .missing{background:#fff6e0;border-left:4px solid #e0a100;padding:8px 12px}
.note{color:#555;font-size:12px} .suppressed{color:#888;font-style:italic} code{background:#eef1f5;padding:0 3px}
.level{padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px;white-space:nowrap}
.l0{background:#eee;color:#555} .l1{background:#fde8cf;color:#8a4b00} .l2{background:#d8ecff;color:#0b3d6e}
.l3{background:#d5f5dd;color:#16692f} table.maturity ul{margin:0;padding-left:16px} details{margin:6px 0}
"""

SECTIONS = (("kpis", "KPI trends"), ("csat", "CSAT"), ("drivers", "Drivers"), ("whatif", "What-if"),
            ("segments", "Segments"), ("saturation", "Saturation"), ("contacts", "What customers say"),
            ("bills", "Why bills move"), ("equity", "Equity"), ("quality", "Data quality"), ("maturity", "Maturity"))


def render_html(inp: ReportInputs) -> str:
    """The whole report as one self-contained HTML document."""
    nav = "<nav>" + "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in SECTIONS) + "</nav>"
    body = "".join([
        _section_header(inp), nav, _section_kpis(inp), _section_csat(inp), _section_drivers(inp), _section_whatif(inp),
        _section_segments(inp), _section_saturation(inp), _section_contacts(inp), _section_bills(inp),
        _section_equity(inp), _section_quality(inp),
        _section_maturity(inp),
    ])
    title = html.escape(f"{inp.utility_name} CX report")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><main>{body}</main></body></html>")
