"""`ucx score`: champions of ``ucx_<model>`` x active households -> gold/household_scores.

Households are scored at one as-of date (``--as-of``; default the latest
``as_of_date`` of gold/household_features, the last month end the data
covers): from the published features when that date has them, otherwise from
features computed at that date by the gold step's own function. Each model
scores the population it was trained for; a household outside it (EV: already
adopted; payment risk: already in the disconnection process) gets a row with a
null score and ``not_scored_reason``. The utility's NPS as if every household
answered, 100 x (mean p_promoter - mean p_detractor), is printed and logged on
the scoring run (an MLflow run with the versions scored and the row counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import HOUSEHOLD_FEATURES, HOUSEHOLD_SCORES
from ucx_spark.errors import UcxError
from ucx_spark.io.delta import overwrite_table, read_optional, read_table, table_exists, table_path, table_version
from ucx_spark.models import labels, registry
from ucx_spark.models.score import MODEL_NAMES, SCORES_SCHEMA, active_households, household_scores
from ucx_spark.quality import Thresholds, publish_if_passed


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
    kinds: dict[str, str] = field(default_factory=dict)  # model -> xgboost | linear
    skipped: dict[str, str] = field(default_factory=dict)  # model -> reason
    not_scored: dict[str, int] = field(default_factory=dict)  # model -> households outside its population
    utility_nps: float | None = None
    mlflow_run_id: str | None = None
    quality: str = ""  # the gate's verdict on the written table

    def summary(self) -> str:
        used = ", ".join(f"{m} v{v} ({self.kinds.get(m, '?')})" for m, v in self.models.items())
        text = f"scored {self.households:,} households as of {self.as_of_date} with {used}: {self.rows:,} rows -> {self.path}"
        if self.not_scored:
            text += "; outside a model's population (score null, reason given): " + ", ".join(
                f"{m} {n:,}" for m, n in self.not_scored.items())
        if self.utility_nps is not None:
            text += f"\nutility NPS as if every household answered: {self.utility_nps:+.1f}"
        if self.quality:
            text += f"\nquality gate gold.household_scores: {self.quality}"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{m} ({r})" for m, r in self.skipped.items())
        return text


def scoring_rows(spark: SparkSession, warehouse: str, *, as_of: date | None, time_zone: str) -> tuple[DataFrame, int | None]:
    """Feature rows to score (household_features at ``as_of``, computed when not published) and the
    feature table version read (None when computed)."""
    from ucx_spark.pipelines.gold import features_as_of

    features_path = table_path(warehouse, "gold", HOUSEHOLD_FEATURES)
    version = table_version(spark, features_path)
    features_df = read_table(spark, warehouse, "gold", HOUSEHOLD_FEATURES, version=version)
    if as_of is None:
        return features_df, version
    published = features_df.filter(F.col("as_of_date") == F.lit(as_of))
    if published.limit(1).count():
        return published, version
    return features_as_of(spark, warehouse, time_zone=time_zone, as_of=as_of), None


def outside_populations(spark: SparkSession, warehouse: str, active_df: DataFrame) -> dict[str, tuple[DataFrame, str]]:
    """Per model, the active households outside the population it was trained for (labels.py)."""
    out: dict[str, tuple[DataFrame, str]] = {}
    programs_df = read_optional(spark, warehouse, "silver", "programs")
    if programs_df is not None:
        out["ev_adoption"] = (labels.ev_adopted(active_df, programs_df), labels.EV_ADOPTED_REASON)
    collections_df = read_optional(spark, warehouse, "silver", "collections")
    if collections_df is not None:
        out["payment_risk"] = (labels.in_collections(active_df, collections_df), labels.IN_COLLECTIONS_REASON)
    return out


def keep_newer_stream_rows(spark: SparkSession, warehouse: str, scores_df: DataFrame, batch_df: DataFrame) -> DataFrame:
    """``scores_df`` (SCORES_SCHEMA) with each (household, model) row that `ucx stream` scored at a
    later date than the batch's (``batch_df``: household_id, as_of_date of the rows scored) kept
    instead: a batch score never overwrites a newer streaming one (the stream's MERGE keeps the
    reverse). Without the table, or a streaming row, ``scores_df``; ``scores_df`` is read once."""
    path = table_path(warehouse, "gold", HOUSEHOLD_SCORES)
    if not table_exists(spark, path):
        return scores_df
    existing_df = read_table(spark, warehouse, "gold", HOUSEHOLD_SCORES)
    if "event_committed_at" not in existing_df.columns:  # written before the stream existed
        return scores_df
    keys = ["household_id", "model_name"]
    newer_df = (
        existing_df.filter(F.col("event_committed_at").isNotNull())
        .join(batch_df.select("household_id", F.col("as_of_date").alias("_batch_as_of")), "household_id")
        .filter(F.col("as_of_date") > F.col("_batch_as_of"))
        .select(*[f.name for f in SCORES_SCHEMA.fields])  # as stored (a cast cannot add NOT NULL to a struct field)
    )
    return scores_df.join(newer_df.select(*keys), keys, "left_anti").unionByName(newer_df)


def utility_nps(scores_df: DataFrame) -> float | None:
    """100 x (mean p_promoter - mean p_detractor) over the scored NPS rows (None without any)."""
    row = scores_df.filter((F.col("model_name") == "nps") & F.col("score").isNotNull()).agg(
        F.avg("p_promoter").alias("p"), F.avg("p_detractor").alias("d")).first()
    if row is None or row["p"] is None:
        return None
    return 100.0 * (float(row["p"]) - float(row["d"]))


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    tracking_uri: str,
    run_id: str,
    models: list[str] | None = None,
    as_of: date | None = None,
    time_zone: str = "UTC",
    experiment: str | None = None,
    thresholds: Thresholds | None = None,
) -> ScoreResult:
    """Score every household active at the as-of date with each model's champion (module doc)."""
    import mlflow

    features_path = table_path(warehouse, "gold", HOUSEHOLD_FEATURES)
    if not table_exists(spark, features_path):
        raise UcxError(f"{features_path} does not exist: run `ucx pipeline` first")
    from ucx_spark.insights.base import load_champions

    wanted = tuple(models or MODEL_NAMES)
    champions = load_champions(tracking_uri, models=wanted)
    loaded = list(champions.models.values())
    skipped = {m: f"no {registry.registered_name(m)}@{registry.CHAMPION}" for m in wanted if m not in champions.models}
    if not loaded:
        raise UcxError(f"no champion model in {tracking_uri}: run `ucx train` first ({'; '.join(skipped.values())})")

    features_df, features_version = scoring_rows(spark, warehouse, as_of=as_of, time_zone=time_zone)
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
    outside = outside_populations(spark, warehouse, active_df)
    scores_df = household_scores(active_df, loaded, scored_at=scored_at, outside=outside).withColumn(
        "event_committed_at", F.lit(None).cast("timestamp"))
    scores_df = keep_newer_stream_rows(
        spark, warehouse, scores_df.select(*[F.col(f.name).cast(f.dataType) for f in SCORES_SCHEMA.fields]),
        active_df.select("household_id", "as_of_date"))
    # gated like every gold table: the candidate is validated against gold.household_scores's suite
    # (ranges per model, keys, a reason where no score), recorded in gold/quality_results, and
    # written only if no critical expectation failed (DataError names it; the table keeps its version)
    written: list[str] = []
    gate = publish_if_passed(
        spark, scores_df, lambda df: written.append(overwrite_table(df, warehouse, "gold", HOUSEHOLD_SCORES)),
        layer="gold", table=HOUSEHOLD_SCORES, run_id=run_id, warehouse=warehouse,
        thresholds=thresholds or Thresholds(),
    )
    path = written[0]
    written_df = read_table(spark, warehouse, "gold", HOUSEHOLD_SCORES)
    stats = written_df.agg(F.count("*").alias("rows"), F.countDistinct("household_id").alias("households"),
                           F.max("as_of_date").alias("d")).first()
    not_scored = {
        r["model_name"]: int(r["n"])
        for r in written_df.filter(F.col("not_scored_reason").isNotNull()).groupBy("model_name")
        .agg(F.count("*").alias("n")).collect()  # one row per model
    }
    nps = utility_nps(written_df)
    active_df.unpersist()
    result = ScoreResult(
        run_id=run_id, path=path, as_of_date=str(stats["d"]), households=int(stats["households"]),
        rows=int(stats["rows"]), scored_at=scored_at.isoformat(), features_version=features_version,
        models={m.model_name: m.version for m in loaded}, kinds={m.model_name: m.kind for m in loaded},
        skipped=skipped, not_scored=not_scored, utility_nps=nps,
        quality=f"passed, {len(gate.records)} checks, {len(gate.warnings)} warnings",
    )
    if experiment:
        from ucx_spark.models.registry import prepare_tracking

        experiment_id = prepare_tracking(tracking_uri, experiment)
        with mlflow.start_run(run_name=f"score-{run_id}", experiment_id=experiment_id) as run:
            mlflow.set_tags({"ucx.role": "score", "ucx.run_id": run_id})
            mlflow.log_params({"as_of_date": result.as_of_date, "features_version": str(features_version),
                               **{f"model_version.{m}": v for m, v in result.models.items()}})
            mlflow.log_metrics({"households": result.households, "rows": result.rows,
                                **{f"not_scored.{m}": n for m, n in not_scored.items()},
                                **({"utility_nps_predicted": nps} if nps is not None else {})})
            result.mlflow_run_id = run.info.run_id
    return result
