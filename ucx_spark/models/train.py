"""Training of the household models: honest selection, a baseline that may win, a refit that
is registered.

One ``train_model`` call, inside an MLflow parent run:

1. rows (``datasets.py``): as-of rows with labels from the window after them
   (EV adoption, payment risk), or one row per survey response with the
   features of the day before it (CSAT, NPS); full-history rows when there are
   enough; handed to the driver once, bounded;
2. CSAT and NPS: a response-propensity classifier (did the household answer
   within 6 months?) on the month-end population; each response row gets the
   stabilised inverse-propensity weight ``mean(responded) / p`` (p clipped to
   [0.05, 1], capped at 20) so the model learns for the whole population;
3. honest split (``validation.py``): household x time holdout with a purge, or,
   when its validation rows are too few to judge, out-of-fold over household
   folds; ``check_split`` guards both;
4. the plain baseline (``baseline.py``) judged on the same rows, its own nested run;
5. Optuna tunes an xgboost booster (trained on the driver: the rows are
   model-sized) on the honest metric, each trial a nested run; NPS also tries a
   multi-class booster over the answers with the best parameters and keeps
   whichever has the lower ranked probability score;
6. CSAT and NPS (``ModelDef.blend``): the blend, the mean of the tuned booster
   and the baseline (``predictor.BlendPredictor``) calibrated by the least
   squares of the label on their out-of-fold mean (``calibrate_blend``), is
   judged on the same rows, and the better of booster and blend is the
   candidate: trees find thresholds
   and interactions, the sign-constrained lasso extrapolates smoothly and
   ignores noise columns, and their mean held up on every planted form tried
   (``docs/models.md``);
7. the winner: the candidate if it beats the baseline on the same rows, else
   the baseline (``--allow-below-baseline`` keeps the candidate), so a model
   always exists and every household gets every score; the run says which won;
8. the winner is refitted on every usable row (all households, all dates) in a
   nested ``refit`` run and that model is registered as ``ucx_<model>`` and
   promoted (``registry.py``): champion if the current champion does not beat it
   on data both can be judged on.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame

from ucx_spark.errors import DataError
from ucx_spark.gold.contact_text import TOPICS as CONTACT_TOPICS
from ucx_spark.models import datasets, explain, labels, measurement, nonresponse, registry, tune, validation
from ucx_spark.models.baseline import PARAMS as BASELINE_PARAMS
from ucx_spark.models.baseline import fit_linear
from ucx_spark.models.metrics import answer_scores, binary_scores, calibration_table, ranked_probability_score
from ucx_spark.models.predictor import (
    BlendPredictor,
    Prediction,
    Predictor,
    XGBPredictor,
    make_predictor,
    ordinal_probabilities,
)
from ucx_spark.models.score import MODEL_CODE_PATH, LoadedModel, load_model
from ucx_spark.models.spec import EXCLUDED, FeatureSpec, fit_spec_pandas
from ucx_spark.progress import bar, say

PROPENSITY_CLIP = 0.05
MAX_WEIGHT = 20.0
SHAP_SAMPLE_ROWS = 2000
MIN_COMPARE_ROWS = 50
PROPENSITY_PARAMS: dict[str, Any] = {
    "max_depth": 3, "learning_rate": 0.1, "n_estimators": 100, "min_child_weight": 5.0, "subsample": 0.9,
}


@dataclass(frozen=True)
class ModelDef:
    name: str
    task: str  # binary | regression | ordinal
    metric: str  # primary validation metric (Optuna objective, winner and champion rules)
    rows: str = "as_of"  # as_of | responses
    target: str | None = None  # responses: the survey column answered
    greater_is_better: bool = True
    score_min: float | None = None
    score_max: float | None = None
    # Domain knowledge as monotone constraints (feature -> +1 / -1): the score may only rise (+1)
    # or fall (-1) with the feature, all else equal, so a what-if of a higher bill cannot raise
    # predicted CSAT. Features absent from the table are ignored.
    monotone: dict[str, int] = field(default_factory=dict)
    # also judge the blend of the tuned booster and the baseline (step 6 of the module doc): the
    # survey models, which learn from hundreds of noisy answers. Not EV adoption: on the
    # 1,000-household utility its blend validated 0.008 AUC above the booster and ranked the
    # future adopters at 0.766 against the booster's 0.819 (the charging-onset signal is a
    # threshold the linear half blurs).
    blend: bool = False
    # the label: the response's answers to every question read as one measurement (measurement.py),
    # on the target's scale; False: the target's answer alone
    composite: bool = False
    # columns the linear model (baseline, half of the blend) may shape with ramps (baseline.py)
    ramps: frozenset[str] = frozenset()
    # feature columns this model never reads (beside spec.EXCLUDED)
    exclude: frozenset[str] = frozenset()

    @property
    def weighted(self) -> bool:
        return self.rows == "responses"


EXPERIENCE_MONOTONE = {
    "bill_shock_ratio": -1, "max_bill_shock_ratio_180d": -1, "is_bill_shock": -1, "energy_burden": -1,
    "arrears_usd": -1, "outage_minutes_365d": -1, "mean_etr_error_minutes_365d": -1, "fcr_share_365d": 1,
    "outage_minutes_180d": -1, "max_etr_error_minutes_180d": -1, "unresolved_contacts_180d": -1,
    "past_due_usd_45d": -1, "unresolved_contacts_365d": -1, "complaints_180d": -1, "max_etr_late_minutes_365d": -1,
    "negative_contacts_90d": -1, "repeat_contacts_365d": -1,
    "max_etr_error_minutes_365d": -1, "etr_missed_late_365d": -1, "days_past_due": -1,
    "last_csat": 1, "mean_csat_prior": 1, "last_nps": 1, "mean_nps_prior": 1,
    # a dearer bill, all else equal, never makes a customer happier: without these the model read
    # bigger bills (bigger, richer homes) as happier ones and `ucx whatif` answered a rate increase
    # with a higher CSAT (evaluate on 1,000 households: +0.0024 against the generator's -0.022)
    "last_bill_usd": -1, "mean_bill_12_usd": -1, "annual_bill_usd": -1, "same_season_bill_ratio": -1,
    "past_due_bill_ratio": -1,
}
# The experiences whose effect may saturate or start at a threshold, shaped by the linear model
# (baseline.fit_linear): every column of known direction but the household's earlier answers. The
# bill columns are shaped too (bill shock acts above a threshold): on the 1,000-household utility's
# never-respondents CSAT Spearman 0.765 -> 0.782. Until `ucx whatif` walked the horizon's bills
# (whatif.csat_walk) they were kept straight: judging every bill of the window against the bills
# before the rate change, the steeper shape read the rate scenario's CSAT effect at 2.4x the
# generator's truth (docs/models.md).
EXPERIENCE_RAMPS = frozenset(k for k in EXPERIENCE_MONOTONE if k not in nonresponse.HISTORY)
PAYMENT_RISK_MONOTONE = {
    "energy_burden": 1, "arrears_usd": 1, "last_bill_usd": 1, "mean_bill_12_usd": 1, "annual_bill_usd": 1,
    "collections_past_due_notice_365d": 1, "income_midpoint_usd": -1, "payment_share_autopay_365d": -1,
    "past_due_usd_45d": 1, "days_past_due": 1, "past_due_notices_90d": 1, "same_season_bill_ratio": 1,
    "max_bill_shock_ratio_180d": 1,
}
# What the transcripts say (gold/household_features.contact_features): the survey models' and
# payment risk's; not EV adoption's, which no contact explains: on the 1,000-household utility the
# eight columns cost it 0.028 AUC against the future (0.819 -> 0.791: noise a 5% base rate cannot
# afford), while CSAT (never-respondents MAE 0.397 -> 0.391, bias -0.094 -> -0.071) and NPS
# (Spearman 0.760 -> 0.767) gained and payment risk stayed (0.985 -> 0.984).
CONTACT_TEXT_FEATURES = frozenset({
    "negative_contacts_90d", "repeat_contacts_365d", *(f"contacts_topic_{t}_365d" for t in CONTACT_TOPICS)})
MODELS: dict[str, ModelDef] = {
    "ev_adoption": ModelDef("ev_adoption", "binary", "auc", exclude=CONTACT_TEXT_FEATURES),
    "payment_risk": ModelDef("payment_risk", "binary", "auc", monotone=PAYMENT_RISK_MONOTONE),
    "csat": ModelDef("csat", "regression", "spearman", rows="responses", target="csat", score_min=1.0,
                     score_max=5.0, monotone=EXPERIENCE_MONOTONE, blend=True, composite=True,
                     ramps=EXPERIENCE_RAMPS),
    "nps": ModelDef("nps", "ordinal", "spearman", rows="responses", target="nps", score_min=0.0, score_max=10.0,
                    monotone=EXPERIENCE_MONOTONE, blend=True, ramps=EXPERIENCE_RAMPS),
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
    refit_run_id: str | None = None
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    winner: str = ""  # xgboost | blend | baseline
    metrics: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    n_refit: int = 0
    validation_scheme: str = ""
    train_as_of: list[str] = field(default_factory=list)
    valid_as_of: list[str] = field(default_factory=list)
    top_features: list[tuple[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- fitting


def xgb_params(params: dict[str, Any], task: str, *, seed: int, classes: int = 0) -> tuple[dict[str, Any], int]:
    """(booster params, rounds) of a trial's parameters for ``task``."""
    objective = {"binary": "binary:logistic", "multiclass": "multi:softprob"}.get(task, "reg:squarederror")
    booster = {k: v for k, v in params.items() if k != "n_estimators"}
    booster.update({"objective": objective, "seed": seed, "nthread": 2, "verbosity": 0, "tree_method": "hist"})
    if task == "multiclass":
        booster["num_class"] = classes
        booster.pop("monotone_constraints", None)  # not supported for multi-class
    return booster, int(params.get("n_estimators", 150))


def fit_xgb(spec: FeatureSpec, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None, params: dict[str, Any], *,
            seed: int) -> XGBPredictor:
    """A booster on matrix rows; for multiclass the labels are answers score_min..score_max."""
    classes = len(spec.classes) if spec.task == "multiclass" else 0
    target = y - (spec.score_min or 0) if spec.task == "multiclass" else y
    booster_params, rounds = xgb_params(params, spec.task, seed=seed, classes=classes)
    dtrain = xgb.DMatrix(x, label=target, weight=weight, missing=np.nan, feature_names=list(spec.encoded), nthread=2)
    booster = xgb.train(booster_params, dtrain, num_boost_round=rounds)
    return XGBPredictor(booster, replace(spec, kind="xgboost"))


Fit = Callable[[np.ndarray, np.ndarray, np.ndarray | None], Predictor]


def learner(kind: str, spec: FeatureSpec, params: dict[str, Any], *, monotone: dict[str, int], seed: int,
            ramps: frozenset[str] = frozenset()) -> Fit:
    """A fitter of ``kind`` (xgboost | linear, the baseline | blend) over ``spec``'s matrix, the
    boosters given ``params`` and the monotone map drawn for ``spec``'s columns; ``ramps``: the
    columns the linear model may shape (baseline.fit_linear)."""
    constraints = monotone_constraints(spec, monotone)
    boosted = {**params, **({"monotone_constraints": constraints} if constraints else {})}

    def linear(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray | None) -> Predictor:
        return fit_linear(spec, xs, ys, ws, monotone=monotone, seed=seed, ramps=ramps)

    def xgboost(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray | None) -> Predictor:
        return fit_xgb(spec, xs, ys, ws, boosted, seed=seed)

    def blend(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray | None) -> Predictor:
        return BlendPredictor(fit_xgb(spec, xs, ys, ws, boosted, seed=seed), linear(xs, ys, ws),
                              replace(spec, kind="blend"))

    fits: dict[str, Fit] = {"linear": linear, "baseline": linear, "xgboost": xgboost, "blend": blend}
    if kind not in fits:
        raise ValueError(f"unknown learner {kind!r} (allowed: {', '.join(fits)})")
    return fits[kind]


@dataclass
class Judged:
    """A fitter judged on the split: its predictions on the judged rows and their metrics."""

    metrics: dict[str, float]
    pred: Prediction
    raw: np.ndarray  # the learner's output on the judged rows (value or class probabilities)
    residual_sd: float | None = None


def judge(fit: Fit, spec: FeatureSpec, x: np.ndarray, frame: datasets.ModelFrame, split: validation.Split) -> Judged:
    """Fit and predict under the split: holdout (train -> valid) or out of fold (each household
    fold predicted by a model fitted on the others); metrics on the judged rows."""
    y, w = frame.label, frame.weight
    judged = split.valid
    if not split.is_kfold:
        model = fit(x[split.train], y[split.train], None if w is None else w[split.train])
        raw = model.raw(x[judged])
    else:
        raw = None
        for fold in np.unique(split.folds):
            test = split.folds == fold
            model = fit(x[~test], y[~test], None if w is None else w[~test])
            out = model.raw(x[test])
            if raw is None:
                raw = np.zeros((len(x), *out.shape[1:]))
            raw[test] = out
        assert raw is not None
    return _judged(spec, raw, y[judged], None if w is None else w[judged], model_kind=model.spec.kind)


def _judged(spec: FeatureSpec, raw: np.ndarray, y: np.ndarray, w: np.ndarray | None, *, model_kind: str) -> Judged:
    sd = None
    if spec.task == "ordinal":
        value = np.clip(raw, spec.score_min, spec.score_max)
        sd = float(np.sqrt(np.mean((y - value) ** 2))) if len(y) else 1.0
    probe = replace(spec, kind=model_kind, residual_sd=sd)
    pred = _prediction(probe, raw)
    if spec.task == "binary":
        return Judged(binary_scores(y, pred.score), pred, raw, sd)
    metrics = answer_scores(y, pred, weight=w)
    if spec.task in ("ordinal", "multiclass"):
        probs = raw if spec.task == "multiclass" else ordinal_probabilities(pred_value(probe, raw), sd=sd or 1.0,
                                                                            classes=spec.classes)
        metrics["rps"] = ranked_probability_score(y, probs, spec.classes)
        metrics["residual_sd"] = float(sd) if sd is not None else math.nan
    return Judged(metrics, pred, raw, sd)


def calibrate_blend(y: np.ndarray, boosted: np.ndarray, linear: np.ndarray,
                    weight: np.ndarray | None) -> tuple[float, float, float]:
    """The blend's (intercept, booster weight, linear weight): the mean of the two learners' out-of-fold
    predictions, calibrated: c + k x mean, with c and k >= 0 the weighted least squares of ``y`` on
    it (averaging two imperfect learners narrows the spread; k gives it back). One affine map with
    k >= 0: the ranking, and so the blend's rank metrics and the choice of the winner, are the
    mean's; its two parameters are fitted on the rows it is judged on (hundreds)."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    mean = 0.5 * (boosted + linear)
    ws = w / w.sum()
    mx, my = float(ws @ mean), float(ws @ y)
    var = float(ws @ (mean - mx) ** 2)
    k = max(float(ws @ ((mean - mx) * (y - my))) / var, 0.0) if var > 0 else 1.0
    return my - k * mx, 0.5 * k, 0.5 * k


def pred_value(spec: FeatureSpec, raw: np.ndarray) -> np.ndarray:
    return np.clip(raw, spec.score_min, spec.score_max)


def _prediction(spec: FeatureSpec, raw: np.ndarray) -> Prediction:
    """The outputs of raw learner values, as ``Predictor.predict_matrix`` computes them."""

    class _Raw(Predictor):
        def __init__(self) -> None:
            self.spec = spec

        def raw(self, x: np.ndarray) -> np.ndarray:
            return raw

    return _Raw().predict_matrix(np.empty((len(raw), 0)))


def composite_label(frame: datasets.ModelFrame, model_def: ModelDef, notes: dict[str, Any]) -> dict[str, float]:
    """Replace the frame's label by the response's answers read as one measurement on the target's
    scale (measurement.py, fitted on every response of the frame: answers only, no feature; the raw answer kept in ``label_answer``); the fitted loadings as metrics.
    Keeps the answer as the label, and says why in ``notes``, when the answers do not fit one factor."""
    target = str(model_def.target)
    fitted, why = measurement.fit_measurement(frame.pdf, target)
    notes["label"] = f"composite of {', '.join(measurement.ITEMS)} on the {target} scale" if fitted else (
        f"the {target} answer ({why})")
    if fitted is None:
        return {}
    frame.pdf["label_answer"] = frame.pdf["label"]
    frame.pdf["label"] = fitted.composite(frame.pdf, lower=model_def.score_min, upper=model_def.score_max)
    say(f"{model_def.name}: label = {notes['label']}; noise variance {fitted.noise_var[target]:.3f} of one "
        f"answer, {fitted.noise_of_composite():.3f} of all three")
    return fitted.metrics()


# --------------------------------------------------------------------------- response weights


def response_weights(frame: datasets.ModelFrame, population: datasets.ModelFrame, *, seed: int) -> dict[str, float]:
    """Add ``weight`` to ``frame`` (response rows) from a propensity model fitted on
    ``population`` (month-end rows, label = answered within 6 months); its metrics."""
    spec = fit_spec_pandas(population.pdf, population.schema, task="binary")
    xp = spec.matrix(population.pdf)
    y = population.label
    rate = float(y.mean())
    if len(np.unique(y)) < 2:
        frame.pdf["weight"] = 1.0
        return {"response_rate_train": rate}
    model = fit_xgb(spec, xp, y, None, PROPENSITY_PARAMS, seed=seed)
    p = model.predict(frame.pdf).score
    frame.pdf["weight"] = np.minimum(rate / np.maximum(p, PROPENSITY_CLIP), MAX_WEIGHT)
    fitted = model.predict(population.pdf).score
    return {"response_rate_train": rate, "propensity_auc_in_sample": binary_scores(y, fitted)["auc"],
            "mean_response_weight": float(frame.pdf["weight"].mean())}


# --------------------------------------------------------------------------- logging helpers


def _pip_requirements() -> list[str]:
    reqs = []
    for dist in ("mlflow", "xgboost-cpu", "pandas", "numpy", "scipy", "pyspark", "ucx-spark"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


def log_predictor(predictor: Predictor, example_pdf: pd.DataFrame, *, name: str = "model") -> Any:
    """Log ``predictor`` as a pyfunc ``HouseholdModel`` (signature, input example) in the active run."""
    spec = predictor.spec
    with tempfile.TemporaryDirectory(prefix="ucx-model-") as tmp:
        payload_path = Path(tmp) / "model.bin"
        payload_path.write_bytes(predictor.payload())
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(spec.to_json(), encoding="utf-8")
        pred = predictor.predict(example_pdf)
        output = (pd.Series(pred.score, name="score") if pred.p_promoter is None
                  else pd.DataFrame({"score": pred.score, "p_promoter": pred.p_promoter, "p_detractor": pred.p_detractor}))
        signature = mlflow.models.infer_signature(example_pdf, output)
        return mlflow.pyfunc.log_model(
            name=name, python_model=str(MODEL_CODE_PATH),
            artifacts={"payload": str(payload_path), "spec": str(spec_path)},
            signature=signature, input_example=example_pdf, pip_requirements=_pip_requirements(),
        )


def _input_example(spec: FeatureSpec, pdf: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    out = pdf[spec.input_columns].head(rows).copy()
    for c in spec.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


def data_signature(data_versions: dict[str, int | None], data_end: date, seed: int) -> str:
    """What a version was trained and judged on: equal signatures = the same rows and split."""
    text = json.dumps({"versions": data_versions, "data_end": str(data_end), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and not math.isnan(float(v))}


# --------------------------------------------------------------------------- one model


def _training_frame(
    model: str, *, features_df: DataFrame, source_df: DataFrame, data_end: date, time_zone: str,
    survey_features_df: DataFrame | None, seed: int, max_rows: int,
) -> tuple[datasets.ModelFrame, dict[str, Any], dict[str, float]] | ModelTrainResult:
    """The model's training rows on the driver (a bounded sample), with its label composed and its
    response weights when the model asks for them, the notes logged as parameters and the metrics
    of how the rows compare with the scoring rows; a skipped result when there are none."""
    model_def = MODELS[model]
    notes: dict[str, Any] = {}
    if model_def.rows == "responses":
        if survey_features_df is None:
            return ModelTrainResult(model, "skipped", reason="gold/survey_features does not exist: run `ucx pipeline`")
        rows_df = datasets.response_rows(survey_features_df, target=str(model_def.target), data_end=data_end)
    else:
        rows_df = datasets.as_of_rows(model, features_df, source_df, data_end=data_end, time_zone=time_zone)
    rows_df = datasets.with_enough_history(rows_df, notes)
    if rows_df.limit(1).count() == 0:
        return ModelTrainResult(model, "skipped", reason=(
            f"no usable rows (no {labels.HORIZON_MONTHS.get(model, 0)}-month label window before {data_end})"
            if model_def.rows == "as_of" else f"no survey response with {model_def.target} up to {data_end}"))
    frame = datasets.collect(rows_df, seed=seed, max_rows=max_rows, notes=notes)
    extra_metrics: dict[str, float] = {}
    if model_def.composite:
        extra_metrics.update(composite_label(frame, model_def, notes))
    if model_def.weighted:
        population = datasets.collect(
            datasets.responded_rows(features_df, source_df, data_end=data_end, time_zone=time_zone),
            seed=seed, max_rows=max_rows)
        extra_metrics.update(response_weights(frame, population, seed=seed))

    # Do training rows see as much history as scoring rows? (The features that count how much data
    # the windows saw; who answers surveys differs from the population in other ways, on purpose.)
    history_cols = [c for c in datasets.HISTORY_FEATURES if c in frame.pdf.columns and c in features_df.columns]
    comparable, which = datasets.comparable_rows(frame.pdf)
    gap, gap_col = datasets.distribution_gap(comparable, datasets.scoring_sample(features_df, history_cols, seed=seed),
                                             history_cols)
    extra_metrics["train_score_max_smd"] = gap
    full = datasets.full_history(frame.pdf)
    if full is not None:
        extra_metrics["train_full_history_share"] = float(full.mean())
    notes["train_score_max_smd_column"] = gap_col or "none"
    notes["train_score_compared_rows"] = which
    return frame, notes, extra_metrics


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
    survey_features_df: DataFrame | None = None,
    tags: dict[str, str] | None = None,
    seed: int = 42,
    require_baseline_lift: bool = True,
    max_rows: int = datasets.MAX_ROWS,
) -> ModelTrainResult:
    """Build rows, judge, tune, pick the winner, refit, log, register and promote one model (see
    the module doc). ``features_df``: gold/household_features; ``source_df``: the silver table
    the labels come from (programs, collections; surveys for the response propensity);
    ``survey_features_df``: gold/survey_features (CSAT, NPS). Tracking must already point at
    the store (``registry.prepare_tracking``)."""
    model_def = MODELS[model]
    prepared = _training_frame(model, features_df=features_df, source_df=source_df, data_end=data_end,
                               time_zone=time_zone, survey_features_df=survey_features_df, seed=seed,
                               max_rows=max_rows)
    if isinstance(prepared, ModelTrainResult):
        return prepared
    frame, notes, extra_metrics = prepared
    split = validation.honest_split(frame.pdf, task=model_def.task)
    validation.check_split(frame.pdf, split)
    spec = fit_spec_pandas(frame.pdf.loc[split.train], frame.schema, task=model_def.task,
                           score_min=model_def.score_min, score_max=model_def.score_max,
                           exclude=EXCLUDED | model_def.exclude)
    if not spec.encoded:
        raise DataError("gold/household_features has no numeric, boolean or low-cardinality string feature column")
    x = spec.matrix(frame.pdf)
    y = frame.label
    if model_def.task == "binary" and len(np.unique(y[split.train])) < 2:
        return ModelTrainResult(model, "skipped", reason="training labels have a single class")
    counts = {
        "n_train": int(split.train.sum()), "n_valid": int(split.valid.sum()),
        "n_train_households": int(frame.pdf.loc[split.train, "household_id"].nunique()),
        "n_valid_households": int(frame.pdf.loc[split.valid, "household_id"].nunique()),
        "n_refit": len(frame.pdf), "n_refit_households": int(frame.pdf["household_id"].nunique()),
    }
    if model_def.task == "binary":
        counts["n_train_positive"] = int(y[split.train].sum())
    say(f"{model}: {split.scheme} {counts}, {len(spec.encoded)} matrix columns"
        + (f" ({split.reason})" if split.reason else ""))
    sign = 1.0 if model_def.greater_is_better else -1.0

    def fit_with(kind: str, params: dict[str, Any] | None = None, task_spec: FeatureSpec = spec) -> Fit:
        return learner(kind, task_spec, params or {}, monotone=model_def.monotone, seed=seed, ramps=model_def.ramps)

    trial_results: list[Judged] = []

    def fit_and_score(params: dict[str, Any]) -> dict[str, float]:
        judged = judge(fit_with("xgboost", params), spec, x, frame, split)
        trial_results.append(judged)
        report_trial(f"{model}: trial {len(trial_results) - 1} {model_def.metric}={judged.metrics[model_def.metric]:.4f}")
        return _finite(judged.metrics)

    with mlflow.start_run(run_name=run_name, experiment_id=experiment_id, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"ucx.model": model, **(tags or {})})
        mlflow.log_params({
            "model": model, "task": model_def.task, "rows": model_def.rows,
            "algorithm": "xgboost (driver, hist) tuned by Optuna, and its blend with the baseline; baseline: linear",
            "trials": trials, "search_space": tune.SPACE_DOC, "primary_metric": model_def.metric,
            "horizon_months": labels.HORIZON_MONTHS.get(model, 0), "data_end": str(data_end),
            **split.params(), **{k: str(v)[:500] for k, v in notes.items()},
            "n_features": len(spec.input_columns),
            "monotone_features": ",".join(f"{k}{'+' if v > 0 else '-'}" for k, v in sorted(model_def.monotone.items())
                                          if k in spec.encoded)[:500] or "none",
            "features": ",".join(spec.input_columns)[:5000],
            **{f"data_version.{k}": "none" if v is None else v for k, v in data_versions.items()},
            **({"propensity_clip": PROPENSITY_CLIP, "max_weight": MAX_WEIGHT} if model_def.weighted else {}),
        })
        # the baseline, judged on the same rows
        base = judge(fit_with("linear"), spec, x, frame, split)
        with mlflow.start_run(run_name=f"{model}-baseline", nested=True, experiment_id=run.info.experiment_id):
            mlflow.set_tags({"ucx.model": model, "ucx.role": "baseline"})
            mlflow.log_params(BASELINE_PARAMS)
            mlflow.log_metrics(_finite(base.metrics))
        say(f"{model}: baseline {model_def.metric}={base.metrics.get(model_def.metric, math.nan):.4f}")
        with bar(f"{model}: Optuna trials", trials, echo=True) as report_trial:
            study = tune.tune(fit_and_score, metric=model_def.metric, greater_is_better=model_def.greater_is_better,
                              n_trials=trials, seed=seed, study_name=model)

        def judge_multiclass(multi_spec: FeatureSpec) -> Judged:
            return judge(fit_with("xgboost", study.best_trial.params, multi_spec), multi_spec, x, frame, split)

        cand, cand_kind, cand_spec = _best_candidate(
            model, trial_results[study.best_trial.number], spec, base=base, judge_multiclass=judge_multiclass,
            frame=frame, split=split, extra_metrics=extra_metrics)
        base_value, cand_value = base.metrics.get(model_def.metric, math.nan), cand.metrics[model_def.metric]
        lift = sign * (cand_value - base_value)
        if require_baseline_lift and not registry.better(cand_value, base_value,
                                                         greater_is_better=model_def.greater_is_better):
            winner, judged, win_spec = "baseline", base, replace(spec, kind="linear")
            why = f"the {cand_kind} candidate's {model_def.metric} {cand_value:.4f} does not beat the baseline's {base_value:.4f}"
        else:
            winner, judged, win_spec = cand_kind, cand, replace(cand_spec, kind=cand_kind)
            why = f"{cand_kind} {model_def.metric} {cand_value:.4f} vs baseline {base_value:.4f}"
        say(f"{model}: winner {winner} ({why})")
        extra_metrics.update(monthly_nps_errors(frame, split, judged))
        metrics = {**judged.metrics, **extra_metrics, **{k: float(v) for k, v in counts.items()},
                   f"baseline_{model_def.metric}": base_value, f"candidate_{model_def.metric}": cand_value,
                   f"lift_over_baseline_{model_def.metric}": lift}
        mlflow.log_params({f"best.{k}": v for k, v in study.best_trial.params.items()} | {"winner": winner,
                                                                                            "winner_reason": why[:500]})
        mlflow.log_metrics(_finite(metrics))
        mlflow.set_tag("best_trial_run_id", str(study.best_trial.user_attrs.get("mlflow_run_id", "")))

        # refit the winner on every usable row: what is registered
        win_spec = replace(win_spec, residual_sd=judged.residual_sd)

        def fitter(task_spec: FeatureSpec) -> Fit:
            """The winner's learner over ``task_spec`` (its monotone map redrawn for its columns)."""
            return fit_with(winner, study.best_trial.params, task_spec)

        refit = fitter(win_spec)(x, y, frame.weight)
        if model_def.rows == "responses":
            shift = unanswered_shift(fitter, win_spec, frame, features_df, seed=seed)
            refit.spec = replace(refit.spec, unanswered=shift.to_json())
            say(f"{model}: households without an answer: {shift.reason}")
            mlflow.log_metrics(_finite(shift.params()))
            mlflow.log_param("unanswered_shift", shift.reason[:500])
            metrics.update(shift.params())
        signature_id = data_signature(data_versions, data_end, seed)
        importance = _log_explanations(model, model_def, refit, frame, split, judged)
        with mlflow.start_run(run_name=f"{model}-refit", nested=True, experiment_id=run.info.experiment_id) as refit_run:
            mlflow.set_tags({"ucx.model": model, "ucx.role": "refit", "ucx.winner": winner})
            mlflow.log_params({"fitted_on": "every usable row (all households, all dates)",
                               "n_rows": counts["n_refit"], "n_households": counts["n_refit_households"],
                               "winner": winner, "task": win_spec.task, "residual_sd": win_spec.residual_sd})
            info = log_predictor(refit, _input_example(refit.spec, frame.pdf))
            refit_run_id = refit_run.info.run_id
        name = registry.registered_name(model)
        version = str(mlflow.register_model(info.model_uri, name).version)
        client = mlflow.MlflowClient()

        def compare(champion_version: str) -> registry.Comparison | None:
            return _compare_with_champion(client, name, champion_version, model_def, signature_id, cand_value=metrics[
                model_def.metric], frame=frame, split=split, judged=judged)

        promotion = registry.promote(client, name, version, metric=model_def.metric, new_value=metrics[model_def.metric],
                                     compare=compare, greater_is_better=model_def.greater_is_better)
        for key, value in {"data_signature": signature_id, "data_end": str(data_end), "winner": winner,
                           "validation_scheme": split.scheme, "refit_rows": str(counts["n_refit"])}.items():
            client.set_model_version_tag(name, version, key, value)
        mlflow.set_tags({"registered_model": name, "registered_version": version, "alias": promotion.alias})
        if promotion.champion_value is not None:
            mlflow.log_metric(f"champion_{model_def.metric}_same_data", promotion.champion_value)
        run_id = run.info.run_id

    return ModelTrainResult(
        model, "trained", reason=f"{winner} won ({why}); {promotion.reason}", run_id=run_id, refit_run_id=refit_run_id,
        registered_name=name, version=version, alias=promotion.alias, winner=winner, metrics=metrics,
        n_train=counts["n_train"], n_valid=counts["n_valid"], n_refit=counts["n_refit"],
        validation_scheme=split.scheme, train_as_of=[str(d) for d in split.train_dates][-12:],
        valid_as_of=[str(d) for d in split.valid_dates][-12:], top_features=importance[:10],
    )


def _best_candidate(
    model: str, best: Judged, spec: FeatureSpec, *, base: Judged, judge_multiclass: Callable[[FeatureSpec], Judged],
    frame: datasets.ModelFrame, split: validation.Split, extra_metrics: dict[str, float],
) -> tuple[Judged, str, FeatureSpec]:
    """The candidate that meets the baseline: the best trial's booster; for NPS, the multi-class
    booster with its parameters when it scores the better RPS; for a regression that blends, the
    calibrated mean of booster and baseline when it validates better. Adds what it compared to
    ``extra_metrics``."""
    model_def = MODELS[model]
    y = frame.label
    cand, cand_spec = best, spec
    if model_def.task == "ordinal":
        # NPS: the multi-class booster over the answers, with the best parameters; keep the better RPS
        multi_spec = replace(spec, task="multiclass")
        multi = judge_multiclass(multi_spec)
        extra_metrics["multiclass_rps"] = multi.metrics["rps"]
        extra_metrics["ordinal_rps"] = cand.metrics["rps"]
        extra_metrics[f"multiclass_{model_def.metric}"] = multi.metrics[model_def.metric]
        if multi.metrics["rps"] < cand.metrics["rps"]:
            cand, cand_spec = multi, multi_spec
        mlflow.set_tag("ucx.nps_form", cand_spec.task)
    cand_kind = "xgboost"
    if model_def.blend and cand_spec.task not in ("multiclass", "binary"):
        # the blend: the mean of the tuned booster and the baseline, calibrated on their out-of-fold predictions
        weight = None if frame.weight is None else frame.weight[split.valid]
        weights = calibrate_blend(y[split.valid], cand.raw, base.raw, weight)
        blend_spec = replace(cand_spec, blend_weights=weights)
        blended = weights[0] + weights[1] * cand.raw + weights[2] * base.raw
        blend = _judged(blend_spec, blended, y[split.valid], weight, model_kind="blend")
        extra_metrics.update({"blend_intercept": weights[0], "blend_stretch": weights[1] + weights[2]})
        extra_metrics[f"xgboost_{model_def.metric}"] = cand.metrics[model_def.metric]
        extra_metrics[f"blend_{model_def.metric}"] = blend.metrics[model_def.metric]
        say(f"{model}: blend {model_def.metric}={blend.metrics[model_def.metric]:.4f}")
        if registry.better(blend.metrics[model_def.metric], cand.metrics[model_def.metric],
                           greater_is_better=model_def.greater_is_better):
            cand, cand_kind, cand_spec = blend, "blend", blend_spec
    return cand, cand_kind, cand_spec


def unanswered_shift(fitter: Callable[[FeatureSpec], Fit], spec: FeatureSpec, frame: datasets.ModelFrame,
                     features_df: DataFrame, *, seed: int) -> nonresponse.UnansweredShift:
    """The survey model's shift for households without an answer (``nonresponse.py``): the
    winner's learner without the survey history, out of fold over household folds, gives each
    answer's residual; with every household's answers and exposure at the latest as-of date of
    ``features_df`` (a bounded sample) the selection model is fitted."""
    pdf = frame.pdf
    if spec.task not in ("regression", "ordinal"):
        return nonresponse.UnansweredShift.none(f"a {spec.task} model has no value to shift")
    needed = (nonresponse.RESPONSES, *nonresponse.EXPOSURE)
    missing = [c for c in needed if c not in features_df.columns]
    if missing:
        return nonresponse.UnansweredShift.none(f"no {', '.join(missing)} in gold/household_features")
    plain = replace(fit_spec_pandas(pdf, frame.schema, task=spec.task, score_min=spec.score_min,
                                    score_max=spec.score_max, exclude=EXCLUDED | nonresponse.HISTORY),
                    residual_sd=spec.residual_sd)
    every = np.ones(len(pdf), dtype=bool)
    folds = validation.Split(validation.KFOLD, every, every, pdf["_bucket"].to_numpy(), (), ())
    x_plain = plain.matrix(pdf)
    oof = judge(fitter(plain), plain, x_plain, frame, folds)
    residual = frame.label - pred_value(plain, oof.raw)
    answers = pd.DataFrame({"household_id": pdf["household_id"], "r": residual, "r2": residual**2}).groupby(
        "household_id").agg(s1=("r", "sum"), s2=("r2", "sum"), m=("r", "size")).reset_index()
    columns = list(dict.fromkeys(["household_id", *needed, *plain.input_columns]))
    now = datasets.scoring_sample(features_df, columns, seed=seed, max_rows=nonresponse.MAX_HOUSEHOLDS)
    now = now.merge(answers, on="household_id", how="left").fillna({"s1": 0.0, "s2": 0.0, "m": 0.0})
    # the satisfaction the features predict for each household today (no survey history): who
    # answers is chosen on it as on what it misses
    predicted = pred_value(plain, fitter(plain)(x_plain, frame.label, frame.weight).raw(plain.matrix(now)))

    def numbers(column: str) -> np.ndarray:
        return pd.to_numeric(now[column], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)

    # answers before the latest as-of date, or the training rows' answers when they are more (a
    # response after that date is a training row too)
    k = np.maximum(numbers(nonresponse.RESPONSES), numbers("m"))
    # a household that answered, but whose answers are not training rows (too early), tells nothing
    usable = (k == 0) | (numbers("m") > 0)
    centre = float(np.mean(predicted[usable])) if usable.any() else 0.0
    households = nonresponse.Households(
        nonresponse.exposure_matrix(*(numbers(c)[usable] for c in nonresponse.EXPOSURE), predicted[usable],
                                    predicted_centre=centre),
        k[usable], numbers("s1")[usable], numbers("s2")[usable], numbers("m")[usable])
    return nonresponse.fit_unanswered_shift(households, residual_sd=float(np.nanstd(residual)),
                                            predicted_centre=centre)


MIN_MONTH_RESPONSES = 30


def monthly_nps_errors(frame: datasets.ModelFrame, split: validation.Split, judged: Judged) -> dict[str, float]:
    """Predicted NPS, 100 x (mean p_promoter - mean p_detractor), against the survey NPS of the same
    responses, per response month with at least ``MIN_MONTH_RESPONSES`` judged responses."""
    if judged.pred.p_promoter is None or judged.pred.p_detractor is None:
        return {}
    rows = pd.DataFrame({
        "month": pd.to_datetime(frame.pdf.loc[split.valid, "_time"]).dt.to_period("M").to_numpy(),
        "y": frame.label[split.valid], "p": judged.pred.p_promoter, "d": judged.pred.p_detractor,
    })
    errors = []
    for _, g in rows.groupby("month"):
        if len(g) >= MIN_MONTH_RESPONSES:
            observed = 100.0 * ((g["y"] >= 9).mean() - (g["y"] <= 6).mean())
            errors.append(abs(100.0 * (g["p"].mean() - g["d"].mean()) - observed))
    if not errors:
        return {}
    return {"nps_month_abs_error_mean": float(np.mean(errors)), "nps_month_abs_error_max": float(np.max(errors)),
            "nps_months_judged": float(len(errors))}


def _log_explanations(model: str, model_def: ModelDef, refit: Predictor, frame: datasets.ModelFrame,
                      split: validation.Split, judged: Judged) -> list[tuple[str, float]]:
    """SHAP summary of the registered model on a bounded sample of the judged rows, and the
    calibration of the judged predictions; returns the global importance."""
    with tempfile.TemporaryDirectory(prefix="ucx-explain-") as tmp:
        tmp_dir = Path(tmp)
        spec = refit.spec
        sample_pdf = frame.pdf.loc[split.valid, spec.input_columns].head(SHAP_SAMPLE_ROWS)
        importance = explain.shap_summary_plot(refit, sample_pdf, tmp_dir / "shap_summary.png",
                                               title=f"{model}: drivers of the registered model")
        (tmp_dir / "shap_importance.json").write_text(json.dumps(importance, indent=1), encoding="utf-8")
        table = calibration_table(frame.label[split.valid], judged.pred.score, task=model_def.task)
        bins_pdf = pd.DataFrame(table, columns=["bin", "mean_score", "mean_label", "n"])
        lo_hi = None if model_def.task == "binary" else (float(model_def.score_min or 0), float(model_def.score_max or 1))
        explain.calibration_plot(bins_pdf, tmp_dir / "calibration.png", title=f"{model}: calibration (validation)",
                                 task=model_def.task, lo_hi=lo_hi)
        (tmp_dir / "features.json").write_text(json.dumps({
            "input_columns": spec.input_columns, "matrix_columns": spec.feature_names,
            "spec": json.loads(spec.to_json())}, indent=1), encoding="utf-8")
        mlflow.log_artifact(str(tmp_dir / "features.json"))
        for name in ("shap_summary.png", "shap_importance.json", "calibration.png"):
            mlflow.log_artifact(str(tmp_dir / name), artifact_path="explain")
    return importance


def _compare_with_champion(
    client: Any, name: str, champion_version: str, model_def: ModelDef, signature_id: str, *, cand_value: float,
    frame: datasets.ModelFrame, split: validation.Split, judged: Judged,
) -> registry.Comparison | None:
    """How the current champion and the new version compare on data both can be judged on.

    Same data (equal ``data_signature``): the champion's logged honest metric against the new
    one (same rows, same split). Newer data: both on the judged rows after the champion's data
    end (rows it never saw; the new version's are its honest predictions), when there are
    ``MIN_COMPARE_ROWS`` of them. None: no fair comparison exists (the newer version wins).
    """
    tags = client.get_model_version(name, champion_version).tags
    if tags.get("data_signature") == signature_id and f"validation_{model_def.metric}" in tags:
        return registry.Comparison(float(tags[f"validation_{model_def.metric}"]), cand_value,
                                   "both judged on the same rows (same data and split)")
    end = tags.get("data_end")
    try:
        champ: LoadedModel = load_model(f"models:/{name}/{champion_version}", model_name=model_def.name,
                                        version=champion_version)
    except Exception:  # noqa: BLE001 - an unloadable champion cannot compete
        return None
    if not set(champ.spec.input_columns) <= set(frame.pdf.columns):
        return None
    judged_rows = frame.pdf.loc[split.valid]
    newer = np.ones(len(judged_rows), dtype=bool) if end is None else (
        pd.to_datetime(judged_rows["_time"]).dt.date > date.fromisoformat(end)).to_numpy()
    if int(newer.sum()) < MIN_COMPARE_ROWS:
        return None
    y = frame.label[split.valid][newer]
    # judged on answers, as answering households: without its shift for households that never
    # answered (nonresponse.py), as the new version's honest predictions are
    champ_pred = make_predictor(champ.payload, replace(champ.spec, unanswered=None)).predict(judged_rows.loc[newer])
    new_pred = Prediction(judged.pred.score[newer])
    if model_def.task == "binary":
        old, new = binary_scores(y, champ_pred.score)[model_def.metric], binary_scores(y, new_pred.score)[model_def.metric]
    else:
        old, new = answer_scores(y, champ_pred)[model_def.metric], answer_scores(y, new_pred)[model_def.metric]
    return registry.Comparison(old, new, f"both judged on {int(newer.sum())} rows after the champion's data end {end}")
