"""Validation that measures foresight: the household x time split, its K-fold fallback, the leak
check, and the plain baseline."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta

from ucx_spark.models import validation
from ucx_spark.models.baseline import fit_linear
from ucx_spark.models.labels import LabelLeakError
from ucx_spark.models.metrics import answer_scores, binary_scores
from ucx_spark.models.spec import FeatureSpec

AS_OF = [date(2022, 1, 31) + relativedelta(months=i, day=31) for i in range(9)]
HORIZON = 3


def _labelled(spark, households: int = 400, seed: int = 3) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """households x 9 month-end as-of dates, a 3-month label window, a planted linear signal; the
    household buckets from the same Spark expression training uses."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(households):
        base = float(rng.normal())
        for d in AS_OF:
            x1 = base + float(rng.normal(scale=0.3))
            x2 = float(rng.normal())
            p = 1 / (1 + np.exp(-(2.0 * x1 - 1.0 * x2)))
            rows.append((f"hh{h:04d}", d, d + relativedelta(months=HORIZON, day=31), x1, x2,
                         float(rng.random() < p), float(1.0 + 4.0 / (1 + np.exp(-x1)))))
    df = spark.createDataFrame(
        rows, "household_id string, _time date, _window_end date, x1 double, x2 double, label double, csat double"
    )
    return df.withColumn("_bucket", validation.household_bucket(42)).toPandas()


def test_split_dates_purges_training_windows_that_reach_validation() -> None:
    ends = {d: d + relativedelta(months=HORIZON, day=31) for d in AS_OF}
    scheme, train, valid = validation.split_dates(ends)
    assert scheme == validation.PURGED
    assert valid == tuple(AS_OF[-3:])  # the last third
    assert train == tuple(AS_OF[:4])  # windows ending on or before 2022-07-31 (embargo of the horizon)
    assert all(ends[d] <= valid[0] for d in train)
    # a history shorter than one horizon: nothing survives the purge -> household split over all dates
    short = {d: d + relativedelta(months=12) for d in AS_OF[:3]}
    assert validation.split_dates(short) == (validation.UNPURGED, tuple(AS_OF[:3]), tuple(AS_OF[:3]))
    # the validation start moves later until a training date survives
    two = {AS_OF[0]: AS_OF[2], AS_OF[1]: AS_OF[4], AS_OF[2]: AS_OF[5]}
    assert validation.split_dates(two) == (validation.PURGED, (AS_OF[0],), (AS_OF[2],))


def test_honest_split_keeps_validation_households_and_their_future_out_of_training(spark) -> None:
    frame = _labelled(spark)
    split = validation.honest_split(frame, task="binary")
    assert split.scheme == validation.PURGED
    train_hh, valid_hh = set(frame.loc[split.train, "household_id"]), set(frame.loc[split.valid, "household_id"])
    assert train_hh and valid_hh and not train_hh & valid_hh
    assert 50 <= len(valid_hh) <= 110  # about one in five of 400
    assert frame.loc[split.valid, "_time"].min() == AS_OF[-3]
    assert frame.loc[split.train, "_window_end"].max() <= AS_OF[-3]
    assert set(frame.loc[split.train, "_time"]) == set(AS_OF[:4])
    validation.check_split(frame, split)  # clean: no error
    assert split.params()["validation_scheme"] == validation.PURGED


def test_too_few_validation_rows_fall_back_to_grouped_kfold(spark) -> None:
    frame = _labelled(spark, households=60)
    split = validation.honest_split(frame, task="binary")
    assert split.scheme == validation.KFOLD and split.train.all() and split.valid.all()
    assert "too few to judge" in split.reason and "grouped by household" in split.reason
    # every household sits in exactly one fold
    assert frame.groupby("household_id")["_bucket"].nunique().max() == 1
    assert sorted(np.unique(split.folds)) == [0, 1, 2, 3, 4]
    validation.check_split(frame, split)


def test_leak_check_fails_when_training_sees_a_validation_household_or_its_future(spark) -> None:
    frame = _labelled(spark)
    split = validation.honest_split(frame, task="binary")
    times = frame["_time"].to_numpy()
    start = AS_OF[-3]
    # the old out-of-time split: every household trains on the earlier dates
    leaky = validation.Split(split.scheme, times < start, split.valid, split.folds, split.train_dates, split.valid_dates)
    with pytest.raises(LabelLeakError) as err:
        validation.check_split(frame, leaky)
    assert "shared_households" in str(err.value) and "window_after_validation_start" in str(err.value)
    # households apart, but training label windows reach into the validation period
    unpurged = validation.Split(split.scheme, (frame["_bucket"].to_numpy() != 0) & (times < start), split.valid,
                                split.folds, split.train_dates, split.valid_dates)
    with pytest.raises(LabelLeakError, match="window_after_validation_start"):
        validation.check_split(frame, unpurged)


def test_baseline_learns_the_planted_linear_signal(spark) -> None:
    frame = _labelled(spark)
    split = validation.honest_split(frame, task="binary")
    frame.loc[frame["household_id"] == "hh0001", "x1"] = np.nan  # missing values take the training mean
    spec = FeatureSpec(("x1", "x2"), task="binary")
    x = spec.matrix(frame)
    base = fit_linear(spec, x[split.train], frame.loc[split.train, "label"].to_numpy())
    assert base.spec.kind == "linear"
    pred = base.predict(frame.loc[split.valid])
    assert len(pred.score) == int(split.valid.sum()) and np.isfinite(pred.score).all()
    assert binary_scores(frame.loc[split.valid, "label"].to_numpy(), pred.score)["auc"] > 0.75
    reg_spec = FeatureSpec(("x1", "x2"), task="regression", score_min=1.0, score_max=5.0)
    reg = fit_linear(reg_spec, x[split.train], frame.loc[split.train, "csat"].to_numpy())
    reg_pred = reg.predict(frame.loc[split.valid])
    assert answer_scores(frame.loc[split.valid, "csat"].to_numpy(), reg_pred)["spearman"] > 0.9
    assert reg_pred.score.min() >= 1.0 and reg_pred.score.max() <= 5.0
    # the contributions are coefficient x standardised value and sum, with the intercept, to the margin
    contribs, names = reg.source_contributions(frame.loc[split.valid].head(5))
    assert names == ["x1", "x2"]
    raw = reg.raw(spec.matrix(frame.loc[split.valid].head(5)))
    np.testing.assert_allclose(contribs.sum(axis=1) + reg.params.intercept, raw)


def test_training_keeps_rows_with_enough_history_and_compares_full_history_rows_with_scoring(spark) -> None:
    from ucx_spark.models import datasets

    rows = [(f"h{i}", 30 + (i % 12) * 30) for i in range(600)]  # history_days 30..360, 50 rows each
    rows += [(f"f{i}", 365) for i in range(200)]
    df = spark.createDataFrame(rows, "household_id string, history_days int")
    notes: dict = {}
    kept = datasets.with_enough_history(df, notes)
    # 30 and 60 days are left out (100 rows); 90..360 and the full year stay, marked by history_days
    assert kept.count() == 700 and kept.filter("history_days < 90").count() == 0
    assert notes["history_rule"].startswith("rows with history_days >= 90 (700 of 800; 200 with a full year")
    young: dict = {}
    assert datasets.with_enough_history(df.filter("history_days < 120").limit(300), young).count() == 150
    assert young["history_rule"].startswith("all rows: only 50 of 150")  # a young utility keeps every row
    pdf = kept.toPandas()
    comparable, which = datasets.comparable_rows(pdf)
    assert which == "full-history" and len(comparable) == 200 and (comparable["history_days"] == 365).all()
    few_pdf = pdf[pdf["history_days"] < 365].head(100)
    few, which_few = datasets.comparable_rows(pd.concat([few_pdf, comparable.head(10)]))
    assert which_few == "all" and len(few) == 110  # too few full-history rows to compare on their own
    train = pd.DataFrame({"history_days": [r[1] for r in rows], "same": np.arange(len(rows)) % 7})
    score = pd.DataFrame({"history_days": [365] * 50 + [364] * 50, "same": np.arange(100) % 7})
    gap, column = datasets.distribution_gap(train, score, ["history_days", "same"])
    assert column == "history_days" and gap > 1.0
    assert datasets.distribution_gap(train[train["history_days"] == 365], score, ["history_days", "same"])[0] < 0.5
