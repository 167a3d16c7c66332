"""`ucx train`: gold/household_features + silver label tables -> MLflow runs and
registered models ``ucx_<model>`` with champion/challenger aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import HOUSEHOLD_FEATURES, SURVEY_FEATURES
from ucx_spark.errors import DataError, UcxError
from ucx_spark.io.delta import read_table, table_exists, table_path, table_version
from ucx_spark.models import registry
from ucx_spark.models.train import ModelTrainResult, train_model
from ucx_spark.progress import step

LABEL_SOURCES: dict[str, str] = {"ev_adoption": "programs", "payment_risk": "collections", "csat": "surveys",
                                 "nps": "surveys"}
MODEL_CHOICES = ("csat", "nps", "ev_adoption", "payment_risk")
SURVEY_MODELS = ("csat", "nps")


@dataclass
class TrainResult:
    run_id: str
    tracking_uri: str
    experiment_id: str
    data_end: str
    models: dict[str, ModelTrainResult] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"train run {self.run_id}: tracking {self.tracking_uri}, experiment {self.experiment_id}, data end {self.data_end}"]
        for name, res in self.models.items():
            if res.status != "trained":
                lines.append(f"  {name}: skipped ({res.reason})")
                continue
            shown = ", ".join(
                f"{k}={res.metrics[k]:.3f}"
                for k in ("auc", "pr_auc", "brier", "mae", "spearman", "rps", "nps_error", "baseline_auc",
                          "baseline_spearman", "candidate_auc", "candidate_spearman")
                if k in res.metrics
            )
            lines.append(
                f"  {name}: {res.registered_name} v{res.version} ({res.winner}) -> {res.alias} ({res.reason}); "
                f"{res.validation_scheme}: n_train={res.n_train} n_valid={res.n_valid} n_refit={res.n_refit} "
                f"{shown}; run {res.run_id}"
            )
        return "\n".join(lines)


def resolve_models(models: list[str]) -> list[str]:
    """``all`` or a list of model names, validated, in a stable order."""
    wanted = set(MODEL_CHOICES) if not models or "all" in models else set(models)
    unknown = wanted - set(MODEL_CHOICES)
    if unknown:
        raise UcxError(f"unknown model(s) {sorted(unknown)} (allowed: {', '.join(MODEL_CHOICES)}, all)")
    return [m for m in MODEL_CHOICES if m in wanted]


def infer_data_end(features_df: DataFrame) -> date:
    """The last day the data describes: the latest as_of_date of the feature table
    (contract: the last day the features describe). Conservative: label windows
    must close on or before it."""
    latest = features_df.agg(F.max("as_of_date")).first()[0]
    if latest is None:
        raise DataError("gold/household_features is empty")
    return latest


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    tracking_uri: str,
    experiment: str,
    models: list[str],
    trials: int,
    run_id: str,
    time_zone: str = "UTC",
    data_end: date | None = None,
    parent_run_id: str | None = None,
    seed: int = 42,
    require_baseline_lift: bool = True,
) -> TrainResult:
    """Train, tune, register and promote each of ``models`` (or ``["all"]``).

    ``time_zone`` is the utility's (survey response dates are local); pass
    ``cfg.utility.time_zone``. ``parent_run_id`` nests the model runs under an
    existing run (the MLflow Projects run). ``require_baseline_lift`` (default): the
    tuned booster is registered only if it beats the plain baseline on its validation
    rows; otherwise the baseline is (every model always has a version to score with).
    """
    import mlflow

    names = resolve_models(models)
    if trials < 1:
        raise UcxError(f"--trials must be >= 1, got {trials}")
    features_path = table_path(warehouse, "gold", HOUSEHOLD_FEATURES)
    if not table_exists(spark, features_path):
        raise UcxError(f"{features_path} does not exist: run `ucx pipeline` first")
    versions: dict[str, int | None] = {f"gold.{HOUSEHOLD_FEATURES}": table_version(spark, features_path)}
    features_df = read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES,
                             version=versions[f"gold.{HOUSEHOLD_FEATURES}"])
    sources: dict[str, DataFrame] = {}
    for name in names:
        table = LABEL_SOURCES[name]
        path = table_path(warehouse, "silver", table)
        if not table_exists(spark, path):
            raise UcxError(f"{path} does not exist: the {name} labels come from silver/{table}")
        versions[f"silver.{table}"] = table_version(spark, path)
        sources[name] = read_table(spark, warehouse, "silver", table, version=versions[f"silver.{table}"])
    survey_df = None
    if any(n in SURVEY_MODELS for n in names):
        survey_path = table_path(warehouse, "gold", SURVEY_FEATURES)
        if table_exists(spark, survey_path):
            versions[f"gold.{SURVEY_FEATURES}"] = table_version(spark, survey_path)
            survey_df = read_table(spark, warehouse, "gold", SURVEY_FEATURES,
                                   version=versions[f"gold.{SURVEY_FEATURES}"]).cache()
    features_df = features_df.cache()
    end = data_end or infer_data_end(features_df)

    experiment_id = registry.prepare_tracking(tracking_uri, experiment, artifact_root=registry.default_artifact_root(tracking_uri))
    result = TrainResult(run_id=run_id, tracking_uri=tracking_uri, experiment_id=experiment_id, data_end=str(end))
    parent = None
    if parent_run_id:
        # nest under an existing run (the MLflow Projects run): its experiment wins
        experiment_id = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(parent_run_id).info.experiment_id
        result.experiment_id = experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        parent = mlflow.start_run(run_id=parent_run_id)
    try:
        for name in names:
            with step(f"train {name} ({trials} trial(s))"):
                model_versions = {f"gold.{HOUSEHOLD_FEATURES}": versions[f"gold.{HOUSEHOLD_FEATURES}"]}
                model_versions[f"silver.{LABEL_SOURCES[name]}"] = versions[f"silver.{LABEL_SOURCES[name]}"]
                if name in SURVEY_MODELS and f"gold.{SURVEY_FEATURES}" in versions:
                    model_versions[f"gold.{SURVEY_FEATURES}"] = versions[f"gold.{SURVEY_FEATURES}"]
                result.models[name] = train_model(
                    model=name,
                    features_df=features_df,
                    source_df=sources[name],
                    data_end=end,
                    time_zone=time_zone,
                    trials=trials,
                    experiment_id=experiment_id,
                    run_name=f"{name}-{run_id}",
                    data_versions=model_versions,
                    survey_features_df=survey_df,
                    tags={"ucx.run_id": run_id, "ucx.warehouse": str(Path(warehouse).resolve())},
                    seed=seed,
                    require_baseline_lift=require_baseline_lift,
                )
    finally:
        if parent is not None:
            mlflow.end_run()
        features_df.unpersist()
        if survey_df is not None:
            survey_df.unpersist()
    if not any(r.status == "trained" for r in result.models.values()):
        reasons = "; ".join(f"{n}: {r.reason}" for n, r in result.models.items())
        raise DataError(f"no model could be trained ({reasons})")
    return result
