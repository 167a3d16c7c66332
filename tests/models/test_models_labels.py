"""Labels with honest time, leak checks, feature specs, drivers and the champion rule."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.models import labels, registry
from ucx_spark.models.explain import top_drivers
from ucx_spark.models.spec import FeatureSpec, fit_spec_pandas

D = date(2022, 6, 30)
DATA_END = date(2023, 12, 31)


@pytest.fixture
def population_df(spark):
    rows = [(f"h{i}", D) for i in range(1, 8)] + [("h1", date(2023, 6, 30))]
    return spark.createDataFrame(rows, "household_id string, as_of_date date")


def test_ev_labels_window_boundaries_and_at_risk_exclusion(spark, population_df) -> None:
    programs_df = spark.createDataFrame(
        [
            ("h1", "ev_rate", date(2022, 6, 30), None),  # on D: already adopted -> excluded
            ("h2", "ev_rate", date(2022, 7, 1), None),  # D + 1 day -> positive
            ("h3", "ev_charger_rebate", date(2023, 6, 30), None),  # D + 12 months exactly -> positive
            ("h4", "ev_rate", date(2023, 7, 1), None),  # after the window -> negative
            ("h5", "ev_charger_rebate", date(2020, 1, 1), date(2020, 6, 1)),  # ended long ago -> still excluded
            ("h6", "autopay", date(2022, 8, 1), None),  # other program -> negative
            (None, "ev_rate", date(2022, 8, 1), None),  # null household: never joins
        ],
        "household_id string, program string, enrolled_on date, ended_on date",
    )
    out_df = labels.ev_adoption_labels(population_df, programs_df, data_end=DATA_END)
    expected_df = spark.createDataFrame(
        [
            ("h2", D, 1.0, date(2022, 7, 1), date(2022, 7, 1), date(2023, 6, 30)),
            ("h3", D, 1.0, date(2023, 6, 30), date(2022, 7, 1), date(2023, 6, 30)),
            ("h4", D, 0.0, None, date(2022, 7, 1), date(2023, 6, 30)),
            ("h6", D, 0.0, None, date(2022, 7, 1), date(2023, 6, 30)),
            ("h7", D, 0.0, None, date(2022, 7, 1), date(2023, 6, 30)),
        ],
        "household_id string, as_of_date date, label double, label_event_date date, window_start date, window_end date",
    )
    # h1 at 2023-06-30 has no complete 12-month window before DATA_END: dropped too
    assert_df_equality(out_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    labels.check_no_leak(population_df, out_df, data_end=DATA_END)


def test_payment_labels_exclude_households_already_in_collections(spark, population_df) -> None:
    collections_df = spark.createDataFrame(
        [
            ("h1", date(2022, 6, 30), "disconnect_notice"),  # on D: in collections -> excluded
            ("h1", date(2022, 8, 1), "disconnect_notice"),
            ("h2", date(2022, 1, 15), "disconnect"),  # within 6 months before D -> excluded
            ("h3", date(2021, 12, 30), "disconnect_notice"),  # older than 6 months: at risk
            ("h3", date(2022, 12, 30), "disconnect_notice"),  # D + 6 months exactly -> positive
            ("h4", date(2022, 7, 1), "past_due_notice"),  # not a disconnect notice -> negative
            ("h5", date(2023, 1, 1), "disconnect_notice"),  # after the window -> negative
            ("h6", date(2022, 3, 1), "past_due_notice"),  # past-due history stays in the population
        ],
        "household_id string, event_date date, event_type string",
    )
    out_df = labels.payment_risk_labels(population_df, collections_df, data_end=DATA_END)
    got = {(r.household_id, r.as_of_date): (r.label, r.label_event_date) for r in out_df.collect()}
    assert got == {
        ("h1", date(2023, 6, 30)): (0.0, None),  # 2022-08-01 notice is older than 6 months at 2023-06-30
        ("h3", D): (1.0, date(2022, 12, 30)),
        ("h4", D): (0.0, None),
        ("h5", D): (0.0, None),
        ("h6", D): (0.0, None),
        ("h7", D): (0.0, None),
    }
    labels.check_no_leak(population_df, out_df, data_end=DATA_END)


def test_csat_labels_use_local_response_dates_after_as_of(spark, population_df) -> None:
    surveys_df = spark.createDataFrame(
        [
            # 2022-07-01 03:00 UTC is 2022-06-30 22:00 in Chicago: on D, not after it
            ("h1", datetime(2022, 7, 1, 3, 0), 1),
            ("h2", datetime(2022, 7, 1, 12, 0), 4),
            ("h2", datetime(2022, 9, 1, 12, 0), 5),
            ("h3", datetime(2023, 1, 1, 12, 0), 2),  # after D + 6 months
            ("h4", datetime(2022, 8, 1, 12, 0), None),  # no csat
        ],
        "household_id string, responded_at timestamp, csat int",
    )
    out_df = labels.csat_labels(population_df, surveys_df, data_end=DATA_END, time_zone="America/Chicago")
    got = {r.household_id: (r.label, r.responded, r.n_responses) for r in out_df.filter(F.col("as_of_date") == D).collect()}
    assert got["h1"] == (None, 0.0, 0)
    assert got["h2"] == (4.5, 1.0, 2)
    assert got["h3"] == (None, 0.0, 0)
    assert got["h4"] == (None, 0.0, 0)
    assert len(got) == 7  # everybody stays in the CSAT population


def test_check_no_leak_catches_a_label_dated_on_the_as_of_date(spark, population_df) -> None:
    programs_df = spark.createDataFrame(
        [("h2", "ev_rate", D), ("h3", "ev_rate", date(2022, 9, 1))],
        "household_id string, program string, enrolled_on date",
    )
    honest_df = labels.ev_adoption_labels(population_df, programs_df, data_end=DATA_END)
    labels.check_no_leak(population_df, honest_df, data_end=DATA_END)

    # A deliberately leaky builder: counts events from the as-of date itself (>= instead of >).
    leaky_df = (
        population_df.join(programs_df, "household_id", "left")
        .groupBy("household_id", "as_of_date")
        .agg(F.min(F.when(F.col("enrolled_on") >= F.col("as_of_date"), F.col("enrolled_on"))).alias("label_event_date"))
        .withColumn("label", F.col("label_event_date").isNotNull().cast("double"))
        .withColumn("window_start", F.col("as_of_date"))
        .withColumn("window_end", F.add_months("as_of_date", 12))
        .filter(F.col("window_end") <= F.lit(DATA_END))
    )
    counts = labels.leak_violations(population_df, leaky_df, data_end=DATA_END)
    assert counts["label_event_on_or_before_as_of"] == 1  # h2 enrolled on D
    assert counts["window_starts_on_or_before_as_of"] == 7
    with pytest.raises(labels.LabelLeakError, match="label_event_on_or_before_as_of: 1 row"):
        labels.check_no_leak(population_df, leaky_df, data_end=DATA_END)

    # A window running past the data, and a feature dated after its as-of date, are leaks too.
    late_df = honest_df.withColumn("window_end", F.lit(date(2024, 6, 30)))
    with pytest.raises(labels.LabelLeakError, match="window_beyond_data"):
        labels.check_no_leak(population_df, late_df, data_end=DATA_END)
    features_df = population_df.withColumn("last_contact_date", F.date_add("as_of_date", 3))
    with pytest.raises(labels.LabelLeakError, match="feature_date_after_as_of"):
        labels.check_no_leak(features_df, honest_df, data_end=DATA_END)


def test_usable_as_of_dates_need_a_complete_window() -> None:
    dates = [date(2022, 1, 31), date(2022, 6, 30), date(2022, 12, 31)]
    assert labels.usable_as_of_dates(dates, data_end=date(2023, 6, 30), horizon_months=12) == [date(2022, 1, 31), date(2022, 6, 30)]
    assert labels.usable_as_of_dates(dates, data_end=date(2023, 6, 30), horizon_months=6) == dates


def test_feature_spec_spark_and_pandas_matrices_agree(spark) -> None:
    df = spark.createDataFrame(
        [
            ("h1", D, 1.5, 3, True, "owner", "x1"),
            ("h2", D, None, None, False, "renter", "x2"),
            ("h3", D, 2.0, 1, None, None, "x3"),
            ("h4", D, 0.5, 2, True, "owner", "x4"),
        ],
        "household_id string, as_of_date date, kwh double, contacts int, is_owner boolean, tenure string, meter_key string",
    )
    spec = fit_spec_pandas(df.toPandas(), df.schema, task="binary", max_levels=3)
    assert spec.numeric == ("kwh", "contacts", "is_owner")
    assert spec.categorical == (("tenure", ("owner", "renter")),)  # meter_key excluded by name
    assert FeatureSpec.from_json(spec.to_json()) == spec
    spark_rows = spec.with_matrix(df, "household_id").orderBy("household_id").toPandas()
    from_spark = spark_rows[list(spec.encoded)].to_numpy(dtype=np.float64)
    pdf = df.orderBy("household_id").toPandas()
    from_pandas = spec.matrix(pdf).astype(np.float64)
    np.testing.assert_array_equal(np.isnan(from_spark), np.isnan(from_pandas))
    np.testing.assert_allclose(np.nan_to_num(from_spark, nan=-9), np.nan_to_num(from_pandas, nan=-9))
    # unseen level and null -> all zeros
    unseen = spec.matrix(pd.DataFrame({"kwh": [1.0], "contacts": [1], "is_owner": [True], "tenure": ["other"]}))
    assert unseen[0, -2:].tolist() == [0.0, 0.0]


def test_top_drivers_sorted_by_absolute_contribution() -> None:
    contribs = np.array([[0.1, -0.7, 0.3, 0.0, -0.05, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    names = ["a", "b", "c", "d", "e", "f"]
    rows = top_drivers(contribs, names, k=5)
    assert [d["feature"] for d in rows[0]] == ["b", "c", "f", "a", "e"]
    assert [d["contribution"] for d in rows[0]] == [-0.7, 0.3, 0.2, 0.1, -0.05]
    assert len(rows[1]) == 5


def test_champion_moves_only_when_the_new_version_beats_it_where_both_can_be_judged(store_uri: str,
                                                                                      tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = store_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = registry.registered_name("ev_adoption")
    client.create_registered_model(name)
    versions = [str(client.create_model_version(name, source=str(tmp_path / f"m{i}")).version) for i in range(4)]
    asked: list[str] = []

    def compare(champion: float, new: float):  # noqa: ANN202
        def fn(version: str) -> registry.Comparison:
            asked.append(version)
            return registry.Comparison(champion, new, "both judged on the same rows")
        return fn

    first = registry.promote(client, name, versions[0], metric="auc", new_value=0.80, compare=compare(0, 0))
    assert (first.alias, first.champion_version) == ("champion", None)
    # v2 is worse than the champion on the rows both are judged on -> challenger
    worse = registry.promote(client, name, versions[1], metric="auc", new_value=0.81, compare=compare(0.78, 0.75))
    assert (worse.alias, worse.champion_version, worse.champion_value) == ("challenger", versions[0], 0.78)
    assert str(client.get_model_version_by_alias(name, "champion").version) == versions[0]
    assert str(client.get_model_version_by_alias(name, "challenger").version) == versions[1]
    # v3 beats it -> champion; a tie keeps the champion
    better = registry.promote(client, name, versions[2], metric="auc", new_value=0.90, compare=compare(0.78, 0.90))
    assert better.alias == "champion"
    tie = registry.promote(client, name, versions[3], metric="auc", new_value=0.70, compare=compare(0.70, 0.70))
    assert tie.alias == "challenger"
    assert asked == [versions[0], versions[0], versions[2]]
    tags = client.get_model_version(name, versions[1]).tags
    assert tags["promotion"].startswith("challenger")
    assert tags[f"champion_v{versions[0]}_auc_same_data"] == "0.780000"


def test_champion_without_a_fair_comparison_is_replaced(store_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = store_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = registry.registered_name("csat")
    client.create_registered_model(name)
    v1 = client.create_model_version(name, source=str(tmp_path / "a")).version
    v2 = client.create_model_version(name, source=str(tmp_path / "b")).version
    registry.promote(client, name, v1, metric="mae", new_value=0.5, compare=lambda _: None, greater_is_better=False)
    result = registry.promote(client, name, v2, metric="mae", new_value=0.9, compare=lambda _: None,
                              greater_is_better=False)
    assert result.alias == "champion" and "no rows both can be judged on fairly" in result.reason
