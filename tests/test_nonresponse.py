"""The survey models' shift for households without an answer (models/nonresponse.py): planted
selection on satisfaction is recovered, and no selection means no shift. No Spark."""

import numpy as np
import pytest

from ucx_spark.models.nonresponse import Households, exposure_matrix, fit_unanswered_shift
from ucx_spark.models.spec import FeatureSpec


def _utility(selection: float, *, n: int = 6_000, seed: int = 3):
    """Households with a hidden satisfaction u (sd 0.5), contacts and tenure, answers counted
    with a rate that falls with u by ``selection`` (log rate per point), each answer u + noise
    (sd 0.6) minus what a model fitted on the answers centres them on."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 0.5, n)
    contacts = rng.poisson(2.0, n)
    tenure_days = rng.uniform(100, 3000, n)
    z = exposure_matrix(contacts, tenure_days)
    k = rng.poisson(np.exp(-1.6 + 0.5 * z[:, 1] + 0.2 * z[:, 2] - selection * u))
    answers = [u[i] + rng.normal(0.0, 0.6, k[i]) for i in range(n)]
    centre = np.concatenate([a for a in answers if len(a)]).mean()
    s1 = np.array([float((a - centre).sum()) for a in answers])
    s2 = np.array([float(((a - centre) ** 2).sum()) for a in answers])
    return u, contacts, tenure_days, Households(z, k.astype(float), s1, s2, k.astype(float)), centre


def test_selection_on_satisfaction_is_recovered_for_households_that_never_answered():
    u, contacts, tenure_days, h, centre = _utility(1.2)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    assert shift.applied, shift.reason
    params = shift.params()
    assert params["unanswered_beta"] == pytest.approx(-1.2, abs=0.3)
    assert params["unanswered_tau"] == pytest.approx(0.5, abs=0.1)
    assert params["unanswered_sigma"] == pytest.approx(0.6, abs=0.05)
    never = h.k == 0
    got = shift.shift(np.zeros(never.sum()), contacts[never], tenure_days[never])
    # what a model given the survey history misses for a household that never answered: it centres
    # such rows (no earlier answer) on the first answers, one per answering household
    truth = u[never] - u[~never].mean()
    assert truth.mean() > 0.15  # the planted selection is real
    assert got.mean() == pytest.approx(truth.mean(), abs=0.05)
    # asked more often and still silent: a happier household
    assert np.corrcoef(got, contacts[never])[0, 1] > 0.5
    # households with an answer are not shifted
    assert shift.shift(np.array([1.0, 3.0]), np.array([2.0, 2.0]), np.array([900.0, 900.0])).tolist() == [0.0, 0.0]


def test_no_selection_means_no_shift():
    _, _, _, h, _ = _utility(0.0)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    assert not shift.applied and "do not fall with satisfaction" in shift.reason
    assert shift.shift(np.zeros(3), np.ones(3), np.ones(3)).tolist() == [0.0, 0.0, 0.0]


def test_too_few_households_means_no_shift():
    z = exposure_matrix(np.ones(30), np.full(30, 400.0))
    shift = fit_unanswered_shift(Households(z, np.ones(30), np.zeros(30), np.zeros(30), np.ones(30)), residual_sd=0.5)
    assert not shift.applied and "households with answers" in shift.reason


def test_the_spec_carries_the_shift_and_the_predictor_applies_it_to_unanswered_rows_only():
    u, contacts, tenure_days, h, _ = _utility(1.2, n=3_000)
    shift = fit_unanswered_shift(h, residual_sd=0.8)
    spec = FeatureSpec(("survey_responses_prior", "contacts_365d", "account_tenure_days", "x"), task="regression",
                       score_min=1.0, score_max=5.0, unanswered=shift.to_json())
    again = FeatureSpec.from_json(spec.to_json())
    assert again.unanswered == spec.unanswered
    x = np.array([[0, 1, 400, 1.0], [0, 6, 2000, 1.0], [2, 6, 2000, 1.0]], dtype=np.float32)
    got = again.unanswered_shift(x)
    want = shift.shift(np.array([0.0, 0.0, 2.0]), np.array([1.0, 6.0, 6.0]), np.array([400.0, 2000.0, 2000.0]))
    assert got == pytest.approx(want) and got[2] == 0.0 and 0 < got[0] < got[1] <= shift.cap
