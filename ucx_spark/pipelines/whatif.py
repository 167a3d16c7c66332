"""Pipeline step: one what-if scenario -> gold/whatif_results, tracked as an MLflow run."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.catalog import WHATIF_RESULTS, spec
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights.base import load_champions
from ucx_spark.insights.whatif import (
    LIHEAP_BENEFIT_MONTHS,
    Scenario,
    bucket_sums,
    simulate,
    summarise,
    suppress_results,
)
from ucx_spark.io.delta import read_table, table_path, upsert
from ucx_spark.models.registry import default_artifact_root, prepare_tracking
from ucx_spark.pipelines.insights_common import (
    read_arrears_history,
    read_arrears_model,
    read_bill_history,
    read_persona_segments,
    read_snapshot,
)
from ucx_spark.quality import publish_if_passed

RESULT_KEYS = spec("gold", WHATIF_RESULTS).keys
RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("segment_type", T.StringType(), False),
        T.StructField("segment_value", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("baseline", T.DoubleType(), True),
        T.StructField("scenario_value", T.DoubleType(), True),
        T.StructField("delta", T.DoubleType(), True),
        T.StructField("delta_ci_low", T.DoubleType(), True),
        T.StructField("delta_ci_high", T.DoubleType(), True),
        T.StructField("n", T.LongType(), False),
        T.StructField("n_touched", T.LongType(), False),
    ]
)


@dataclass(frozen=True)
class WhatIfResult:
    run_id: str
    scenario: str
    path: str
    model_versions: dict[str, str]
    as_of_date: str
    households: int
    touched: int
    overall: dict[str, tuple[float, float, float, float]]  # metric -> (baseline, delta, ci_low, ci_high)

    def summary(self) -> str:
        lines = [
            f"what-if {self.scenario!r} (MLflow run {self.run_id}, as of {self.as_of_date}, "
            f"{self.touched:,} of {self.households:,} households changed; models "
            + ", ".join(f"{m} v{v}" for m, v in self.model_versions.items()) + ")"
        ]
        for metric, (base, delta, lo, hi) in self.overall.items():
            lines.append(f"  {metric:<22} baseline {base:10.4f}  delta {delta:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
        lines.append(f"  -> {self.path}")
        return "\n".join(lines)


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    tracking_uri: str,
    experiment: str,
    scenario: Scenario,
    min_households: int,
    liheap_annual_benefit_usd: float,
    csat_top2box_threshold: float,
    bootstrap_replicates: int,
    confidence_level: float,
    seed: int,
    liheap_benefit_months: tuple[int, ...] = LIHEAP_BENEFIT_MONTHS,
    liheap_take_up: float = 1.0,
) -> WhatIfResult:
    """Simulate ``scenario`` on the latest snapshot with the current champions.

    The MLflow run (experiment ``<experiment>-whatif``) logs the scenario, the
    model versions, the features' Delta version and the overall deltas; its
    run id keys the rows in gold/whatif_results (MERGE: a rerun of the same
    run id replaces its rows).
    """
    import mlflow

    champions = load_champions(tracking_uri, models=("csat", "payment_risk"))
    champions.require("csat", "payment_risk")
    snapshot_df, features_version = read_snapshot(spark, warehouse)
    snapshot_df = snapshot_df.cache()
    arrears_model = read_arrears_model(spark, warehouse, features_version)
    arrears_history_df = read_arrears_history(spark, warehouse, features_version).cache()
    bill_history_df = read_bill_history(spark, warehouse, features_version).cache()
    personas_df = read_persona_segments(spark, warehouse)
    prepare_tracking(tracking_uri, f"{experiment}-whatif", artifact_root=default_artifact_root(tracking_uri))
    with mlflow.start_run(run_name=f"whatif {scenario.label}"[:250]) as active:
        run_id = active.info.run_id
        mlflow.set_tags({"ucx.kind": "whatif", "ucx.scenario": scenario.label[:5000]})
        mlflow.log_params(
            {
                "scenario": scenario.label[:500],
                "scenario_kind": scenario.kind,
                "scenario_value": scenario.value,
                "where": scenario.where or "",
                "gold.household_features_version": features_version,
                "bootstrap_replicates": bootstrap_replicates,
                "confidence_level": confidence_level,
                "liheap_annual_benefit_usd": liheap_annual_benefit_usd,
                "liheap_benefit_months": ",".join(str(m) for m in liheap_benefit_months),
                "liheap_take_up": liheap_take_up,
                "csat_top2box_threshold": csat_top2box_threshold,
                **{f"model_version.{m}": v for m, v in champions.versions.items()},
                **arrears_model.params(),
            }
        )
        sim_df = simulate(
            snapshot_df,
            scenario,
            champions.models,
            liheap_annual_benefit_usd=liheap_annual_benefit_usd,
            csat_top2box_threshold=csat_top2box_threshold,
            arrears_model=arrears_model,
            liheap_benefit_months=liheap_benefit_months,
            liheap_take_up=liheap_take_up,
            arrears_history_df=arrears_history_df,
            bill_history_df=bill_history_df,
        )
        # Bounded hand-off: segments x 1,000 buckets of sums, never household rows.
        sums_pdf = bucket_sums(sim_df, snapshot_df, segments_df=personas_df, seed=seed).toPandas()
        summary_pdf = summarise(sums_pdf, replicates=bootstrap_replicates, confidence_level=confidence_level, seed=seed)
        as_of = snapshot_df.agg(F.max("as_of_date")).first()[0]
        created_at = datetime.now(UTC).replace(microsecond=0)
        versions_map = F.create_map(*[x for m, v in champions.versions.items() for x in (F.lit(m), F.lit(v))])
        results_df = (
            spark.createDataFrame(summary_pdf, RESULTS_SCHEMA)
            .transform(suppress_results, min_households=min_households)
            .select(
                F.lit(run_id).alias("run_id"),
                F.lit(scenario.label).alias("scenario"),
                F.lit(scenario.to_json()).alias("scenario_spec"),
                versions_map.alias("model_versions"),
                F.lit(as_of).cast("date").alias("as_of_date"),
                *[f.name for f in RESULTS_SCHEMA.fields],
                "is_suppressed",
                F.lit(created_at).cast("timestamp").alias("created_at"),
            )
        )
        path = table_path(warehouse, "gold", WHATIF_RESULTS)
        publish_if_passed(spark, assert_no_pii(results_df, table=WHATIF_RESULTS),
                          lambda df: upsert(df, path, keys=RESULT_KEYS),
                          layer="gold", table=WHATIF_RESULTS, run_id=run_id, warehouse=warehouse)
        overall_pdf = summary_pdf[summary_pdf["segment_type"] == "all"].set_index("metric")
        overall = {
            m: (float(r["baseline"]), float(r["delta"]), float(r["delta_ci_low"]), float(r["delta_ci_high"]))
            for m, r in overall_pdf.iterrows()
        }
        for m, (base, delta, lo, hi) in overall.items():
            mlflow.log_metrics({f"{m}.baseline": base, f"{m}.delta": delta, f"{m}.delta_ci_low": lo, f"{m}.delta_ci_high": hi})
        households = int(overall_pdf["n"].iloc[0]) if len(overall_pdf) else 0
        touched = int(overall_pdf["n_touched"].iloc[0]) if len(overall_pdf) else 0
        mlflow.log_metrics({"households": households, "households_touched": touched})
        with tempfile.TemporaryDirectory() as tmp:
            written = read_table(spark, warehouse, "gold", WHATIF_RESULTS).filter(F.col("run_id") == run_id)
            out = Path(tmp) / "whatif_results.json"
            # Aggregated, suppressed rows of this run only (segments x 4 metrics).
            rows = [r.asDict() for r in written.drop("model_versions", "created_at", "as_of_date").collect()]
            out.write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
            mlflow.log_artifact(str(out))
    snapshot_df.unpersist()
    arrears_history_df.unpersist()
    bill_history_df.unpersist()
    return WhatIfResult(run_id, scenario.label, path, champions.versions, str(as_of), households, touched, overall)
