"""`ucx saturation`: program potential and reachable enrollment -> gold/program_saturation.

Also writes gold/program_propensity (household_id, as_of_date, program,
is_eligible, is_enrolled, propensity, propensity_source, run_id, created_at):
the household-level propensities `ucx target` ranks with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import HOUSEHOLD_SCORES, PROGRAM_PROPENSITY, PROGRAM_SATURATION
from ucx_spark.config import DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import saturation as SAT
from ucx_spark.io.delta import overwrite_table, read_optional, read_table
from ucx_spark.pipelines.insights_common import read_snapshot
from ucx_spark.quality import publish_if_passed


@dataclass
class SaturationResult:
    run_id: str
    path: str
    propensity_path: str
    rows: list[dict] = field(default_factory=list)  # gold/program_saturation rows
    goals: list[tuple[SAT.Goal, bool | None, float | None]] = field(default_factory=list)  # goal, achievable, reachable pp

    def summary(self) -> str:
        head = f"{'program':<18} {'eligible':>8} {'enrolled':>8} {'rate':>6} {'potential':>9} {'conv/yr':>7} {'reach':>6} {'lift pp':>7}"
        lines = [f"program saturation -> {self.path}", head]

        def pct(v: float | None) -> str:
            return "  n/a " if v is None else f"{100 * v:5.1f}%"

        for r in self.rows:
            if r["is_suppressed"]:
                lines.append(f"{r['program']:<18} suppressed (fewer than the privacy threshold eligible, n={r['n']})")
                continue
            lines.append(
                f"{r['program']:<18} {int(r['eligible_households']):>8} {int(r['enrolled_households']):>8} "
                f"{pct(r['enrollment_rate'])} {r['modelled_potential']:>9.1f} {pct(r['conversion_rate_12m'])} "
                f"{pct(r['reachable_rate_12m'])} {r['reachable_lift_pp_12m']:>+7.1f}"
            )
        for goal, ok, reach in self.goals:
            verdict = "cannot tell (suppressed)" if ok is None else ("achievable" if ok else "not achievable")
            detail = "" if reach is None else f" (reachable in {self.rows[0]['horizon_months']} months: +{reach:.1f} pp)"
            lines.append(f"goal {goal.program} +{goal.lift_pp:g} pp: {verdict}{detail}")
        return "\n".join(lines)


def compute_propensity(spark: SparkSession, warehouse: str, snap: DataFrame, *, seed: int, partitions: int = 8) -> DataFrame:
    return SAT.program_propensity(snap, seed=seed, scores_df=read_optional(spark, warehouse, "gold", HOUSEHOLD_SCORES),
                                  partitions=partitions)


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    run_id: str,
    seed: int = 42,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    horizon_months: int = 12,
    campaign_capture: float = SAT.DEFAULT_CAMPAIGN_CAPTURE,
    goals: list[SAT.Goal] | None = None,
    partitions: int = 8,
) -> SaturationResult:
    created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
    snap = read_snapshot(spark, warehouse)[0].cache()
    try:
        propensity_df = compute_propensity(spark, warehouse, snap, seed=seed, partitions=partitions)
        written: dict[str, str] = {}

        def gated(table: str, df: DataFrame) -> str:
            publish_if_passed(spark, assert_no_pii(df, table=table),
                              lambda ok: written.__setitem__(table, overwrite_table(ok, warehouse, "gold", table)),
                              layer="gold", table=table, run_id=run_id, warehouse=warehouse)
            return written[table]

        prop_path = gated(PROGRAM_PROPENSITY,
                          propensity_df.withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at))
        propensity_df = read_table(spark, warehouse, "gold", PROGRAM_PROPENSITY)
        programs_df = read_optional(spark, warehouse, "silver", "programs")
        if programs_df is None:
            programs_df = spark.createDataFrame([], "household_id string, program string, enrolled_on date, ended_on date")
        history_df = SAT.enrollment_history(programs_df, snap, horizon_months=horizon_months)
        sat_df = (
            SAT.program_saturation(propensity_df, history_df, min_households=min_households,
                                   horizon_months=horizon_months, campaign_capture=campaign_capture)
            .withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at)
        )
        path = gated(PROGRAM_SATURATION, sat_df)
    finally:
        snap.unpersist()
    rows = [r.asDict() for r in read_table(spark, warehouse, "gold", PROGRAM_SATURATION).orderBy("program").collect()]
    by_program = {r["program"]: r for r in rows}
    answers = [(g, SAT.achievable(by_program[g.program], g.lift_pp), by_program[g.program]["reachable_lift_pp_12m"])
               for g in goals or []]
    return SaturationResult(run_id=run_id, path=path, propensity_path=prop_path, rows=rows, goals=answers)
