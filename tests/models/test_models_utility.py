"""The household models on a small generated utility, judged against its planted truth
(`ucx evaluate`), and training rows that describe households as scoring rows do.

80 households x 14 months of hourly AMI, ungated medallion, 1 Optuna trial per
model: a test of behaviour, not of the accuracy targets (those are measured on
1,000 households in the note: 23 CSAT answers teach little). Everything is
seeded: the figures are exact.
"""

from __future__ import annotations

import math

import mlflow
import pytest

from ucx_spark.config import Config
from ucx_spark.generate import generate_utility
from ucx_spark.pipelines import evaluate, medallion

pytestmark = pytest.mark.slow  # long: CI and `make test-all` run it, `make test` leaves it out

KEY = b"models-utility-key"
SMD_BOUND = 0.5  # training vs scoring rows: largest standardised mean difference of a history feature


@pytest.fixture(scope="module")
def evaluated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("models-utility")
    landing, warehouse = root / "landing", root / "warehouse"
    generate_utility(spark, str(landing), households=80, months=14, interval_minutes=60, seed=5)
    cfg = Config().with_paths(landing=str(landing), warehouse=str(warehouse))
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="mu-1", gates=False)
    result = evaluate.run(spark, warehouse=str(warehouse), truth_dir=str(landing), key=KEY,
                          time_zone=cfg.utility.time_zone, trials=1)
    return result, warehouse


def test_evaluate_reports_every_model_against_the_truth(evaluated) -> None:
    result, _ = evaluated
    assert set(result.models) == {"csat", "nps", "ev_adoption", "payment_risk"}, result.notes
    assert set(result.winners.values()) <= {"xgboost", "blend", "baseline"}
    print(result.summary())
    for name in ("csat", "nps"):
        m = result.models[name]
        assert m["n"] > 30  # active households that never answered, each scored
        assert -1 <= m["never_respondents_spearman"] <= 1 and m["never_respondents_mae"] > 0, m
        assert 0 <= m["planted_driver_top3_share"] <= 1
    assert -100 <= result.models["nps"]["utility_nps_predicted"] <= 100
    # every month's survey NPS of 80 households is suppressed (n < 15): nothing to print beside it
    assert "survey_nps_latest_month" not in result.models["nps"]
    ev = result.models["ev_adoption"]
    assert 0 <= ev["truth_auc"] <= 1 and ev["n"] > 30, ev
    pay = result.models["payment_risk"]
    assert pay["truth_auc"] > 0.6 and pay["cut"] < result.as_of_date, pay
    text = result.summary()
    assert "never_respondents_spearman" in text and "truth_auc" in text
    assert '"models"' in result.to_json()


def test_training_rows_describe_households_as_scoring_rows_do(evaluated) -> None:
    _, warehouse = evaluated
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{warehouse / '_mlflow_eval' / 'main.db'}")
    exp = client.get_experiment_by_name("ucx-eval")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.ucx.run_id = 'eval'")
    parents = {r.data.tags["ucx.model"]: r for r in runs if "ucx.role" not in r.data.tags
               and "mlflow.parentRunId" not in r.data.tags}
    assert set(parents) == {"csat", "nps", "ev_adoption", "payment_risk"}
    for model, run in parents.items():
        gap = run.data.metrics["train_score_max_smd"]
        compared = run.data.params["train_score_compared_rows"]
        assert not math.isnan(gap)
        assert run.data.params["history_rule"].startswith(("rows with history_days >= 90", "all rows: only")), model
        assert "history_days" in run.data.params["features"], model  # short-history rows are marked
        if compared == "full-history":
            assert gap < SMD_BOUND, (model, gap, run.data.params["train_score_max_smd_column"])
        else:
            # 14 months: too few training rows of a 6- or 12-month label saw a full year to compare
            # on their own; the run says so
            assert compared == "all" and run.data.metrics["train_full_history_share"] < 0.5, model


def test_whatif_is_judged_against_the_generators_counterfactual(evaluated) -> None:
    result, warehouse = evaluated
    assert set(result.whatif) == set(evaluate.WHATIF_SCENARIOS), result.notes
    rate, liheap = result.whatif["rate_increase_usd=5"], result.whatif["liheap_enrollment_pct=+10"]
    for figures in (rate, liheap):
        assert set(figures) == set(evaluate.WHATIF_OUTCOMES)
        for f in figures.values():
            assert f["whatif_ci_low"] <= f["whatif_delta"] <= f["whatif_ci_high"]
            assert f["n"] > 50 and f["truth_se"] >= 0
    # the planted formulas: dearer bills raise the risk of a disconnect notice and the arrears and
    # lower satisfaction; assistance lowers the risk of those who get it
    assert rate["payment_risk"]["truth_delta"] > 0 and rate["expected_arrears_usd"]["truth_delta"] > 0
    assert rate["csat"]["truth_delta"] < 0
    assert rate["payment_risk"]["n_touched"] == rate["payment_risk"]["n"]
    assert liheap["payment_risk"]["n_touched"] >= 1 and liheap["payment_risk"]["truth_delta"] <= 0
    # the what-if side: every bill input a rate increase moves is monotone in the boosters (a
    # dearer bill never lowers the risk nor raises CSAT), so their answer cannot take the wrong sign
    if result.winners["payment_risk"] == "xgboost":
        assert rate["payment_risk"]["whatif_delta"] > 0 and rate["payment_risk"]["whatif_ci_low"] > 0
    if result.winners["csat"] in ("xgboost", "blend"):  # the blend's linear half is sign-constrained too
        assert rate["csat"]["whatif_delta"] <= 0
    text = result.summary()
    assert "what-if rate_increase_usd=5" in text and "truth" in text


def test_the_counterfactual_world_is_the_generated_one(evaluated) -> None:
    """simulate_world replays the generator: the notices it plants are the truth file's."""
    import json

    import pandas as pd

    from ucx_spark.generate.utility import simulate_world

    _, warehouse = evaluated
    landing = warehouse.parent / "landing"
    doc = json.loads((landing / "_manifest.json").read_text())
    world = simulate_world(**{k: doc[k] for k in ("seed", "households", "months", "interval_minutes", "time_zone", "end_date")})
    truth = pd.read_csv(landing / "_truth" / "households.csv", dtype={"account_id": str}).set_index("account_id")
    notices = world.collections[world.collections["event_type"] == "disconnect_notice"].groupby("account_id").size()
    assert (notices.reindex(truth.index).fillna(0).astype(int) == truth["disconnect_notices"]).all()
    assert notices.sum() > 0


def test_calibration_tells_a_shrunk_score_from_a_shifted_one() -> None:
    """Pure numbers (no Spark): a score as spread as the truth has slope 1; one pulled halfway to
    the mean has slope 2, half the spread and a bias of opposite sign in its two halves; a
    constant shift leaves the slope at 1 with the same bias in both halves; a calibrated but
    noisy score (the truth's expectation given half of it) is unbiased in both halves of itself."""
    import numpy as np

    from ucx_spark.models.metrics import calibration_slope

    rng = np.random.default_rng(4)
    known, unknown = rng.normal(0.0, 0.6, 20_000), rng.normal(0.0, 0.6, 20_000)
    truth = 3.5 + known + unknown
    exact = evaluate.calibration(truth, truth)
    assert math.isclose(calibration_slope(truth, truth), 1.0) and math.isclose(exact["score_sd_ratio"], 1.0)
    shrunk_score = 3.5 + 0.5 * (truth - 3.5)
    shrunk = evaluate.calibration(truth, shrunk_score)
    assert math.isclose(calibration_slope(truth, shrunk_score), 2.0, rel_tol=1e-9)
    assert math.isclose(shrunk["score_sd_ratio"], 0.5)
    assert shrunk["mean_bias_lower_scores"] > 0.2 and shrunk["mean_bias_upper_scores"] < -0.2
    shifted = evaluate.calibration(truth, truth - 0.3)
    assert math.isclose(calibration_slope(truth, truth - 0.3), 1.0)
    assert math.isclose(shifted["mean_bias_lower_scores"], -0.3) and math.isclose(shifted["mean_bias_upper_scores"], -0.3)
    calibrated = evaluate.calibration(truth, 3.5 + known)
    assert abs(calibration_slope(truth, 3.5 + known) - 1.0) < 0.03
    assert abs(calibrated["mean_bias_lower_scores"]) < 0.02 and abs(calibrated["mean_bias_upper_scores"]) < 0.02
    # weights: a slope judged on the rows that carry the weight
    weights = (truth > 3.5).astype(float)
    assert math.isclose(calibration_slope(truth, shrunk_score, weights), 2.0, rel_tol=1e-9)
    assert evaluate.calibration(truth, np.full_like(truth, 3.0)) == {}
