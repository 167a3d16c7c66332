"""`ucx demo`: a small synthetic utility run end to end on this machine.

Generates a landing zone, runs the medallion with its quality gates, trains
and scores the household models, runs the insights (drivers, what-if, personas,
program saturation, a campaign list) and writes the CX report; prints what it
did: feed row counts, the row accounting, gold tables and the quality summary.
The default utility (1,000 households, 13 months of hourly AMI) has enough survey
respondents a month for the utility-wide survey KPIs to pass the privacy
threshold (``privacy.min_households``; 18-84 in each of the last six months,
measured); smaller segment cells are still suppressed: that is the rule working. Uses a local demo pseudonym key when UCX_PSEUDONYM_KEY is
unset (with a warning); everything lands under --out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ucx_spark.catalog import CX_KPIS, HOUSEHOLD_FEATURES, METER_DAILY_USAGE, PIPELINE_RUNS, QUALITY_RESULTS
from ucx_spark.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ucx_spark.commands import DemoParams


def run_demo(spark: SparkSession, cfg: Config, p: DemoParams) -> None:
    """Everything on one session, each part the command a user would run (``ucx_spark.commands``);
    ``cfg``'s paths are the demo's (``commands._prepare_demo``)."""
    from ucx_spark import commands as c
    from ucx_spark.generate import print_feed_counts
    from ucx_spark.io.delta import read_table, table_exists, table_path
    from ucx_spark.progress import step

    landing, warehouse = Path(cfg.paths.landing), Path(cfg.paths.warehouse)
    with step(f"generate: {p.households} households x {p.months} months of {p.interval_minutes}-minute AMI"):
        from ucx_spark.generate import generate_utility

        manifest = generate_utility(spark, str(landing), households=p.households, months=p.months,
                                    interval_minutes=p.interval_minutes, seed=p.seed, time_zone=cfg.utility.time_zone)
    print(f"\nLanding zone {landing} (contract v1):")
    print_feed_counts(manifest)

    result = c.run_pipeline(spark, cfg, c.PipelineParams(demo_key=True))
    print("\n" + result.summary())

    print(f"\nGold tables in {warehouse / 'gold'}:")
    for table in (METER_DAILY_USAGE, HOUSEHOLD_FEATURES, CX_KPIS, PIPELINE_RUNS, QUALITY_RESULTS):
        if table_exists(spark, table_path(warehouse, "gold", table)):
            n = read_table(spark, warehouse, "gold", table).count()
            print(f"  gold/{table:<22} {n:>10,} rows")
    kpis = read_table(spark, warehouse, "gold", CX_KPIS)
    latest = kpis.where("segment_type = 'all'").agg({"month": "max"}).first()[0]
    print(f"\nCX KPIs, whole utility, {latest}:")
    for row in kpis.where(f"segment_type = 'all' and month = '{latest}'").orderBy("kpi").collect():
        value = "suppressed/undefined" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {row['kpi']:<32} {value:>22}  n={row['n']}")
    print("\n" + c.run_quality(spark, cfg, c.NoParams()).summary())

    print("\n" + c.run_train(spark, cfg, c.TrainParams(trials=p.trials)).summary())
    print("\n" + c.run_score(spark, cfg, c.ScoreParams()).summary())
    run_insights(spark, cfg, out=Path(p.out))
    print(f"\nMLflow store: {cfg.mlflow_tracking_uri}  (browse: .venv/bin/mlflow ui --backend-store-uri {cfg.mlflow_tracking_uri})")


def run_insights(spark: SparkSession, cfg: Config, *, out: Path) -> None:
    """Personas and payment-risk segments, drivers, two what-if scenarios, saturation, an autopay
    campaign, who is treated unfairly and the report (what customers say and why bills move are
    gold tables of the pipeline): the commands a user would run, in that order."""
    from ucx_spark import commands as c

    for run, params in (
        (c.run_segment, c.SegmentParams(objective="payment_risk")),
        (c.run_drivers, c.NoParams()),
        (c.run_whatif, c.WhatifParams(scenarios=("rate_increase_usd=5",))),
        (c.run_whatif, c.WhatifParams(scenarios=("liheap_enrollment_pct=+10",))),
        (c.run_saturation, c.SaturationParams(goals=("autopay=+5",))),
        (c.run_target, c.TargetParams(campaign="autopay")),
        (c.run_equity, c.NoParams()),
        (c.run_report, c.ReportParams(out=str(out / "report.html"))),
    ):
        print("\n" + (c.render(run(spark, cfg, params)) or ""))
