"""SHAP explanations of the household models.

The models are xgboost boosters, so exact TreeSHAP values come from the booster
itself (``pred_contribs=True``: one column per matrix feature, the bias last),
the same values ``shap.TreeExplainer`` computes, without a Python tree walk. At
scale they are computed inside ``mapInPandas`` (see ``score.py``); the plots here
use a bounded sample on the driver.

Contributions of one-hot columns are summed back to their source column, so a
driver is always a column of ``gold/household_features``. Units: log-odds for
the classifiers, CSAT points for ``csat``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ucx_spark.models.spec import FeatureSpec

TOP_K = 5


def booster_from_bytes(raw: bytes | bytearray) -> xgb.Booster:
    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(bytearray(raw))
    return booster


def dmatrix(spec: FeatureSpec, pdf: pd.DataFrame) -> xgb.DMatrix:
    return xgb.DMatrix(spec.matrix(pdf), missing=np.nan, feature_names=list(spec.encoded), nthread=1)


def predict(booster: xgb.Booster, spec: FeatureSpec, pdf: pd.DataFrame) -> np.ndarray:
    """Scores of a pandas batch: probability (binary) or clipped expected value (regression)."""
    if len(pdf) == 0:
        return np.empty(0, dtype=np.float64)
    return spec.finish(booster.predict(dmatrix(spec, pdf)).astype(np.float64))


def source_contributions(booster: xgb.Booster, spec: FeatureSpec, pdf: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """SHAP values per source column (n rows x n sources, bias dropped) and the source names."""
    names = list(dict.fromkeys(spec.sources))
    if len(pdf) == 0:
        return np.empty((0, len(names))), names
    contribs = booster.predict(dmatrix(spec, pdf), pred_contribs=True)[:, :-1].astype(np.float64)
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros((contribs.shape[0], len(names)))
    for j, source in enumerate(spec.sources):
        out[:, index[source]] += contribs[:, j]
    return out, names


def top_drivers(contribs: np.ndarray, names: list[str], *, k: int = TOP_K) -> list[list[dict[str, object]]]:
    """Per row, the ``k`` largest absolute contributions, largest first (ties: feature name)."""
    if contribs.size == 0:
        return [[] for _ in range(contribs.shape[0])]
    k = min(k, contribs.shape[1])
    order_names = np.array(names)
    out: list[list[dict[str, object]]] = []
    magnitude = np.abs(contribs)
    # lexsort: last key is primary -> -|c| then name, stable and deterministic
    for row, mag in zip(contribs, magnitude, strict=True):
        idx = np.lexsort((order_names, -mag))[:k]
        out.append([{"feature": names[i], "contribution": float(row[i])} for i in idx])
    return out


def global_importance(contribs: np.ndarray, names: list[str]) -> list[tuple[str, float]]:
    """Mean absolute SHAP value per source feature, largest first."""
    if contribs.size == 0:
        return []
    means = np.abs(contribs).mean(axis=0)
    return sorted(zip(names, (float(m) for m in means), strict=True), key=lambda t: (-t[1], t[0]))


def shap_summary_plot(
    booster: xgb.Booster, spec: FeatureSpec, sample_pdf: pd.DataFrame, path: Path, *, title: str, max_display: int = 15
) -> list[tuple[str, float]]:
    """Beeswarm summary plot of a bounded sample to ``path`` (PNG); returns the global importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    contribs, names = source_contributions(booster, spec, sample_pdf)
    values = np.full(contribs.shape, np.nan)
    for i, name in enumerate(names):
        if name in spec.numeric:
            values[:, i] = pd.to_numeric(sample_pdf[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    plt.figure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN colour column of a categorical
        shap.summary_plot(contribs, features=values, feature_names=names, show=False, max_display=max_display)
    plt.title(title)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close("all")
    return global_importance(contribs, names)


def calibration_plot(bins_pdf: pd.DataFrame, path: Path, *, title: str, task: str) -> None:
    """Reliability plot from per-bin means (columns mean_score, mean_label, n): a model-sized table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    lo, hi = (0.0, 1.0) if task == "binary" else (1.0, 5.0)
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", label="perfect")
    sizes = 20 + 200 * bins_pdf["n"] / max(float(bins_pdf["n"].max()), 1.0) if len(bins_pdf) else 20
    ax.scatter(bins_pdf["mean_score"], bins_pdf["mean_label"], s=sizes, label="validation bins")
    ax.plot(bins_pdf["mean_score"], bins_pdf["mean_label"])
    ax.set_xlabel("mean predicted" + (" probability" if task == "binary" else " CSAT"))
    ax.set_ylabel("observed" + (" rate" if task == "binary" else " mean CSAT"))
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
