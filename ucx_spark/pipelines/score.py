"""`ucx score`: champions of ``ucx_<model>`` x active households -> gold/household_scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ucx_spark.errors import UcxError
from ucx_spark.io.delta import overwrite_table, read_optional, read_table, table_exists, table_path, table_version
from ucx_spark.models import registry
from ucx_spark.models.score import MODEL_NAMES, SCORES_SCHEMA, active_households, household_scores, load_model


@dataclass
class ScoreResult:
    run_id: str
    path: str
    as_of_date: str
    households: int
    rows: int
    scored_at: str
    features_version: int | None
    models: dict[str, str] = field(default_factory=dict)  # model -> version scored
    skipped: dict[str, str] = field(default_factory=dict)  # model -> reason

    def summary(self) -> str:
        used = ", ".join(f"{m} v{v}" for m, v in self.models.items())
        text = f"scored {self.households:,} households as of {self.as_of_date} with {used}: {self.rows:,} rows -> {self.path}"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{m} ({r})" for m, r in self.skipped.items())
        return text


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    tracking_uri: str,
    run_id: str,
    models: list[str] | None = None,
) -> ScoreResult:
    """Score every household active at the latest as_of_date with each model's champion."""
    import mlflow

    features_path = table_path(warehouse, "gold", "household_features")
    if not table_exists(spark, features_path):
        raise UcxError(f"{features_path} does not exist: run `ucx pipeline` first")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    loaded, skipped = [], {}
    for name in models or list(MODEL_NAMES):
        reg_name = registry.registered_name(name)
        version = registry.current_champion(client, reg_name)
        if version is None:
            skipped[name] = f"no {reg_name}@{registry.CHAMPION}"
            continue
        loaded.append(load_model(f"models:/{reg_name}/{version}", model_name=name, version=version))
    if not loaded:
        raise UcxError(f"no champion model in {tracking_uri}: run `ucx train` first ({'; '.join(skipped.values())})")

    features_version = table_version(spark, features_path)
    features_df = read_table(spark, warehouse, "gold", "household_features", version=features_version)
    accounts_df = read_optional(spark, warehouse, "silver", "accounts")
    active_df = active_households(features_df, accounts_df).cache()
    missing = {m.model_name: sorted(set(m.spec.input_columns) - set(active_df.columns)) for m in loaded}
    for name, cols in missing.items():
        if cols:
            skipped[name] = f"feature table lacks {cols[:5]}"
    loaded = [m for m in loaded if not missing[m.model_name]]
    if not loaded:
        raise UcxError("no champion can score the current feature table: " + "; ".join(skipped.values()))
    scored_at = datetime.now(UTC).replace(microsecond=0)
    scores_df = household_scores(active_df, loaded, scored_at=scored_at)
    scores_df = scores_df.select(*[F.col(f.name).cast(f.dataType) for f in SCORES_SCHEMA.fields])
    path = overwrite_table(scores_df, warehouse, "gold", "household_scores")
    written_df = read_table(spark, warehouse, "gold", "household_scores")
    stats = written_df.agg(F.count("*").alias("rows"), F.countDistinct("household_id").alias("households"), F.max("as_of_date").alias("d")).first()
    active_df.unpersist()
    return ScoreResult(
        run_id=run_id,
        path=path,
        as_of_date=str(stats["d"]),
        households=int(stats["households"]),
        rows=int(stats["rows"]),
        scored_at=scored_at.isoformat(),
        features_version=features_version,
        models={m.model_name: m.version for m in loaded},
        skipped=skipped,
    )
