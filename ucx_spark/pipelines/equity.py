"""`ucx equity`: who is treated unfairly -> gold/equity_audit (insights/equity.py).

Reads silver/accounts, collections, programs, marketing and outages, gold/household_features
(each household's income band, ZIP and the ZIP's census poverty rate) and, when it exists,
gold/household_scores (the latest payment-risk scores); gates the table like every gold table and
replaces it. The summary lists the flagged disparities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import EQUITY_AUDIT, HOUSEHOLD_FEATURES, HOUSEHOLD_SCORES
from ucx_spark.config import DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import equity as E
from ucx_spark.io.delta import overwrite_table, read_optional
from ucx_spark.quality import publish_if_passed


@dataclass
class EquityResult:
    run_id: str
    path: str
    months: list[str]
    rows: int
    published: int
    flagged: list[tuple[str, str, str, str, float, float, float]] = field(default_factory=list)

    def summary(self) -> str:
        span = f"{self.months[0]} to {self.months[-1]}" if self.months else "no month"
        lines = [f"equity audit -> {self.path}: {span}, {self.rows:,} cells ({self.published:,} of enough households); "
                 f"{len(self.flagged)} flagged (ratio > {E.FLAG_RATIO} with its 95% interval above 1)"]
        for period, dimension, group, metric, ratio, low, high in self.flagged[:20]:
            lines.append(f"  {period:<7} {dimension}={group:<12} {metric:<30} x{ratio:.2f} [{low:.2f}, {high:.2f}]")
        if len(self.flagged) > 20:
            lines.append(f"  ... and {len(self.flagged) - 20} more in the table")
        return "\n".join(lines)


def run(spark: SparkSession, *, warehouse: str, run_id: str, time_zone: str, months: int = 12,
        min_households: int = DEFAULT_MIN_HOUSEHOLDS, replicates: int = E.REPLICATES, seed: int = 42) -> EquityResult:
    names = {"accounts": "silver", "collections": "silver", "programs": "silver", "marketing": "silver",
             "outages": "silver", HOUSEHOLD_FEATURES: "gold"}
    src = {name: read_optional(spark, warehouse, layer, name) for name, layer in names.items()}
    missing = [f"{names[n]}/{n}" for n, df in src.items() if df is None]
    if missing:
        raise UcxError(f"{', '.join(missing)} missing in {warehouse}: run `ucx pipeline` first")
    features = src[HOUSEHOLD_FEATURES]
    last = features.agg(F.max("as_of_date")).first()[0]
    if last is None:
        raise UcxError(f"gold/{HOUSEHOLD_FEATURES} in {warehouse} is empty: run `ucx pipeline` first")
    months_df = spark.range(1).select(F.explode(E.audit_months(F.lit(last), months)).alias("month"))
    active = E.active_household_months(src["accounts"], months_df).persist()
    try:
        metrics = E.household_month_metrics(
            active, collections_df=src["collections"], programs_df=src["programs"], marketing_df=src["marketing"],
            outages_df=src["outages"], time_zone=time_zone)
        scores = read_optional(spark, warehouse, "gold", HOUSEHOLD_SCORES)
        if scores is not None:
            metrics = metrics.unionByName(E.score_metrics(scores))
        created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
        audit = (E.equity_audit(metrics, E.household_groups(features), min_households=min_households,
                                replicates=replicates, seed=seed)
                 .withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at))
        written: dict[str, str] = {}
        publish_if_passed(spark, assert_no_pii(audit, table=EQUITY_AUDIT),
                          lambda ok: written.__setitem__("path", overwrite_table(ok, warehouse, "gold", EQUITY_AUDIT)),
                          layer="gold", table=EQUITY_AUDIT, run_id=run_id, warehouse=warehouse)
    finally:
        active.unpersist()
    table = read_optional(spark, warehouse, "gold", EQUITY_AUDIT)
    counts = table.agg(F.count(F.lit(1)).alias("n"), F.sum((~F.col("is_suppressed")).cast("int")).alias("p")).first()
    flagged = (table.filter("flagged").orderBy(F.desc("ratio"))
               .select("period", "dimension", "group_value", "metric", "ratio", "ci_low", "ci_high")
               .limit(200).collect())  # bounded: the summary lists the strongest
    periods = sorted({r[0] for r in table.select("period").distinct().collect()} - {E.WINDOW})  # <= months
    return EquityResult(run_id=run_id, path=written["path"], months=periods, rows=int(counts["n"]),
                        published=int(counts["p"] or 0), flagged=[tuple(r) for r in flagged])
