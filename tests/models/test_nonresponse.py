"""The survey models' shift for households without an answer (models/nonresponse.py): planted
selection on satisfaction is recovered, and no selection means no shift. No Spark."""

import numpy as np
import pytest

from ucx_spark.models.nonresponse import Households, exposure_matrix, fit_unanswered_shift
from ucx_spark.models.spec import FeatureSpec

RATE = (-1.6, 0.5, 0.2)  # planted log answer rate: intercept, log1p(contacts), log1p(tenure years)


def _utility(selection: float, *, n: int = 6_000, seed: int = 3, predicted_sd: float = 0.0):
    """Households with a hidden satisfaction u (sd 0.5), contacts and tenure, answers counted
    with a rate that falls with the satisfaction by ``selection`` (log rate per point), each
    answer u + noise (sd 0.6) minus what a model fitted on the answers centres them on. With
    ``predicted_sd``, a part of the satisfaction the features tell (``predicted``, that sd) moves
    the rate too, with the same coefficient: who answers is chosen on the whole satisfaction."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 0.5, n)
    contacts = rng.poisson(2.0, n)
    tenure_days = rng.uniform(100, 3000, n)
    predicted = rng.normal(0.0, predicted_sd, n) if predicted_sd else None
    z = exposure_matrix(contacts, tenure_days, predicted)
    log_rate = RATE[0] + RATE[1] * z[:, 1] + RATE[2] * z[:, 2] - selection * u
    if predicted is not None:
        log_rate = log_rate - selection * predicted
    k = rng.poisson(np.exp(log_rate))
    answers = [u[i] + rng.normal(0.0, 0.6, k[i]) for i in range(n)]
    centre = np.concatenate([a for a in answers if len(a)]).mean()
    s1 = np.array([float((a - centre).sum()) for a in answers])
    s2 = np.array([float(((a - centre) ** 2).sum()) for a in answers])
    h = Households(z, k.astype(float), s1, s2, k.astype(float))
    return u, contacts, tenure_days, h, centre, predicted


def _answering_mean(z: np.ndarray, selection: float, *, draws: int = 4_000, seed: int = 9) -> np.ndarray:
    """E[u | at least one answer, z] in the planted world (Monte Carlo over u): what a model fitted
    on first answers centres a household of exposure z on."""
    u = np.random.default_rng(seed).normal(0.0, 0.5, draws)
    log_rate = RATE[0] + RATE[1] * z[:, 1:2] + RATE[2] * z[:, 2:3] - selection * u[None, :]
    if z.shape[1] > 3:
        log_rate = log_rate - selection * z[:, 3:4]
    answer = -np.expm1(-np.exp(log_rate))
    return (answer * u[None, :]).sum(axis=1) / answer.sum(axis=1)


def test_selection_on_satisfaction_is_recovered_for_households_that_never_answered():
    u, contacts, tenure_days, h, centre, _ = _utility(1.2)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    assert shift.applied, shift.reason
    params = shift.params()
    assert params["unanswered_beta"] == pytest.approx(-1.2, abs=0.3)
    assert params["unanswered_tau"] == pytest.approx(0.5, abs=0.1)
    assert params["unanswered_sigma"] == pytest.approx(0.6, abs=0.05)
    never = h.k == 0
    got = shift.shift(np.zeros(never.sum()), contacts[never], tenure_days[never])
    # what a model given the survey history misses for a household that never answered: it centres
    # such rows (no earlier answer) on the first answers of households of the same exposure
    truth = u[never] - _answering_mean(h.z[never], 1.2)
    assert truth.mean() > 0.15  # the planted selection is real
    assert got.mean() == pytest.approx(truth.mean(), abs=0.05)
    # asked more often and still silent: a happier household
    assert np.corrcoef(got, contacts[never])[0, 1] > 0.5
    # households with an answer are not shifted
    assert shift.shift(np.array([1.0, 3.0]), np.array([2.0, 2.0]), np.array([900.0, 900.0])).tolist() == [0.0, 0.0]


def test_no_selection_means_no_shift():
    _, _, _, h, _, _ = _utility(0.0)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    assert not shift.applied and "do not fall with satisfaction" in shift.reason
    assert shift.shift(np.zeros(3), np.ones(3), np.ones(3)).tolist() == [0.0, 0.0, 0.0]


def test_too_few_households_means_no_shift():
    z = exposure_matrix(np.ones(30), np.full(30, 400.0))
    shift = fit_unanswered_shift(Households(z, np.ones(30), np.zeros(30), np.zeros(30), np.ones(30)), residual_sd=0.5)
    assert not shift.applied and "households with answers" in shift.reason


def test_the_spec_carries_the_shift_and_the_predictor_applies_it_to_unanswered_rows_only():
    u, contacts, tenure_days, h, _, _ = _utility(1.2, n=3_000)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    spec = FeatureSpec(("survey_responses_prior", "contacts_365d", "account_tenure_days", "x"), task="regression",
                       score_min=1.0, score_max=5.0, unanswered=shift.to_json())
    again = FeatureSpec.from_json(spec.to_json())
    assert again.unanswered == spec.unanswered
    x = np.array([[0, 1, 400, 1.0], [0, 6, 2000, 1.0], [2, 6, 2000, 1.0]], dtype=np.float32)
    got = again.unanswered_shift(x)
    want = shift.shift(np.array([0.0, 0.0, 2.0]), np.array([1.0, 6.0, 6.0]), np.array([400.0, 2000.0, 2000.0]))
    assert got == pytest.approx(want) and got[2] == 0.0 and 0 < got[0] < got[1] <= shift.cap


def test_a_household_the_features_call_unhappy_that_never_answered_is_shifted_more():
    """Who answers is chosen on the whole satisfaction: the part the features tell as much as the
    part they miss. Never answering says more of a household predicted unhappy (it was likely to
    answer), and a model fitted on first answers centres a household predicted happy on its
    unhappy few: with the predicted satisfaction in the answer rate, each household gets the
    shift of its kind (within 0.06 in every quarter of the predictions); without it, one shift
    for all, further off."""
    u, contacts, tenure_days, h, _, predicted = _utility(1.2, n=8_000, predicted_sd=0.6, seed=5)
    shift = fit_unanswered_shift(h, residual_sd=0.8, predicted_centre=0.0)
    assert shift.applied, shift.reason
    assert shift.params()["unanswered_rate_predicted"] == pytest.approx(-1.2, abs=0.25)
    never = h.k == 0
    got = shift.shift(np.zeros(never.sum()), contacts[never], tenure_days[never], predicted=predicted[never])
    truth = u[never] - _answering_mean(h.z[never], 1.2)
    quarter = np.digitize(predicted[never], np.quantile(predicted[never], [0.25, 0.5, 0.75]))
    for q in range(4):
        assert got[quarter == q].mean() == pytest.approx(truth[quarter == q].mean(), abs=0.06), q
    # the form without it (one answer rate whatever the features tell) is further off in some quarter
    plain = fit_unanswered_shift(Households(h.z[:, :3], h.k, h.s1, h.s2, h.m), residual_sd=0.8)
    old = plain.shift(np.zeros(never.sum()), contacts[never], tenure_days[never])

    def worst(shifts: np.ndarray) -> float:
        return max(abs(shifts[quarter == q].mean() - truth[quarter == q].mean()) for q in range(4))

    assert worst(got) < worst(old)
    with pytest.raises(ValueError, match="predicted"):
        shift.shift(np.zeros(2), np.ones(2), np.ones(2))


def test_a_shift_saved_before_the_predicted_rate_loads_and_shifts_as_it_did():
    """A model registered before December 2026 carries three rate columns and one centre over all
    answering households: it loads, and its shift is its posterior mean less that centre."""
    import json

    from ucx_spark.models.nonresponse import UnansweredShift

    theta = [-1.6, 0.5, 0.2, -1.2, float(np.log(0.5)), float(np.log(0.6)), 0.0]
    old = json.dumps({"theta": theta, "centre": -0.1, "households": 500, "answering": 200, "lr": 20.0,
                      "cap": 0.8, "applied": True, "reason": "old"})
    shift = UnansweredShift.from_json(old)
    assert shift is not None and shift.predicted_centre is None and not shift.by_exposure
    got = shift.shift(np.zeros(2), np.array([1.0, 4.0]), np.array([400.0, 2000.0]))
    z = exposure_matrix(np.array([1.0, 4.0]), np.array([400.0, 2000.0]))
    from ucx_spark.models.nonresponse import _posterior_mean

    zero = np.zeros(2)
    want = _posterior_mean(np.array(theta), Households(z, zero, zero, zero, zero)) + 0.1
    assert got == pytest.approx(np.clip(want, -0.8, 0.8))
