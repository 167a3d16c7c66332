"""Validation that measures foresight: the household x time split, its leak check, the plain
baseline and the rule that a champion must beat it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from dateutil.relativedelta import relativedelta
from pyspark.sql import functions as F

from ucx_spark.models import registry, validation
from ucx_spark.models.baseline import fit_baseline
from ucx_spark.models.labels import LabelLeakError
from ucx_spark.models.spec import fit_spec
from ucx_spark.models.train import binary_metrics, regression_metrics

AS_OF = [date(2022, 1, 31) + relativedelta(months=i, day=31) for i in range(9)]
HORIZON = 3


def _labelled(spark, households: int = 200, seed: int = 3):  # type: ignore[no-untyped-def]
    """households x 9 month-end as-of dates, a 3-month label window, a planted linear signal."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(households):
        base = float(rng.normal())
        for d in AS_OF:
            x1 = base + float(rng.normal(scale=0.3))
            x2 = float(rng.normal())
            p = 1 / (1 + np.exp(-(2.0 * x1 - 1.0 * x2)))
            rows.append((f"hh{h:04d}", d, d + relativedelta(months=HORIZON, day=31), x1, x2, int(rng.random() < p),
                         float(1.0 + 4.0 / (1 + np.exp(-x1)))))
    return spark.createDataFrame(
        rows, "household_id string, as_of_date date, window_end date, x1 double, x2 double, label int, csat double"
    )


def _split(df):  # type: ignore[no-untyped-def]
    return validation.honest_split(df, validation.label_window_ends(df), seed=42)


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
    split = _split(_labelled(spark))
    train_hh = {r[0] for r in split.train_df.select("household_id").distinct().collect()}
    valid_hh = {r[0] for r in split.valid_df.select("household_id").distinct().collect()}
    assert train_hh and valid_hh and not train_hh & valid_hh
    assert 20 <= len(valid_hh) <= 60  # about one in five of 200
    assert split.valid_df.agg(F.min("as_of_date")).first()[0] == AS_OF[-3]
    assert split.train_df.agg(F.max("window_end")).first()[0] <= AS_OF[-3]
    assert {r[0] for r in split.train_df.select("as_of_date").distinct().collect()} == set(AS_OF[:4])
    validation.check_split(split.train_df, split.valid_df, scheme=split.scheme)  # clean: no error
    assert split.params()["validation_scheme"] == validation.PURGED


def test_leak_check_fails_when_training_sees_a_validation_household_or_its_future(spark) -> None:
    df = _labelled(spark, households=30)
    split = _split(df)
    # the old out-of-time split: every household trains on the earlier dates
    leaky_train = df.filter(F.col("as_of_date") < F.lit(split.valid_start))
    with pytest.raises(LabelLeakError) as err:
        validation.check_split(leaky_train, split.valid_df, scheme=split.scheme)
    assert "shared_households" in str(err.value) and "window_after_validation_start" in str(err.value)
    # households apart, but training label windows reach into the validation period
    unpurged = df.filter(~validation.is_validation_household(42) & (F.col("as_of_date") < F.lit(split.valid_start)))
    with pytest.raises(LabelLeakError, match="window_after_validation_start"):
        validation.check_split(unpurged, split.valid_df, scheme=split.scheme)
    validation.check_split(split.train_df, split.valid_df, scheme=split.scheme)


def test_baseline_learns_the_planted_linear_signal(spark) -> None:
    split = _split(_labelled(spark))
    train_df = split.train_df.withColumn("x1", F.when(F.col("household_id") == "hh0001", None).otherwise(F.col("x1")))
    spec = fit_spec(train_df.drop("label", "csat", "window_end"), task="binary")
    assert set(spec.numeric) == {"x1", "x2"}
    base = fit_baseline(spec, train_df, split.valid_df, task="binary")
    metrics = binary_metrics(base.valid_pred_df)
    assert metrics["n"] == split.valid_df.count()  # every validation row scored (missing values imputed)
    assert metrics["auc"] > 0.75
    reg = fit_baseline(spec, train_df.withColumn("label", F.col("csat")), split.valid_df.withColumn("label", F.col("csat")),
                       task="regression", score_min=1.0, score_max=5.0)
    rmetrics = regression_metrics(reg.valid_pred_df)
    assert rmetrics["spearman"] > 0.9
    bounds = reg.valid_pred_df.agg(F.min("score"), F.max("score")).first()
    assert bounds[0] >= 1.0 and bounds[1] <= 5.0


def test_a_version_that_does_not_beat_the_baseline_never_becomes_champion(store_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    name = registry.registered_name("payment_risk")
    client.create_registered_model(name)
    v1, v2, v3 = (str(client.create_model_version(name, source=str(tmp_path / f"m{i}")).version) for i in range(3))
    # no champion yet, but below the baseline: challenger, and no champion alias is set
    first = registry.promote(client, name, v1, metric="auc", new_value=0.70, evaluate=lambda _: 0.0, baseline_value=0.72)
    assert first.alias == "challenger" and "baseline" in first.reason
    assert registry.current_champion(client, name) is None
    assert client.get_model_version(name, v1).tags["baseline_auc_same_data"] == "0.720000"
    # beats the baseline: champion
    second = registry.promote(client, name, v2, metric="auc", new_value=0.80, evaluate=lambda _: 0.0, baseline_value=0.72)
    assert second.alias == "champion"
    # beats the champion on the same rows but not the baseline there: stays challenger
    third = registry.promote(client, name, v3, metric="auc", new_value=0.85, evaluate=lambda _: 0.75, baseline_value=0.86)
    assert third.alias == "challenger"
    assert registry.current_champion(client, name) == v2
    # an undefined baseline (e.g. one class among the validation rows) cannot judge: skipped, said
    v4 = str(client.create_model_version(name, source=str(tmp_path / "m4")).version)
    fourth = registry.promote(client, name, v4, metric="auc", new_value=0.90, evaluate=lambda _: 0.75,
                              baseline_value=float("nan"))
    assert fourth.alias == "champion" and "undefined" in fourth.reason
