"""What a registered household model computes, whatever learned it: scores, answer
probabilities and per-feature contributions of a pandas batch.

Three kinds (``FeatureSpec.kind``), each serialised to bytes so a model travels
to Spark workers as one broadcast:

- ``xgboost``: a booster; contributions are its exact TreeSHAP values
  (``pred_contribs``);
- ``linear``: the plain baseline (``baseline.py``): standardised columns (a
  signed log for wide-ranging ones, missing = training mean) times
  coefficients; contributions are coefficient x standardised value, the
  exact SHAP values of a linear model with independent features;
- ``blend``: a booster and a linear model fitted on the same rows, on one scale
  (the value, or the log-odds of a binary model): c + w_b x booster + w_l x
  linear with the weights of ``FeatureSpec.blend_weights`` (their mean,
  calibrated), else their plain mean; its contributions are the same weighting of theirs, so they still add up
  to the score.

Outputs by ``FeatureSpec.task``: ``binary`` a probability (contributions in
log-odds); ``regression`` a value clipped to [score_min, score_max];
``ordinal`` the expected answer over the integers score_min..score_max, each
answer's probability from a normal spread ``residual_sd`` around the model's
value (an ordered probit with the cut points halfway between answers);
``multiclass`` one probability per answer from a softmax booster (its
contributions are the per-class SHAP values weighted by p_k (k - E[answer]),
the first-order effect on the expected answer). For answers on the NPS scale
(0-10) ``p_promoter`` = P(9-10) and ``p_detractor`` = P(0-6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xgboost as xgb

from ucx_spark.models.spec import FeatureSpec

PROMOTER_MIN = 9  # NPS: 9-10 promoters, 0-6 detractors
DETRACTOR_MAX = 6


@dataclass(frozen=True)
class Prediction:
    score: np.ndarray
    p_promoter: np.ndarray | None = None
    p_detractor: np.ndarray | None = None


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(x), dtype=np.float64)


def ordinal_probabilities(values: np.ndarray, *, sd: float, classes: np.ndarray) -> np.ndarray:
    """P(answer = k) for each value (n x len(classes)): a normal of spread ``sd`` around the value,
    cut halfway between answers, the ends open."""
    sd = max(float(sd), 1e-6)
    cuts = (classes[:-1] + classes[1:]) / 2.0
    cdf = _normal_cdf((cuts[None, :] - values[:, None]) / sd)
    lower = np.concatenate([np.zeros((len(values), 1)), cdf], axis=1)
    upper = np.concatenate([cdf, np.ones((len(values), 1))], axis=1)
    return np.clip(upper - lower, 0.0, 1.0)


def answer_prediction(probs: np.ndarray, classes: np.ndarray) -> Prediction:
    """Expected answer and, on the 0-10 scale, promoter/detractor probabilities of class probabilities."""
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
    expected = probs @ classes
    if classes[0] == 0 and classes[-1] == 10:
        return Prediction(expected, probs[:, classes >= PROMOTER_MIN].sum(axis=1),
                          probs[:, classes <= DETRACTOR_MAX].sum(axis=1))
    return Prediction(expected)


class Predictor:
    """A model ready to score pandas batches holding ``spec.input_columns``."""

    spec: FeatureSpec

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The learner's output: margin/value (n,) or class probabilities (n, k)."""
        raise NotImplementedError

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per matrix column contributions to the score's scale (n x encoded), bias dropped."""
        raise NotImplementedError

    def payload(self) -> bytes:
        raise NotImplementedError

    # ------------------------------------------------------------------------------ shared
    def predict_matrix(self, x: np.ndarray) -> Prediction:
        spec = self.spec
        out = self.raw(x)
        if spec.task == "binary":
            return Prediction(out if spec.kind == "xgboost" else 1.0 / (1.0 + np.exp(-out)))
        if spec.task == "multiclass":
            return answer_prediction(out, spec.classes)
        # households without an answer yet (nonresponse.py); the rate of answers reads the value
        out = out + spec.unanswered_shift(x, predicted=np.clip(out, spec.score_min, spec.score_max))
        if spec.task == "ordinal":
            value = np.clip(out, spec.score_min, spec.score_max)
            probs = ordinal_probabilities(value, sd=float(spec.residual_sd or 1.0), classes=spec.classes)
            return answer_prediction(probs, spec.classes)
        return Prediction(spec.finish(out))

    def predict(self, pdf: pd.DataFrame) -> Prediction:
        if len(pdf) == 0:
            empty = np.empty(0, dtype=np.float64)
            return Prediction(empty, empty, empty)
        return self.predict_matrix(self.spec.matrix(pdf))

    def source_contributions(self, pdf: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Contributions per source column of ``gold/household_features`` (one-hot levels summed)."""
        names = list(dict.fromkeys(self.spec.sources))
        if len(pdf) == 0:
            return np.empty((0, len(names))), names
        contribs = self.contributions(self.spec.matrix(pdf))
        index = {name: i for i, name in enumerate(names)}
        out = np.zeros((contribs.shape[0], len(names)))
        for j, source in enumerate(self.spec.sources):
            out[:, index[source]] += contribs[:, j]
        return out, names


class XGBPredictor(Predictor):
    def __init__(self, booster: xgb.Booster, spec: FeatureSpec) -> None:
        self.booster, self.spec = booster, spec

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray, spec: FeatureSpec) -> XGBPredictor:
        booster = xgb.Booster(params={"nthread": 1})
        booster.load_model(bytearray(raw))
        return cls(booster, spec)

    def _dmatrix(self, x: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(x, missing=np.nan, feature_names=list(self.spec.encoded), nthread=1)

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(self._dmatrix(x)).astype(np.float64)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """The untransformed output (log-odds of a binary booster)."""
        return self.booster.predict(self._dmatrix(x), output_margin=True).astype(np.float64)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        contribs = self.booster.predict(self._dmatrix(x), pred_contribs=True).astype(np.float64)
        if self.spec.task != "multiclass":
            return contribs[:, :-1]
        # (n, classes, features + 1): per-class margin SHAP, weighted by each class's effect on E[answer]
        probs = self.raw(x)
        classes = self.spec.classes
        expected = probs @ classes
        weight = probs * (classes[None, :] - expected[:, None])
        return np.einsum("nk,nkf->nf", weight, contribs[:, :, :-1])

    def payload(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))


@dataclass(frozen=True)
class LinearParams:
    """A fitted linear model over terms of matrix columns (the others have coefficient 0).

    A term is a column (signed-log where ``logged``) or, where ``ramp_lo``/``ramp_hi`` are set,
    that column's ramp between two knots: clip((v - lo) / (hi - lo), 0, 1). Ramps of one
    column with coefficients of one sign make a monotone piecewise-linear shape (a threshold,
    a saturation); a column may have several terms. Models saved before ramps existed have none.
    """

    columns: tuple[str, ...]
    means: tuple[float, ...]  # of the transformed term, for missing values and centring
    stds: tuple[float, ...]
    logged: tuple[bool, ...]  # signed log1p before standardising
    coef: tuple[float, ...]
    intercept: float
    ramp_lo: tuple[float | None, ...] | None = None  # None: the term is the column itself
    ramp_hi: tuple[float | None, ...] | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> LinearParams:
        data = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def by_column(self) -> dict[str, float]:
        """Each column's coefficients summed over its terms (ramps of a column share one sign)."""
        out: dict[str, float] = {}
        for name, c in zip(self.columns, self.coef, strict=True):
            out[name] = out.get(name, 0.0) + c
        return out


def _knots(values: tuple[float | None, ...] | None, n: int) -> np.ndarray:
    return np.full(n, np.nan) if values is None else np.array([np.nan if v is None else v for v in values])


def ramp_terms(z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Columns of ``z`` (already signed-log where logged) as terms: ramps where ``lo`` is finite;
    missing values stay missing."""
    out = z.astype(np.float64, copy=True)
    r = np.isfinite(lo)
    if r.any():
        out[:, r] = np.clip((out[:, r] - lo[None, r]) / (hi[None, r] - lo[None, r]), 0.0, 1.0)
    return out


def signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class LinearPredictor(Predictor):
    def __init__(self, params: LinearParams, spec: FeatureSpec) -> None:
        self.params, self.spec = params, spec
        index = {name: j for j, name in enumerate(spec.encoded)}
        self._cols = np.array([index[c] for c in params.columns], dtype=np.int64)
        self._means = np.array(params.means)
        self._stds = np.array(params.stds)
        self._logged = np.array(params.logged, dtype=bool)
        self._coef = np.array(params.coef)
        self._lo = _knots(params.ramp_lo, len(self._cols))
        self._hi = _knots(params.ramp_hi, len(self._cols))
        # term -> matrix column: contributions of a column's terms add up
        self._to_column = np.zeros((len(self._cols), len(spec.encoded)))
        self._to_column[np.arange(len(self._cols)), self._cols] = 1.0

    def standardised(self, x: np.ndarray) -> np.ndarray:
        z = x[:, self._cols].astype(np.float64)
        z[:, self._logged] = signed_log(z[:, self._logged])
        z = ramp_terms(z, self._lo, self._hi)
        z = np.where(np.isnan(z), self._means[None, :], z)
        return (z - self._means[None, :]) / self._stds[None, :]

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.params.intercept + self.standardised(x) @ self._coef

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return (self.standardised(x) * self._coef[None, :]) @ self._to_column

    def payload(self) -> bytes:
        return self.params.to_json().encode("utf-8")


class BlendPredictor(Predictor):
    """A booster and a linear model over the same matrix, weighted (``FeatureSpec.blend_weights``)
    or their plain mean (see the module doc)."""

    def __init__(self, booster: XGBPredictor, linear: LinearPredictor, spec: FeatureSpec) -> None:
        if spec.task == "multiclass":
            raise ValueError("a blend is a mean of values or log-odds: not defined for a multi-class booster")
        self.booster, self.linear, self.spec = booster, linear, spec

    @property
    def weights(self) -> tuple[float, float, float]:
        """Intercept, booster weight, linear weight (the plain mean unless given)."""
        return self.spec.blend_weights or (0.0, 0.5, 0.5)

    def raw(self, x: np.ndarray) -> np.ndarray:
        c, wb, wl = self.weights
        boosted = self.booster.margin(x) if self.spec.task == "binary" else self.booster.raw(x)
        return c + wb * boosted + wl * self.linear.raw(x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        _, wb, wl = self.weights
        return wb * self.booster.contributions(x) + wl * self.linear.contributions(x)

    def payload(self) -> bytes:
        boosted = self.booster.payload()
        return len(boosted).to_bytes(8, "big") + boosted + self.linear.payload()

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray, spec: FeatureSpec) -> BlendPredictor:
        n = int.from_bytes(bytes(raw[:8]), "big")
        booster = XGBPredictor.from_bytes(raw[8:8 + n], replace(spec, kind="xgboost"))
        linear = LinearPredictor(LinearParams.from_json(bytes(raw[8 + n:]).decode("utf-8")), replace(spec, kind="linear"))
        return cls(booster, linear, spec)


def make_predictor(payload: bytes | bytearray, spec: FeatureSpec) -> Predictor:
    """The predictor of ``spec.kind`` from its serialised payload."""
    if spec.kind == "linear":
        return LinearPredictor(LinearParams.from_json(bytes(payload).decode("utf-8")), spec)
    if spec.kind == "xgboost":
        return XGBPredictor.from_bytes(payload, spec)
    if spec.kind == "blend":
        return BlendPredictor.from_bytes(payload, spec)
    raise ValueError(f"unknown model kind {spec.kind!r} (allowed: xgboost, linear, blend)")
