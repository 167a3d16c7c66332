"""The synthetic population: premises, the accounts living in them, and their hidden traits.

Everything here is drawn on the driver with numpy (bounded by the number of
households).  Each component draws from its own named random stream
(``rng_for``), so adding a component never shifts the draws of another and a
seed always gives the same utility.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ucx_spark.contract import INCOME_BANDS
from ucx_spark.generate.timeutil import Period

INCOME_MID = np.array([18_000, 37_500, 62_500, 87_500, 125_000, 210_000], dtype=float)

FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Joshua", "Donna", "Kevin", "Michelle", "Brian", "Carol", "Maria", "Jose", "Wei", "Priya", "Omar", "Fatima", "Luis", "Ana", "Hiro", "Mei", "Ngozi", "Kwame", "Olga", "Ivan"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Kim", "Okafor", "Novak"]
STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Walnut", "Park", "Sunset", "Ridge", "Church", "Mill", "Spring", "Highland", "Forest", "Meadow", "River", "Willow", "Chestnut", "Jackson", "Lincoln", "Franklin", "Prairie", "Bluebonnet", "Pecan", "Magnolia", "Cottonwood", "Mesquite", "Sycamore"]
# (utility spelling, vendor spellings)
SUFFIXES = (
    ("Street", ("ST", "STREET", "ST.")),
    ("Avenue", ("AVE", "AV", "AVENUE")),
    ("Road", ("RD", "ROAD")),
    ("Drive", ("DR", "DRIVE")),
    ("Lane", ("LN", "LANE")),
    ("Boulevard", ("BLVD", "BOULEVARD")),
    ("Court", ("CT", "COURT")),
    ("Circle", ("CIR", "CIRCLE")),
    ("Parkway", ("PKWY", "PARKWAY")),
    ("Way", ("WAY",)),
)
DIRECTIONALS = (("N", "NORTH"), ("S", "SOUTH"), ("E", "EAST"), ("W", "WEST"))
CITIES = (
    "Cedar Falls", "Riverton", "Oak Grove", "Millbrook", "Fairview", "Lakeside", "Springdale", "Brookhaven",
)
STATE = "TX"
RATE_PLANS_RES = ("RES_STD", "RES_TOU")
RATE_PLANS_COM = ("COM_SMALL", "COM_GS")
EV_RATE_PLAN = "RES_EV"
# $/kWh energy, $ fixed per month, on-peak $/kWh (TOU plans; None = flat)
TARIFFS: dict[str, tuple[float, float, float | None]] = {
    "RES_STD": (0.132, 12.0, None),
    "RES_TOU": (0.105, 12.0, 0.245),
    "RES_EV": (0.085, 12.0, 0.265),
    "COM_SMALL": (0.118, 35.0, None),
    "COM_GS": (0.094, 95.0, 0.162),
}


def rng_for(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible stream per component."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass
class Population:
    """Premises (one meter each) and the accounts that lived there during the period."""

    premises: pd.DataFrame  # one row per premise/meter: location, house, load parameters, EV/solar
    accounts: pd.DataFrame  # one row per real account (incl. move-ins): identity, dates, latent traits
    zips: pd.DataFrame  # zip, city, station_id, income level
    stations: list[str]
    meta: dict[str, object] = field(default_factory=dict)


def _zips(rng: np.random.Generator, households: int) -> tuple[pd.DataFrame, list[str]]:
    n_zips = int(np.clip(households // 300, 10, 30))
    n_stations = 3 if households < 2_000 else 4
    stations = [f"WS{k + 1:02d}" for k in range(n_stations)]
    codes = sorted(rng.choice(np.arange(100, 999), size=n_zips, replace=False))
    zips = pd.DataFrame(
        {
            "zip": [f"75{c:03d}" for c in codes],
            "city": [CITIES[i % len(CITIES)] for i in range(n_zips)],
            "station_idx": [i * n_stations // n_zips for i in range(n_zips)],
            "income_level": rng.normal(0.0, 0.7, n_zips),  # shifts the zip's income distribution
            "weight": rng.dirichlet(np.full(n_zips, 4.0)),
        }
    )
    zips["station_id"] = [stations[i] for i in zips["station_idx"]]
    return zips, stations


def build_population(seed: int, households: int, period: Period) -> Population:
    """Draw premises, accounts and hidden traits; plant the EV-adoption and payment-risk drivers."""
    rng = rng_for(seed, "population")
    zips, stations = _zips(rng, households)
    n = households
    zi = rng.choice(len(zips), size=n, p=zips["weight"].to_numpy())
    is_com = rng.random(n) < 0.08
    lvl = zips["income_level"].to_numpy()[zi]
    income_idx = np.clip(np.round(2.3 + 1.3 * lvl + rng.normal(0, 1.25, n)), 0, 5).astype(int)
    ht_u = rng.random(n)
    p_sf = sigmoid(-0.2 + 0.45 * (income_idx - 2))
    home_type = np.where(ht_u < p_sf, "single_family", np.where(ht_u < p_sf + (1 - p_sf) * 0.8, "multi_family", "mobile_home"))
    owner_p = sigmoid(-0.6 + 0.5 * (income_idx - 2) + 1.6 * (home_type == "single_family"))
    tenure = np.where(rng.random(n) < owner_p, "owner", "renter")
    hh_size = np.clip(rng.poisson(1.6, n) + 1, 1, 7)
    year_built = np.clip(rng.normal(1985, 22, n).round(), 1900, 2024).astype(int)
    vehicles = np.clip(rng.poisson(0.8 + 0.25 * income_idx), 0, 4)
    sf_owner = (home_type == "single_family") & (tenure == "owner")
    has_solar = ~is_com & sf_owner & (rng.random(n) < 0.04 + 0.03 * income_idx)
    vacant = ~is_com & (rng.random(n) < 0.02)
    has_solar &= ~vacant
    # EV: some already own one at the start; others adopt (enrol) during or after the period.
    ev_logit = -5.0 + 0.55 * income_idx + 0.9 * (tenure == "owner") + 0.7 * (home_type == "single_family") + 0.9 * has_solar
    ev_now = ~is_com & ~vacant & (rng.random(n) < sigmoid(ev_logit - 0.9))
    adopter = ~is_com & ~vacant & ~ev_now & (rng.random(n) < sigmoid(ev_logit + 0.9))
    span = period.days + 365
    enroll_day = np.where(adopter, rng.integers(30, max(span, 31), n), -1)  # days after period start
    lead = rng.integers(45, 200, n)  # EV bought (hidden load) before the enrolment
    ev_since_day = np.where(ev_now, -rng.integers(30, 900, n), np.where(adopter, enroll_day - lead, 10**6))
    # Existing owners: most enrolled long ago, some never did (hidden EV load throughout).
    ev_enrolled_before = ev_now & (rng.random(n) < 0.6)

    base_kw = np.where(is_com, rng.uniform(2.0, 14.0, n), rng.uniform(0.28, 0.55, n) * (0.7 + 0.15 * hh_size))
    base_kw = np.where(home_type == "multi_family", base_kw * 0.75, base_kw)
    elec_heat = rng.random(n) < 0.4
    heat_slope = np.where(elec_heat, rng.uniform(0.05, 0.11, n), rng.uniform(0.004, 0.012, n))
    cool_slope = rng.uniform(0.05, 0.12, n) * np.where(home_type == "multi_family", 0.6, 1.0) * np.where(is_com, 6.0, 1.0)
    heat_slope = np.where(is_com, heat_slope * 4.0, heat_slope)
    base_kw = np.where(vacant, 0.03, base_kw)
    heat_slope = np.where(vacant, 0.0005, heat_slope)
    cool_slope = np.where(vacant, 0.0005, cool_slope)
    solar_kw = np.where(has_solar, rng.uniform(4.0, 10.0, n).round(1), 0.0)
    solar_install = np.where(has_solar, rng.integers(-1500, period.days // 2 + 1, n), 10**6)
    offset_style = rng.random(n) < 0.03  # meters whose head-end writes local offsets (-06:00/-05:00)

    # Addresses: one per premise; multi-family share a street number with units.
    street = rng.integers(0, len(STREETS), n)
    suffix = rng.integers(0, len(SUFFIXES), n)
    directional = np.where(rng.random(n) < 0.35, rng.integers(0, 4, n), -1)
    number = rng.integers(100, 9900, n)
    unit = np.where(home_type == "multi_family", rng.integers(1, 40, n), np.where(home_type == "mobile_home", rng.integers(1, 120, n), 0))
    perm = rng.permutation(n)
    meter_perm = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    premises = pd.DataFrame(
        {
            "premise_idx": np.arange(n),
            "premise_id": [f"P{1_000_000 + int(p) * 7 + 3:08d}" for p in perm],
            "meter_id": [f"MTR{int(m):07d}" for m in meter_perm],
            "zip": zips["zip"].to_numpy()[zi],
            "city": zips["city"].to_numpy()[zi],
            "station_idx": zips["station_idx"].to_numpy()[zi],
            "station_id": zips["station_id"].to_numpy()[zi],
            "is_com": is_com,
            "income_idx": income_idx,
            "home_type": home_type,
            "tenure": tenure,
            "household_size": hh_size,
            "year_built": year_built,
            "vehicles": vehicles,
            "has_solar": has_solar,
            "solar_kw": solar_kw,
            "solar_install_day": solar_install,
            "vacant": vacant,
            "ev_now": ev_now,
            "ev_adopter": adopter,
            "ev_enroll_day": enroll_day,
            "ev_since_day": ev_since_day,
            "ev_enrolled_before": ev_enrolled_before,
            "base_kw": base_kw,
            "heat_slope": heat_slope,
            "cool_slope": cool_slope,
            "offset_style": offset_style,
            "street": street,
            "suffix": suffix,
            "directional": directional,
            "number": number,
            "unit": unit,
        }
    )
    accounts = _accounts(rng, premises, period)
    return Population(premises=premises, accounts=accounts, zips=zips, stations=stations)


def utility_address(p: pd.Series) -> str:
    """The CIS spelling: mixed case, full suffix, 'Apt'/'Lot' units."""
    parts = [str(p.number)]
    if p.directional >= 0:
        parts.append(DIRECTIONALS[p.directional][0])
    parts.append(STREETS[p.street])
    parts.append(SUFFIXES[p.suffix][0])
    s = " ".join(parts)
    if p.unit:
        s += (" Apt " if p.home_type == "multi_family" else " Lot ") + str(p.unit)
    return s


def vendor_address(p: pd.Series, rng: np.random.Generator) -> str:
    """The data vendor's spelling of the same home: upper case, abbreviated or spelled-out variants."""
    parts = [str(p.number)]
    if p.directional >= 0:
        parts.append(DIRECTIONALS[p.directional][int(rng.random() < 0.3)])
    parts.append(STREETS[p.street].upper())
    variants = SUFFIXES[p.suffix][1]
    parts.append(variants[int(rng.integers(0, len(variants)))] if rng.random() < 0.4 else variants[0])
    s = " ".join(parts)
    if p.unit:
        if p.home_type == "multi_family":
            s += (" #", " APT ", " UNIT ")[int(rng.integers(0, 3))] + str(p.unit)
        else:
            s += (" LOT ", " SPC ")[int(rng.integers(0, 2))] + str(p.unit)
    return s


def _accounts(rng: np.random.Generator, premises: pd.DataFrame, period: Period) -> pd.DataFrame:
    """One account per premise at the start, plus move-ins: the mover's end_date, the next day's start."""
    n = len(premises)
    movable = ~premises["ev_now"] & ~premises["ev_adopter"] & ~premises["has_solar"] & ~premises["is_com"]
    move_rate = 0.10 * period.days / 365
    movers = np.flatnonzero(movable.to_numpy() & (rng.random(n) < move_rate))
    if len(movers) == 0 and movable.any():
        movers = np.flatnonzero(movable.to_numpy())[:1]
    move_day = {int(i): int(rng.integers(10, max(period.days - 20, 11))) for i in movers}

    rows = []
    ids = rng.choice(90_000_000, size=n + len(movers) + 50, replace=False) + 10_000_000
    cust = rng.choice(9_000_000, size=n + len(movers) + 50, replace=False) + 1_000_000
    k = 0
    for p in premises.itertuples(index=False):
        tenure_years = rng.gamma(2.0, 5.0 if p.tenure == "owner" else 1.5)
        start = period.start_date - timedelta(days=int(30 + tenure_years * 365))
        chain: list[tuple[date, date | None]] = [(start, None)]
        if int(p.premise_idx) in move_day:
            md = period.day(move_day[int(p.premise_idx)])
            chain = [(start, md), (md + timedelta(days=1), None)]
        for j, (s, e) in enumerate(chain):
            first = FIRST_NAMES[int(rng.integers(0, len(FIRST_NAMES)))]
            last = LAST_NAMES[int(rng.integers(0, len(LAST_NAMES)))]
            name = f"{first} {last}" if not p.is_com else f"{last} {('Dental', 'Hardware', 'Cafe', 'Auto Repair', 'Market', 'Law Office')[int(rng.integers(0, 6))]}"
            income_idx = int(p.income_idx) if j == 0 else int(np.clip(p.income_idx + rng.integers(-1, 2), 0, 5))
            rate = (
                RATE_PLANS_COM[int(rng.random() < 0.3)]
                if p.is_com
                else (EV_RATE_PLAN if p.ev_enrolled_before else RATE_PLANS_RES[int(rng.random() < 0.22)])
            )
            rows.append(
                {
                    "account_idx": k,
                    "premise_idx": int(p.premise_idx),
                    "account_id": f"A{int(ids[k]):08d}",
                    "customer_id": f"C{int(cust[k]):07d}",
                    "customer_name": name,
                    "first_name": first,
                    "last_name": last,
                    "start_date": s,
                    "end_date": e,
                    "is_move_in": j == 1,
                    "income_idx": income_idx,
                    "rate_plan": rate,
                    "email": (f"{first}.{last}{int(rng.integers(1, 99))}@example.{('com', 'net', 'org')[int(rng.integers(0, 3))]}".lower() if rng.random() < 0.8 else ""),
                    "phone": (_phone(rng) if rng.random() < 0.9 else ""),
                    "risk_noise": rng.normal(0, 0.8),
                    "csat_base": rng.normal(4.05, 0.45),
                }
            )
            k += 1
    acc = pd.DataFrame(rows)
    acc["tenure_years"] = [(period.end_date - s).days / 365.25 for s in acc["start_date"]]
    acc["income_band"] = [INCOME_BANDS[i] for i in acc["income_idx"]]
    return acc


def _phone(rng: np.random.Generator) -> str:
    a, b = int(rng.integers(200, 999)), int(rng.integers(0, 100))
    style = int(rng.integers(0, 3))
    if style == 0:
        return f"({a}) 555-01{b:02d}"
    if style == 1:
        return f"{a}-555-01{b:02d}"
    return f"+1{a}55501{b:02d}"
