"""Utility-CX maturity self-assessment, scored from what the warehouse holds.

In the spirit of the Beginner / Medium / Advanced utility-CX capability table:
for each capability, the level the utility's *own data* supports today, with
the evidence for it and what the next level needs. Scoring is a set of pure
functions over a small JSON-like ``inventory`` dict (unit-testable without
Spark); :func:`build_inventory` fills that dict from the warehouse's tables
(:func:`read_inventory_tables`) with bounded reads: one aggregation per table
(row count, a few distinct values) and the MLflow registry's champions.

Inventory keys (all optional; a missing key means "nothing found"):

- ``tables``: ``{"<layer>/<table>": row_count}`` for the tables that exist;
- ``columns``: ``{"<layer>/<table>": [column, ...]}``;
- ``ami_months``: local months spanned by metered energy (gold/meter_daily_usage);
- ``survey_responses``: surveys with a csat; ``survey_measures``: which of
  csat/nps/ces have at least one value;
- ``kpi_months``: ``{kpi: months with a value}`` in gold/cx_kpis (segment all);
- ``kpi_segment_types``: segment types of gold/cx_kpis besides ``all``;
- ``feature_as_of_dates``: distinct as_of_dates of gold/household_features;
- ``champions``: ``{model: version}`` registered as champion;
- ``scored_share``: ``{model: households scored / active households}`` at the latest as_of_date;
- ``quality_layers``: layers with quality-gate results; ``quality_runs``: distinct runs;
- ``driver_segment_types``, ``whatif_scenarios``, ``whatif_segment_types``,
  ``segmentations``, ``saturation_programs``, ``target_campaigns``;
- ``forbidden_gold_columns``: direct identifiers found in gold schemas;
- ``min_households``: the configured suppression threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucx_spark.catalog import (
    BILL_EXPLANATIONS,
    CAMPAIGN_TARGETS,
    CONTACT_INSIGHTS,
    CX_KPIS,
    EQUITY_AUDIT,
    HOUSEHOLD_FEATURES,
    HOUSEHOLD_SCORES,
    METER_DAILY_USAGE,
    MODEL_DRIVERS,
    PIPELINE_RUNS,
    PROGRAM_SATURATION,
    QUALITY_RESULTS,
    SEGMENT_PROFILES,
    SEGMENTS,
    USAGE_BASELINES,
    WHATIF_RESULTS,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LEVELS: tuple[str, ...] = ("Not yet", "Beginner", "Medium", "Advanced")
PROPENSITY_MODELS: tuple[str, ...] = ("ev_adoption", "payment_risk")
FULL_COVERAGE = 0.95  # share of active households scored that counts as "every household"
SEASONAL_MONTHS = 12  # a year of data shows seasonality


@dataclass(frozen=True)
class Capability:
    """One row of the self-assessment: ``level`` indexes :data:`LEVELS`."""

    name: str
    level: int
    evidence: list[str] = field(default_factory=list)
    next_step: str = ""

    @property
    def level_name(self) -> str:
        return LEVELS[self.level]


# --------------------------------------------------------------------------- inventory accessors


def _rows(inv: dict[str, Any], table: str) -> int | None:
    """Row count of ``table`` (``layer/table``), None when the table does not exist."""
    value = inv.get("tables", {}).get(table)
    return None if value is None else int(value)


def _has(inv: dict[str, Any], table: str) -> bool:
    """The table exists and holds at least one row."""
    return (_rows(inv, table) or 0) > 0


def _cols(inv: dict[str, Any], table: str) -> set[str]:
    return set(inv.get("columns", {}).get(table, []))


def _table_note(inv: dict[str, Any], table: str) -> str:
    rows = _rows(inv, table)
    if rows is None:
        return f"{table}: absent"
    return f"{table}: {rows:,} rows" if rows else f"{table}: empty"


def _kpi_months(inv: dict[str, Any], kpi: str) -> int:
    return int(inv.get("kpi_months", {}).get(kpi, 0))


def _level(checks: list[tuple[bool, str]]) -> int:
    """Levels are cumulative: the level is the count of consecutive checks met from Beginner up."""
    level = 0
    for ok, _ in checks:
        if not ok:
            break
        level += 1
    return level


def _capability(name: str, checks: list[tuple[bool, str]], evidence: list[str]) -> Capability:
    """``checks``: (met, what the level needs) for Beginner, Medium and Advanced in order."""
    level = _level(checks)
    next_step = checks[level][1] if level < len(checks) else "highest level reached"
    return Capability(name, level, evidence, next_step)


# --------------------------------------------------------------------------- capabilities


def customer_360(inv: dict[str, Any]) -> Capability:
    feats = _cols(inv, f"gold/{HOUSEHOLD_FEATURES}")
    third_party = sorted(feats & {"income_band", "home_type", "tenure"})
    dates = int(inv.get("feature_as_of_dates", 0))
    evidence = [_table_note(inv, "silver/accounts"), _table_note(inv, f"gold/{HOUSEHOLD_FEATURES}"),
                f"{len(feats)} feature columns" if feats else "no feature columns",
                f"third-party attributes: {', '.join(third_party) or 'none'}", f"{dates} as-of date(s)"]
    checks = [
        (_has(inv, "silver/accounts"), "load the accounts feed (`ucx pipeline`)"),
        (_has(inv, f"gold/{HOUSEHOLD_FEATURES}") and len(feats) >= 10,
         "build gold/household_features (one row per household joining billing, payments, contacts)"),
        (bool(third_party) and dates >= 2,
         "match third-party household data and keep a feature history (two or more as-of dates)"),
    ]
    return _capability("Customer 360 / single view", checks, evidence)


def ami_analytics(inv: dict[str, Any]) -> Capability:
    months = int(inv.get("ami_months", 0))
    usage = _cols(inv, f"gold/{METER_DAILY_USAGE}")
    feats = _cols(inv, f"gold/{HOUSEHOLD_FEATURES}")
    shape = sorted(usage & {"kwh_on_peak", "peak_kw"})
    detect = sorted(feats & {"night_minus_evening_kw_90d", "export_kwh_365d"})
    evidence = [_table_note(inv, f"gold/{METER_DAILY_USAGE}"), f"{months} month(s) of AMI",
                f"load-shape columns: {', '.join(shape) or 'none'}",
                f"EV/solar signals in features: {', '.join(detect) or 'none'}"]
    checks = [
        (_has(inv, f"gold/{METER_DAILY_USAGE}") and months >= 1, "land AMI interval reads (gold/meter_daily_usage)"),
        (months >= SEASONAL_MONTHS and bool(shape), f"collect {SEASONAL_MONTHS}+ months of AMI with on-peak/peak load shape"),
        (len(detect) == 2, "derive EV (night load) and solar (export) signals into household features"),
    ]
    return _capability("AMI analytics (load shape, EV/solar detection)", checks, evidence)


def survey_analytics(inv: dict[str, Any]) -> Capability:
    responses = int(inv.get("survey_responses", 0))
    measures = sorted(inv.get("survey_measures", []))
    tracked = [k for k in ("csat_top2box", "nps", "ces") if _kpi_months(inv, k) > 0]
    seg_types = sorted(inv.get("kpi_segment_types", []))
    min_hh = int(inv.get("min_households", 15))
    evidence = [f"{responses:,} survey responses with CSAT", f"measures: {', '.join(measures) or 'none'}",
                f"monthly KPIs with values: {', '.join(tracked) or 'none'}",
                f"KPI segment types: {', '.join(seg_types) or 'none'}"]
    checks = [
        (responses > 0, "load the surveys feed"),
        (responses >= min_hh and len(tracked) >= 2, "track CSAT top-2-box, NPS or CES monthly (gold/cx_kpis)"),
        (len(tracked) == 3 and bool(seg_types) and _kpi_months(inv, "csat_top2box") >= SEASONAL_MONTHS,
         f"track all of CSAT, NPS and CES by segment over {SEASONAL_MONTHS}+ months"),
    ]
    return _capability("Survey analytics (CSAT/NPS/CES)", checks, evidence)


def predicted_csat(inv: dict[str, Any]) -> Capability:
    champion = inv.get("champions", {}).get("csat")
    share = inv.get("scored_share", {}).get("csat")
    drivers = "top_drivers" in _cols(inv, f"gold/{HOUSEHOLD_SCORES}")
    evidence = [f"csat champion: {'v' + str(champion) if champion else 'none'}",
                f"households scored: {share:.0%}" if share is not None else "households scored: none",
                f"per-household drivers: {'yes' if drivers else 'no'}"]
    checks = [
        (champion is not None or (share or 0) > 0, "train and register a CSAT model (`ucx train --model csat`)"),
        (share is not None and share > 0, "score households (`ucx score`) into gold/household_scores"),
        (share is not None and share >= FULL_COVERAGE and drivers,
         f"score at least {FULL_COVERAGE:.0%} of active households, with drivers"),
    ]
    return _capability("Predicted CSAT for every household", checks, evidence)


def propensity_models(inv: dict[str, Any]) -> Capability:
    champions = inv.get("champions", {})
    shares = inv.get("scored_share", {})
    have = [m for m in PROPENSITY_MODELS if m in champions or (shares.get(m) or 0) > 0]
    scored = [m for m in PROPENSITY_MODELS if (shares.get(m) or 0) >= FULL_COVERAGE]
    evidence = [f"champions: {', '.join(f'{m} v{champions[m]}' for m in have if m in champions) or 'none'}",
                f"fully scored: {', '.join(scored) or 'none'}", _table_note(inv, f"gold/{CAMPAIGN_TARGETS}")]
    checks = [
        (bool(have), "train an EV-adoption or payment-risk model"),
        (len(scored) == len(PROPENSITY_MODELS), "score every household for both EV adoption and payment risk"),
        (_has(inv, f"gold/{CAMPAIGN_TARGETS}") and int(inv.get("target_campaigns", 0)) >= 2,
         "use the propensities to target two or more campaigns (gold/campaign_targets)"),
    ]
    return _capability("Propensity models (EV, payment risk)", checks, evidence)


def explainability(inv: dict[str, Any]) -> Capability:
    per_household = "top_drivers" in _cols(inv, f"gold/{HOUSEHOLD_SCORES}")
    seg_types = sorted(set(inv.get("driver_segment_types", [])) - {"all"})
    evidence = [f"per-household top drivers: {'yes' if per_household else 'no'}",
                _table_note(inv, f"gold/{MODEL_DRIVERS}"),
                f"driver segment types: {', '.join(seg_types) or 'none'}"]
    checks = [
        (per_household, "score with SHAP drivers per household"),
        (_has(inv, f"gold/{MODEL_DRIVERS}"), "publish global drivers (gold/model_drivers)"),
        (bool(seg_types), "break drivers down by segment"),
    ]
    return _capability("Drivers / explainability", checks, evidence)


def whatif_simulation(inv: dict[str, Any]) -> Capability:
    scenarios = int(inv.get("whatif_scenarios", 0))
    seg_types = sorted(set(inv.get("whatif_segment_types", [])) - {"all"})
    has_ci = {"delta_ci_low", "delta_ci_high"} <= _cols(inv, f"gold/{WHATIF_RESULTS}")
    evidence = [_table_note(inv, f"gold/{WHATIF_RESULTS}"), f"{scenarios} scenario(s)",
                f"confidence intervals: {'yes' if has_ci else 'no'}", f"segment types: {', '.join(seg_types) or 'none'}"]
    checks = [
        (_has(inv, f"gold/{WHATIF_RESULTS}"), "simulate a scenario through the champions (`ucx whatif`)"),
        (scenarios >= 2 and has_ci, "compare two or more scenarios with confidence intervals"),
        (scenarios >= 3 and bool(seg_types), "three or more scenarios, broken down by segment"),
    ]
    return _capability("What-if simulation", checks, evidence)


def segmentation(inv: dict[str, Any]) -> Capability:
    kpi_seg = sorted(inv.get("kpi_segment_types", []))
    segs = sorted(inv.get("segmentations", []))
    evidence = [f"rule-based KPI segments: {', '.join(kpi_seg) or 'none'}", _table_note(inv, f"gold/{SEGMENTS}"),
                _table_note(inv, f"gold/{SEGMENT_PROFILES}"), f"segmentations: {', '.join(segs) or 'none'}"]
    checks = [
        (bool(kpi_seg), "report KPIs by customer class, rate plan, ZIP or income band"),
        (_has(inv, f"gold/{SEGMENTS}") or _has(inv, f"gold/{SEGMENT_PROFILES}"), "build personas (gold/segments)"),
        (len(segs) >= 2 and _has(inv, f"gold/{SEGMENT_PROFILES}"),
         "add objective-driven segmentations with published profiles"),
    ]
    return _capability("Segmentation / personas", checks, evidence)


def program_saturation(inv: dict[str, Any]) -> Capability:
    enrollment = sorted(k.split(":", 1)[1] for k in inv.get("kpi_months", {}) if k.startswith("enrollment_rate:")
                        and _kpi_months(inv, k) > 0)
    programs = int(inv.get("saturation_programs", 0))
    evidence = [f"enrollment rates tracked: {', '.join(enrollment) or 'none'}",
                _table_note(inv, f"gold/{PROGRAM_SATURATION}"), f"{programs} program(s) with potential"]
    checks = [
        (bool(enrollment), "track program enrollment rates monthly (gold/cx_kpis)"),
        (_has(inv, f"gold/{PROGRAM_SATURATION}"), "estimate program potential (gold/program_saturation)"),
        (programs >= 3, "estimate potential and reachable enrollment for three or more programs"),
    ]
    return _capability("Program saturation", checks, evidence)


def targeting(inv: dict[str, Any]) -> Capability:
    campaigns = int(inv.get("target_campaigns", 0))
    cols = _cols(inv, f"gold/{CAMPAIGN_TARGETS}")
    nba = sorted(cols & {"channel", "next_best_action", "recommended_channel", "rank"})
    evidence = [_table_note(inv, "silver/marketing"), f"email open rate months: {_kpi_months(inv, 'email_open_rate')}",
                _table_note(inv, f"gold/{CAMPAIGN_TARGETS}"), f"{campaigns} campaign(s)",
                f"next-best-action columns: {', '.join(nba) or 'none'}"]
    checks = [
        (_has(inv, "silver/marketing") or _kpi_months(inv, "email_open_rate") > 0,
         "load marketing events and track engagement"),
        (_has(inv, f"gold/{CAMPAIGN_TARGETS}"), "rank households for campaigns (gold/campaign_targets)"),
        (campaigns >= 2 and bool(nba), "next best action with channel choice across two or more campaigns"),
    ]
    return _capability("Targeting & next best action", checks, evidence)


def outage_communication(inv: dict[str, Any]) -> Capability:
    etr = _kpi_months(inv, "etr_accuracy")
    reliability = [k for k in ("saidi_minutes", "caidi_minutes") if _kpi_months(inv, k) > 0]
    evidence = [_table_note(inv, "silver/outages"), f"{etr} month(s) of ETR accuracy",
                f"reliability KPIs: {', '.join(reliability) or 'none'}"]
    checks = [
        (_has(inv, "silver/outages"), "load the outages feed (OMS)"),
        (etr > 0, "measure ETR accuracy (first ETR told vs restoration)"),
        (etr >= SEASONAL_MONTHS and len(reliability) == 2,
         f"{SEASONAL_MONTHS}+ months of ETR accuracy alongside SAIDI and CAIDI"),
    ]
    return _capability("Outage communication (ETR accuracy)", checks, evidence)


def data_quality(inv: dict[str, Any]) -> Capability:
    layers = sorted(inv.get("quality_layers", []))
    runs = int(inv.get("quality_runs", 0))
    evidence = [_table_note(inv, f"gold/{QUALITY_RESULTS}"), f"gated layers: {', '.join(layers) or 'none'}",
                f"{runs} gated run(s)", _table_note(inv, f"gold/{PIPELINE_RUNS}")]
    checks = [
        (_has(inv, f"gold/{QUALITY_RESULTS}"), "run the quality gates (`ucx pipeline`, then `ucx quality`)"),
        ({"bronze", "silver", "gold"} <= set(layers), "gate bronze, silver and gold"),
        (runs >= 2 and _has(inv, f"gold/{PIPELINE_RUNS}"),
         "gate every run and balance row accounting (gold/pipeline_runs)"),
    ]
    return _capability("Data quality gates", checks, evidence)


def privacy_controls(inv: dict[str, Any]) -> Capability:
    gold = sorted(t for t in inv.get("tables", {}) if t.startswith("gold/"))
    forbidden = sorted(inv.get("forbidden_gold_columns", []))
    min_hh = int(inv.get("min_households", 0))
    aggregates = [t for t in (f"gold/{CX_KPIS}", f"gold/{MODEL_DRIVERS}", f"gold/{WHATIF_RESULTS}",
                              f"gold/{SEGMENT_PROFILES}")
                  if _rows(inv, t) is not None]
    with_n = [t for t in aggregates if "n" in _cols(inv, t)]
    evidence = [f"{len(gold)} gold table(s)", f"direct identifiers in gold: {', '.join(forbidden) or 'none'}",
                f"suppression threshold: {min_hh} households",
                f"aggregates carrying n: {len(with_n)} of {len(aggregates)}"]
    checks = [
        (bool(gold) and not forbidden, "keep direct identifiers out of gold (pseudonymous household ids)"),
        (min_hh >= 15 and f"gold/{CX_KPIS}" in with_n,
         "publish n with every aggregate and suppress cells under 15 households"),
        (len(aggregates) >= 3 and len(with_n) == len(aggregates),
         "every published insight aggregate (drivers, what-if, segments) carries n and suppression"),
    ]
    return _capability("Privacy controls", checks, evidence)


CAPABILITIES: tuple[Callable[[dict[str, Any]], Capability], ...] = (
    customer_360, ami_analytics, survey_analytics, predicted_csat, propensity_models, explainability,
    whatif_simulation, segmentation, program_saturation, targeting, outage_communication, data_quality,
    privacy_controls,
)


def assess(inventory: dict[str, Any]) -> list[Capability]:
    """One :class:`Capability` per row of the table, in a fixed order."""
    return [fn(inventory) for fn in CAPABILITIES]


def overall_level(capabilities: list[Capability]) -> str:
    """The most common level among the capabilities (ties go to the lower level)."""
    counts = [sum(c.level == i for c in capabilities) for i in range(len(LEVELS))]
    return LEVELS[max(range(len(LEVELS)), key=lambda i: (counts[i], -i))]


# --------------------------------------------------------------------------- inventory from a warehouse

INVENTORY_TABLES: tuple[str, ...] = (
    "silver/accounts", "silver/surveys", "silver/outages", "silver/marketing", "silver/programs",
    f"gold/{METER_DAILY_USAGE}", f"gold/{HOUSEHOLD_FEATURES}", f"gold/{CX_KPIS}", f"gold/{HOUSEHOLD_SCORES}",
    f"gold/{QUALITY_RESULTS}", f"gold/{PIPELINE_RUNS}", f"gold/{MODEL_DRIVERS}", f"gold/{WHATIF_RESULTS}",
    f"gold/{SEGMENTS}", f"gold/{SEGMENT_PROFILES}", f"gold/{PROGRAM_SATURATION}", f"gold/{CAMPAIGN_TARGETS}",
    f"gold/{CONTACT_INSIGHTS}", f"gold/{USAGE_BASELINES}", f"gold/{BILL_EXPLANATIONS}",
    f"gold/{EQUITY_AUDIT}",
)


def _champions(tracking_uri: str | None) -> dict[str, str]:
    """Champion versions in the registry; nothing (and no side effect) when there is no registry."""
    if not tracking_uri:
        return {}
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return {}  # do not let MLflow create an empty database just to find nothing
    import mlflow

    from ucx_spark.models import registry
    from ucx_spark.models.score import MODEL_NAMES

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found: dict[str, str] = {}
    for name in MODEL_NAMES:
        version = registry.current_champion(client, registry.registered_name(name))
        if version is not None:
            found[name] = version
    return found


def read_inventory_tables(spark: SparkSession, warehouse: str | Path) -> dict[str, DataFrame]:
    """The :data:`INVENTORY_TABLES` that exist, as DataFrames (nothing is read yet)."""
    from ucx_spark.io.delta import read_table, table_exists, table_path

    found = {}
    for name in INVENTORY_TABLES:
        layer, table = name.split("/")
        if table_exists(spark, table_path(warehouse, layer, table)):
            found[name] = read_table(spark, warehouse, layer, table)
    return found


def build_inventory(
    tables: dict[str, DataFrame], *, min_households: int, tracking_uri: str | None = None
) -> dict[str, Any]:
    """The inventory for :func:`assess` from the tables that exist (``layer/table`` -> DataFrame).

    Bounded: one aggregation job per table (row count plus the few distinct
    values or months the scoring needs), a handful of rows back each.
    """
    from pyspark.sql import functions as F

    from ucx_spark.gold.privacy import forbidden_columns_in

    inv: dict[str, Any] = {"tables": {}, "columns": {}, "min_households": min_households}
    inv["forbidden_gold_columns"] = sorted(
        {c for name, df in tables.items() if name.startswith("gold/") for c in forbidden_columns_in(df.schema)}
    )

    for name, df in tables.items():
        inv["columns"][name] = df.columns
        wanted = _table_aggregates(name, df.columns)
        row = df.agg(F.count(F.lit(1)).alias("_rows"), *[col.alias(key) for key, col in wanted.items()]).first()
        inv["tables"][name] = int(row["_rows"])
        for key in wanted:
            value = row[key]
            if key.startswith("n_"):
                continue
            if key == "segmentations":
                inv[key] = sorted(set(inv.get(key, [])) | set(value))
            elif key == "kpi_segment_types":
                inv[key] = [v for v in value if v != "all"]
            elif key == "kpi_month_pairs":
                inv["kpi_months"] = dict(Counter(pair["kpi"] for pair in value))
            else:
                inv[key] = list(value) if isinstance(value, list) else int(value or 0)
        if name == "silver/surveys":
            inv["survey_measures"] = [k[2:] for k in wanted if k.startswith("n_") and row[k]]
            inv["survey_responses"] = int(row["n_csat"] or 0) if "n_csat" in wanted else 0
    inv["champions"] = _champions(tracking_uri)
    scores, features = tables.get(f"gold/{HOUSEHOLD_SCORES}"), tables.get(f"gold/{HOUSEHOLD_FEATURES}")
    if scores is not None and features is not None:
        inv["scored_share"] = _scored_share(scores, features)
    return inv


def _table_aggregates(name: str, columns: list[str]) -> dict[str, Any]:
    """Inventory key -> aggregate Column computed over table ``name`` (only over columns it has)."""
    from pyspark.sql import functions as F

    def distinct(column: str) -> Any:
        return F.slice(F.sort_array(F.collect_set(F.col(column).cast("string"))), 1, 1000)

    has = set(columns).issuperset
    out: dict[str, Any] = {}
    if name == f"gold/{METER_DAILY_USAGE}" and has({"kwh", "local_date"}):
        # Months spanned by metered days (min/max: one cheap pass over a table that can be large).
        dated = F.when(F.col("kwh").isNotNull(), F.col("local_date"))
        out["ami_months"] = F.coalesce(
            F.floor(F.months_between(F.trunc(F.max(dated), "month"), F.trunc(F.min(dated), "month"))).cast("int") + 1, F.lit(0))
    elif name == "silver/surveys":
        out.update({f"n_{c}": F.count(c) for c in ("csat", "nps", "ces") if c in columns})
    elif name == f"gold/{CX_KPIS}" and has({"segment_type", "kpi", "month", "value"}):
        out["kpi_segment_types"] = distinct("segment_type")
        valued = (F.col("segment_type") == "all") & F.col("value").isNotNull()
        out["kpi_month_pairs"] = F.slice(F.collect_set(F.when(valued, F.struct("kpi", "month"))), 1, 100_000)
    elif name == f"gold/{HOUSEHOLD_FEATURES}" and has({"as_of_date"}):
        out["feature_as_of_dates"] = F.countDistinct("as_of_date")
    elif name == f"gold/{QUALITY_RESULTS}" and has({"layer", "run_id"}):
        out.update(quality_layers=distinct("layer"), quality_runs=F.countDistinct("run_id"))
    elif name == f"gold/{MODEL_DRIVERS}" and has({"segment_type"}):
        out["driver_segment_types"] = distinct("segment_type")
    elif name == f"gold/{WHATIF_RESULTS}" and has({"scenario", "segment_type"}):
        out.update(whatif_scenarios=F.countDistinct("scenario"), whatif_segment_types=distinct("segment_type"))
    elif name in (f"gold/{SEGMENTS}", f"gold/{SEGMENT_PROFILES}") and has({"segmentation"}):
        out["segmentations"] = distinct("segmentation")
    elif name == f"gold/{PROGRAM_SATURATION}" and has({"program"}):
        out["saturation_programs"] = F.countDistinct("program")
    elif name == f"gold/{CAMPAIGN_TARGETS}":
        campaign = next((c for c in ("campaign", "campaign_id", "program") if c in columns), None)
        if campaign:
            out["target_campaigns"] = F.countDistinct(campaign)
    return out


def _scored_share(scores_df: DataFrame, features_df: DataFrame) -> dict[str, float]:
    """Per model: households scored at the latest features as_of_date / households in the features that day.

    (Scoring covers the accounts active that day, so a share a little under 1 is expected when accounts closed.)
    """
    from pyspark.sql import functions as F

    per_date = features_df.groupBy("as_of_date").agg(F.countDistinct("household_id").alias("n")).collect()
    if not per_date:
        return {}
    latest, households = max((r["as_of_date"], r["n"]) for r in per_date)
    rows = (scores_df.where(F.col("as_of_date") == F.lit(latest)).groupBy("model_name")
            .agg(F.countDistinct("household_id").alias("n")).collect())
    return {r["model_name"]: min(1.0, r["n"] / households) for r in rows if households}
