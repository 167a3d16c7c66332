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

import argparse
import shutil
from pathlib import Path

from ucx_spark.catalog import CX_KPIS, HOUSEHOLD_FEATURES, METER_DAILY_USAGE, PIPELINE_RUNS, QUALITY_RESULTS
from ucx_spark.config import Config, pseudonym_key
from ucx_spark.progress import say, step


def run_demo(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.generate import generate_utility, print_feed_counts
    from ucx_spark.io.delta import read_table, table_exists, table_path
    from ucx_spark.pipelines import medallion
    from ucx_spark.session import new_run_id, start_spark

    out = Path(args.out)
    landing, warehouse = out / "landing", out / "warehouse"
    if out.exists():
        say(f"removing the previous demo in {out}")
        shutil.rmtree(out)
    cfg = cfg.with_paths(landing=str(landing), warehouse=str(warehouse))
    key = pseudonym_key(cfg.pseudonym, demo=True)
    spark = start_spark(cfg)

    with step(f"generate: {args.households} households x {args.months} months of {args.interval_minutes}-minute AMI"):
        manifest = generate_utility(
            spark,
            str(landing),
            households=args.households,
            months=args.months,
            interval_minutes=args.interval_minutes,
            seed=args.seed,
            time_zone=cfg.utility.time_zone,
        )
    print(f"\nLanding zone {landing} (contract v1):")
    print_feed_counts(manifest)

    result = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=new_run_id())
    print("\n" + result.summary())

    print(f"\nGold tables in {warehouse / 'gold'}:")
    for table in (METER_DAILY_USAGE, HOUSEHOLD_FEATURES, CX_KPIS, PIPELINE_RUNS,
                  QUALITY_RESULTS):
        if table_exists(spark, table_path(warehouse, "gold", table)):
            n = read_table(spark, warehouse, "gold", table).count()
            print(f"  gold/{table:<22} {n:>10,} rows")
    kpis = read_table(spark, warehouse, "gold", CX_KPIS)
    latest = kpis.where("segment_type = 'all'").agg({"month": "max"}).first()[0]
    print(f"\nCX KPIs, whole utility, {latest}:")
    for row in kpis.where(f"segment_type = 'all' and month = '{latest}'").orderBy("kpi").collect():
        value = "suppressed/undefined" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {row['kpi']:<32} {value:>22}  n={row['n']}")
    from ucx_spark.quality import summary

    print("\n" + summary(spark, str(warehouse)))

    from ucx_spark.pipelines import score, train
    from ucx_spark.quality import Thresholds

    with step("train: Optuna-tuned models tracked in MLflow (3 trials each)"):
        trained = train.run(
            spark, warehouse=str(warehouse), tracking_uri=cfg.mlflow_tracking_uri, experiment=cfg.mlflow.experiment,
            models=["all"], trials=3, run_id=new_run_id(), time_zone=cfg.utility.time_zone,
        )
    print("\n" + trained.summary())
    with step("score: every active household with the champion models"):
        scored = score.run(spark, warehouse=str(warehouse), tracking_uri=cfg.mlflow_tracking_uri, run_id=new_run_id(),
                           time_zone=cfg.utility.time_zone, experiment=cfg.mlflow.experiment,
                           thresholds=Thresholds.from_config(cfg.quality))
    print("\n" + scored.summary())
    run_insights(spark, cfg, out=out)
    print(f"\nMLflow store: {cfg.mlflow_tracking_uri}  (browse: .venv/bin/mlflow ui --backend-store-uri {cfg.mlflow_tracking_uri})")
    spark.stop()
    return 0


def run_insights(spark, cfg: Config, *, out: Path) -> None:  # noqa: ANN001 - SparkSession
    """Drivers, two what-if scenarios, personas, saturation, an autopay campaign and the report."""
    from ucx_spark.insights.saturation import parse_goal
    from ucx_spark.insights.targeting import SuppressionRules
    from ucx_spark.insights.whatif import parse_scenario
    from ucx_spark.pipelines import drivers, report, saturation, segments, targeting, whatif
    from ucx_spark.session import new_run_id

    wh, ins, mh = cfg.paths.warehouse, cfg.insights, cfg.privacy.min_households
    with step("segments: personas and payment-risk segments"):
        seg = segments.run(spark, warehouse=wh, run_id=new_run_id(), personas=ins.personas, seed=ins.seed,
                           min_households=mh, max_household_energy_share=cfg.privacy.max_household_energy_share,
                           objective="payment_risk", time_zone=cfg.utility.time_zone)
    print("\n" + seg.summary())
    with step("drivers: mean |SHAP| of every champion, by segment"):
        drv = drivers.run(spark, warehouse=wh, tracking_uri=cfg.mlflow_tracking_uri, run_id=new_run_id(), min_households=mh)
    print("\n" + drv.summary())
    for text in ("rate_increase_usd=5", "liheap_enrollment_pct=+10"):
        with step(f"what-if: {text}"):
            res = whatif.run(
                spark, warehouse=wh, tracking_uri=cfg.mlflow_tracking_uri, experiment=cfg.mlflow.experiment,
                scenario=parse_scenario(text), min_households=mh,
                liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd, csat_top2box_threshold=ins.csat_top2box_threshold,
                bootstrap_replicates=ins.bootstrap_replicates, confidence_level=ins.confidence_level, seed=ins.seed,
                liheap_benefit_months=ins.liheap_benefit_months, liheap_take_up=ins.liheap_take_up,
            )
        print("\n" + res.summary())
    with step("program saturation (goal: autopay +5 points)"):
        sat = saturation.run(spark, warehouse=wh, run_id=new_run_id(), seed=ins.seed, min_households=mh,
                             horizon_months=ins.saturation_horizon_months, goals=[parse_goal("autopay=+5")])
    print("\n" + sat.summary())
    rules = SuppressionRules(suppress_enrolled=ins.suppress_enrolled,
                             suppress_collections_hardship=ins.suppress_collections_hardship,
                             recent_contact_days=ins.suppress_recent_contact_days)
    with step("targeting: autopay campaign"):
        tgt = targeting.run(spark, warehouse=wh, campaign="autopay", run_id=new_run_id(), rules=rules, seed=ins.seed,
                            liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd)
    print("\n" + tgt.summary())
    with step("report: self-contained HTML"):
        rep = report.run(spark, warehouse=wh, out=str(out / "report.html"), utility_name=cfg.utility.name,
                         min_households=mh, top2box_threshold=ins.csat_top2box_threshold,
                         tracking_uri=cfg.mlflow_tracking_uri)
    print("\n" + rep.summary())
