"""One satisfaction, three questions: a response's CSAT, NPS and CES answers read as one measurement.

A survey response answers up to three questions (CSAT 1-5, likelihood to
recommend 0-10, effort 1-7) about the same experience. Each is a noisy,
rounded reading of one satisfaction ``s`` (a one-factor measurement model, as
survey researchers build a scale from several items)::

    y_k = a_k + b_k * s + e_k,   e_k ~ (0, v_k) independent across questions

With three questions the model is identified from the answers alone: set the
target question's scale (``a = 0``, ``b = 1``: ``s`` is on the CSAT scale for
the CSAT model), then from the pairwise covariances ``c``::

    var(s) = c[t,j] c[t,k] / c[j,k],  b_j = c[j,k] / c[t,k],  b_k = c[j,k] / c[t,j],
    v_i = var(y_i) - b_i^2 var(s),    a_i = mean(y_i) - b_i mean(y_t)

and a response's ``s`` is estimated by the inverse-noise-weighted mean of
``(y_k - a_k) / b_k`` over the questions it answered. The model then learns
from a label whose noise is the combined one (on the 1,000-household utility
the CSAT answer alone carries a noise variance of 0.270 on its own scale; the
three together 0.098), which is what a few hundred answers
need. Nothing here reads the generator: the loadings are fitted on the
answers of every response the model is given (answers only, never a feature;
the honest split's validation rows included, which judge every candidate on the
same labels) and logged on the run. When the answers do not support the
model (fewer than ``MIN_PAIRS`` responses per pair, a covariance that is not
positive, a pair correlating less than ``MIN_CORRELATION``, no noise left), the raw answer stays the label and the
reason is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ITEMS = ("csat", "nps", "ces")
MIN_PAIRS = 50
# every pair of questions must correlate at least this much (else they do not measure one thing)
MIN_CORRELATION = 0.15
# a question's noise variance is at least this share of its answers' variance (no question is exact)
MIN_NOISE_SHARE = 0.05


@dataclass(frozen=True)
class Measurement:
    """The fitted one-factor model on ``target``'s scale."""

    target: str
    intercept: dict[str, float]
    loading: dict[str, float]
    noise_var: dict[str, float]
    var_s: float

    def composite(self, pdf: pd.DataFrame, *, lower: float | None = None, upper: float | None = None) -> np.ndarray:
        """Each row's estimate of ``s`` from the questions it answered (NaN where none), clipped."""
        num = np.zeros(len(pdf))
        den = np.zeros(len(pdf))
        for item, b in self.loading.items():
            y = pd.to_numeric(pdf[item], errors="coerce").to_numpy(dtype=np.float64)
            ok = ~np.isnan(y)
            w = b * b / self.noise_var[item]
            num += np.where(ok, w * (np.nan_to_num(y) - self.intercept[item]) / b, 0.0)
            den += w * ok
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return np.clip(s, lower, upper) if lower is not None or upper is not None else s

    def noise_of_composite(self) -> float:
        """The noise variance of ``s`` from a response that answered every question."""
        return 1.0 / sum(b * b / self.noise_var[i] for i, b in self.loading.items())

    def metrics(self) -> dict[str, float]:
        out = {"measurement_var_s": self.var_s, "measurement_composite_noise_var": self.noise_of_composite()}
        for item in self.loading:
            out[f"measurement_loading_{item}"] = self.loading[item]
            out[f"measurement_intercept_{item}"] = self.intercept[item]
            out[f"measurement_noise_var_{item}"] = self.noise_var[item]
        return out


def fit_measurement(pdf: pd.DataFrame, target: str) -> tuple[Measurement | None, str]:
    """The one-factor model of the answers in ``pdf`` on ``target``'s scale, or None and why not."""
    if target not in ITEMS:
        return None, f"{target} is not one of {ITEMS}"
    missing = [i for i in ITEMS if i not in pdf.columns]
    if missing:
        return None, f"no {', '.join(missing)} column"
    y = pdf[list(ITEMS)].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    answered = y.notna()
    pairs = {(i, j): int((answered[i] & answered[j]).sum()) for i in ITEMS for j in ITEMS if i < j}
    few = {p: n for p, n in pairs.items() if n < MIN_PAIRS}
    if few:
        return None, "too few responses answering both of " + ", ".join(f"{a}/{b} ({n})" for (a, b), n in few.items())
    cov = y.cov(min_periods=MIN_PAIRS)
    corr = y.corr(min_periods=MIN_PAIRS)
    weak = [(a, b) for (a, b) in pairs if not abs(float(corr.loc[a, b])) >= MIN_CORRELATION]
    if weak:
        return None, "answers that fit no one factor: " + ", ".join(
            f"{a}/{b} correlate {float(corr.loc[a, b]):.2f}" for a, b in weak) + f" (< {MIN_CORRELATION})"
    j, k = (i for i in ITEMS if i != target)
    c_tj, c_tk, c_jk = float(cov.loc[target, j]), float(cov.loc[target, k]), float(cov.loc[j, k])
    # one satisfaction: every pair moves together or against, consistently (CES: higher is worse)
    if not np.isfinite([c_tj, c_tk, c_jk]).all() or c_tj * c_tk * c_jk <= 0:
        return None, f"covariances {target}/{j} {c_tj:.3g}, {target}/{k} {c_tk:.3g}, {j}/{k} {c_jk:.3g} fit no one factor"
    var_s = c_tj * c_tk / c_jk
    loading = {target: 1.0, j: c_jk / c_tk, k: c_jk / c_tj}
    noise: dict[str, float] = {}
    intercept: dict[str, float] = {}
    for item, b in loading.items():
        var_y = float(y[item].var())
        v = var_y - b * b * var_s
        if not np.isfinite(v) or v <= 0:
            return None, f"{item}: no noise left (variance {var_y:.3g}, explained {b * b * var_s:.3g})"
        noise[item] = max(v, MIN_NOISE_SHARE * var_y)
        both = answered[item] & answered[target]
        intercept[item] = float(y.loc[both, item].mean() - b * y.loc[both, target].mean())
    return Measurement(target, intercept, loading, noise, var_s), "fitted"
