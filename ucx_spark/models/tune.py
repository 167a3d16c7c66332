"""Optuna tuning of the xgboost.spark models; every trial is a nested MLflow run.

Optuna's MLflowCallback is deprecated: the objective opens
``mlflow.start_run(nested=True)`` itself. The study runs on the driver, one
trial at a time (each trial is a distributed barrier-mode fit that takes the
executors' slots), with a seeded TPE sampler so a rerun proposes the same
parameters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import mlflow
import optuna

# Search space of the tree boosters: small enough for a few trials to matter.
SPACE_DOC = "max_depth 2-6, learning_rate 0.03-0.3 (log), n_estimators 50-300, min_child_weight 1-20 (log), subsample 0.6-1, colsample_bytree 0.5-1, reg_lambda 0.01-10 (log)"


def suggest_params(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.01, 10.0, log=True),
    }


# A sensible first trial, so even two trials compare a default against a proposal.
DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 4,
    "learning_rate": 0.1,
    "n_estimators": 150,
    "min_child_weight": 2.0,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
}


def tune(
    fit_and_score: Callable[[dict[str, Any]], dict[str, float]],
    *,
    metric: str,
    greater_is_better: bool,
    n_trials: int,
    seed: int = 42,
    study_name: str = "ucx",
) -> optuna.Study:
    """Run ``n_trials`` trials; each calls ``fit_and_score(params)`` inside a nested MLflow run
    (the caller has the parent run open) and logs its params and metrics there.

    ``fit_and_score`` returns a dict of validation metrics that includes ``metric``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        direction="maximize" if greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, n_trials // 2))),
    )
    study.enqueue_trial(DEFAULT_PARAMS)

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        parent = mlflow.active_run()
        experiment_id = parent.info.experiment_id if parent else None
        with mlflow.start_run(run_name=f"{study_name}-trial-{trial.number:03d}", nested=True, experiment_id=experiment_id) as run:
            mlflow.log_params(params)
            mlflow.set_tag("optuna.trial", str(trial.number))
            metrics = fit_and_score(params)
            mlflow.log_metrics(metrics)
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
        value = metrics.get(metric)
        if value is None or math.isnan(float(value)):
            # Undefined on this validation set (e.g. a constant target among a handful of
            # households): the trial is worth nothing rather than an error that ends the study.
            return -1e9 if greater_is_better else 1e9
        return float(value)

    study.optimize(objective, n_trials=n_trials, catch=())
    return study
