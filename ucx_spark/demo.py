"""`ucx demo`: a small synthetic utility run end to end on this machine.

Generates a landing zone, runs the medallion with its quality gates, and
prints what it did: feed row counts, the row accounting, gold tables and the
quality summary. Uses a local demo pseudonym key when UCX_PSEUDONYM_KEY is
unset (with a warning); everything lands under --out.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ucx_spark.config import Config, pseudonym_key
from ucx_spark.progress import say, step


def run_demo(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.cli import _print_feed_counts, _spark, new_run_id
    from ucx_spark.generate import generate_utility
    from ucx_spark.io.delta import read_table, table_exists, table_path
    from ucx_spark.pipelines import medallion

    out = Path(args.out)
    landing, warehouse = out / "landing", out / "warehouse"
    if out.exists():
        say(f"removing the previous demo in {out}")
        shutil.rmtree(out)
    cfg = cfg.with_paths(landing=str(landing), warehouse=str(warehouse))
    key = pseudonym_key(cfg.pseudonym, demo=True)
    spark = _spark(cfg)

    with step(f"generate: {args.households} households x {args.months} months of 15-minute AMI"):
        manifest = generate_utility(
            spark,
            str(landing),
            households=args.households,
            months=args.months,
            interval_minutes=15,
            seed=args.seed,
            time_zone=cfg.utility.time_zone,
        )
    print(f"\nLanding zone {landing} (contract v1):")
    _print_feed_counts(manifest)

    result = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=new_run_id())
    print("\n" + result.summary())

    print(f"\nGold tables in {warehouse / 'gold'}:")
    for table in ("meter_daily_usage", "household_features", "cx_kpis", "pipeline_runs", "quality_results"):
        if table_exists(spark, table_path(warehouse, "gold", table)):
            n = read_table(spark, warehouse, "gold", table).count()
            print(f"  gold/{table:<22} {n:>10,} rows")
    kpis = read_table(spark, warehouse, "gold", "cx_kpis")
    latest = kpis.where("segment_type = 'all'").agg({"month": "max"}).first()[0]
    print(f"\nCX KPIs, whole utility, {latest}:")
    for row in kpis.where(f"segment_type = 'all' and month = '{latest}'").orderBy("kpi").collect():
        value = "suppressed/undefined" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {row['kpi']:<32} {value:>22}  n={row['n']}")
    from ucx_spark.quality import summary

    print("\n" + summary(spark, str(warehouse)))

    from ucx_spark.pipelines import score, train

    with step("train: Optuna-tuned models tracked in MLflow (3 trials each)"):
        trained = train.run(
            spark, warehouse=str(warehouse), tracking_uri=cfg.mlflow_tracking_uri, experiment=cfg.mlflow.experiment,
            models=["all"], trials=3, run_id=new_run_id(), time_zone=cfg.utility.time_zone,
        )
    print("\n" + trained.summary())
    with step("score: every active household with the champion models"):
        scored = score.run(spark, warehouse=str(warehouse), tracking_uri=cfg.mlflow_tracking_uri, run_id=new_run_id())
    print("\n" + scored.summary())
    print(f"\nMLflow store: {cfg.mlflow_tracking_uri}  (browse: .venv/bin/mlflow ui --backend-store-uri {cfg.mlflow_tracking_uri})")
    spark.stop()
    return 0
