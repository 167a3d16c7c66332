"""The plain baseline every candidate must beat, and the model that serves when none does.

Logistic regression for the classifiers, ridge regression for CSAT and NPS, on
the same rows, matrix (``FeatureSpec``: numeric columns plus one-hot levels) and
weights as the tree models. The hand-made part a careful analyst would add: a
column whose values range beyond [-1.5, 1.5] on the training rows (minutes,
dollars, counts) enters as a signed log, sign(x) log(1 + |x|); missing values
take the training mean; every column is standardised with the training mean and
standard deviation (constant columns drop out). The fitted model is a
``predictor.LinearPredictor``: it scores, explains (coefficient x standardised
value) and is registered like any other model when it wins.
"""

from __future__ import annotations

import numpy as np

from ucx_spark.models.predictor import LinearParams, LinearPredictor, signed_log
from ucx_spark.models.spec import FeatureSpec

RIDGE_ALPHA = 1.0  # L2 penalty on standardised columns (sklearn Ridge's alpha)
LOGISTIC_C = 1.0  # inverse L2 strength (sklearn LogisticRegression's C)
LOG_ABOVE = 1.5  # a column reaching beyond +-1.5 enters as a signed log
PARAMS: dict[str, object] = {
    "algorithm": "ridge / L2 logistic regression (scikit-learn) on standardised columns",
    "ridge_alpha": RIDGE_ALPHA,
    "logistic_c": LOGISTIC_C,
    "transform": f"signed log1p of columns beyond +-{LOG_ABOVE}; missing = training mean; standardised",
}


def fit_linear(spec: FeatureSpec, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> LinearPredictor:
    """Fit on matrix rows ``x`` (``spec.matrix``), labels ``y`` and optional weights; the
    predictor's spec is ``spec`` with kind ``linear`` (binary: logistic; otherwise ridge)."""
    from dataclasses import replace

    from sklearn.linear_model import LogisticRegression, Ridge

    with np.errstate(all="ignore"):
        reach = np.nanmax(np.abs(x), axis=0) if len(x) else np.zeros(x.shape[1])
    reach = np.where(np.isnan(reach), 0.0, reach)
    logged = reach > LOG_ABOVE
    z = x.astype(np.float64).copy()
    z[:, logged] = signed_log(z[:, logged])
    with np.errstate(all="ignore"):
        means = np.nanmean(z, axis=0)
        stds = np.nanstd(z, axis=0)
    keep = np.isfinite(means) & np.isfinite(stds) & (stds > 1e-12)
    if not keep.any():
        raise ValueError("the baseline has no feature column that varies on the training rows")
    cols = np.flatnonzero(keep)
    zk = np.where(np.isnan(z[:, cols]), means[cols], z[:, cols])
    zk = (zk - means[cols]) / stds[cols]
    linear_spec = replace(spec, kind="linear")
    if spec.task == "binary":
        model = LogisticRegression(C=LOGISTIC_C, max_iter=1000)
        model.fit(zk, y.astype(int), sample_weight=weight)
        coef, intercept = model.coef_[0], float(model.intercept_[0])
    else:
        model = Ridge(alpha=RIDGE_ALPHA)
        model.fit(zk, y.astype(np.float64), sample_weight=weight)
        coef, intercept = np.asarray(model.coef_, dtype=np.float64), float(model.intercept_)
    params = LinearParams(
        columns=tuple(spec.encoded[j] for j in cols),
        means=tuple(float(v) for v in means[cols]),
        stds=tuple(float(v) for v in stds[cols]),
        logged=tuple(bool(v) for v in logged[cols]),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
    )
    return LinearPredictor(params, linear_spec)
