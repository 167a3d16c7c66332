"""The plain baseline every candidate must beat, and the model that serves when none does.

A linear model on the same rows, matrix (``FeatureSpec``: numeric columns plus
one-hot levels) and weights as the tree models, built as a careful analyst
would build one by hand:

- a column whose values range beyond [-1.5, 1.5] on the training rows
  (minutes, dollars, counts) enters as a signed log, sign(x) log(1 + |x|);
  missing values take the training mean; every column is standardised with
  the training mean and standard deviation (constant columns drop out);
- CSAT and NPS (regression, ordinal): a lasso whose penalty is chosen by
  ``PENALTY_FOLDS``-fold cross-validation on the training rows, so of 130-odd
  columns only those that carry signal keep a coefficient, and whose known
  directions are constraints: a column of the model's ``monotone`` map may only
  move the score its way (a dearer bill never raises CSAT), the others either
  way (fitted as a non-negative lasso over the signed column, or the column and
  its negation). A ridge at a fixed penalty on all columns, the baseline until
  December 2026, ranked the 1,000-household utility's never-respondents at
  Spearman 0.63; this one at 0.74 (``docs/models.md``);
- EV adoption and payment risk (binary): an L2 logistic regression whose
  strength C is chosen from ``LOGISTIC_CS`` by cross-validated AUC.

The fitted model is a ``predictor.LinearPredictor``: it scores, explains
(coefficient x standardised value) and is registered like any other model when
it wins, and it is half of the ``blend`` candidate (``train.py``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ucx_spark.models.predictor import LinearParams, LinearPredictor, signed_log
from ucx_spark.models.spec import FeatureSpec

PENALTY_FOLDS = 5
LASSO_ALPHAS = 40  # penalties tried along the lasso path
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried (sklearn LogisticRegression's C)
LOG_ABOVE = 1.5  # a column reaching beyond +-1.5 enters as a signed log
PARAMS: dict[str, object] = {
    "algorithm": "sign-constrained lasso (CSAT, NPS) / L2 logistic regression (EV, payment) on standardised columns",
    "penalty": f"chosen by {PENALTY_FOLDS}-fold cross-validation ({LASSO_ALPHAS} lasso penalties; logistic C in "
               f"{list(LOGISTIC_CS)})",
    "transform": f"signed log1p of columns beyond +-{LOG_ABOVE}; missing = training mean; standardised",
}


def fit_linear(spec: FeatureSpec, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
               monotone: dict[str, int] | None = None, seed: int = 0) -> LinearPredictor:
    """Fit on matrix rows ``x`` (``spec.matrix``), labels ``y`` and optional weights; the
    predictor's spec is ``spec`` with kind ``linear``. ``monotone`` (matrix column -> +1/-1):
    the signs a regression coefficient may take (see the module doc)."""
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
    if spec.task == "binary":
        coef, intercept = _logistic(zk, y.astype(int), weight, seed=seed)
    else:
        signs = np.array([int((monotone or {}).get(spec.encoded[j], 0)) for j in cols])
        coef, intercept = _signed_lasso(zk, y.astype(np.float64), weight, signs, seed=seed)
    params = LinearParams(
        columns=tuple(spec.encoded[j] for j in cols),
        means=tuple(float(v) for v in means[cols]),
        stds=tuple(float(v) for v in stds[cols]),
        logged=tuple(bool(v) for v in logged[cols]),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
    )
    return LinearPredictor(params, replace(spec, kind="linear"))


def _signed_lasso(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, signs: np.ndarray, *,
                  seed: int) -> tuple[np.ndarray, float]:
    """Lasso with the penalty chosen by cross-validation, coefficient j constrained to the sign of
    ``signs[j]`` where it is non-zero: a non-negative lasso over s_j z_j for those, z_j and -z_j
    for the others."""
    from sklearn.linear_model import Lasso, LassoCV

    free = signs == 0
    design = np.hstack([z * np.where(free, 1.0, signs)[None, :], -z[:, free]])
    folds = min(PENALTY_FOLDS, len(y))
    if folds >= 2 and len(np.unique(y)) > 1:
        model = LassoCV(alphas=LASSO_ALPHAS, cv=folds, positive=True, random_state=seed, max_iter=5000)
    else:
        model = Lasso(alpha=1e-3, positive=True, max_iter=5000)
    model.fit(design, y, sample_weight=weight)
    beta = np.asarray(model.coef_, dtype=np.float64)
    k = z.shape[1]
    coef = beta[:k] * np.where(free, 1.0, signs)
    coef[free] -= beta[k:]
    return coef, float(model.intercept_)


def _logistic(z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, *, seed: int) -> tuple[np.ndarray, float]:
    """L2 logistic regression, its strength chosen from ``LOGISTIC_CS`` by stratified
    cross-validated AUC (C = 1 when a fold could not hold both classes). Rows of one class
    only (a small utility's training fold may hold no adopter): no slope, the smoothed rate
    (count + 0.5) / (rows + 1) as the intercept."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    if len(np.unique(y)) < 2:
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        rate = (float(w @ (y == 1)) + 0.5) / (float(w.sum()) + 1.0)
        return np.zeros(z.shape[1]), float(np.log(rate / (1.0 - rate)))

    def fit(c: float, rows: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=1000).fit(
            z[rows], y[rows], sample_weight=None if weight is None else weight[rows])

    best_c, folds = 1.0, min(PENALTY_FOLDS, int(np.bincount(y, minlength=2).min()))
    if folds >= 2:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y))
        scores = {c: np.mean([roc_auc_score(y[te], fit(c, tr).decision_function(z[te])) for tr, te in splits])
                  for c in LOGISTIC_CS}
        best_c = max(LOGISTIC_CS, key=lambda c: (scores[c], -c))
    model = fit(best_c, np.arange(len(y)))
    return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])
