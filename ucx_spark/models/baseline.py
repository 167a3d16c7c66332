"""The plain baseline every candidate must beat, and the model that serves when none does.

A linear model on the same rows, matrix (``FeatureSpec``: numeric columns plus
one-hot levels) and weights as the tree models, built as a careful analyst
would build one by hand:

- a column whose values range beyond [-1.5, 1.5] on the training rows
  (minutes, dollars, counts) enters as a signed log, sign(x) log(1 + |x|);
  missing values take the training mean; every column is standardised with
  the training mean and standard deviation (constant columns drop out);
- CSAT and NPS (regression, ordinal): a column of known direction named in
  ``ramps`` (``train.EXPERIENCE_RAMPS``: outage minutes, ETR error, unresolved
  contacts, past-due dollars...) enters as ramps between its ``RAMP_KNOTS``-quantile
  knots, clip((v - lo) / (hi - lo), 0, 1), whose coefficients share its direction: a
  monotone piecewise-linear shape, flat beyond the training range, so a threshold or
  a saturation is learnt instead of forced straight (a shape-constrained additive
  model). On planted thresholds the lasso went from Spearman 0.47 to 0.62
  (``tests/models/test_models_blend.py``; docs/models.md has every form and the
  1,000-household utility);
- then a lasso whose penalty is chosen by
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

import warnings
from collections.abc import Collection
from dataclasses import replace

import numpy as np

from ucx_spark.models.predictor import LinearParams, LinearPredictor, ramp_terms, signed_log
from ucx_spark.models.spec import FeatureSpec

PENALTY_FOLDS = 5
LASSO_ALPHAS = 40  # penalties tried along the lasso path
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried (sklearn LogisticRegression's C)
LOG_ABOVE = 1.5  # a column reaching beyond +-1.5 enters as a signed log
RAMP_KNOTS = 4  # CSAT, NPS: a column of known direction enters as ramps between its quartiles
PARAMS: dict[str, object] = {
    "algorithm": "sign-constrained lasso (CSAT, NPS) / L2 logistic regression (EV, payment) on standardised columns",
    "penalty": f"chosen by {PENALTY_FOLDS}-fold cross-validation ({LASSO_ALPHAS} lasso penalties; logistic C in "
               f"{list(LOGISTIC_CS)})",
    "transform": f"signed log1p of columns beyond +-{LOG_ABOVE}; CSAT, NPS: columns of known direction as ramps "
                 f"between {RAMP_KNOTS}-quantile knots (a monotone shape); missing = training mean; standardised",
}


def fit_linear(spec: FeatureSpec, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
               monotone: dict[str, int] | None = None, seed: int = 0, ramps: Collection[str] = ()) -> LinearPredictor:
    """Fit on matrix rows ``x`` (``spec.matrix``), labels ``y`` and optional weights; the
    predictor's spec is ``spec`` with kind ``linear``. ``monotone`` (matrix column -> +1/-1):
    the signs a regression coefficient may take (see the module doc); ``ramps``: the columns of
    known direction a regression may shape (ramps between quantile knots)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: handled below
        reach = np.nanmax(np.abs(x), axis=0) if len(x) else np.zeros(x.shape[1])
    reach = np.where(np.isnan(reach), 0.0, reach)
    logged = reach > LOG_ABOVE
    z = x.astype(np.float64).copy()
    z[:, logged] = signed_log(z[:, logged])
    signs_of = {name: int(v) for name, v in (monotone or {}).items()}
    shaped = set(ramps) if spec.task != "binary" else set()
    src, lo, hi = _term_layout(z, [signs_of.get(name, 0) if name in shaped else 0 for name in spec.encoded])
    t = ramp_terms(z[:, src], lo, hi)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column drops out (keep)
        means = np.nanmean(t, axis=0)
        stds = np.nanstd(t, axis=0)
    keep = np.isfinite(means) & np.isfinite(stds) & (stds > 1e-12)
    if not keep.any():
        raise ValueError("the baseline has no feature column that varies on the training rows")
    terms = np.flatnonzero(keep)
    zk = np.where(np.isnan(t[:, terms]), means[terms], t[:, terms])
    zk = (zk - means[terms]) / stds[terms]
    if spec.task == "binary":
        coef, intercept = _logistic(zk, y.astype(int), weight, seed=seed)
    else:
        signs = np.array([signs_of.get(spec.encoded[src[j]], 0) for j in terms])
        coef, intercept = _signed_lasso(zk, y.astype(np.float64), weight, signs, seed=seed)
    def knots(values: np.ndarray) -> tuple[float | None, ...] | None:
        """The kept terms' knots (None: the column itself); None when no term is a ramp."""
        kept = values[terms]
        return tuple(float(v) if np.isfinite(v) else None for v in kept) if np.isfinite(kept).any() else None

    params = LinearParams(
        columns=tuple(spec.encoded[src[j]] for j in terms),
        means=tuple(float(v) for v in means[terms]),
        stds=tuple(float(v) for v in stds[terms]),
        logged=tuple(bool(logged[src[j]]) for j in terms),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
        ramp_lo=knots(lo),
        ramp_hi=knots(hi),
    )
    return LinearPredictor(params, replace(spec, kind="linear"))


def _term_layout(z: np.ndarray, signs: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The terms of the (signed-log) columns ``z``: source column, ramp knots (NaN: the column
    itself). A column of known direction (``signs`` non-zero) whose ``RAMP_KNOTS``-quantile knots
    take at least 3 distinct values enters as ramps between consecutive knots."""
    src: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    for j, sign in enumerate(signs):
        knots = np.array([])
        if sign != 0:
            values = z[:, j][np.isfinite(z[:, j])]
            if len(values):
                knots = np.unique(np.quantile(values, np.linspace(0.0, 1.0, RAMP_KNOTS + 1)))
        if len(knots) >= 3:
            for a, b in zip(knots[:-1], knots[1:], strict=True):
                src.append(j)
                lo.append(float(a))
                hi.append(float(b))
        else:
            src.append(j)
            lo.append(np.nan)
            hi.append(np.nan)
    return np.array(src, dtype=np.int64), np.array(lo), np.array(hi)


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
