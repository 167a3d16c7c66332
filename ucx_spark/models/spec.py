"""Which columns of gold/household_features a model uses, and how they become a matrix.

``gold/household_features`` is built elsewhere and grows over time, so features
are chosen by type: numeric and boolean columns are features (cast to double,
null stays missing for the trees), string columns with few levels are one-hot
encoded (levels learned on training data; an unseen or null value is all
zeros), high-cardinality strings, dates and the ids in ``EXCLUDED`` are
dropped. The same ``FeatureSpec`` prepares Spark DataFrames for distributed
training and pandas batches for scoring, so the two can never disagree; it is
saved with the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# ids, keys and dates are never features; label-like names guard against a
# feature table that ever carries a future outcome.
EXCLUDED: frozenset[str] = frozenset(
    {
        "household_id",
        "as_of_date",
        "account_id",
        "customer_id",
        "premise_id",
        "meter_id",
        "meter_key",
        "label",
        "label_event_date",
        "window_start",
        "window_end",
        "responded",
        "n_responses",
        "weight",
        # Not point in time: silver/accounts keeps only the current row, so rate_plan
        # is today's rate, not the as-of date's. An EV rate switch after D shows at D
        # and leaks the ev_adoption label (measured: it was the first driver of 584 of
        # 601 households; truth AUC 0.69 with it, 0.73 without, validation 0.99 both).
        "rate_plan",
    }
)
MAX_LEVELS = 20
NUMERIC_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType, T.BooleanType)


@dataclass(frozen=True)
class FeatureSpec:
    """Source columns and their encoding; ``encoded`` names the matrix columns in order."""

    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # binary (a probability) | regression (a clipped expected value) | ordinal (an expected value
    # on integer answers score_min..score_max: a regression whose residual spread ``residual_sd``
    # gives each answer's probability) | multiclass (one probability per answer)
    task: str = "binary"
    score_min: float | None = None
    score_max: float | None = None
    residual_sd: float | None = None
    kind: str = "xgboost"  # the predictor: xgboost | linear | blend (models/predictor.py)
    # survey models: the shift of households without an answer yet (models/nonresponse.py), JSON
    unanswered: str | None = None
    # a blend (kind "blend"): intercept, booster weight, linear weight (the mean calibrated on
    # out-of-fold predictions: train.calibrate_blend); None: the plain mean of the two
    blend_weights: tuple[float, float, float] | None = None
    encoded: tuple[str, ...] = field(init=False)
    sources: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        encoded = list(self.numeric)
        sources = list(self.numeric)
        for i, (name, levels) in enumerate(self.categorical):
            for j, _level in enumerate(levels):
                encoded.append(f"_cat{i}_{j}")
                sources.append(name)
        object.__setattr__(self, "encoded", tuple(encoded))
        object.__setattr__(self, "sources", tuple(sources))

    @property
    def input_columns(self) -> list[str]:
        """Raw feature columns the model reads (its signature)."""
        return [*self.numeric, *(name for name, _ in self.categorical)]

    @property
    def feature_names(self) -> list[str]:
        """Human-readable matrix column names (``col=level`` for one-hot columns)."""
        names = list(self.numeric)
        for name, levels in self.categorical:
            names.extend(f"{name}={level}" for level in levels)
        return names

    def to_json(self) -> str:
        return json.dumps(
            {
                "numeric": list(self.numeric),
                "categorical": [[name, list(levels)] for name, levels in self.categorical],
                "task": self.task,
                "score_min": self.score_min,
                "score_max": self.score_max,
                "residual_sd": self.residual_sd,
                "kind": self.kind,
                "unanswered": self.unanswered,
                "blend_weights": None if self.blend_weights is None else list(self.blend_weights),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        data = json.loads(text)
        return cls(
            numeric=tuple(data["numeric"]),
            categorical=tuple((name, tuple(levels)) for name, levels in data["categorical"]),
            task=data["task"],
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            residual_sd=data.get("residual_sd"),
            kind=data.get("kind", "xgboost"),
            unanswered=data.get("unanswered"),
            blend_weights=None if data.get("blend_weights") is None else tuple(data["blend_weights"]),
        )

    @property
    def classes(self) -> np.ndarray:
        """The integer answers of an ordinal or multiclass model (score_min..score_max)."""
        return np.arange(int(self.score_min or 0), int(self.score_max or 0) + 1, dtype=np.float64)

    # ----------------------------------------------------------------- Spark side
    def spark_columns(self) -> list[Column]:
        """Matrix columns as Spark expressions (double; null numeric stays null = missing)."""
        cols = [F.col(name).cast("double").alias(enc) for name, enc in zip(self.numeric, self.encoded, strict=False)]
        k = len(self.numeric)
        for name, levels in self.categorical:
            for level in levels:
                cols.append(F.when(F.col(name) == F.lit(level), 1.0).otherwise(0.0).alias(self.encoded[k]))
                k += 1
        return cols

    def with_matrix(self, df: DataFrame, *keep: str) -> DataFrame:
        """``keep`` columns plus the encoded matrix columns."""
        return df.select(*keep, *self.spark_columns())

    # ---------------------------------------------------------------- pandas side
    def matrix(self, pdf: pd.DataFrame) -> np.ndarray:
        """float32 matrix of a pandas batch holding ``input_columns`` (NaN = missing)."""
        out = np.empty((len(pdf), len(self.encoded)), dtype=np.float32)
        for j, name in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(pdf[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
        k = len(self.numeric)
        for name, levels in self.categorical:
            values = pdf[name].astype("object")
            for level in levels:
                out[:, k] = (values == level).to_numpy(dtype=np.float32)
                k += 1
        return out

    def unanswered_shift(self, x: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray | float:
        """Per row of the matrix ``x``: the value added for a household without a survey answer
        (``nonresponse.UnansweredShift``), 0 without one; ``predicted``: the model's value of each
        row before the shift (a selection model whose answer rate reads it needs it)."""
        from ucx_spark.models.nonresponse import EXPOSURE, RESPONSES, UnansweredShift

        shift = UnansweredShift.from_json(self.unanswered)
        if shift is None or not shift.applied or RESPONSES not in self.numeric:
            return 0.0

        def column(name: str) -> np.ndarray:
            return x[:, self.numeric.index(name)] if name in self.numeric else np.zeros(len(x))

        return shift.shift(column(RESPONSES), *(column(name) for name in EXPOSURE), predicted=predicted)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Clip regression outputs to the score scale (CSAT is 1-5)."""
        if self.score_min is None and self.score_max is None:
            return raw
        return np.clip(raw, self.score_min, self.score_max)


def candidate_columns(schema: T.StructType, *, exclude: frozenset[str] = EXCLUDED) -> tuple[list[str], list[str]]:
    """(numeric-or-boolean columns, string columns) of a feature table, minus ``exclude``."""
    numeric: list[str] = []
    strings: list[str] = []
    for f in schema.fields:
        if f.name in exclude or f.name.startswith("_"):
            continue
        if isinstance(f.dataType, NUMERIC_TYPES):
            numeric.append(f.name)
        elif isinstance(f.dataType, T.StringType):
            strings.append(f.name)
    return numeric, strings


def fit_spec_pandas(
    train_pdf: pd.DataFrame,
    schema: T.StructType,
    *,
    task: str,
    score_min: float | None = None,
    score_max: float | None = None,
    exclude: frozenset[str] = EXCLUDED,
    max_levels: int = MAX_LEVELS,
) -> FeatureSpec:
    """Choose features on the training rows (handed to pandas; ``schema`` their Spark schema):
    numeric/boolean columns, and string columns with 2..``max_levels`` levels (by frequency)."""
    numeric, strings = candidate_columns(schema, exclude=exclude)
    numeric = [c for c in numeric if c in train_pdf.columns]
    categorical: list[tuple[str, tuple[str, ...]]] = []
    for s in strings:
        if s not in train_pdf.columns:
            continue
        counts = train_pdf[s].dropna().astype(str).value_counts()
        if 2 <= len(counts) <= max_levels:
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            categorical.append((s, tuple(v for v, _ in ordered)))
    return FeatureSpec(tuple(numeric), tuple(categorical), task=task, score_min=score_min, score_max=score_max)
