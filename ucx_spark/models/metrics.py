"""Model metrics on arrays (training rows, out-of-fold predictions, evaluation against truth).

Every frame these see is model-sized: the training matrix, or one score per
household handed over once (``ucx evaluate``). NaN marks an undefined metric
(one class, a constant prediction).
"""

from __future__ import annotations

import math

import numpy as np

from ucx_spark.models.predictor import DETRACTOR_MAX, PROMOTER_MIN, Prediction


def binary_scores(label: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC (average precision), Brier score, log loss, base rate, n."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(label, dtype=np.float64)
    p = np.clip(np.asarray(score, dtype=np.float64), 1e-7, 1 - 1e-7)
    out = {
        "n": float(len(y)),
        "base_rate": float(y.mean()) if len(y) else math.nan,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else math.nan,
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else math.nan,
    }
    if len(np.unique(y)) < 2:
        out["auc"] = out["pr_auc"] = math.nan
    else:
        out["auc"] = float(roc_auc_score(y, p))
        out["pr_auc"] = float(average_precision_score(y, p))
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Tie-aware Spearman correlation; NaN when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or np.nanstd(a) == 0 or np.nanstd(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def answer_scores(label: np.ndarray, pred: Prediction, *, weight: np.ndarray | None = None,
                  classes: np.ndarray | None = None) -> dict[str, float]:
    """Spearman, MAE, RMSE, weighted MAE, mean label and score, n; with answer ``classes`` and
    promoter/detractor probabilities also ``nps_error`` (predicted minus observed NPS of the rows,
    in points) and ``rps`` (ranked probability score of the 0-10 answer, lower is better)."""
    y = np.asarray(label, dtype=np.float64)
    s = np.asarray(pred.score, dtype=np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    err = s - y
    out = {
        "n": float(len(y)),
        "spearman": spearman(y, s),
        "mae": float(np.mean(np.abs(err))) if len(y) else math.nan,
        "rmse": float(np.sqrt(np.mean(err**2))) if len(y) else math.nan,
        "weighted_mae": float(np.sum(w * np.abs(err)) / np.sum(w)) if len(y) else math.nan,
        "mean_label": float(y.mean()) if len(y) else math.nan,
        "mean_score": float(s.mean()) if len(y) else math.nan,
        "mean_bias": float(err.mean()) if len(y) else math.nan,
        "calibration_slope": calibration_slope(y, s, w),
    }
    if pred.p_promoter is not None and pred.p_detractor is not None and len(y):
        observed = 100.0 * (np.mean(y >= PROMOTER_MIN) - np.mean(y <= DETRACTOR_MAX))
        predicted = 100.0 * (np.mean(pred.p_promoter) - np.mean(pred.p_detractor))
        out["nps_observed"] = float(observed)
        out["nps_predicted"] = float(predicted)
        out["nps_error"] = float(predicted - observed)
    return out


def calibration_slope(label: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The (weighted) least-squares slope of the label on the score: 1 when the scores spread as
    the labels they predict do, above 1 when they are pulled towards the mean (over-regularised),
    below 1 when they spread too far; nan without spread."""
    y, s = np.asarray(label, dtype=np.float64), np.asarray(score, dtype=np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    if len(y) < 3 or not np.sum(w) > 0:
        return math.nan
    sm, ym = np.average(s, weights=w), np.average(y, weights=w)
    var = float(np.average((s - sm) ** 2, weights=w))
    return float(np.average((s - sm) * (y - ym), weights=w) / var) if var > 1e-12 else math.nan


def ranked_probability_score(label: np.ndarray, probs: np.ndarray, classes: np.ndarray) -> float:
    """Mean RPS of class probabilities (n x k) against integer answers: the squared distance of the
    cumulative distributions, divided by k - 1 (0 perfect, 1 worst)."""
    y = np.asarray(label, dtype=np.float64)
    if not len(y):
        return math.nan
    observed = (classes[None, :] >= y[:, None]).astype(np.float64)
    cum = np.cumsum(probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12), axis=1)
    return float(np.mean(np.sum((cum - observed) ** 2, axis=1)) / (len(classes) - 1))


def calibration_table(label: np.ndarray, score: np.ndarray, *, task: str) -> list[tuple[float, float, float, int]]:
    """(bin, mean score, mean label, n) per bin: 10 probability bins, or 0.25-point answer bins."""
    y = np.asarray(label, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    bins = np.floor(s * 10) / 10 if task == "binary" else np.round(s * 4) / 4
    out = []
    for b in np.unique(bins):
        m = bins == b
        out.append((float(b), float(s[m].mean()), float(y[m].mean()), int(m.sum())))
    return out
