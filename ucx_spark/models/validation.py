"""Validation that measures foresight: households and time split together.

A household model is used on households it has not been trained on, for a
future it has not seen. The split copies that, on the model's training rows
(a bounded pandas frame: ``datasets.py``), each with its household's bucket
(``xxhash64(household_id, seed) % 5``, reproducible), its time (the as-of
date; for survey models the response date) and the end of its label window
(the response date itself for survey models):

- **households**: bucket 0 validates; those households never appear in
  training, at any date, so no validation (household, label event) pair can
  be visible to training;
- **time**: the validation rows are those households' rows at the latest
  usable times (the last third, at least one); training keeps only the times
  whose label windows end on or before the first validation time (purged: an
  embargo of one horizon), so no training label looks into the period the
  validation predicts.

When the history is shorter than one horizon (no training time survives the
purge), the split falls back to the household split over every time and says
so (``household_holdout_unpurged``). When the validation rows are too few to
judge anything (fewer than ``MIN_VALID_ROWS``, or a class with fewer than
``MIN_VALID_POSITIVES`` rows), selection noise would pass for skill: the model
is then judged by grouped K-fold over households (the buckets are the folds)
on every usable row, out-of-fold (``grouped_kfold``), and the run says why.
``check_split`` raises ``labels.LabelLeakError`` on a split that breaks a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from ucx_spark.models.labels import LabelLeakError

PURGED = "household_time_purged"
UNPURGED = "household_holdout_unpurged"
KFOLD = "grouped_kfold"
HOUSEHOLD_BUCKETS = 5  # one household in five validates; the buckets are the K-fold folds
MIN_VALID_ROWS = 200
MIN_VALID_POSITIVES = 15


def household_bucket(seed: int) -> Column:
    """The household's bucket 0..4 (``_bucket``): 0 validates under the holdout scheme."""
    return (F.abs(F.xxhash64(F.col("household_id"), F.lit(seed))) % HOUSEHOLD_BUCKETS).cast("int")


def split_dates(window_ends: dict[date, date]) -> tuple[str, tuple[date, ...], tuple[date, ...]]:
    """(scheme, training times, validation times) from each time's latest label-window end.
    Validation starts at the last third of the times (at least one) and moves later until some
    training time's window ends on or before it."""
    dates = sorted(window_ends)
    if not dates:
        raise ValueError("no as-of dates to split")
    first = len(dates) - max(1, len(dates) // 3)
    for start in range(first, len(dates)):
        train = tuple(d for d in dates[:start] if window_ends[d] <= dates[start])
        if train:
            return PURGED, train, tuple(dates[start:])
    return UNPURGED, tuple(dates), tuple(dates)


@dataclass(frozen=True)
class Split:
    """Boolean row masks of the model frame and what the run records about them."""

    scheme: str  # PURGED | UNPURGED | KFOLD
    train: np.ndarray  # holdout: training rows; K-fold: every row judged out of fold
    valid: np.ndarray  # holdout: validation rows; K-fold: same as train
    folds: np.ndarray  # per row, its fold (the bucket)
    train_dates: tuple[date, ...]
    valid_dates: tuple[date, ...]
    reason: str = ""

    @property
    def is_kfold(self) -> bool:
        return self.scheme == KFOLD

    def params(self) -> dict[str, str]:
        purge = {
            PURGED: f"training label windows end on or before {self.valid_dates[0] if self.valid_dates else '-'}",
            UNPURGED: "none: the history is shorter than one label horizon",
            KFOLD: f"out-of-fold over {HOUSEHOLD_BUCKETS} household folds",
        }[self.scheme]
        return {
            "validation_scheme": self.scheme,
            "validation_households": f"xxhash64(household_id, seed) % {HOUSEHOLD_BUCKETS} == 0"
            if not self.is_kfold else f"every household, {HOUSEHOLD_BUCKETS} folds by xxhash64(household_id, seed)",
            "train_as_of_dates": _dates_text(self.train_dates),
            "valid_as_of_dates": _dates_text(self.valid_dates),
            "purge": purge,
            "validation_note": self.reason or "none",
        }


def _dates_text(dates: tuple[date, ...]) -> str:
    if len(dates) > 8:
        return f"{len(dates)} dates {dates[0]} .. {dates[-1]}"
    return ",".join(str(d) for d in dates)


def honest_split(frame: pd.DataFrame, *, task: str, min_valid_rows: int = MIN_VALID_ROWS) -> Split:
    """The split of a model frame with ``household_id``, ``_bucket``, ``_time``, ``_window_end``
    and ``label`` (see the module doc)."""
    times = pd.to_datetime(frame["_time"]).dt.date
    ends = pd.to_datetime(frame["_window_end"]).dt.date
    window_ends = ends.groupby(times).max().to_dict()
    scheme, train_dates, valid_dates = split_dates(window_ends)
    bucket = frame["_bucket"].to_numpy()
    in_train, in_valid = times.isin(set(train_dates)).to_numpy(), times.isin(set(valid_dates)).to_numpy()
    valid = (bucket == 0) & in_valid
    train = (bucket != 0) & in_train
    labels = frame.loc[valid, "label"]
    too_few = int(valid.sum()) < min_valid_rows
    if task == "binary":
        too_few = too_few or min(int((labels == 1).sum()), int((labels == 0).sum())) < MIN_VALID_POSITIVES
    if not too_few and int(train.sum()) > 0:
        return Split(scheme, train, valid, bucket, train_dates, valid_dates)
    every = np.ones(len(frame), dtype=bool)
    reason = (
        f"the {scheme} validation set has {int(valid.sum())} rows ({labels.nunique()} label values, "
        f"{frame.loc[valid, 'household_id'].nunique()} households): too few to judge; judged by "
        f"{HOUSEHOLD_BUCKETS}-fold cross-validation grouped by household on all {len(frame)} rows"
    )
    all_dates = tuple(sorted(window_ends))
    return Split(KFOLD, every, every, bucket, all_dates, all_dates, reason)


def split_violations(frame: pd.DataFrame, split: Split) -> dict[str, int]:
    """What would let training see validation: ``shared_households`` (a validation household
    with a training row; for K-fold, a household in two folds) and, for a purged split,
    ``window_after_validation_start`` (training rows whose label window ends after the first
    validation time)."""
    if split.is_kfold:
        per_household = frame.groupby("household_id")["_bucket"].nunique()
        return {"shared_households": int((per_household > 1).sum())}
    train_h = set(frame.loc[split.train, "household_id"])
    valid_h = set(frame.loc[split.valid, "household_id"])
    out = {"shared_households": len(train_h & valid_h)}
    if split.scheme == PURGED and split.valid.any():
        start = pd.to_datetime(frame.loc[split.valid, "_time"]).min()
        out["window_after_validation_start"] = int(
            (pd.to_datetime(frame.loc[split.train, "_window_end"]) > start).sum())
    return out


def check_split(frame: pd.DataFrame, split: Split) -> None:
    """Raise LabelLeakError naming each rule the split breaks (see ``split_violations``)."""
    bad = {k: n for k, n in split_violations(frame, split).items() if n}
    if bad:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(bad.items()))
        raise LabelLeakError(f"validation is visible to training ({split.scheme}: {detail})")
