"""A response's CSAT, NPS and CES answers read as one measurement (``models/measurement.py``) and
the CSAT model's label built from it (``train.composite_label``). No Spark: pandas only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ucx_spark.models import datasets
from ucx_spark.models.measurement import fit_measurement
from ucx_spark.models.train import MODELS, composite_label


def _answers(n: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Answers planted from one satisfaction s as the generator plants them (rounded, clipped,
    NPS missing in 10% of responses, CES in 60%)."""
    rng = np.random.default_rng(seed)
    s = np.clip(rng.normal(3.4, 0.7, n), 1, 5)
    csat = np.clip(np.round(s + rng.normal(0, 0.5, n)), 1, 5)
    nps = np.clip(np.round(2.4 * s - 1.5 + rng.normal(0, 1.1, n)), 0, 10)
    ces = np.clip(np.round(8.0 - 1.4 * s + rng.normal(0, 0.8, n)), 1, 7)
    pdf = pd.DataFrame({"csat": csat, "nps": np.where(rng.random(n) < 0.1, np.nan, nps),
                        "ces": np.where(rng.random(n) < 0.6, np.nan, ces)})
    return pdf, s


def test_the_loadings_come_back_and_the_composite_is_less_noisy_than_one_answer() -> None:
    pdf, s = _answers(4000)
    fitted, why = fit_measurement(pdf, "csat")
    assert fitted is not None, why
    # rounding and clipping bend the planted 2.4 and -1.4 a little (measured 2.43 and -1.36)
    assert abs(fitted.loading["nps"] - 2.4) < 0.25 and abs(fitted.loading["ces"] + 1.4) < 0.2, fitted.loading
    assert fitted.loading["csat"] == 1.0 and fitted.intercept["csat"] == 0.0
    composite = fitted.composite(pdf, lower=1.0, upper=5.0)
    assert np.isfinite(composite).all() and composite.min() >= 1.0 and composite.max() <= 5.0
    # closer to the satisfaction than the CSAT answer alone (measured: error variance 0.36 -> 0.16)
    assert np.var(composite - s) < 0.6 * np.var(pdf["csat"].to_numpy() - s)
    assert fitted.noise_of_composite() < 0.5 * fitted.noise_var["csat"]
    # a response without NPS or CES is its CSAT answer
    only = pdf["nps"].isna() & pdf["ces"].isna()
    np.testing.assert_allclose(composite[only.to_numpy()], pdf.loc[only, "csat"].to_numpy())


def test_answers_that_fit_no_single_factor_keep_the_raw_answer() -> None:
    rng = np.random.default_rng(1)
    noise = pd.DataFrame({"csat": rng.integers(1, 6, 600).astype(float), "nps": rng.integers(0, 11, 600).astype(float),
                          "ces": rng.integers(1, 8, 600).astype(float)})
    fitted, why = fit_measurement(noise, "csat")
    assert fitted is None and "fit no one factor" in why, why
    fitted, why = fit_measurement(noise.drop(columns="ces"), "csat")
    assert fitted is None and why == "no ces column"
    few = _answers(400)[0]
    few.loc[few.index[30:], "ces"] = np.nan
    fitted, why = fit_measurement(few, "csat")
    assert fitted is None and "too few responses answering both" in why


def test_the_csat_label_is_the_composite_and_the_answer_is_kept() -> None:
    pdf, s = _answers(1500, seed=8)
    pdf["label"] = pdf["csat"]
    frame = datasets.ModelFrame(pdf.copy(), schema=None, notes={})  # type: ignore[arg-type]
    notes: dict = {}
    metrics = composite_label(frame, MODELS["csat"], notes)
    assert notes["label"] == "composite of csat, nps, ces on the csat scale"
    np.testing.assert_array_equal(frame.pdf["label_answer"].to_numpy(), pdf["csat"].to_numpy())
    assert not np.array_equal(frame.label, pdf["csat"].to_numpy())
    assert np.corrcoef(frame.label, s)[0, 1] > np.corrcoef(pdf["csat"], s)[0, 1] + 0.03
    assert metrics["measurement_loading_csat"] == 1.0 and metrics["measurement_composite_noise_var"] > 0
    # NPS keeps its own answers: its probabilities of promoters and detractors are of answers
    assert not MODELS["nps"].composite
