"""Explanations of the household models: per-household drivers and the run's plots.

Contributions come from the model's predictor (``predictor.py``): exact
TreeSHAP values from an xgboost booster (``pred_contribs``), or coefficient x
standardised value of the linear baseline. Contributions of one-hot columns are
summed back to their source column, so a driver is always a column of
``gold/household_features``. Units: log-odds for the classifiers, answer
points for CSAT and NPS. At scale they are computed inside ``mapInPandas``
(``score.py``); the plots here use a bounded sample on the driver.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ucx_spark.models.predictor import Predictor

TOP_K = 5


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
    predictor: Predictor, sample_pdf: pd.DataFrame, path: Path, *, title: str, max_display: int = 15
) -> list[tuple[str, float]]:
    """Beeswarm summary plot of a bounded sample to ``path`` (PNG); returns the global importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    spec = predictor.spec
    contribs, names = predictor.source_contributions(sample_pdf)
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


def calibration_plot(bins_pdf: pd.DataFrame, path: Path, *, title: str, task: str,
                     lo_hi: tuple[float, float] | None = None) -> None:
    """Reliability plot from per-bin means (columns mean_score, mean_label, n): a model-sized table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    lo, hi = lo_hi or ((0.0, 1.0) if task == "binary" else (1.0, 5.0))
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", label="perfect")
    sizes = 20 + 200 * bins_pdf["n"] / max(float(bins_pdf["n"].max()), 1.0) if len(bins_pdf) else 20
    ax.scatter(bins_pdf["mean_score"], bins_pdf["mean_label"], s=sizes, label="validation bins")
    ax.plot(bins_pdf["mean_score"], bins_pdf["mean_label"])
    ax.set_xlabel("mean predicted" + (" probability" if task == "binary" else " answer"))
    ax.set_ylabel("observed" + (" rate" if task == "binary" else " mean answer"))
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
