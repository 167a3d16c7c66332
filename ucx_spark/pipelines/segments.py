"""`ucx segment`: personas (+ one objective) -> gold/segments, gold/segment_profiles, persona rows of gold/cx_kpis.

Each run replaces the rows of the segmentations it computes (``persona`` and,
with ``objective``, ``objective:<name>``) and keeps the others, so several
objectives live side by side. Persona KPIs are written only when gold/cx_kpis
exists: its months and KPIs, ``segment_type = 'persona'`` rows replaced,
every other row kept; a later `ucx pipeline` rebuilds the other rows and keeps
these (``pipelines/gold.KEPT_ROWS``) until the next `ucx segment` replaces them. KPI families whose silver tables (or columns) are
missing are left out of the persona rows (their cells have n 0, value null).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import CX_KPIS, HOUSEHOLD_SCORES, METER_DAILY_USAGE, SEGMENT_PROFILES, SEGMENTS
from ucx_spark.config import DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE, DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.errors import UcxError
from ucx_spark.gold import cx_kpis as K
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import segments as S
from ucx_spark.io.delta import read_optional, read_table, replace_rows_where, table_exists, table_path
from ucx_spark.pipelines.insights_common import read_snapshot
from ucx_spark.quality import publish_if_passed


@dataclass
class SegmentsResult:
    run_id: str
    as_of_date: str
    segments_path: str
    profiles_path: str
    personas: list[tuple[str, str, int]] = field(default_factory=list)  # (id, name, n)
    objective: str | None = None
    objective_segments: list[tuple[str, str, int, float | None]] = field(default_factory=list)  # (id, name, n, outcome)
    persona_kpi_rows: int = 0
    persona_kpi_note: str = ""

    def summary(self) -> str:
        lines = [f"personas as of {self.as_of_date} -> {self.segments_path}"]
        lines += [f"  {sid}  {name}  (n={n:,})" for sid, name, n in self.personas]
        if self.objective:
            lines.append(f"objective {self.objective}: segments by outcome mean")
            lines += [f"  {sid}  {name}  (n={n:,}, mean={'suppressed' if m is None else f'{m:.3f}'})"
                      for sid, name, n, m in self.objective_segments]
        lines.append(f"profiles -> {self.profiles_path}")
        lines.append(f"persona KPIs: {self.persona_kpi_rows:,} rows in gold/cx_kpis" if self.persona_kpi_rows
                     else f"persona KPIs: {self.persona_kpi_note}")
        return "\n".join(lines)


def _persona_facts(spark: SparkSession, warehouse: str, accounts_df: DataFrame, months_df: DataFrame,
                   *, time_zone: str) -> tuple[DataFrame | None, list[str]]:
    """cx_kpis facts from the silver tables present; also the names of the families left out."""
    def has(df: DataFrame | None, *cols: str) -> bool:
        return df is not None and set(cols) <= set(df.columns)

    t = {name: read_optional(spark, warehouse, "silver", name)
         for name in ("surveys", "contacts", "outages", "programs", "marketing", "payments", "bills")}
    usage = read_optional(spark, warehouse, "gold", METER_DAILY_USAGE)
    families: list[tuple[str, bool, Callable[[], DataFrame]]] = [
        ("surveys", has(t["surveys"], "account_id", "responded_at", "csat", "nps", "ces"),
         lambda: K.survey_facts(t["surveys"], time_zone=time_zone)),
        ("contacts", has(t["contacts"], "account_id", "started_at", "channel", "handle_seconds", "first_contact_resolution"),
         lambda: K.contact_facts(t["contacts"], time_zone=time_zone)),
        ("outages", has(t["outages"], "premise_id", "started_at", "restored_at", "first_etr") and has(accounts_df, "premise_id"),
         lambda: K.outage_facts(t["outages"], accounts_df, months_df, time_zone=time_zone)),
        ("programs", has(t["programs"], "account_id", "program", "enrolled_on", "ended_on"),
         lambda: K.enrollment_facts(accounts_df, t["programs"], months_df)),
        ("marketing", has(t["marketing"], "account_id", "channel", "event_type", "occurred_at"),
         lambda: K.email_facts(t["marketing"], time_zone=time_zone)),
        ("payments+bills", has(t["payments"], "account_id", "paid_at", "amount") and has(t["bills"], "account_id", "due_date", "amount_due"),
         lambda: K.collection_facts(t["payments"], t["bills"], time_zone=time_zone)),
        (METER_DAILY_USAGE, has(usage, "household_id", "local_date", "kwh"),
         lambda: K.energy_facts(usage, accounts_df)),
    ]
    facts, missing = None, []
    for name, ok, build in families:
        if not ok:
            missing.append(name)
            continue
        part = build()
        facts = part if facts is None else facts.unionByName(part)
    return facts, missing


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    run_id: str,
    personas: int = 6,
    seed: int = 42,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
    objective: str | None = None,
    time_zone: str = "UTC",
    partitions: int = 8,
) -> SegmentsResult:
    objective = S.resolve_objective(objective) if objective else None
    snap = read_snapshot(spark, warehouse)[0].cache()
    try:
        return _run(spark, snap, warehouse=warehouse, run_id=run_id, personas=personas, seed=seed,
                    min_households=min_households, max_household_energy_share=max_household_energy_share,
                    objective=objective, time_zone=time_zone, partitions=partitions)
    finally:
        snap.unpersist()


def _run(spark: SparkSession, snap: DataFrame, *, warehouse: str, run_id: str, personas: int, seed: int,
         min_households: int, max_household_energy_share: float, objective: str | None, time_zone: str,
         partitions: int) -> SegmentsResult:
    created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
    pmodel = S.fit_personas(snap, k=personas, seed=seed, partitions=partitions)
    segments_df = S.assign_personas(snap, pmodel)
    definitions = {(S.PERSONA, sid): d for sid, _, d in pmodel.names.values()}
    segmentations = [S.PERSONA]
    outcome_df = None
    if objective:
        scores_df = read_optional(spark, warehouse, "gold", HOUSEHOLD_SCORES)
        try:
            omodel = S.fit_objective_segments(snap, objective, scores_df=scores_df, min_households=min_households,
                                              seed=seed, partitions=partitions)
        except ValueError as exc:
            raise UcxError(str(exc)) from None
        segmentation = S.OBJECTIVE_PREFIX + objective
        segmentations.append(segmentation)
        segments_df = segments_df.unionByName(S.assign_objective_segments(snap, omodel))
        outcome_df = S.with_objective_outcome(snap, objective, scores_df=scores_df).select(
            "household_id", F.lit(segmentation).alias("segmentation"), "outcome")
        for sid, _, leaf in omodel.leaves:
            definitions[(segmentation, sid)] = " AND ".join(
                f"{f} {'>' if g else '<='} {t:.6g}" for f, g, t in leaf.conditions) or "all"
    predicate = "segmentation IN (" + ", ".join(f"'{s}'" for s in segmentations) + ")"

    segments_df = segments_df.withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at)
    segments_path = table_path(warehouse, "gold", SEGMENTS)
    publish_if_passed(spark, assert_no_pii(segments_df, table=SEGMENTS),
                      lambda df: replace_rows_where(df, segments_path, predicate=predicate),
                      layer="gold", table=SEGMENTS, run_id=run_id, warehouse=warehouse)
    written = read_table(spark, warehouse, "gold", SEGMENTS).filter(F.col("segmentation").isin(*segmentations))

    profiles_df = (
        S.segment_profiles(written.drop("run_id", "created_at"), snap, min_households=min_households,
                           outcome_df=outcome_df, definitions=definitions)
        .withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at)
    )
    profiles_path = table_path(warehouse, "gold", SEGMENT_PROFILES)
    publish_if_passed(spark, assert_no_pii(profiles_df, table=SEGMENT_PROFILES),
                      lambda df: replace_rows_where(df, profiles_path, predicate=predicate),
                      layer="gold", table=SEGMENT_PROFILES, run_id=run_id, warehouse=warehouse)
    prof = (read_table(spark, warehouse, "gold", SEGMENT_PROFILES)
            .filter(F.col("segmentation").isin(*segmentations)).orderBy("segmentation", "segment_id").collect())
    result = SegmentsResult(
        run_id=run_id, as_of_date=str(prof[0]["as_of_date"]) if prof else "", segments_path=segments_path,
        profiles_path=profiles_path,
        personas=[(r["segment_id"], r["segment_name"], int(r["n"])) for r in prof if r["segmentation"] == S.PERSONA],
        objective=objective,
        objective_segments=[(r["segment_id"], r["segment_name"], int(r["n"]), r["outcome_mean"])
                            for r in prof if r["segmentation"] != S.PERSONA],
    )
    _write_persona_kpis(spark, warehouse, written.filter(F.col("segmentation") == S.PERSONA), result,
                        min_households=min_households, max_household_energy_share=max_household_energy_share,
                        time_zone=time_zone)
    return result


def _write_persona_kpis(spark: SparkSession, warehouse: str, persona_df: DataFrame, result: SegmentsResult, *,
                        min_households: int, max_household_energy_share: float, time_zone: str) -> None:
    kpis_path = table_path(warehouse, "gold", CX_KPIS)
    accounts_df = read_optional(spark, warehouse, "silver", "accounts")
    if not table_exists(spark, kpis_path) or accounts_df is None:
        result.persona_kpi_note = "skipped (gold/cx_kpis or silver/accounts not found: run `ucx pipeline`)"
        return
    cx_df = read_table(spark, warehouse, "gold", CX_KPIS).filter(F.col("segment_type") == K.ALL)
    months_df = cx_df.select("month").distinct()
    kpis_df = cx_df.select("kpi").distinct()
    facts_df, missing = _persona_facts(spark, warehouse, accounts_df, months_df, time_zone=time_zone)
    if facts_df is None:
        result.persona_kpi_note = "skipped (no silver table with KPI facts)"
        return
    rows_df = S.persona_kpis(
        facts_df, S.persona_accounts(accounts_df, persona_df), months_df=months_df, kpis_df=kpis_df,
        min_households=min_households, max_household_energy_share=max_household_energy_share,
    )
    current = read_table(spark, warehouse, "gold", CX_KPIS)
    rows_df = rows_df.select(*[
        (F.col(f.name) if f.name in rows_df.columns else F.lit(None)).cast(f.dataType).alias(f.name)
        for f in current.schema.fields
    ])
    replace_rows_where(rows_df, kpis_path, predicate=f"segment_type = '{S.PERSONA}'")
    result.persona_kpi_rows = read_table(spark, warehouse, "gold", CX_KPIS).filter(
        F.col("segment_type") == S.PERSONA).count()
    if missing:
        result.persona_kpi_note = "without " + ", ".join(missing)
