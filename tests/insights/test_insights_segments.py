"""Segmentation: persona naming, split-rule names, persona KPIs (tiny frames), and the pipeline on the
shared insights warehouse (copied, so the other insights tests see it unchanged)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.gold.privacy import forbidden_columns_in
from ucx_spark.insights import segments as S
from ucx_spark.insights.base import snapshot
from ucx_spark.io.delta import overwrite_table, read_table

MIN_HH = 15


def copy_warehouse(src: Path, dst: Path, tables: tuple[str, ...]) -> Path:
    """Copy Delta tables (``layer/table``) of the shared insights warehouse into ``dst``."""
    for t in tables:
        shutil.copytree(src / t, dst / t)
    return dst


# --- naming (no Spark) -------------------------------------------------------------------------

def test_name_clusters_orders_by_size_and_makes_names_distinct():
    feats = ("energy_burden", "income_midpoint_usd", "email_open_rate_365d", "is_owner")
    profiles = [
        {"_cluster": 0, "n": 10, "energy_burden": 1.5, "income_midpoint_usd": -1.0, "email_open_rate_365d": 0.3,
         "is_owner": -1.0, "_share_is_owner": 0.2, "_share_is_commercial": 0.0},
        {"_cluster": 1, "n": 50, "energy_burden": 1.4, "income_midpoint_usd": -0.9, "email_open_rate_365d": -0.5,
         "is_owner": -1.0, "_share_is_owner": 0.3, "_share_is_commercial": 0.0},
        {"_cluster": 2, "n": 30, "energy_burden": 0.1, "income_midpoint_usd": 0.1, "email_open_rate_365d": 0.1,
         "is_owner": 1.0, "_share_is_owner": 0.9, "_share_is_commercial": 0.0},
    ]
    names = S.name_clusters(profiles, features=feats)
    assert names[1][:2] == ("persona_01", "High-burden, lower-income renters")
    assert names[2][:2] == ("persona_02", "Typical owners")  # no |z| >= 0.25
    # same two leading words as cluster 1: a third feature makes it distinct
    assert names[0][:2] == ("persona_03", "High-burden, lower-income, engaged renters")


def test_rule_name_merges_ranges_and_says_booleans_in_words():
    conds = (("energy_burden", True, 0.05), ("is_owner", False, 0.5), ("energy_burden", False, 0.1),
             ("income_midpoint_usd", False, 50_000.0))
    assert S.rule_name(conds) == "energy burden 5.0%-10.0% & renter & income <= $50.0k"
    assert S.rule_name(()) == "all households"


def test_resolve_objective():
    assert S.resolve_objective("e-billing") == "paperless"
    assert S.resolve_objective("payment_risk") == "payment_risk"
    with pytest.raises(ValueError, match="allowed"):
        S.resolve_objective("churn")


# --- persona KPIs (tiny frames) ----------------------------------------------------------------

def test_persona_kpis_count_households_and_suppress_small_cells(spark):
    jan = date(2024, 1, 1)
    facts = spark.createDataFrame(
        [  # csat_top2box: a1 twice (top2), a2 once (not), a3 once (top2); unknown account a9
            (jan, "csat_top2box", "a1", "a1", 1.0, 1.0, True, None),
            (jan, "csat_top2box", "a1", "a1", 1.0, 1.0, True, None),
            (jan, "csat_top2box", "a2", "a2", 0.0, 1.0, True, None),
            (jan, "csat_top2box", "a3", "a3", 1.0, 1.0, True, None),
            (jan, "csat_top2box", "a9", "a9", 0.0, 1.0, True, None),
        ],
        "month date, kpi string, entity string, account_id string, num double, den double, in_den boolean, energy double",
    )
    accounts = spark.createDataFrame([("a1", "h1"), ("a2", "h2"), ("a3", "h3"), ("a9", "h9")],
                                     "account_id string, household_id string")
    segments = spark.createDataFrame([("h1", "persona", "Quiet owners"), ("h2", "persona", "Quiet owners"),
                                      ("h3", "persona", "Busy renters")],
                                     "household_id string, segmentation string, segment_name string")
    got = S.persona_kpis(
        facts, S.persona_accounts(accounts, segments), months_df=spark.createDataFrame([(jan,)], "month date"),
        kpis_df=spark.createDataFrame([("csat_top2box",), ("nps",)], "kpi string"), min_households=2,
    )
    expected = spark.createDataFrame(
        [
            (jan, "persona", "Quiet owners", "csat_top2box", 2 / 3, 2),
            (jan, "persona", "Busy renters", "csat_top2box", None, 1),   # n 1 < 2: suppressed
            (jan, "persona", "unknown", "csat_top2box", None, 1),
            (jan, "persona", "Quiet owners", "nps", None, 0),
            (jan, "persona", "Busy renters", "nps", None, 0),
            (jan, "persona", "unknown", "nps", None, 0),
        ],
        "month date, segment_type string, segment_value string, kpi string, value double, n long",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


# --- pipeline on the shared insights warehouse -------------------------------------------------

def test_segments_pipeline_stable_named_and_private(spark, insights_wh, tmp_path):
    from ucx_spark.pipelines import segments as pipeline

    wh = copy_warehouse(insights_wh.warehouse, tmp_path / "wh",
                        ("gold/household_features", "gold/household_scores", "silver/accounts", "silver/surveys",
                         "silver/programs", "silver/marketing"))
    kpi_rows = [(date(2023, 5, 1), "all", "all", k, 0.5, 400) for k in ("csat_top2box", "enrollment_rate:autopay")]
    kpi_rows += [(date(2023, 6, 1), "all", "all", "csat_top2box", 0.4, 400),
                 (date(2023, 6, 1), "zip", "73301", "csat_top2box", 0.3, 100)]
    kpis = spark.createDataFrame(kpi_rows, "month date, segment_type string, segment_value string, kpi string, value double, n long")
    overwrite_table(kpis, wh, "gold", "cx_kpis")

    result = pipeline.run(spark, warehouse=str(wh), run_id="seg-1", personas=6, seed=42, min_households=MIN_HH,
                          objective="payment_risk", time_zone="America/Chicago", partitions=2)
    assert 5 <= len(result.personas) <= 7
    assert len({name for _, name, _ in result.personas}) == len(result.personas)
    assert result.objective_segments and all(n >= MIN_HH for _, _, n, _ in result.objective_segments)
    outcomes = [m for _, _, _, m in result.objective_segments]
    assert outcomes == sorted(outcomes, reverse=True)

    segments = read_table(spark, wh, "gold", "segments")
    assert segments.groupBy("segmentation").agg(F.countDistinct("household_id").alias("h")).orderBy("segmentation") \
        .collect() == [("objective:payment_risk", 495), ("persona", 495)]
    assert segments.filter(F.col("segment_id").isNull() | F.col("segment_name").isNull()).count() == 0

    # stability: a second fit with the same seed gives the same households, ids and names
    snap = snapshot(read_table(spark, wh, "gold", "household_features"), read_table(spark, wh, "silver", "accounts"))
    again = S.assign_personas(snap, S.fit_personas(snap, k=6, seed=42, partitions=2))
    assert_df_equality(segments.filter("segmentation = 'persona'").select(*S.SEGMENTS_COLUMNS), again,
                       ignore_row_order=True, ignore_nullable=True)
    omodel = S.fit_objective_segments(snap, "payment_risk", scores_df=read_table(spark, wh, "gold", "household_scores"),
                                      min_households=MIN_HH, seed=42, partitions=2)
    assert_df_equality(segments.filter("segmentation = 'objective:payment_risk'").select(*S.SEGMENTS_COLUMNS),
                       S.assign_objective_segments(snap, omodel), ignore_row_order=True, ignore_nullable=True)

    # every published cell: n >= threshold or a null value
    profiles = read_table(spark, wh, "gold", "segment_profiles")
    value_cols = [c for c in profiles.columns if c == "outcome_mean" or c.startswith("mean_")]
    assert profiles.filter((F.col("n") < MIN_HH) & F.greatest(*[F.col(c).isNotNull() for c in value_cols])).count() == 0
    assert profiles.filter("segmentation = 'objective:payment_risk' AND outcome_mean IS NULL").count() == 0
    cx = read_table(spark, wh, "gold", "cx_kpis")
    persona = cx.filter("segment_type = 'persona'")
    # 6 personas + unknown (the 5 accounts that ended before the snapshot)
    names = {name for _, name, _ in result.personas}
    assert {r[0] for r in persona.select("segment_value").distinct().collect()} == names | {"unknown"}
    assert persona.count() == 7 * 2 * 2  # the full month x KPI grid of cx_kpis, as for every segment
    assert persona.filter((F.col("n") < MIN_HH) & F.col("value").isNotNull()).count() == 0
    # every active account counts in enrollment_rate: each persona cell of it is published
    published = persona.filter("kpi = 'enrollment_rate:autopay' AND segment_value <> 'unknown'")
    assert published.count() == 6 * 2
    assert published.filter((F.col("n") >= MIN_HH) & F.col("value").isNull()).count() == 0
    assert published.filter(F.col("value").isNotNull()).count() > 0
    assert_df_equality(cx.filter("segment_type <> 'persona'"), kpis, ignore_row_order=True, ignore_nullable=True)

    for table in ("segments", "segment_profiles", "cx_kpis"):
        assert forbidden_columns_in(read_table(spark, wh, "gold", table).schema) == []


def test_households_outside_a_models_population_have_no_objective_outcome(spark) -> None:
    """A null score (the household is outside the model's population, not_scored_reason set) is no
    outcome: Spark ML refuses null labels (`ucx demo` failed on it)."""
    from datetime import date

    from ucx_spark.insights.segments import with_objective_outcome

    d = date(2025, 12, 31)
    snap = spark.createDataFrame([("h1", d), ("h2", d)], "household_id string, as_of_date date")
    scores = spark.createDataFrame(
        [("h1", "payment_risk", d, 0.3, None), ("h2", "payment_risk", d, None, "in_collections")],
        "household_id string, model_name string, as_of_date date, score double, not_scored_reason string")
    got = with_objective_outcome(snap, "payment_risk", scores_df=scores)
    assert [(r["household_id"], r["outcome"]) for r in got.collect()] == [("h1", 0.3)]
