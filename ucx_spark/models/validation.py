"""Validation that measures foresight: households and time split together.

A household model is used on households it has not been trained on, for a
future it has not seen. The split copies that:

- **households**: a fixed fifth of the households (``xxhash64(household_id,
  seed) % 5 == 0``, reproducible) validate; they never appear in training, at
  any as-of date, so no validation (household, label event) pair can be
  visible to training;
- **time**: the validation rows are those households' rows at the latest
  usable as-of dates (the last third, at least one); training keeps only the
  as-of dates whose label window ends on or before the first validation as-of
  date (purged: an embargo of one horizon), so no training label looks into
  the period the validation predicts.

When the history is shorter than one horizon (no training date survives the
purge), the split falls back to the household split over every as-of date and
says so (scheme ``household_holdout_unpurged``). Both are recorded on the
MLflow run (scheme, dates, sizes); ``check_split`` raises
``labels.LabelLeakError`` on a split that breaks either rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.models.labels import LabelLeakError

PURGED = "household_time_purged"
UNPURGED = "household_holdout_unpurged"
HOUSEHOLD_BUCKETS = 5  # one household in five validates


@dataclass(frozen=True)
class Split:
    train_df: DataFrame
    valid_df: DataFrame
    scheme: str  # PURGED | UNPURGED
    train_dates: tuple[date, ...]
    valid_dates: tuple[date, ...]

    @property
    def valid_start(self) -> date:
        return self.valid_dates[0]

    def params(self) -> dict[str, str]:
        """What the MLflow run records about the split."""
        return {
            "validation_scheme": self.scheme,
            "validation_households": f"xxhash64(household_id, seed) % {HOUSEHOLD_BUCKETS} == 0",
            "train_as_of_dates": ",".join(str(d) for d in self.train_dates)[:500],
            "valid_as_of_dates": ",".join(str(d) for d in self.valid_dates)[:500],
            "purge": (
                f"training label windows end on or before {self.valid_start}"
                if self.scheme == PURGED
                else "none: the history is shorter than one label horizon"
            ),
        }


def is_validation_household(seed: int) -> Column:
    return (F.abs(F.xxhash64(F.col("household_id"), F.lit(seed))) % HOUSEHOLD_BUCKETS) == 0


def split_dates(window_ends: dict[date, date]) -> tuple[str, tuple[date, ...], tuple[date, ...]]:
    """(scheme, training as-of dates, validation as-of dates) from each as-of date's latest
    label-window end. Validation starts at the last third of the dates (at least one) and moves
    later until some training date's window ends on or before it."""
    dates = sorted(window_ends)
    if not dates:
        raise ValueError("no as-of dates to split")
    first = len(dates) - max(1, len(dates) // 3)
    for start in range(first, len(dates)):
        train = tuple(d for d in dates[:start] if window_ends[d] <= dates[start])
        if train:
            return PURGED, train, tuple(dates[start:])
    return UNPURGED, tuple(dates), tuple(dates)


def label_window_ends(labels_df: DataFrame) -> dict[date, date]:
    """Each as-of date's latest label-window end (one small aggregation: a row per as-of date)."""
    return {
        r["as_of_date"]: r["window_end"]
        for r in labels_df.groupBy("as_of_date").agg(F.max("window_end").alias("window_end")).collect()
    }


def honest_split(labelled_df: DataFrame, window_ends: dict[date, date], *, seed: int) -> Split:
    """Split ``labelled_df`` (household_id, as_of_date, window_end, features, label) as the
    module doc says; ``window_ends`` from ``label_window_ends`` of its labels picks the dates."""
    scheme, train_dates, valid_dates = split_dates(window_ends)
    valid = is_validation_household(seed)
    return Split(
        train_df=labelled_df.filter(~valid & F.col("as_of_date").isin(list(train_dates))),
        valid_df=labelled_df.filter(valid & F.col("as_of_date").isin(list(valid_dates))),
        scheme=scheme,
        train_dates=train_dates,
        valid_dates=valid_dates,
    )


def split_violations(train_df: DataFrame, valid_df: DataFrame, *, scheme: str) -> dict[str, int]:
    """Counts of what would let training see validation: ``shared_households`` (a validation
    household with any training row) and, for a purged split, ``window_after_validation_start``
    (training rows whose label window ends after the first validation as-of date)."""
    shared = train_df.select("household_id").distinct().join(valid_df.select("household_id").distinct(), "household_id")
    out = {"shared_households": shared.count()}
    if scheme == PURGED:
        start = valid_df.agg(F.min("as_of_date")).first()[0]
        out["window_after_validation_start"] = (
            0 if start is None else train_df.filter(F.col("window_end") > F.lit(start)).count()
        )
    return out


def check_split(train_df: DataFrame, valid_df: DataFrame, *, scheme: str) -> None:
    """Raise LabelLeakError naming each rule the split breaks (see ``split_violations``)."""
    bad = {k: n for k, n in split_violations(train_df, valid_df, scheme=scheme).items() if n}
    if bad:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(bad.items()))
        raise LabelLeakError(f"validation is visible to training ({scheme}: {detail})")
