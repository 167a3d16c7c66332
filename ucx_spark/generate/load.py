"""Weather and load shapes: the physics the AMI, the bills and the weather feed share.

The hourly temperature per station, the diurnal shapes and the solar curve are
computed once on the driver (stations x intervals rows) into one broadcastable
frame.  The Spark AMI job multiplies them by per-meter parameters; the driver
sums the same components per day to bill each account for (the expectation
of) what its meter read, so bills and AMI agree without a pass over AMI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ucx_spark.generate.population import Population, rng_for
from ucx_spark.generate.timeutil import Period, interval_frame

HEAT_BASE_F = 60.0
COOL_BASE_F = 72.0
EV_KW = 7.2
EV_NIGHT_P = 0.55  # share of nights an EV owner plugs in
EV_EXPECTED_NIGHT_KWH = EV_NIGHT_P * EV_KW * 3.0


def hourly_weather(seed: int, period: Period, stations: list[str]) -> pd.DataFrame:
    """Hourly temp_f per station: seasonal + diurnal cycle + persistent (AR(1)) weather noise."""
    rng = rng_for(seed, "weather")
    n_hours = int((period.end_utc - period.start_utc).total_seconds() // 3600)
    utc_idx = pd.date_range(period.start_utc, periods=n_hours, freq="h", tz="UTC")
    local = utc_idx.tz_convert(period.time_zone)
    doy = local.dayofyear.to_numpy()
    hour = local.hour.to_numpy()
    frames = []
    for s_idx, station in enumerate(stations):
        eps = rng.normal(0, 1.1, n_hours)
        ar = np.empty(n_hours)
        acc = rng.normal(0, 4)
        for i in range(n_hours):  # AR(1) at 0.97/h: multi-day warm and cold spells
            acc = 0.97 * acc + eps[i]
            ar[i] = acc
        temp = (
            66.0
            + (s_idx - 1) * 1.5
            + 19.0 * np.cos(2 * np.pi * (doy - 200) / 365.25)
            + 8.5 * np.cos(2 * np.pi * (hour - 15) / 24)
            + ar
        )
        frames.append(
            pd.DataFrame(
                {"station_idx": s_idx, "station_id": station, "hour_idx": np.arange(n_hours), "observed_utc": utc_idx, "temp_f": temp.round(1)}
            )
        )
    return pd.concat(frames, ignore_index=True)


def load_frame(seed: int, period: Period, interval_minutes: int, weather: pd.DataFrame, n_stations: int) -> pd.DataFrame:
    """Interval x station frame of load components (per kW of each meter parameter)."""
    rng = rng_for(seed, "clouds")
    iv = interval_frame(period, interval_minutes)
    h = iv["local_hour"].to_numpy()
    weekday = iv["dow"].to_numpy() < 5
    res_shape = (
        0.78
        + 0.35 * np.exp(-(((h - 7.5) / 1.2) ** 2))
        + 1.05 * np.exp(-(((h - 18.8) / 1.7) ** 2))
        - 0.22 * (h < 5)
    )
    com_shape = np.where(weekday & (h >= 7) & (h < 19), 1.6, np.where(weekday, 0.55, 0.6))
    doy = iv["doy"].to_numpy()
    daylen = 12.0 + 2.3 * np.cos(2 * np.pi * (doy - 172) / 365.25)
    sun = np.clip(np.sin(np.pi * (h - (13.0 - daylen / 2)) / daylen), 0, None)
    iv = iv.assign(res_shape=res_shape, com_shape=com_shape, sun=0.85 * sun)
    clouds = rng.uniform(0.25, 1.0, (n_stations, int(iv["local_day"].max()) + 1))
    frames = []
    for s in range(n_stations):
        temps = weather.loc[weather["station_idx"] == s, "temp_f"].to_numpy()
        t = temps[iv["hour_idx"].to_numpy()]
        frames.append(
            iv.assign(
                station_idx=s,
                heat_dd=np.clip(HEAT_BASE_F - t, 0, None),
                cool_dd=np.clip(t - COOL_BASE_F, 0, None),
                solar_f=iv["sun"].to_numpy() * clouds[s, iv["local_day"].to_numpy()],
            )
        )
    return pd.concat(frames, ignore_index=True)


def daily_expected_kwh(pop: Population, lf: pd.DataFrame, period: Period, interval_minutes: int) -> np.ndarray:
    """Expected kWh per premise (rows) and local day (columns): what the AMI job draws around."""
    hours = interval_minutes / 60.0
    g = lf.assign(
        res=lf["res_shape"] * hours, com=lf["com_shape"] * hours, heat=lf["heat_dd"] * hours,
        cool=lf["cool_dd"] * hours, solar=lf["solar_f"] * hours,
    ).groupby(["station_idx", "local_day"])[["res", "com", "heat", "cool", "solar"]].sum()
    n_st = int(lf["station_idx"].max()) + 1
    days = period.days
    comp = {c: np.zeros((n_st, days)) for c in ("res", "com", "heat", "cool", "solar")}
    for (s, d), row in g.iterrows():
        if 0 <= d < days:
            for c in comp:
                comp[c][s, d] = row[c]
    p = pop.premises
    st = p["station_idx"].to_numpy()
    shape = np.where(p["is_com"].to_numpy()[:, None], comp["com"][st], comp["res"][st])
    day_idx = np.arange(days)[None, :]
    ev = np.where(p["ev_since_day"].to_numpy()[:, None] <= day_idx, EV_EXPECTED_NIGHT_KWH, 0.0)
    solar_on = p["solar_install_day"].to_numpy()[:, None] <= day_idx
    kwh = (
        p["base_kw"].to_numpy()[:, None] * shape
        + p["heat_slope"].to_numpy()[:, None] * comp["heat"][st]
        + p["cool_slope"].to_numpy()[:, None] * comp["cool"][st]
        + ev
        - np.where(solar_on, p["solar_kw"].to_numpy()[:, None] * comp["solar"][st], 0.0)
    )
    return kwh
