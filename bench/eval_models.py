"""Evaluate the household models against a generated utility's planted truth.

Run after `ucx generate --out LANDING` (use >= 30 months so the 12-month EV
window fits in the data) and `ucx pipeline --landing LANDING --warehouse WH`:

    UCX_PSEUDONYM_KEY=... .venv/bin/python bench/eval_models.py --warehouse WH --landing LANDING [--trials 10]

The models are trained into a private tracking store (``WH/_mlflow_eval``) so
evaluation never moves a production alias. Printed figures:

- EV adoption AUC: production model (all data), scored at the latest as-of
  date D, against the generator's adoption dates in (D, D+12 months]: outcomes
  after the end of the data, which no training step could see. Population at
  risk as in training (households with an EV enrollment on or before D excluded).
- Payment-risk AUC: the truth file has no post-data notices, so a holdout model
  is trained with data cut at E = the latest as-of date with a complete 6-month
  window, scored at E, and compared with the disconnect notices of (E, E+6 months]
  (never seen by its training).
- CSAT Spearman and MAE against ``latent_csat`` for active households that never
  answered a survey (the generator's latent CSAT at the end of the period).
- Planted drivers: the generator's planted effects (manifest) matched by keyword
  against each model's top global SHAP drivers (mean |SHAP| on the validation
  sample) and the most frequent first drivers of the households scored here.

Only this script reads ``LANDING/_truth``; the pipeline never does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.config import load_config, pseudonym_key
from ucx_spark.identity import pseudonym_py
from ucx_spark.io.delta import read_table
from ucx_spark.models import labels
from ucx_spark.models.score import active_households, load_model, score_frame
from ucx_spark.models.train import binary_metrics, regression_metrics
from ucx_spark.pipelines import train as train_pipeline
from ucx_spark.session import build_spark

# planted effect -> regular expressions (re.search) that identify it in feature names
KEYWORDS: dict[str, tuple[str, ...]] = {
    "income_band": ("income",),
    "tenure=owner": ("^tenure$", "owner", "renter"),  # not account_tenure_days
    "home_type=single_family": ("home_type", "single_family"),
    "has_solar": ("solar", "export"),
    "hidden_ev_load": ("night", "ev_", "overnight", "evening_block", "load_block"),
    "energy_burden": ("burden", "bill", "amount_due"),
    "arrears_history": ("arrear", "past_due", "late", "collection", "notice"),
    "autopay": ("autopay",),
    "outage_minutes": ("outage",),
    "etr_error_minutes": ("etr",),
    "bill_shock": ("bill_shock", "bill_change", "bill_ratio", "bill"),
    "unresolved_contacts": ("unresolved", "fcr", "first_contact", "contact"),
    "arrears_usd": ("arrear", "past_due"),
    "survey_response_bias": (),
}


def truth_frame(spark: SparkSession, landing: Path, key: bytes) -> DataFrame:
    truth = pd.read_csv(landing / "_truth" / "households.csv", dtype={"account_id": str}, keep_default_na=False)
    truth["household_id"] = [pseudonym_py(a, key=key, namespace="account") for a in truth["account_id"]]
    keep = truth[["household_id", "latent_csat", "ev_adoption_date", "survey_responses"]].copy()
    keep["ev_adoption_date"] = pd.to_datetime(keep["ev_adoption_date"].replace("", None)).dt.date
    keep["survey_responses"] = pd.to_numeric(keep["survey_responses"]).astype("int64")
    keep["latent_csat"] = pd.to_numeric(keep["latent_csat"]).astype("float64")
    return spark.createDataFrame(keep, "household_id string, latent_csat double, ev_adoption_date date, survey_responses long")


def trained_version(tracking_uri: str, model: str, version: str):  # noqa: ANN201 - LoadedModel
    """The registered version this run trained. Not ``@champion``: in a reused store an
    older champion can keep the alias, and the figures would then describe that model."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return load_model(f"models:/ucx_{model}/{version}", model_name=model, version=version)


def shap_importance(tracking_uri: str, run_id: str) -> list[tuple[str, float]]:
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="explain/shap_importance.json", tracking_uri=tracking_uri)
    return [tuple(x) for x in json.loads(Path(path).read_text())]


def first_drivers(scored_df: DataFrame, k: int = 3) -> str:
    """The ``k`` most frequent first (largest |SHAP|) drivers among scored households."""
    rows = (
        scored_df.select(F.col("top_drivers")[0]["feature"].alias("f")).groupBy("f").count()
        .orderBy(F.desc("count"), "f").limit(k).collect()
    )
    return ", ".join(f"{r['f']} ({r['count']})" for r in rows)


def planted_matches(planted: list[dict], top: list[str]) -> list[str]:
    lines = []
    for effect in planted:
        words = KEYWORDS.get(effect["feature"], (effect["feature"],))
        hits = [f for f in top if any(re.search(w, f.lower()) for w in words)] if words else []
        status = "found: " + ", ".join(hits[:3]) if hits else ("not a feature (selection effect)" if not words else "NOT in top drivers")
        lines.append(f"    {effect['feature']:<26} {effect['direction']}  {status}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="Evaluate the household models against planted truth")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--landing", required=True)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["all"], help="csat, ev_adoption, payment_risk or all")
    parser.add_argument("--env", default=None)
    parser.add_argument("--top", type=int, default=10, help="top-k global SHAP drivers searched for planted effects")
    args = parser.parse_args()

    cfg = load_config(args.env).with_paths(warehouse=args.warehouse, landing=args.landing)
    key = pseudonym_key(cfg.pseudonym)
    wh, landing, tz = cfg.paths.warehouse, Path(cfg.paths.landing), cfg.utility.time_zone
    spark = build_spark(cfg.spark, warehouse=wh, time_zone=tz)
    eval_dir = Path(wh).resolve() / "_mlflow_eval"
    uri_main = f"sqlite:///{eval_dir / 'main.db'}"
    uri_holdout = f"sqlite:///{eval_dir / 'holdout.db'}"
    manifest = json.loads((landing / "_manifest.json").read_text())
    planted = manifest.get("planted_effects", {})

    features_df = read_table(spark, wh, "gold", "household_features").cache()
    accounts_df = read_table(spark, wh, "silver", "accounts")
    dates = sorted(r[0] for r in features_df.select("as_of_date").distinct().collect())
    latest = dates[-1]
    truth_df = truth_frame(spark, landing, key).cache()
    print(f"as-of dates {dates[0]} .. {latest} ({len(dates)}), households at {latest}: "
          f"{features_df.filter(F.col('as_of_date') == latest).count():,}")

    # ---- production models on all the data
    wanted = train_pipeline.resolve_models(args.models)
    main = train_pipeline.run(spark, warehouse=wh, tracking_uri=uri_main, experiment="ucx-eval", models=wanted,
                              trials=args.trials, run_id="eval", time_zone=tz)
    print(main.summary())
    active_df = active_households(features_df, accounts_df).cache()

    # ---- EV: future adoptions after the end of the data (truth only)
    if "ev_adoption" in main.models and main.models["ev_adoption"].status == "trained":
        ev = trained_version(uri_main, "ev_adoption", main.models["ev_adoption"].version)
        programs_df = read_table(spark, wh, "silver", "programs")
        adopted_df = (
            programs_df.filter(F.col("program").isin(*labels.EV_PROGRAMS) & (F.col("enrolled_on") <= F.lit(latest)))
            .select("household_id").distinct()
        )
        scored_df = score_frame(active_df.join(adopted_df, "household_id", "left_anti"), ev).join(truth_df, "household_id")
        horizon_end = F.add_months(F.lit(latest), labels.EV_HORIZON_MONTHS)
        y = (F.col("ev_adoption_date") > F.lit(latest)) & (F.col("ev_adoption_date") <= horizon_end)
        m = binary_metrics(scored_df.withColumn("label", F.coalesce(y, F.lit(False)).cast("double")))
        print(f"EV adoption AUC (future after {latest}, truth): {m['auc']:.3f}  PR-AUC {m['pr_auc']:.3f}  "
              f"n={m['n']:.0f} base rate {m['base_rate']:.3f}")
        print(f"  most frequent first drivers: {first_drivers(scored_df)}")

    # ---- payment risk: holdout model with data cut 6 months before the end
    usable = labels.usable_as_of_dates(dates, data_end=latest, horizon_months=labels.PAYMENT_HORIZON_MONTHS)
    if "payment_risk" in wanted and usable:
        cut = usable[-1]
        hold = train_pipeline.run(spark, warehouse=wh, tracking_uri=uri_holdout, experiment="ucx-eval-holdout",
                                  models=["payment_risk"], trials=args.trials, run_id="eval-holdout", time_zone=tz, data_end=cut)
        print(hold.summary())
        if hold.models["payment_risk"].status == "trained":
            pr = trained_version(uri_holdout, "payment_risk", hold.models["payment_risk"].version)
            at_cut_df = features_df.filter(F.col("as_of_date") == F.lit(cut))
            outcome_df = labels.payment_risk_labels(at_cut_df, read_table(spark, wh, "silver", "collections"), data_end=latest)
            keys = ["household_id", "as_of_date"]
            scored_df = score_frame(at_cut_df.join(outcome_df.select(*keys, "label"), keys), pr, keep=(*keys, "label"))
            m = binary_metrics(scored_df)
            print(f"payment-risk AUC (model cut at {cut}, outcomes in the following 6 months): {m['auc']:.3f}  "
                  f"PR-AUC {m['pr_auc']:.3f}  Brier {m['brier']:.3f}  n={m['n']:.0f} base rate {m['base_rate']:.3f}")
            print(f"  most frequent first drivers: {first_drivers(scored_df)}")
    elif "payment_risk" in wanted:
        print("payment risk: no as-of date with a complete 6-month window: cannot hold out")

    # ---- CSAT vs latent truth for households that never answered
    if "csat" in main.models and main.models["csat"].status == "trained":
        cs = trained_version(uri_main, "csat", main.models["csat"].version)
        scored_df = score_frame(active_df, cs).join(truth_df.filter(F.col("survey_responses") == 0), "household_id")
        m = regression_metrics(scored_df.withColumnRenamed("latent_csat", "label"))
        print(f"CSAT vs latent CSAT, never-respondents: Spearman {m['spearman']:.3f}  MAE {m['mae']:.3f}  "
              f"n={m['n']:.0f} (mean predicted {m['mean_score']:.2f} vs latent {m['mean_label']:.2f})")
        print(f"  most frequent first drivers: {first_drivers(scored_df)}")

    # ---- planted drivers among top global SHAP drivers
    for model, res in main.models.items():
        if res.status != "trained":
            print(f"{model}: not trained ({res.reason})")
            continue
        top = [name for name, _ in shap_importance(uri_main, res.run_id)[: args.top]]
        print(f"{model}: top {args.top} SHAP drivers: {', '.join(top)}")
        print("\n".join(planted_matches(planted.get(model, []), top)))
    spark.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.exit(main())
