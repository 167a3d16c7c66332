"""Record OpenEEmeter's own answer on its sample meters (issue 21: "the weather-normalised annual
use agrees with eemeter's daily model within 5%").

Runs in a separate virtual environment that has ``eemeter`` (a development check only: eemeter
pins numba, nlopt and scikit-fda, which the product does not need): ``make eemeter-reference``
creates ``.venv-eemeter`` and runs this script there. It writes, for each daily sample meter that
eemeter ships (simulated Illinois meters, Apache-2.0), the baseline year's days (date, mean
temperature F as eemeter computes it, usage) and eemeter's predicted use of every day of that
year from its CalTRACK 2.0 ("legacy") and current daily models; ``tests/insights/
test_baselines_eemeter.py`` fits the same days with ``insights.baselines.fit_daily`` and compares
the annual totals.

    .venv-eemeter/bin/python scripts/eemeter_reference.py tests/reference/eemeter_daily.csv.gz
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import pandas as pd

SAMPLES = ("il-electricity-cdd-hdd-daily", "il-electricity-cdd-only-daily", "il-gas-hdd-only-daily",
           "il-gas-intercept-only-daily")


def main(out: str) -> None:
    import eemeter.eemeter as em
    from eemeter.eemeter.samples import load_sample

    frames = []
    for sample in SAMPLES:
        meter, temperature, meta = load_sample(sample)
        start = meter.index.min()
        end = pd.Timestamp(meta["blackout_start_date"]).tz_convert(meter.index.tz) if pd.Timestamp(meta["blackout_start_date"]).tzinfo else pd.Timestamp(meta["blackout_start_date"]).tz_localize(meter.index.tz)
        year = meter[(meter.index >= start) & (meter.index < min(end, start + pd.Timedelta(days=365)))]
        baseline = em.DailyBaselineData.from_series(year, temperature, is_electricity_data="electricity" in sample)
        days = baseline.df
        row = {"sample": sample, "date": days.index.date, "temperature": days["temperature"].to_numpy(),
               "observed": days["observed"].to_numpy()}
        reporting = em.DailyReportingData.from_series(None, temperature[(temperature.index >= days.index.min())
                                                                        & (temperature.index < days.index.max()
                                                                           + pd.Timedelta(days=1))],
                                                      tzinfo=meter.index.tz)
        for kind in ("legacy", "current"):
            model = em.DailyModel(model=kind).fit(baseline, ignore_disqualification=True)
            predicted = model.predict(reporting)["predicted"]
            row[f"eemeter_{kind}"] = predicted.reindex(days.index).to_numpy()
        frames.append(pd.DataFrame(row))
    out_df = pd.concat(frames, ignore_index=True)
    out_df.attrs["eemeter"] = version("eemeter")
    out_df.to_csv(out, index=False, float_format="%.6f")
    print(f"eemeter {version('eemeter')}: {len(out_df)} days of {len(SAMPLES)} sample meters -> {out}")
    print(out_df.groupby("sample")[["observed", "eemeter_legacy", "eemeter_current"]].sum().round(1).to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/reference/eemeter_daily.csv.gz")
