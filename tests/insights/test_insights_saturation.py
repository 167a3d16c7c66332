"""Program saturation: eligibility, history and the saturation arithmetic on tiny frames (by hand),
goals, and the pipeline on a copy of the shared insights warehouse."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from test_insights_segments import copy_warehouse

from ucx_spark.contract import PROGRAMS
from ucx_spark.gold.privacy import forbidden_columns_in
from ucx_spark.insights import saturation as SAT
from ucx_spark.io.delta import read_table

AS_OF = date(2023, 6, 30)


def test_eligibility_rules(spark):
    snap = spark.createDataFrame(
        [
            ("h1", AS_OF, "RES", "lt25k", "owner", "single_family", True),
            ("h2", AS_OF, "RES", "50-75k", "renter", "multi_family", False),
            ("h3", AS_OF, "COM", "lt25k", "owner", "single_family", False),
            ("h4", AS_OF, None, None, None, None, None),  # unknown attributes: never eligible but for universal programs
        ],
        "household_id string, as_of_date date, customer_class string, income_band string, tenure string, "
        "home_type string, is_enrolled_autopay boolean",
    )
    got = SAT.program_households(snap, programs=("autopay", "liheap", "solar", "ev_rate"))
    expected = spark.createDataFrame(
        [
            ("h1", AS_OF, "autopay", True, True), ("h1", AS_OF, "liheap", True, False),
            ("h1", AS_OF, "solar", True, False), ("h1", AS_OF, "ev_rate", True, False),
            ("h2", AS_OF, "autopay", True, False), ("h2", AS_OF, "liheap", False, False),
            ("h2", AS_OF, "solar", False, False), ("h2", AS_OF, "ev_rate", True, False),
            ("h3", AS_OF, "autopay", True, False), ("h3", AS_OF, "liheap", False, False),
            ("h3", AS_OF, "solar", False, False), ("h3", AS_OF, "ev_rate", False, False),
            ("h4", AS_OF, "autopay", True, False), ("h4", AS_OF, "liheap", False, False),
            ("h4", AS_OF, "solar", False, False), ("h4", AS_OF, "ev_rate", False, False),
        ],
        "household_id string, as_of_date date, program string, is_eligible boolean, is_enrolled boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert set(SAT.ELIGIBILITY_RULES) == set(PROGRAMS)


def test_enrollment_history_window(spark):
    snap = spark.createDataFrame([("h1", AS_OF), ("h2", AS_OF), ("h3", AS_OF)], "household_id string, as_of_date date")
    programs = spark.createDataFrame(
        [
            ("h1", "autopay", date(2023, 1, 5), None),              # joined in the window
            ("h2", "autopay", date(2020, 1, 1), None),              # enrolled before the window
            ("h3", "autopay", date(2020, 1, 1), date(2021, 1, 1)),  # ended before, rejoined in the window
            ("h3", "autopay", date(2023, 3, 1), None),
            ("h3", "paperless", date(2023, 7, 1), None),            # after as_of: not counted
            ("h9", "autopay", date(2023, 1, 1), None),              # not in the snapshot
        ],
        "household_id string, program string, enrolled_on date, ended_on date",
    )
    got = SAT.enrollment_history(programs, snap, horizon_months=12)
    expected = spark.createDataFrame(
        [("h1", "autopay", False, True), ("h2", "autopay", True, False), ("h3", "autopay", False, True),
         ("h3", "paperless", False, False)],
        "household_id string, program string, was_enrolled_at_start boolean, converted_in_window boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def _tiny(spark):
    propensity = spark.createDataFrame(
        [
            ("h1", AS_OF, "autopay", True, True, 0.9, "lookalike"),
            ("h2", AS_OF, "autopay", True, False, 0.5, "lookalike"),
            ("h3", AS_OF, "autopay", True, False, 0.25, "lookalike"),
            ("h4", AS_OF, "autopay", False, False, None, None),
        ],
        "household_id string, as_of_date date, program string, is_eligible boolean, is_enrolled boolean, "
        "propensity double, propensity_source string",
    )
    history = spark.createDataFrame([("h1", "autopay", False, True)],
                                    "household_id string, program string, was_enrolled_at_start boolean, "
                                    "converted_in_window boolean")
    return propensity, history


def test_saturation_matches_hand_computation(spark):
    propensity, history = _tiny(spark)
    row = SAT.program_saturation(propensity, history, min_households=3, campaign_capture=0.3).first().asDict()
    # 4 active, 3 eligible, 1 enrolled (h1, who joined in the window); pool at the window start: h1, h2, h3
    conversion = 1 / 3
    organic = conversion * 2                          # eligible not enrolled: h2, h3
    potential = 0.5 + 0.25
    campaign = 0.3 * (potential - organic)
    reach = organic + campaign
    expected = {
        "active_households": 4, "eligible_households": 3, "enrolled_households": 1, "enrollment_rate": 0.25,
        "eligible_enrollment_rate": 1 / 3, "eligible_not_enrolled": 2, "modelled_potential": potential,
        "conversions_12m": 1, "conversion_rate_12m": conversion, "organic_new_12m": organic,
        "campaign_new_12m": campaign, "reachable_new_12m": reach, "reachable_rate_12m": (1 + reach) / 4,
        "reachable_lift_pp_12m": 100 * reach / 4, "n": 3, "is_suppressed": False, "horizon_months": 12,
    }
    for key, value in expected.items():
        assert row[key] == pytest.approx(value), key
    assert row["eligibility_rule"] == SAT.ELIGIBILITY_RULES["autopay"]
    assert SAT.achievable(row, 17.0) is True and SAT.achievable(row, 17.5) is False  # reachable 17.29 pp

    small = SAT.program_saturation(propensity, history, min_households=4).first().asDict()
    assert small["is_suppressed"] and small["n"] == 3
    assert all(small[c] is None for c in SAT.VALUE_COLUMNS)
    assert SAT.achievable(small, 1.0) is None


def test_parse_goal():
    assert SAT.parse_goal("autopay=+5") == SAT.Goal("autopay", 5.0)
    assert SAT.parse_goal("Paperless=2.5%") == SAT.Goal("paperless", 2.5)
    for bad in ("autopay", "nope=+5", "autopay=lots"):
        with pytest.raises(ValueError):
            SAT.parse_goal(bad)


def test_saturation_pipeline(spark, insights_wh, tmp_path):
    from ucx_spark.pipelines import saturation as pipeline

    wh = copy_warehouse(insights_wh.warehouse, tmp_path / "wh",
                        ("gold/household_features", "gold/household_scores", "silver/accounts", "silver/programs"))
    result = pipeline.run(spark, warehouse=str(wh), run_id="sat-1", seed=42, min_households=15,
                          goals=[SAT.parse_goal("autopay=+5"), SAT.parse_goal("ev_rate=+90")], partitions=2)
    rows = {r["program"]: r for r in result.rows}
    assert set(rows) == set(PROGRAMS)
    autopay, ev, liheap = rows["autopay"], rows["ev_rate"], rows["liheap"]
    assert autopay["propensity_source"] == "lookalike" and ev["propensity_source"] == "ev_adoption"
    assert autopay["active_households"] == 495 and autopay["eligible_households"] == 495
    assert liheap["eligible_households"] < autopay["eligible_households"]
    # EV enrollments of the synthetic utility run to the scoring date: a real 12-month velocity
    assert ev["conversions_12m"] > 0 and ev["conversion_rate_12m"] > 0
    for r in result.rows:
        assert r["is_suppressed"] == (r["n"] < 15)
        if not r["is_suppressed"]:
            assert r["enrollment_rate"] <= r["reachable_rate_12m"] <= 1.0
            assert 0 <= r["modelled_potential"] <= r["eligible_not_enrolled"]
    (g1, ok1, reach1), (g2, ok2, _) = result.goals
    assert ok1 == (reach1 >= 5.0) and ok2 is False
    assert "goal autopay +5 pp" in result.summary()

    props = read_table(spark, wh, "gold", "program_propensity")
    assert props.filter("is_eligible AND propensity IS NULL").count() == 0
    assert props.filter(~F.col("is_eligible") & F.col("propensity").isNotNull()).count() == 0
    for table in ("program_saturation", "program_propensity"):
        assert forbidden_columns_in(read_table(spark, wh, "gold", table).schema) == []
    # gated like the gold tables (issue 21's loose end): each write validated first, recorded
    checks = (read_table(spark, wh, "gold", "quality_results").where("run_id = 'sat-1'")
              .groupBy("table").agg(F.count("*").alias("n"), F.min(F.col("success").cast("int")).alias("ok"))
              .collect())
    assert {r["table"]: (r["n"], r["ok"]) for r in checks} == {"program_propensity": (5, 1),
                                                              "program_saturation": (5, 1)}


def test_an_insight_table_with_a_repeated_key_is_refused_before_it_is_written(spark, tmp_path):
    """The insight suites run real GX validations: a candidate breaking the catalog key of
    gold/model_drivers stops with a DataError naming the rule, and nothing is written."""
    from ucx_spark.errors import DataError
    from ucx_spark.quality import publish_if_passed

    rows = [("csat", "all", "all", "outage_minutes_365d", 0.2, 300), ("csat", "all", "all", "outage_minutes_365d", 0.1, 300),
            ("nps", "all", "all", "arrears_usd", 0.3, 300)]
    candidate = spark.createDataFrame(rows, "model_name string, segment_type string, segment_value string, "
                                            "feature string, mean_abs_shap double, n long")
    written = []
    with pytest.raises(DataError, match="gold.model_drivers.*key_unique"):
        publish_if_passed(spark, candidate, written.append, layer="gold", table="model_drivers", run_id="bad-1",
                          warehouse=str(tmp_path / "wh"), echo=lambda _: None, data_docs=False)
    assert written == []
    recorded = read_table(spark, tmp_path / "wh", "gold", "quality_results").where("run_id = 'bad-1'")
    assert {r["expectation_id"] for r in recorded.where("NOT success").collect()} == {"key_unique"}
