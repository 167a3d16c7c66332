"""Who never answers is not who answers: the survey models' shift for households without an answer.

A CSAT or NPS model learns from the households that answered. Inverse-propensity
weights (``train.response_weights``) make the answers stand for the population
*as far as the features tell them apart*; but who answers is also chosen on the
satisfaction itself (unhappy customers answer more often, the survey
literature's first finding), and no weighting by what a utility records undoes
that. A model fitted on answers reads a household that never answered as if it
were about to answer: too low (on the 1,000-household utility, by 0.29 on the
1-5 scale).

The correction is a selection model in the manner of Heckman's, fitted by
maximum likelihood over every household of the latest as-of date:

- ``u``: what the features do not tell of a household's satisfaction,
  ``u ~ N(0, tau^2)``;
- its answers' residuals from a model that never saw the household (household
  folds) and is given no survey history (so earlier answers do not hide ``u``):
  ``r = u - c + e``, ``e ~ N(0, sigma^2)``, one ``e`` per answer;
- its number of answers in the history, ``K ~ Poisson(exp(Z a + beta u))``, with
  ``Z`` = 1, log1p(contacts in the year) (utilities survey after calls and
  chats), log1p(tenure in years) and the satisfaction the features predict
  (the same learner, no survey history): a household asked more often, or
  longer, or that the features call unhappy (who answers is chosen on the whole
  satisfaction, not only on what the features miss), that never answered says
  more.

Repeated answers of one household tell ``tau`` from ``sigma``; how answer counts
go with residuals gives ``beta`` (negative: the unhappy answer more). A household
with no answer yet is shifted by ``E[u | K = 0, Z] - E[u | K >= 1, Z]``: the
registered model, given the survey history, centres a household without an
earlier answer on the first answers of households like it, and among households
rarely asked (or predicted happy) only the unhappy ones answered. Households with
answers are not shifted: their earlier answers are features. (Models trained
before December 2026 carry three rate columns and one centre over all answering
households; they load and shift as they did.)

Applied only when the likelihood-ratio test of ``beta = 0`` rejects at 5%
(``MIN_LR``), so a utility whose respondents are not chosen on satisfaction keeps
the model as it is; the shift is capped at ``MAX_SHIFT_SD`` residual standard
deviations. Households are a bounded sample (``MAX_HOUSEHOLDS``); each needs
one row of a few numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

RESPONSES = "survey_responses_prior"
EXPOSURE = ("contacts_365d", "account_tenure_days")
# the survey history a model is given (gold/household_features): left out of the residual model
HISTORY = frozenset({RESPONSES, "last_csat", "last_nps", "last_ces", "mean_csat_prior", "mean_nps_prior",
                     "days_since_last_survey"})
MIN_HOUSEHOLDS = 60
MIN_LR = 3.84  # chi-square(1) at 5%
MAX_SHIFT_SD = 1.0
# seven parameters: 50,000 households pin them (the fit is driver-side numpy: 7.9 s for 20,000
# households, 68.7 s for 200,000 on 2 cores)
MAX_HOUSEHOLDS = 50_000
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(40)
_LOG_W = np.log(_WEIGHTS / np.sqrt(np.pi))


def exposure_matrix(contacts: np.ndarray, tenure_days: np.ndarray, predicted: np.ndarray | None = None,
                    *, predicted_centre: float = 0.0) -> np.ndarray:
    """``Z``: 1, log1p(contacts), log1p(tenure years), and (when given) the satisfaction the
    features predict less ``predicted_centre``; missing = 0."""
    c = np.clip(np.nan_to_num(np.asarray(contacts, dtype=np.float64)), 0, None)
    t = np.clip(np.nan_to_num(np.asarray(tenure_days, dtype=np.float64)), 0, None) / 365.0
    columns = [np.ones(len(c)), np.log1p(c), np.log1p(t)]
    if predicted is not None:
        columns.append(np.nan_to_num(np.asarray(predicted, dtype=np.float64) - predicted_centre))
    return np.column_stack(columns)


@dataclass(frozen=True)
class Households:
    """One row per household: exposure ``z`` (n x 3), answers in the history ``k``, and the sum,
    sum of squares and number ``m`` of its answers' out-of-fold residuals (0 when none)."""

    z: np.ndarray
    k: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    m: np.ndarray


def _log_rate(theta: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log answer rate of each row of ``z`` at each quadrature node of ``u`` (n x nodes), and
    the nodes."""
    p = z.shape[1]
    u = np.sqrt(2.0) * np.exp(theta[p + 1]) * _NODES
    return (z @ theta[:p])[:, None] + theta[p] * u[None, :], u


def _node_loglik(theta: np.ndarray, h: Households) -> tuple[np.ndarray, np.ndarray]:
    p = h.z.shape[1]
    sigma, c = np.exp(theta[p + 2]), theta[p + 3]
    log_rate, u = _log_rate(theta, h.z)
    ll = h.k[:, None] * log_rate - np.exp(np.clip(log_rate, -30, 30))  # Poisson, without log k!
    mu = (u - c)[None, :]
    squares = h.s2[:, None] - 2 * mu * h.s1[:, None] + h.m[:, None] * mu**2
    ll = ll - 0.5 * squares / sigma**2 - h.m[:, None] * np.log(sigma)
    return ll + _LOG_W[None, :], u


def _negloglik(theta: np.ndarray, h: Households) -> float:
    ll, _ = _node_loglik(theta, h)
    top = ll.max(axis=1, keepdims=True)
    return -float((top[:, 0] + np.log(np.exp(ll - top).sum(axis=1))).sum())


def _posterior_mean(theta: np.ndarray, h: Households) -> np.ndarray:
    ll, u = _node_loglik(theta, h)
    w = np.exp(ll - ll.max(axis=1, keepdims=True))
    return (w * u[None, :]).sum(axis=1) / w.sum(axis=1)


def _answering_mean(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``E[u | at least one answer, z]`` per row of ``z``: what a model fitted on the answering
    households' first answers centres a household of that exposure on."""
    log_rate, u = _log_rate(theta, z)
    w = np.exp(_LOG_W)[None, :] * -np.expm1(-np.exp(np.clip(log_rate, -30, 30)))  # P(K >= 1 | u)
    return (w * u[None, :]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-300)


@dataclass(frozen=True)
class UnansweredShift:
    """The fitted selection model (see the module doc) and the shift it gives."""

    theta: tuple[float, ...]  # a (3, or 4 with the predicted satisfaction), beta, log tau, log sigma, c
    centre: float  # E[u | answered], over the answering households (models fitted before by_exposure)
    households: int
    answering: int
    lr: float
    cap: float
    applied: bool
    reason: str
    # the answer rate reads the satisfaction the features predict (its 4th coefficient), centred here
    predicted_centre: float | None = None
    # the shift is E[u | no answer, z] - E[u | answered, z] (each household's own exposure)
    by_exposure: bool = False

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str | None) -> UnansweredShift | None:
        return _parsed(text) if text else None

    @classmethod
    def none(cls, reason: str, households: int = 0, answering: int = 0) -> UnansweredShift:
        return cls((), 0.0, households, answering, 0.0, 0.0, False, reason)

    def shift(self, responses: np.ndarray, contacts: np.ndarray, tenure_days: np.ndarray,
              predicted: np.ndarray | None = None) -> np.ndarray:
        """Per row: the value added to a household without an answer yet; 0 for the others.
        ``predicted``: the model's value before the shift (read when the answer rate reads it)."""
        if not self.applied or len(responses) == 0:
            return np.zeros(len(responses))
        answered = np.nan_to_num(np.asarray(responses, dtype=np.float64), nan=0.0) > 0
        return np.where(answered, 0.0, self._unanswered(self.exposure(contacts, tenure_days, predicted)))

    def exposure(self, contacts: np.ndarray, tenure_days: np.ndarray, predicted: np.ndarray | None) -> np.ndarray:
        """``Z`` as this model was fitted with it."""
        if self.predicted_centre is None:
            return exposure_matrix(contacts, tenure_days)
        if predicted is None:
            raise ValueError("this selection model reads the predicted satisfaction: pass predicted=")
        return exposure_matrix(contacts, tenure_days, predicted, predicted_centre=self.predicted_centre)

    def _unanswered(self, z: np.ndarray) -> np.ndarray:
        """The shift of households without an answer, of exposure ``z`` (``exposure``)."""
        zero = np.zeros(len(z))
        theta = np.asarray(self.theta)
        mean = _posterior_mean(theta, Households(z, zero, zero, zero, zero))
        centre = _answering_mean(theta, z) if self.by_exposure else self.centre
        return np.clip(mean - centre, -self.cap, self.cap)

    def params(self) -> dict[str, float]:
        if not self.theta:
            return {"unanswered_applied": float(self.applied), "unanswered_households": float(self.households)}
        p = len(self.theta) - 4
        a, (beta, log_tau, log_sigma, _c) = self.theta[:p], self.theta[p:]
        out = {"unanswered_applied": float(self.applied), "unanswered_households": float(self.households),
               "unanswered_answering": float(self.answering), "unanswered_lr": self.lr,
               "unanswered_beta": beta, "unanswered_tau": float(np.exp(log_tau)),
               "unanswered_sigma": float(np.exp(log_sigma)), "unanswered_rate_contacts": a[1],
               "unanswered_rate_tenure": a[2]}
        if p > 3:
            out["unanswered_rate_predicted"] = a[3]
        return out


@lru_cache(maxsize=16)
def _parsed(text: str) -> UnansweredShift:
    """A model's shift, parsed once per text (the spec is read at every scored batch)."""
    data = json.loads(text)
    return UnansweredShift(**{**data, "theta": tuple(data["theta"])})


def fit_unanswered_shift(h: Households, *, residual_sd: float, predicted_centre: float | None = None) -> UnansweredShift:
    """Fit the selection model on ``h`` (every household, with and without answers). With
    ``predicted_centre``, ``h.z``'s 4th column is the predicted satisfaction less it
    (``exposure_matrix(..., predicted, predicted_centre=...)``)."""
    from scipy.optimize import minimize

    n, answering = len(h.k), int((h.m > 0).sum())
    if answering < MIN_HOUSEHOLDS or n - answering < MIN_HOUSEHOLDS:
        return UnansweredShift.none(f"{answering} households with answers and {n - answering} without "
                                    f"(< {MIN_HOUSEHOLDS}): no shift", n, answering)
    p = h.z.shape[1]
    start = np.concatenate([np.zeros(p), [0.0, np.log(0.4), np.log(0.6), 0.0]])
    start[0] = np.log(max(float(h.k.mean()), 1e-3))
    full = minimize(_negloglik, start, args=(h,), method="L-BFGS-B")

    def without_selection(t: np.ndarray) -> float:
        return _negloglik(np.insert(t, p, 0.0), h)

    null = minimize(without_selection, np.delete(full.x, p), method="L-BFGS-B")
    lr = float(2.0 * (null.fun - full.fun))
    theta = full.x
    centre = float(_posterior_mean(theta, Households(h.z[h.m > 0], h.k[h.m > 0], h.s1[h.m > 0], h.s2[h.m > 0],
                                                     h.m[h.m > 0])).mean())
    cap = MAX_SHIFT_SD * max(float(residual_sd), 1e-6)
    beta, tau = float(theta[p]), float(np.exp(theta[p + 1]))
    # L-BFGS may stop short of its tolerance on a flat likelihood and still sit at the optimum: the
    # likelihood-ratio test, not the optimiser's flag, decides
    applied = bool(np.isfinite(full.fun) and np.isfinite(null.fun)) and lr >= MIN_LR and beta < 0
    fitted = UnansweredShift(tuple(float(v) for v in theta), centre, n, answering, lr, cap, applied, "",
                             predicted_centre, True)
    if not applied:
        why = (f"answer counts do not fall with satisfaction (beta {beta:+.3f}, likelihood ratio {lr:.1f} "
               f"< {MIN_LR} or beta >= 0): no shift")
        return replace(fitted, applied=False, reason=why)
    unanswered = h.k == 0
    mean_shift = float(fitted._unanswered(h.z[unanswered]).mean()) if unanswered.any() else 0.0
    why = (f"answers fall with satisfaction (beta {beta:+.3f} per point of log answer rate, tau {tau:.3f}, "
           f"likelihood ratio {lr:.1f}) on {n} households ({answering} answering): households without an "
           f"answer shifted by {mean_shift:+.3f} on average")
    return replace(fitted, reason=why)
