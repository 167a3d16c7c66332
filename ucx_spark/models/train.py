"""Training of the household models on Spark (xgboost.spark, barrier mode).

One ``train_model`` call, inside an MLflow parent run:

1. labels with honest time (``labels.py``), leak check;
2. honest split (``validation.py``): validation households never train, and
   training label windows end before the validation as-of dates (purged);
   checked by ``validation.check_split``;
3. CSAT only: a response-propensity classifier (did the household answer?) on
   the training population; respondents get stabilised inverse-propensity
   weights ``mean(responded) / p`` (p clipped to [0.05, 1], weights capped at 20)
   so the regressor learns for the whole population, not for who answers;
4. a plain baseline (``baseline.py``: logistic / ridge on standardised
   features) on the same split and weights, logged as its own nested run;
5. Optuna tunes SparkXGBClassifier / SparkXGBRegressor on the honest validation
   metric, each trial a nested run;
6. the best trial's model is logged (pyfunc with signature and input example),
   with metrics, its lift over the baseline, feature list, data versions, SHAP
   summary and calibration plots, then registered as ``ucx_<model>`` and
   promoted (``registry.py``): champion only if it beats the baseline and the
   current champion on the same validation rows.

The registered model is the one fitted on the training rows, so its
validation metrics are honest and comparable with the champion's and the
baseline's on the same rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import xgboost as xgb
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.errors import DataError
from ucx_spark.models import explain, labels, registry, tune, validation
from ucx_spark.models.baseline import fit_baseline
from ucx_spark.models.score import MODEL_CODE_PATH, LoadedModel, load_model, predict_frame
from ucx_spark.models.spec import FeatureSpec, fit_spec
from ucx_spark.progress import say

KEYS = ("household_id", "as_of_date")
PROPENSITY_CLIP = 0.05
MAX_WEIGHT = 20.0
SHAP_SAMPLE_ROWS = 2000
PROPENSITY_PARAMS: dict[str, Any] = {
    "max_depth": 3,
    "learning_rate": 0.1,
    "n_estimators": 100,
    "min_child_weight": 5.0,
    "subsample": 0.9,
}


@dataclass(frozen=True)
class ModelDef:
    name: str
    task: str  # binary | regression
    metric: str  # primary validation metric (Optuna objective and champion rule)
    greater_is_better: bool = True
    score_min: float | None = None
    score_max: float | None = None
    # Domain knowledge as monotone constraints (feature -> +1 / -1): the score
    # may only rise (+1) or fall (-1) with the feature, all else equal. Trees
    # otherwise fit noise wiggles, and a what-if of a higher bill could then
    # raise predicted CSAT for some households. Features absent from the
    # feature table are ignored.
    monotone: dict[str, int] = field(default_factory=dict)


CSAT_MONOTONE = {
    "bill_shock_ratio": -1, "max_bill_shock_ratio_180d": -1, "is_bill_shock": -1, "energy_burden": -1,
    "arrears_usd": -1, "outage_minutes_365d": -1, "mean_etr_error_minutes_365d": -1, "fcr_share_365d": 1,
    "outage_minutes_180d": -1, "max_etr_error_minutes_180d": -1, "unresolved_contacts_180d": -1, "past_due_usd_45d": -1,
}
PAYMENT_RISK_MONOTONE = {
    "energy_burden": 1, "arrears_usd": 1, "last_bill_usd": 1, "mean_bill_12_usd": 1, "annual_bill_usd": 1,
    "collections_past_due_notice_365d": 1, "income_midpoint_usd": -1, "payment_share_autopay_365d": -1,
    "past_due_usd_45d": 1,
}
MODELS: dict[str, ModelDef] = {
    "ev_adoption": ModelDef("ev_adoption", "binary", "auc"),
    "payment_risk": ModelDef("payment_risk", "binary", "auc", monotone=PAYMENT_RISK_MONOTONE),
    "csat": ModelDef("csat", "regression", "spearman", score_min=1.0, score_max=5.0, monotone=CSAT_MONOTONE),
}


def monotone_constraints(spec: FeatureSpec, monotone: dict[str, int]) -> str | None:
    """xgboost's ``monotone_constraints`` over the matrix columns (one-hot columns: 0), or None."""
    values = [int(monotone.get(name, 0)) for name in spec.encoded]
    return "(" + ",".join(str(v) for v in values) + ")" if any(values) else None


@dataclass
class ModelTrainResult:
    model: str
    status: str  # trained | skipped
    reason: str = ""
    run_id: str | None = None
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    validation_scheme: str = ""
    train_as_of: list[str] = field(default_factory=list)
    valid_as_of: list[str] = field(default_factory=list)
    top_features: list[tuple[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- metrics


def binary_metrics(pred_df: DataFrame, *, label: str = "label", score: str = "score") -> dict[str, float]:
    """AUC, PR-AUC (Spark evaluators), Brier score, log loss, base rate, n of a scored frame."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    df = pred_df.select(F.col(label).cast("double").alias("label"), F.col(score).cast("double").alias("score")).cache()
    try:
        row = df.agg(
            F.count("*").alias("n"),
            F.avg("label").alias("base_rate"),
            F.avg((F.col("score") - F.col("label")) ** 2).alias("brier"),
            F.avg(
                -(
                    F.col("label") * F.log(F.greatest(F.col("score"), F.lit(1e-7)))
                    + (1 - F.col("label")) * F.log(F.greatest(1 - F.col("score"), F.lit(1e-7)))
                )
            ).alias("log_loss"),
            F.countDistinct("label").alias("classes"),
        ).first()
        out = {k: float(row[k]) if row[k] is not None else float("nan") for k in ("n", "base_rate", "brier", "log_loss")}
        if int(row["classes"]) < 2:
            out["auc"] = out["pr_auc"] = float("nan")
        else:
            ev = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label")
            out["auc"] = float(ev.setMetricName("areaUnderROC").evaluate(df))
            out["pr_auc"] = float(ev.setMetricName("areaUnderPR").evaluate(df))
        return out
    finally:
        df.unpersist()


def _average_rank(df: DataFrame, col: str, out: str) -> DataFrame:
    """Average (tie-aware) rank of ``col`` as ``out``: a window over the distinct values only."""
    counts_df = df.groupBy(col).agg(F.count("*").alias("_n"))
    w = Window.orderBy(col).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ranks_df = counts_df.withColumn("_cum", F.sum("_n").over(w)).select(
        col, (F.col("_cum") - (F.col("_n") - 1) / 2.0).alias(out)
    )
    return df.join(ranks_df, col)


def regression_metrics(
    pred_df: DataFrame, *, label: str = "label", score: str = "score", weight: str | None = None
) -> dict[str, float]:
    """MAE, RMSE, Spearman (tie-aware ranks, in Spark), mean label/score, n; weighted MAE when ``weight``."""
    cols = [F.col(label).cast("double").alias("label"), F.col(score).cast("double").alias("score")]
    cols.append(F.col(weight).cast("double").alias("w") if weight else F.lit(1.0).alias("w"))
    df = pred_df.select(*cols).cache()
    try:
        row = df.agg(
            F.count("*").alias("n"),
            F.avg(F.abs(F.col("score") - F.col("label"))).alias("mae"),
            F.sqrt(F.avg((F.col("score") - F.col("label")) ** 2)).alias("rmse"),
            (F.sum(F.col("w") * F.abs(F.col("score") - F.col("label"))) / F.sum("w")).alias("weighted_mae"),
            F.avg("label").alias("mean_label"),
            F.avg("score").alias("mean_score"),
        ).first()
        out = {k: float(row[k]) if row[k] is not None else float("nan") for k in row.asDict()}
        ranked_df = _average_rank(_average_rank(df, "label", "_rl"), "score", "_rs")
        rho = ranked_df.agg(F.corr("_rl", "_rs")).first()[0]
        out["spearman"] = float(rho) if rho is not None else float("nan")
        if not weight:
            out.pop("weighted_mae")
        return out
    finally:
        df.unpersist()


def calibration_bins(pred_df: DataFrame, *, task: str, label: str = "label", score: str = "score") -> DataFrame:
    """Per-bin mean score and mean label (10 probability bins; 0.25-point CSAT bins): a tiny table."""
    bin_col = F.floor(F.col(score) * 10) / 10 if task == "binary" else F.round(F.col(score) * 4) / 4
    return (
        pred_df.groupBy(bin_col.alias("bin"))
        .agg(F.avg(score).alias("mean_score"), F.avg(label).alias("mean_label"), F.count("*").alias("n"))
        .orderBy("bin")
    )


# --------------------------------------------------------------------------- fitting


def fit_booster(
    train_df: DataFrame,
    spec: FeatureSpec,
    params: dict[str, Any],
    *,
    task: str,
    weight_col: str | None = None,
    num_workers: int = 2,
    seed: int = 42,
) -> xgb.Booster:
    """Distributed fit (xgboost.spark, barrier mode) on the matrix columns of ``train_df``
    (``spec.encoded`` + ``label`` [+ weight]); returns the booster."""
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)
    cls = SparkXGBClassifier if task == "binary" else SparkXGBRegressor
    kwargs: dict[str, Any] = {
        "features_col": list(spec.encoded),
        "label_col": "label",
        "num_workers": num_workers,
        "random_state": seed,
        "verbosity": 0,
        "missing": float("nan"),
        "verbose": False,
        **params,
    }
    if weight_col:
        kwargs["weight_col"] = weight_col
    estimator = cls(**kwargs)
    return estimator.fit(train_df).get_booster()


def _loaded(model: str, booster: xgb.Booster, spec: FeatureSpec, version: str = "candidate") -> LoadedModel:
    return LoadedModel(model, version, bytes(booster.save_raw("ubj")), spec)


def evaluate_loaded(model_def: ModelDef, loaded: LoadedModel, valid_df: DataFrame, *, weight: str | None = None) -> dict[str, float]:
    """Validation metrics of a model on ``valid_df`` (raw features + label [+ weight])."""
    keep = ("label", weight) if weight else ("label",)
    return scored_metrics(model_def, predict_frame(valid_df, loaded, keep=keep), weight=weight)


def scored_metrics(model_def: ModelDef, pred_df: DataFrame, *, weight: str | None = None) -> dict[str, float]:
    """The task's validation metrics of a scored frame (label, score [, weight])."""
    if model_def.task == "binary":
        return binary_metrics(pred_df)
    return regression_metrics(pred_df, weight=weight)


def _matrix(spec: FeatureSpec, df: DataFrame, *keep: str) -> DataFrame:
    return spec.with_matrix(df, *keep)


def _input_example(spec: FeatureSpec, df: DataFrame, rows: int = 5) -> Any:
    cols = [F.col(c).cast("double").alias(c) for c in spec.numeric] + [F.col(c) for c, _ in spec.categorical]
    return df.select(*cols).limit(rows).toPandas()


def _pip_requirements() -> list[str]:
    reqs = []
    for dist in ("mlflow", "xgboost-cpu", "pandas", "numpy", "pyspark", "ucx-spark"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def add_response_weights(
    train_df: DataFrame,
    valid_df: DataFrame,
    spec: FeatureSpec,
    *,
    num_workers: int,
    seed: int,
) -> tuple[DataFrame, DataFrame, dict[str, float]]:
    """Fit P(responded | features) on the training population and add ``weight`` =
    mean(responded) / clip(p) (capped) to both frames; returns them with propensity metrics."""
    prop_spec = dataclasses.replace(spec, task="binary", score_min=None, score_max=None)
    prop_train_df = _matrix(prop_spec, train_df.withColumn("label", F.col("responded")), "label").cache()
    booster = fit_booster(prop_train_df, prop_spec, PROPENSITY_PARAMS, task="binary", num_workers=num_workers, seed=seed)
    prop_train_df.unpersist()
    loaded = _loaded("propensity", booster, prop_spec)
    rate = float(train_df.agg(F.avg("responded")).first()[0] or 0.0)

    def weighted(df: DataFrame) -> DataFrame:
        scored_df = predict_frame(df, loaded, keep=KEYS)
        weight = F.least(F.lit(rate) / F.greatest(F.col("score"), F.lit(PROPENSITY_CLIP)), F.lit(MAX_WEIGHT))
        return df.join(scored_df.select(*KEYS, weight.alias("weight"), F.col("score").alias("response_propensity")), list(KEYS))

    valid_prop = binary_metrics(predict_frame(valid_df.withColumn("label", F.col("responded")), loaded, keep=("label",)))
    metrics = {
        "response_rate_train": rate,
        "propensity_auc": valid_prop["auc"],
        "propensity_brier": valid_prop["brier"],
    }
    return weighted(train_df), weighted(valid_df), metrics


def _log_baseline(
    model: str, model_def: ModelDef, spec: FeatureSpec, train_df: DataFrame, valid_df: DataFrame, *,
    weight_col: str | None, experiment_id: str,
) -> dict[str, float]:
    """Fit the plain baseline on the split, log it as its own nested run; its validation metrics."""
    base = fit_baseline(spec, train_df, valid_df, task=model_def.task, weight_col=weight_col,
                        score_min=model_def.score_min, score_max=model_def.score_max)
    metrics = scored_metrics(model_def, base.valid_pred_df, weight=weight_col)
    with mlflow.start_run(run_name=f"{model}-baseline", nested=True, experiment_id=experiment_id):
        mlflow.set_tags({"ucx.model": model, "ucx.role": "baseline"})
        mlflow.log_params(base.params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
    say(f"{model}: baseline ({base.algorithm}) {model_def.metric}={metrics.get(model_def.metric, float('nan')):.4f}")
    return metrics


# --------------------------------------------------------------------------- one model


def train_model(
    *,
    model: str,
    features_df: DataFrame,
    source_df: DataFrame,
    data_end: date,
    time_zone: str,
    trials: int,
    experiment_id: str,
    run_name: str,
    data_versions: dict[str, int | None],
    tags: dict[str, str] | None = None,
    num_workers: int = 2,
    seed: int = 42,
    require_baseline_lift: bool = True,
) -> ModelTrainResult:
    """Train, tune, log, register and promote one model (see module doc).

    ``features_df``: gold/household_features (household_id, as_of_date, features);
    ``source_df``: the silver table its labels come from (programs, collections or surveys).
    Tracking must already point at the store (``registry.prepare_tracking``).
    """
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.cache())
        return df

    try:
        return _train_model(
            keep,
            model=model,
            features_df=features_df,
            source_df=source_df,
            data_end=data_end,
            time_zone=time_zone,
            trials=trials,
            experiment_id=experiment_id,
            run_name=run_name,
            data_versions=data_versions,
            tags=tags,
            num_workers=num_workers,
            seed=seed,
            require_baseline_lift=require_baseline_lift,
        )
    finally:
        for df in cached:
            df.unpersist()


def _train_model(
    keep: Callable[[DataFrame], DataFrame],
    *,
    model: str,
    features_df: DataFrame,
    source_df: DataFrame,
    data_end: date,
    time_zone: str,
    trials: int,
    experiment_id: str,
    run_name: str,
    data_versions: dict[str, int | None],
    tags: dict[str, str] | None,
    num_workers: int,
    seed: int,
    require_baseline_lift: bool,
) -> ModelTrainResult:
    model_def = MODELS[model]
    labels_df = keep(labels.build_labels(model, features_df, source_df, data_end=data_end, time_zone=time_zone))
    labels.check_no_leak(features_df, labels_df, data_end=data_end)
    window_ends = validation.label_window_ends(labels_df)
    if not window_ends:
        return ModelTrainResult(
            model,
            "skipped",
            reason=f"no as-of date with a complete {labels.HORIZON_MONTHS[model]}-month label window before {data_end}",
        )
    labelled_df = features_df.join(labels_df, list(KEYS))
    split = validation.honest_split(labelled_df, window_ends, seed=seed)
    train_df, valid_df, scheme = keep(split.train_df), keep(split.valid_df), split.scheme
    validation.check_split(train_df, valid_df, scheme=scheme)
    spec = fit_spec(train_df, task=model_def.task, score_min=model_def.score_min, score_max=model_def.score_max)
    if not spec.encoded:
        raise DataError("gold/household_features has no numeric, boolean or low-cardinality string feature column")

    extra_metrics: dict[str, float] = {}
    weight_col: str | None = None
    if model == "csat":
        train_df, valid_df, extra_metrics = add_response_weights(train_df, valid_df, spec, num_workers=num_workers, seed=seed)
        train_df = keep(train_df.filter(F.col("responded") == 1))
        valid_df = keep(valid_df.filter(F.col("responded") == 1))
        weight_col = "weight"

    counts: dict[str, int] = {}
    for side, df in (("train", train_df), ("valid", valid_df)):
        row = df.agg(F.count(F.lit(1)), F.count_distinct("household_id")).first()
        counts[f"n_{side}"], counts[f"n_{side}_households"] = int(row[0]), int(row[1])
    if min(counts["n_train"], counts["n_valid"]) == 0:
        return ModelTrainResult(model, "skipped", reason=f"empty training or validation set ({counts})")
    if model_def.task == "binary":
        pos = train_df.agg(F.sum("label"), F.countDistinct("label")).first()
        counts["n_train_positive"] = int(pos[0] or 0)
        if int(pos[1]) < 2:
            return ModelTrainResult(model, "skipped", reason="training labels have a single class")
    train_matrix_df = keep(_matrix(spec, train_df, "label", *([weight_col] if weight_col else [])))
    say(f"{model}: {scheme} split {counts}, {len(spec.encoded)} matrix columns")

    constraints = monotone_constraints(spec, model_def.monotone)
    fixed = {"monotone_constraints": constraints} if constraints else {}

    def fit_and_score(params: dict[str, Any]) -> dict[str, float]:
        booster = fit_booster(train_matrix_df, spec, {**params, **fixed}, task=model_def.task, weight_col=weight_col, num_workers=num_workers, seed=seed)
        metrics = evaluate_loaded(model_def, _loaded(model, booster, spec), valid_df, weight=weight_col)
        trial_metrics.append(metrics)
        boosters.append(booster)
        say(f"{model}: trial {len(boosters) - 1} {model_def.metric}={metrics[model_def.metric]:.4f}")
        return {k: v for k, v in metrics.items() if v == v}  # drop NaN

    boosters: list[xgb.Booster] = []
    trial_metrics: list[dict[str, float]] = []
    train_dates = [str(d) for d in split.train_dates]
    valid_dates = [str(d) for d in split.valid_dates]
    with mlflow.start_run(run_name=run_name, experiment_id=experiment_id, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"ucx.model": model, **(tags or {})})
        mlflow.log_params(
            {
                "model": model,
                "task": model_def.task,
                "algorithm": "xgboost.spark." + ("SparkXGBClassifier" if model_def.task == "binary" else "SparkXGBRegressor"),
                "num_workers": num_workers,
                "trials": trials,
                "search_space": tune.SPACE_DOC,
                "primary_metric": model_def.metric,
                "horizon_months": labels.HORIZON_MONTHS[model],
                "data_end": str(data_end),
                **split.params(),
                "n_features": len(spec.input_columns),
                "monotone_features": ",".join(f"{k}{'+' if v > 0 else '-'}" for k, v in sorted(model_def.monotone.items()) if k in spec.encoded)[:500] or "none",
                "features": ",".join(spec.input_columns)[:5000],
                **{f"data_version.{k}": "none" if v is None else v for k, v in data_versions.items()},
                **({"propensity_clip": PROPENSITY_CLIP, "max_weight": MAX_WEIGHT} if weight_col else {}),
            }
        )
        baseline_metrics = _log_baseline(model, model_def, spec, train_df, valid_df, weight_col=weight_col,
                                         experiment_id=run.info.experiment_id)
        study = tune.tune(
            fit_and_score,
            metric=model_def.metric,
            greater_is_better=model_def.greater_is_better,
            n_trials=trials,
            seed=seed,
            study_name=model,
        )
        best = study.best_trial
        booster = boosters[best.number]
        say(f"{model}: best trial {best.number}; logging plots, model and registry")
        final = _loaded(model, booster, spec)
        metrics = {k: float(v) for k, v in trial_metrics[best.number].items()}
        metrics.update(extra_metrics)
        metrics.update({k: float(v) for k, v in counts.items()})
        baseline_value = baseline_metrics.get(model_def.metric, float("nan"))
        metrics[f"baseline_{model_def.metric}"] = baseline_value
        sign = 1.0 if model_def.greater_is_better else -1.0
        metrics[f"lift_over_baseline_{model_def.metric}"] = sign * (metrics[model_def.metric] - baseline_value)
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.set_tag("best_trial_run_id", str(best.user_attrs.get("mlflow_run_id", "")))

        with tempfile.TemporaryDirectory(prefix="ucx-model-") as tmp:
            tmp_dir = Path(tmp)
            (tmp_dir / "features.json").write_text(
                json.dumps({"input_columns": spec.input_columns, "matrix_columns": spec.feature_names, "spec": json.loads(spec.to_json())}, indent=1),
                encoding="utf-8",
            )
            mlflow.log_artifact(str(tmp_dir / "features.json"))
            # Bounded sample for the SHAP plot; scoring explains every household in Spark.
            shap_sample_pdf = valid_df.select(*spec.input_columns).limit(SHAP_SAMPLE_ROWS).toPandas()
            importance = explain.shap_summary_plot(
                booster, spec, shap_sample_pdf, tmp_dir / "shap_summary.png", title=f"{model}: SHAP on validation sample"
            )
            (tmp_dir / "shap_importance.json").write_text(json.dumps(importance, indent=1), encoding="utf-8")
            bins_pdf = calibration_bins(predict_frame(valid_df, final, keep=("label",)), task=model_def.task).toPandas()
            explain.calibration_plot(bins_pdf, tmp_dir / "calibration.png", title=f"{model}: calibration (validation)", task=model_def.task)
            for name in ("shap_summary.png", "shap_importance.json", "calibration.png"):
                mlflow.log_artifact(str(tmp_dir / name), artifact_path="explain")

            booster_path = tmp_dir / "booster.ubj"
            booster.save_model(str(booster_path))
            spec_path = tmp_dir / "spec.json"
            spec_path.write_text(spec.to_json(), encoding="utf-8")
            example_pdf = _input_example(spec, valid_df)
            signature = mlflow.models.infer_signature(example_pdf, explain.predict(booster, spec, example_pdf))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE_PATH),
                artifacts={"booster": str(booster_path), "spec": str(spec_path)},
                signature=signature,
                input_example=example_pdf,
                pip_requirements=_pip_requirements(),
            )

        name = registry.registered_name(model)
        version = mlflow.register_model(info.model_uri, name).version

        def champion_metric(uri: str) -> float | None:
            champ = load_model(uri, model_name=model, version="champion")
            if not set(champ.spec.input_columns) <= set(valid_df.columns):
                return None
            value = evaluate_loaded(model_def, champ, valid_df, weight=weight_col).get(model_def.metric)
            return None if value is None else float(value)

        client = mlflow.MlflowClient()
        promotion = registry.promote(
            client,
            name,
            str(version),
            metric=model_def.metric,
            new_value=metrics[model_def.metric],
            evaluate=champion_metric,
            greater_is_better=model_def.greater_is_better,
            baseline_value=baseline_value if require_baseline_lift else None,
        )
        mlflow.set_tags({"registered_model": name, "registered_version": str(version), "alias": promotion.alias})
        if promotion.champion_value is not None:
            mlflow.log_metric(f"champion_{model_def.metric}_same_data", promotion.champion_value)
        run_id = run.info.run_id

    return ModelTrainResult(
        model,
        "trained",
        reason=promotion.reason,
        run_id=run_id,
        registered_name=name,
        version=str(version),
        alias=promotion.alias,
        metrics=metrics,
        n_train=counts["n_train"],
        n_valid=counts["n_valid"],
        validation_scheme=scheme,
        train_as_of=train_dates,
        valid_as_of=valid_dates,
        top_features=importance[:10],
    )

