"""Issue 21: on OpenEEmeter's own sample meters, the weather-normalised annual use of our CalTRACK
daily fit agrees with eemeter's daily models within 5%.

``tests/reference/eemeter_daily.csv.gz`` holds each daily sample meter's baseline year (date, mean
temperature as eemeter computes it, usage) and eemeter 4.1.1's predicted use of every day from its
CalTRACK 2.0 ("legacy") and current daily models, recorded by ``make eemeter-reference`` (eemeter
itself is a development check in its own venv; see the Makefile). No Spark.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ucx_spark.insights.baselines import fit_daily

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "eemeter_daily.csv.gz"
# what each sample was simulated from (eemeter's samples/metadata.json): the model form to find
PLANTED_FORM = {"il-electricity-cdd-hdd-daily": "hdd_cdd", "il-electricity-cdd-only-daily": "cdd_only",
                "il-gas-hdd-only-daily": "hdd_only"}


@pytest.mark.parametrize("sample", ["il-electricity-cdd-hdd-daily", "il-electricity-cdd-only-daily",
                                    "il-gas-hdd-only-daily", "il-gas-intercept-only-daily"])
def test_annual_use_agrees_with_eemeters_daily_models_within_5_percent(sample: str) -> None:
    days = pd.read_csv(REFERENCE)
    days = days[days["sample"] == sample]
    assert len(days) >= 330, f"{sample}: the reference holds {len(days)} days"
    usable = days.dropna(subset=["temperature", "observed"])
    fit = fit_daily(usable["temperature"].to_numpy(), usable["observed"].to_numpy())
    ours = float(fit.predict(days["temperature"].to_numpy()).sum())
    for model in ("eemeter_legacy", "eemeter_current"):
        theirs = float(days[model].sum())
        print(f"{sample}: ours {ours:,.1f} ({fit.model_type}), {model} {theirs:,.1f}: {ours / theirs - 1:+.2%}")
        assert ours == pytest.approx(theirs, rel=0.05)
    if sample in PLANTED_FORM:
        assert fit.model_type == PLANTED_FORM[sample]
