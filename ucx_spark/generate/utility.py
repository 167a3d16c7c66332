"""``generate_utility``: write a complete synthetic landing zone, its manifest and its truth.

Order of work: population -> weather and load shapes -> driver-side events ->
landing files per feed (clean extracts, corrections, planted defects) -> AMI
bulk in Spark -> exact accounting per feed -> manifest and truth files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ucx_spark.contract import CONTRACT_VERSION, FEED_ORDER, FEEDS, INCOME_BANDS, INTERVAL_MINUTES, RULES
from ucx_spark.generate import events as ev
from ucx_spark.generate.ami import ami_frame, write_ami
from ucx_spark.generate.landing import FeedLanding, LandingFile, account_feed, write_file
from ucx_spark.generate.load import COOL_BASE_F, HEAT_BASE_F, daily_expected_kwh, hourly_weather, load_frame
from ucx_spark.generate.population import (
    INCOME_MID,
    STATE,
    Population,
    build_population,
    rng_for,
    sigmoid,
    utility_address,
    vendor_address,
)
from ucx_spark.generate.timeutil import Period, dst_transitions, fmt_local, fmt_offset, fmt_z, period_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROWS_PER_AMI_FILE = 3_000_000


def _stamp(d: date, hour: int = 6) -> str:
    return f"{d:%Y%m%d}T{hour:02d}0000Z"


def _d(v: date | None) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else v.isoformat()


def _num(v: float | None, nd: int) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{v:.{nd}f}"


class _Plan:
    """Shared context while assembling the landing zone."""

    def __init__(self, seed: int, period: Period, pop: Population) -> None:
        self.seed = seed
        self.period = period
        self.tz = ZoneInfo(period.time_zone)
        self.pop = pop
        self.rng = rng_for(seed, "landing")
        self.mid_date = period.start_date + timedelta(days=period.days // 2)
        self.mid_dt = datetime(self.mid_date.year, self.mid_date.month, self.mid_date.day, 6, tzinfo=UTC)
        self.end = period.end_date
        trans = dst_transitions(self.tz, period.start_date, period.end_date) or dst_transitions(
            self.tz, date(period.end_date.year, 1, 1), date(period.end_date.year, 12, 31)
        )
        self.gap = next((t.local_example for t in trans if t.kind == "gap"), None)
        self.overlap = next((t.local_example for t in trans if t.kind == "overlap"), None)
        self.truth_defects: list[dict[str, object]] = []
        self.prem_rows = list(pop.premises.itertuples(index=False))

    def plant(self, fl: FeedLanding, f: LandingFile, row: dict, rule: str | None, note: str) -> int:
        i = f.add(row, rule, note)
        fl.defects[note] += 1
        self.truth_defects.append({"feed": fl.feed, "file": f.name, "row": i + 1, "rule": rule or "superseded", "defect": note})
        return i


def _tmpl(*files: LandingFile) -> dict[str, str]:
    """A good row to derive defects from: the first row of the first non-empty file."""
    for f in files:
        if f.rows:
            return dict(f.rows[0])
    raise ValueError(f"no rows to derive defects from in {[f.name for f in files]}")


def _dup(pl: _Plan, fl: FeedLanding, *files: LandingFile, k: int = 1) -> None:
    """An exact copy of a row inside the same file (same extract): one superseded row."""
    for f in files:
        if f.rows:
            pl.plant(fl, f, dict(f.rows[min(k, len(f.rows) - 1)]), None, "exact_duplicate")
            return


# --------------------------------------------------------------------------- accounts


def _account_row(pl: _Plan, a, *, end: date | None, rate: str | None = None) -> dict[str, str]:
    p = pl.prem_rows[a.premise_idx]
    return {
        "account_id": a.account_id, "customer_id": a.customer_id, "premise_id": p.premise_id, "meter_id": p.meter_id,
        "customer_name": a.customer_name, "service_address": utility_address(p), "city": p.city, "state": STATE,
        "zip": p.zip, "customer_class": "COM" if p.is_com else "RES", "rate_plan": rate or a.rate_plan,
        "weather_station_id": p.station_id, "start_date": a.start_date.isoformat(), "end_date": _d(end),
        "email": a.email, "phone": a.phone,
    }


def build_accounts(pl: _Plan, programs: pd.DataFrame) -> tuple[FeedLanding, dict[str, str]]:
    """Initial CIS snapshot, then a delta: move-outs, move-ins, EV rate switches; defects on unreferenced extras."""
    fl = FeedLanding("accounts")
    acc = pl.pop.accounts
    f1 = fl.new_file(f"accounts_{_stamp(pl.period.start_date)}.csv")
    f2 = fl.new_file(f"accounts_{_stamp(pl.end + timedelta(days=1))}_delta.csv")
    ev_switch = set(
        programs.loc[
            (programs["program"] == "ev_rate") & (programs["enrolled_on"] >= pl.period.start_date) & (programs["enrolled_on"] <= pl.end),
            "account_id",
        ]
    )
    changed = []
    for a in acc.itertuples(index=False):
        if not a.is_move_in:
            f1.add(_account_row(pl, a, end=None))
        if a.is_move_in or a.end_date is not None or a.account_id in ev_switch:
            rate = "RES_EV" if a.account_id in ev_switch else None
            f2.add(_account_row(pl, a, end=a.end_date, rate=rate))
            changed.append(a.account_id)
    stable = [a for a in acc.itertuples(index=False) if a.account_id not in set(changed) and not a.is_move_in]
    tmpl = dict(f1.rows[0])
    extra = iter(range(1, 100))

    def extra_account(**changes: str) -> dict[str, str]:
        k = next(extra)
        row = dict(tmpl)
        row.update(account_id=f"A9{k:07d}", customer_id=f"C9{k:06d}", premise_id=f"P9{k:07d}", meter_id=f"MTR9{k:06d}", customer_name=f"Extra Person{k}")
        row.update(changes)
        return row

    bad_zip = extra_account(zip="1234")
    pl.plant(fl, f1, bad_zip, "out_of_domain", "zip_not_5_digits")
    pl.plant(fl, f1, extra_account(customer_class="IND"), "out_of_domain", "customer_class_out_of_domain")
    pl.plant(fl, f1, extra_account(customer_name=""), "missing_required", "missing_customer_name")
    pl.plant(fl, f1, extra_account(start_date="2024-02-30"), "bad_date", "start_date_not_a_calendar_date")
    pl.plant(fl, f1, extra_account(end_date="2025/06/30"), "bad_date", "end_date_wrong_format")
    i = pl.plant(fl, f1, extra_account(), "wrong_field_count", "row_with_extra_field")
    f1.extra_fields[i] = ["unexpected"]
    _dup(pl, fl, f1)
    # A later extract with two conflicting versions of an existing account: both quarantined, the earlier one stands.
    a = stable[len(stable) // 2]
    r1 = _account_row(pl, a, end=None)
    r2 = dict(r1, phone="(214) 555-0199", email="changed@example.com")
    pl.plant(fl, f2, r1 | {"phone": "(214) 555-0142"}, "ambiguous_key", "conflicting_rows_same_key")
    pl.plant(fl, f2, r2, "ambiguous_key", "conflicting_rows_same_key")
    return fl, {"quarantined_account": bad_zip["account_id"]}


# --------------------------------------------------------------------------- households / census


def build_households(pl: _Plan) -> tuple[FeedLanding, pd.DataFrame]:
    """Vendor records keyed by address, in the vendor's spelling; most premises match, some records match nothing."""
    rng = rng_for(pl.seed, "households")
    fl = FeedLanding("households")
    f = fl.new_file(f"households_{_stamp(pl.mid_date)}.csv.gz", gz=True)
    prem = pl.pop.premises
    latest = pl.pop.accounts.sort_values("start_date").groupby("premise_idx").last()
    match = []
    rec = 0
    order = rng.permutation(len(prem))
    for idx in order:
        p = prem.iloc[int(idx)]
        if p.is_com or rng.random() > 0.94:
            continue
        a = latest.loc[int(idx)]
        rec += 1
        rid = f"HH{5_000_000 + rec * 31:08d}"
        band = int(a.income_idx) if rng.random() < 0.85 else int(np.clip(a.income_idx + rng.choice([-1, 1]), 0, 5))
        f.add(
            {
                "record_id": rid, "address_line": vendor_address(p, rng), "city": p.city.upper(), "state": STATE, "zip": p.zip,
                "income_band": INCOME_BANDS[band] if rng.random() > 0.04 else "",
                "household_size": str(p.household_size) if rng.random() > 0.05 else "",
                "home_type": p.home_type if rng.random() > 0.03 else "",
                "tenure": p.tenure if rng.random() > 0.05 else "",
                "year_built": str(p.year_built) if rng.random() > 0.1 else "",
                "vehicles": str(p.vehicles) if rng.random() > 0.1 else "",
            }
        )
        match.append({"premise_id": p.premise_id, "record_id": rid})
    zips = pl.pop.zips
    n_unmatched = max(2, int(0.04 * len(prem)))
    for _ in range(n_unmatched):
        rec += 1
        z = zips.iloc[int(rng.integers(0, len(zips)))]
        f.add(
            {
                "record_id": f"HH{5_000_000 + rec * 31:08d}", "address_line": f"{int(rng.integers(10_000, 30_000))} COUNTY ROAD {int(rng.integers(1, 900))}",
                "city": z.city.upper(), "state": STATE, "zip": z.zip, "income_band": INCOME_BANDS[int(rng.integers(0, 6))],
                "household_size": str(int(rng.integers(1, 6))), "home_type": "single_family", "tenure": "owner",
                "year_built": str(int(rng.integers(1950, 2020))), "vehicles": str(int(rng.integers(0, 3))),
            }
        )
    tmpl = dict(f.rows[-1])
    extra = iter(range(1, 100))

    def xr(**ch: str) -> dict[str, str]:
        return dict(tmpl, record_id=f"HX{next(extra):07d}", address_line=f"{int(rng.integers(30_000, 40_000))} FM {int(rng.integers(100, 999))}") | ch

    pl.plant(fl, f, xr(zip="1234"), "out_of_domain", "zip_not_5_digits")
    pl.plant(fl, f, xr(income_band="200k_plus"), "out_of_domain", "income_band_out_of_domain")
    pl.plant(fl, f, xr(household_size="0"), "out_of_domain", "household_size_below_1")
    pl.plant(fl, f, xr(year_built="1700"), "out_of_domain", "year_built_out_of_range")
    pl.plant(fl, f, xr(vehicles="two"), "bad_number", "vehicles_not_a_number")
    pl.plant(fl, f, xr(address_line=""), "missing_required", "missing_address_line")
    _dup(pl, fl, f, k=0)
    return fl, pd.DataFrame(match)


def build_census(pl: _Plan) -> FeedLanding:
    rng = rng_for(pl.seed, "census")
    fl = FeedLanding("census")
    f = fl.new_file(f"census_{_stamp(pl.period.start_date, 7)}_acs5.csv")
    prem = pl.pop.premises
    for z in pl.pop.zips.itertuples(index=False):
        sel = prem[prem["zip"] == z.zip]
        renters = float((sel["tenure"] == "renter").mean()) if len(sel) else 0.4
        f.add(
            {
                "zip": z.zip,
                "median_household_income": f"{float(np.exp(10.95 + 0.35 * z.income_level + rng.normal(0, 0.05))):.0f}",
                "pct_renter": f"{np.clip(100 * renters + rng.normal(0, 4), 2, 95):.1f}",
                "pct_below_poverty": f"{np.clip(13 - 7 * z.income_level + rng.normal(0, 2), 2, 45):.1f}",
                "population": str(int(len(sel) * 60 + rng.integers(2_000, 12_000))),
            }
        )
    tmpl = dict(f.rows[0])
    pl.plant(fl, f, dict(tmpl, zip="1234"), "out_of_domain", "zip_not_5_digits")
    pl.plant(fl, f, dict(tmpl, zip="79001", pct_renter="120.0"), "out_of_domain", "pct_renter_above_100")
    pl.plant(fl, f, dict(tmpl, zip="79002", median_household_income="1,234.5"), "bad_number", "thousands_separator")
    return fl


# --------------------------------------------------------------------------- weather


def build_weather(pl: _Plan, weather: pd.DataFrame) -> FeedLanding:
    """Two extracts (first half, second half) with a few re-issued readings correcting the first."""
    fl = FeedLanding("weather")
    f1 = fl.new_file(f"weather_{_stamp(pl.mid_date)}.csv")
    f2 = fl.new_file(f"weather_{_stamp(pl.end + timedelta(days=1))}.csv")
    for w in weather.itertuples(index=False):
        ts = w.observed_utc.to_pydatetime()
        (f1 if ts < pl.mid_dt else f2).add({"station_id": w.station_id, "observed_at": fmt_z(ts), "temp_f": f"{w.temp_f:.1f}"})
    for k in range(3):
        r = dict(f1.rows[(k + 1) * len(f1.rows) // 5])
        r["temp_f"] = f"{float(r['temp_f']) + 0.7:.1f}"
        pl.plant(fl, f2, r, None, "correction_of_earlier_extract")
    tmpl = _tmpl(f2, f1)
    pl.plant(fl, f2, dict(tmpl, temp_f="NaN"), "bad_number", "temp_nan")
    pl.plant(fl, f2, dict(tmpl, observed_at=tmpl["observed_at"][:-1] + "-0600"), "bad_timestamp", "offset_without_colon")
    pl.plant(fl, f2, dict(tmpl, temp_f=""), "missing_required", "missing_temp_f")
    _dup(pl, fl, f2, f1, k=5)
    return fl


# --------------------------------------------------------------------------- bills / payments / collections


def build_bills(pl: _Plan, bills: pd.DataFrame, refs: dict[str, str]) -> FeedLanding:
    fl = FeedLanding("bills")
    f1 = fl.new_file(f"bills_{_stamp(pl.mid_date)}.csv")
    f2 = fl.new_file(f"bills_{_stamp(pl.end + timedelta(days=5))}.csv.gz", gz=True)
    cols = list(FEEDS["bills"].column_names)
    for b in bills.itertuples(index=False):
        row = {c: getattr(b, c) for c in cols}
        row = {k: (_d(v) if isinstance(v, date) else v) for k, v in row.items()}
        row["kwh"] = f"{b.kwh:.1f}"
        row["amount_due"] = f"{b.amount_due:.2f}"
        (f1 if b.bill_date < pl.mid_date else f2).add(row)
    early = f1 if len(f1.rows) >= 12 else f2
    n = len(early.rows)
    picks = [early.rows[int(i)] for i in pl.rng.choice(n, size=min(6, n // 2), replace=False)]
    corrected = picks[:3] if early is f1 else []
    for r in corrected:
        pl.plant(fl, f2, dict(r, amount_due=f"{float(r['amount_due']) * 0.9:.2f}"), None, "amount_corrected_in_later_extract")
    if early is f1:
        amb = picks[3]
        pl.plant(fl, f2, dict(amb, amount_due=f"{float(amb['amount_due']) + 5:.2f}"), "ambiguous_key", "conflicting_corrections_same_extract")
        pl.plant(fl, f2, dict(amb, amount_due=f"{float(amb['amount_due']) + 7:.2f}"), "ambiguous_key", "conflicting_corrections_same_extract")
        pl.plant(fl, f2, dict(picks[4], amount_due="abc"), "bad_number", "bad_correction_does_not_supersede")
    tmpl = _tmpl(f2, f1)
    seq = iter(range(1, 100))

    def nb(**ch: str) -> dict[str, str]:
        return dict(tmpl, bill_id=f"BX{next(seq):07d}") | ch

    pl.plant(fl, f2, nb(amount_due="1,234.5"), "bad_number", "thousands_separator")
    pl.plant(fl, f2, nb(amount_due="NaN"), "bad_number", "amount_nan")
    pl.plant(fl, f2, nb(amount_due="12.345"), "bad_number", "money_three_decimals")
    pl.plant(fl, f2, nb(bill_date="2025-13-01"), "bad_date", "month_13")
    pl.plant(fl, f2, nb(kwh=""), "missing_required", "missing_kwh")
    pl.plant(fl, f2, nb(account_id="A00000001"), "unknown_reference", "unknown_account_id")
    pl.plant(fl, f2, nb(account_id=refs["quarantined_account"]), "unknown_reference", "account_only_in_quarantine")
    i = pl.plant(fl, f2, nb(), "wrong_field_count", "row_with_extra_field")
    f2.extra_fields[i] = ["x", "y"]
    _dup(pl, fl, f2, f1)
    # A stray copy under a name the contract does not allow: rejected, never ingested.
    stray = fl.new_file("bills_latest.csv")
    stray.rows, stray.plants = list(f1.rows[:5]), [None] * min(5, len(f1.rows))
    stray.landed, stray.rejected = False, "bad_file_name"
    return fl


def build_payments(pl: _Plan, payments: pd.DataFrame) -> FeedLanding:
    fl = FeedLanding("payments")
    f1 = fl.new_file(f"payments_{_stamp(pl.mid_date)}.csv")
    f2 = fl.new_file(f"payments_{_stamp(pl.end + timedelta(days=5))}.csv")
    for p in payments.itertuples(index=False):
        ts = p.paid_at
        spelled = fmt_offset(ts, pl.tz) if p.method in ("mail", "in_person") else fmt_z(ts)
        (f1 if ts < pl.mid_dt else f2).add(
            {"payment_id": p.payment_id, "account_id": p.account_id, "paid_at": spelled, "amount": f"{p.amount:.2f}", "method": p.method}
        )
    tmpl = _tmpl(f2, f1)
    seq = iter(range(1, 100))

    def npay(**ch: str) -> dict[str, str]:
        return dict(tmpl, payment_id=f"PX{next(seq):07d}") | ch

    pl.plant(fl, f2, npay(method="crypto"), "out_of_domain", "method_out_of_domain")
    pl.plant(fl, f2, npay(paid_at=f"{pl.end:%Y-%m}-01T10:00"), "bad_timestamp", "timestamp_without_seconds")
    pl.plant(fl, f2, npay(paid_at=f"{pl.end:%Y-%m}-01T10:00:00-0600"), "bad_timestamp", "offset_without_colon")
    pl.plant(fl, f2, npay(amount="abc"), "bad_number", "amount_not_a_number")
    pl.plant(fl, f2, npay(paid_at=""), "missing_required", "missing_paid_at")
    pl.plant(fl, f2, npay(account_id="A00000002"), "unknown_reference", "unknown_account_id")
    # A branch office file without the method column: rejected as a whole, its rows land as file_rejected.
    hdr = [c for c in FEEDS["payments"].column_names if c != "method"]
    fb = fl.new_file(f"payments_{_stamp(pl.end + timedelta(days=5), 12)}_branch.csv", header=hdr)
    for _ in range(3):
        pl.plant(fl, fb, npay(method="in_person"), "file_rejected", "file_missing_column_method")
    fb.rejected = "missing_column:method"
    return fl


def build_collections(pl: _Plan, collections: pd.DataFrame) -> FeedLanding:
    fl = FeedLanding("collections")
    f = fl.new_file(f"collections_{_stamp(pl.end + timedelta(days=5))}.csv")
    for c in collections.itertuples(index=False):
        f.add({"event_id": c.event_id, "account_id": c.account_id, "event_date": c.event_date.isoformat(),
               "event_type": c.event_type, "amount_past_due": _num(c.amount_past_due, 2)})
    if not f.rows:  # a very small utility may have nobody in arrears: keep one event so the feed has a shape
        a = pl.pop.accounts.iloc[0]
        f.add({"event_id": "CE00000001", "account_id": a.account_id, "event_date": pl.mid_date.isoformat(), "event_type": "past_due_notice", "amount_past_due": "75.00"})
    tmpl = dict(f.rows[0])
    seq = iter(range(1, 100))

    def ne(**ch: str) -> dict[str, str]:
        return dict(tmpl, event_id=f"CX{next(seq):07d}") | ch

    pl.plant(fl, f, ne(event_type="shutoff"), "out_of_domain", "event_type_out_of_domain")
    pl.plant(fl, f, ne(event_date="2025-02-30"), "bad_date", "not_a_calendar_date")
    pl.plant(fl, f, ne(amount_past_due="NaN"), "bad_number", "amount_nan")
    pl.plant(fl, f, ne(account_id="A00000003"), "unknown_reference", "unknown_account_id")
    _dup(pl, fl, f, k=0)
    return fl


def build_programs(pl: _Plan, programs: pd.DataFrame) -> FeedLanding:
    """Two full snapshots: the later one repeats every enrollment (superseding) and adds ended_on dates."""
    fl = FeedLanding("programs")
    f1 = fl.new_file(f"programs_{_stamp(pl.mid_date)}.csv")
    f2 = fl.new_file(f"programs_{_stamp(pl.end + timedelta(days=5))}.csv")
    for e in programs.sort_values(["enrolled_on", "account_id", "program"]).itertuples(index=False):
        for f, cut in ((f1, pl.mid_date), (f2, pl.end)):
            if e.enrolled_on <= cut:
                off = e.ended_on if (e.ended_on is not None and e.ended_on <= cut) else None
                f.add({"account_id": e.account_id, "program": e.program, "enrolled_on": e.enrolled_on.isoformat(), "ended_on": _d(off)})
    tmpl = _tmpl(f2, f1)
    pl.plant(fl, f2, dict(tmpl, program="ev_lease"), "out_of_domain", "program_out_of_domain")
    pl.plant(fl, f2, dict(tmpl, program="ee_rebate", enrolled_on=""), "missing_required", "missing_enrolled_on")
    pl.plant(fl, f2, dict(tmpl, program="demand_response", enrolled_on="2020-01-01", ended_on="2025-02-30"), "bad_date", "not_a_calendar_date")
    pl.plant(fl, f2, dict(tmpl, account_id="A00000004"), "unknown_reference", "unknown_account_id")
    return fl


# --------------------------------------------------------------------------- contacts / surveys / outages / marketing


def build_contacts(pl: _Plan, contacts: pd.DataFrame, refs: dict[str, str]) -> FeedLanding:
    fl = FeedLanding("contacts")
    f1 = fl.new_file(f"contacts_{_stamp(pl.mid_date)}.csv")
    f2 = fl.new_file(f"contacts_{_stamp(pl.end + timedelta(days=1))}.csv")
    for c in contacts.itertuples(index=False):
        # The legacy IVR writes local wall-clock time without an offset (never inside a DST gap/overlap).
        spelled = fmt_local(c.started_at, pl.tz, sep=" ") if c.channel == "ivr" else fmt_z(c.started_at)
        fcr = "" if c.first_contact_resolution is None else ("true" if c.first_contact_resolution else "FALSE" if c.handle_seconds and c.handle_seconds % 7 == 0 else "false")
        (f1 if c.started_at < pl.mid_dt else f2).add(
            {"contact_id": c.contact_id, "account_id": c.account_id, "started_at": spelled, "channel": c.channel, "reason": c.reason,
             "handle_seconds": "" if c.handle_seconds is None or pd.isna(c.handle_seconds) else str(int(c.handle_seconds)),
             "first_contact_resolution": fcr, "transcript": c.transcript or ""}
        )
    if not f1.rows and not f2.rows:  # a tiny utility may have had no contacts: keep one
        a = pl.pop.accounts.iloc[0]
        f2.add({"contact_id": "CT00000001", "account_id": a.account_id, "started_at": fmt_z(pl.mid_dt + timedelta(days=1, hours=9)), "channel": "phone",
                "reason": "other", "handle_seconds": "240", "first_contact_resolution": "true", "transcript": "General question about the account."})
    tmpl = _tmpl(f2, f1) | {"transcript": "Customer asked a question."}
    seq = iter(range(1, 100))

    def nc(**ch: str) -> dict[str, str]:
        return dict(tmpl, contact_id=f"CTX{next(seq):06d}") | ch

    pl.plant(fl, f2, nc(channel="fax"), "out_of_domain", "channel_fax")
    pl.plant(fl, f2, nc(first_contact_resolution="yes"), "bad_boolean", "boolean_yes")
    pl.plant(fl, f2, nc(handle_seconds="-5"), "out_of_domain", "negative_handle_seconds")
    pl.plant(fl, f2, nc(handle_seconds="12.5"), "bad_number", "decimal_in_int_column")
    pl.plant(fl, f2, nc(reason=""), "missing_required", "missing_reason")
    if pl.gap is not None:
        pl.plant(fl, f2, nc(started_at=pl.gap.strftime("%Y-%m-%dT%H:%M:%S")), "nonexistent_local_time", "local_time_in_dst_gap")
    if pl.overlap is not None:
        pl.plant(fl, f2, nc(started_at=pl.overlap.strftime("%Y-%m-%d %H:%M:%S")), "ambiguous_local_time", "local_time_in_dst_overlap")
    pl.plant(fl, f2, nc(account_id="A00000005"), "unknown_reference", "unknown_account_id")
    pl.plant(fl, f2, nc(account_id=refs["quarantined_account"]), "unknown_reference", "account_only_in_quarantine")
    _dup(pl, fl, f2, f1, k=2)
    return fl


def build_surveys(pl: _Plan, surveys: pd.DataFrame) -> FeedLanding:
    fl = FeedLanding("surveys")
    f = fl.new_file(f"surveys_{_stamp(pl.end + timedelta(days=7))}_vendor.csv")
    for s in surveys.itertuples(index=False):
        f.add(
            {"survey_id": s.survey_id, "account_id": s.account_id, "responded_at": fmt_z(s.responded_at), "survey_type": s.survey_type,
             "related_contact_id": s.related_contact_id or "", "csat": _int(s.csat), "nps": _int(s.nps), "ces": _int(s.ces), "comment": s.comment or ""}
        )
    if not f.rows:  # a tiny utility may have had no responses: keep one
        a = pl.pop.accounts.iloc[0]
        f.add({"survey_id": "SV00000001", "account_id": a.account_id, "responded_at": fmt_z(pl.mid_dt), "survey_type": "relationship",
               "related_contact_id": "", "csat": "4", "nps": "8", "ces": "", "comment": ""})
    tmpl = dict(f.rows[0], csat="4", nps="8", ces="2")
    seq = iter(range(1, 100))

    def ns(**ch: str) -> dict[str, str]:
        return dict(tmpl, survey_id=f"SVX{next(seq):06d}") | ch

    pl.plant(fl, f, ns(csat="6"), "out_of_domain", "csat_6")
    pl.plant(fl, f, ns(nps="11"), "out_of_domain", "nps_11")
    pl.plant(fl, f, ns(csat="five"), "bad_number", "csat_word")
    pl.plant(fl, f, ns(responded_at=f"{pl.end.year}-13-01T00:00:00Z"), "bad_timestamp", "month_13")
    pl.plant(fl, f, ns(survey_type="nps"), "out_of_domain", "survey_type_out_of_domain")
    pl.plant(fl, f, ns(account_id="A00000006"), "unknown_reference", "unknown_account_id")
    return fl


def _int(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(int(v))  # type: ignore[call-overload]


def build_outages(pl: _Plan, outages: pd.DataFrame) -> FeedLanding:
    """OMS extract taken during an outage (restored_at unknown), then a later one that completes it."""
    fl = FeedLanding("outages")
    before = outages[outages["started_at"] < pl.mid_dt]
    pivot = before.iloc[-1] if len(before) else outages.iloc[0]
    cut = pivot.started_at + min(timedelta(minutes=20), (pivot.restored_at - pivot.started_at) / 2)
    cut = cut.replace(microsecond=0) + timedelta(seconds=1)
    f1 = fl.new_file(f"outages_{cut:%Y%m%dT%H%M%SZ}.csv")
    f2 = fl.new_file(f"outages_{_stamp(pl.end + timedelta(days=1))}.csv")
    for o in outages.itertuples(index=False):
        row = {"outage_id": o.outage_id, "premise_id": o.premise_id, "cause": "" if pd.isna(o.cause) else o.cause}
        etr = None if pd.isna(o.first_etr) else o.first_etr
        if o.started_at < cut:
            ongoing = o.restored_at > cut
            f1.add(row | {"started_at": fmt_offset(o.started_at, pl.tz), "restored_at": "" if ongoing else fmt_offset(o.restored_at, pl.tz),
                          "first_etr": "" if etr is None else fmt_offset(etr, pl.tz)})
            if not ongoing:
                continue
        f2.add(row | {"started_at": fmt_z(o.started_at), "restored_at": fmt_z(o.restored_at), "first_etr": "" if etr is None else fmt_z(etr)})
    fl.defects["restored_at_completed_in_later_extract"] = sum(1 for r in f1.rows if not r["restored_at"])
    tmpl = _tmpl(f2, f1)
    seq = iter(range(1, 100))

    def no(**ch: str) -> dict[str, str]:
        return dict(tmpl, outage_id=f"OUTX{next(seq):05d}") | ch

    pl.plant(fl, f2, no(premise_id="P00000001"), "unknown_reference", "unknown_premise_id")
    pl.plant(fl, f2, no(cause="aliens"), "out_of_domain", "cause_out_of_domain")
    pl.plant(fl, f2, no(restored_at=f"{pl.end:%Y-%m}-01T25:00:00Z"), "bad_timestamp", "hour_25")
    if pl.overlap is not None:
        pl.plant(fl, f2, no(first_etr=pl.overlap.strftime("%Y-%m-%dT%H:%M:%S")), "ambiguous_local_time", "local_time_in_dst_overlap")
    _dup(pl, fl, f2, f1, k=0)
    return fl


def build_marketing(pl: _Plan, marketing: pd.DataFrame) -> FeedLanding:
    fl = FeedLanding("marketing")
    f = fl.new_file(f"marketing_{_stamp(pl.end + timedelta(days=1))}.csv.gz", gz=True)
    for m in marketing.itertuples(index=False):
        f.add({"event_id": m.event_id, "account_id": m.account_id, "campaign_id": m.campaign_id, "channel": m.channel,
               "event_type": m.event_type, "occurred_at": fmt_z(m.occurred_at)})
    tmpl = _tmpl(f)
    seq = iter(range(1, 100))

    def nm(**ch: str) -> dict[str, str]:
        return dict(tmpl, event_id=f"MKX{next(seq):06d}") | ch

    pl.plant(fl, f, nm(channel="fax"), "out_of_domain", "channel_fax")
    pl.plant(fl, f, nm(event_type="bounced"), "out_of_domain", "event_type_out_of_domain")
    pl.plant(fl, f, nm(occurred_at=f"{pl.end:%Y-%m}-01T10:00"), "bad_timestamp", "timestamp_without_seconds")
    pl.plant(fl, f, nm(account_id="A00000007"), "unknown_reference", "unknown_account_id")
    _dup(pl, fl, f, k=3)
    return fl


# --------------------------------------------------------------------------- AMI


def build_ami_small(pl: _Plan, lf: pd.DataFrame, daily: np.ndarray, interval_minutes: int, n_intervals: int) -> tuple[FeedLanding, dict[int, str]]:
    """The re-read extract (E/M -> A corrections) and the AMI defects; returns the bulk rows to pin as E/M."""
    rng = rng_for(pl.seed, "ami_small")
    fl = FeedLanding("ami")
    prem = pl.pop.premises
    iv = lf[lf["station_idx"] == 0].set_index("t")
    n_m = len(prem)
    per_day = max(1, 24 * 60 // interval_minutes)
    f = fl.new_file(f"ami_{_stamp(pl.end + timedelta(days=4))}_reread.csv.gz", gz=True)
    picks = rng.choice(n_m * n_intervals, size=min(40, n_m * n_intervals // 4), replace=False)
    forced: dict[int, str] = {}
    im = str(interval_minutes)

    def cell(rid: int) -> tuple[str, str, float]:
        m, t = divmod(int(rid), n_intervals)
        day = int(iv.at[t, "local_day"])
        return prem["meter_id"].iat[m], iv.at[t, "ts_z"], float(max(daily[m, day], 0.0)) / per_day

    for k, rid in enumerate(picks[:12]):
        forced[int(rid)] = "M" if k % 2 == 0 else "E"
        meter, ts, exp = cell(int(rid))
        m, t = divmod(int(rid), n_intervals)
        spelled = iv.at[t, "ts_off"] if k == 0 else ts  # one correction spells the same instant with an offset
        row = {"meter_id": meter, "interval_start": spelled, "interval_minutes": im, "kwh": f"{exp * rng.uniform(0.8, 1.2):.3f}", "quality": "A"}
        pl.plant(fl, f, row, None, "reread_corrects_estimated" if forced[int(rid)] == "E" else "reread_fills_missing")
    pl.plant(fl, f, dict(f.rows[1]), None, "exact_duplicate")
    others = iter(int(r) for r in picks[12:])

    def bulk_row(**ch: str) -> dict[str, str]:
        meter, ts, exp = cell(next(others))
        return {"meter_id": meter, "interval_start": ts, "interval_minutes": im, "kwh": f"{exp:.3f}", "quality": "A"} | ch

    amb = bulk_row()
    pl.plant(fl, f, amb, "ambiguous_key", "conflicting_rows_same_key")
    pl.plant(fl, f, dict(amb, kwh=f"{float(amb['kwh']) + 0.25:.3f}"), "ambiguous_key", "conflicting_rows_same_key")
    pl.plant(fl, f, bulk_row(quality="M"), "kwh_quality_mismatch", "kwh_with_quality_M")
    pl.plant(fl, f, bulk_row(kwh=""), "kwh_quality_mismatch", "null_kwh_with_quality_A")
    pl.plant(fl, f, bulk_row(kwh="", quality="E"), "kwh_quality_mismatch", "null_kwh_with_quality_E")
    pl.plant(fl, f, bulk_row(interval_minutes="10"), "out_of_domain", "interval_minutes_10")
    pl.plant(fl, f, bulk_row(quality="X"), "out_of_domain", "quality_out_of_domain")
    pl.plant(fl, f, bulk_row(meter_id="MTR0000001"), "unknown_reference", "unknown_meter_id")
    pl.plant(fl, f, bulk_row(kwh="abc"), "bad_number", "kwh_not_a_number")
    pl.plant(fl, f, bulk_row(kwh="NaN"), "bad_number", "kwh_nan")
    pl.plant(fl, f, bulk_row(kwh="1,234.5"), "bad_number", "thousands_separator")
    pl.plant(fl, f, bulk_row(interval_start=f"{pl.end:%Y-%m}-01T10:00"), "bad_timestamp", "timestamp_without_seconds")
    pl.plant(fl, f, bulk_row(interval_start=f"{pl.end:%Y-%m}-01T10:00:00-0600"), "bad_timestamp", "offset_without_colon")
    pl.plant(fl, f, bulk_row(interval_start=f"{pl.end.year}-13-01T00:00:00Z"), "bad_timestamp", "month_13")
    if pl.gap is not None:
        pl.plant(fl, f, bulk_row(interval_start=pl.gap.strftime("%Y-%m-%dT%H:%M:%S")), "nonexistent_local_time", "local_time_in_dst_gap")
    if pl.overlap is not None:
        pl.plant(fl, f, bulk_row(interval_start=pl.overlap.strftime("%Y-%m-%dT%H:%M:%S")), "ambiguous_local_time", "local_time_in_dst_overlap")
    pl.plant(fl, f, bulk_row(quality=""), "missing_required", "missing_quality")
    pl.plant(fl, f, bulk_row(meter_id=""), "missing_required", "missing_meter_id")
    i = pl.plant(fl, f, bulk_row(), "wrong_field_count", "row_with_extra_field")
    f.extra_fields[i] = ["A"]
    corrupt = fl.new_file(f"ami_{_stamp(pl.end + timedelta(days=4), 7)}_corrupt.csv.gz")
    corrupt.raw_bytes = b"meter_id,interval_start,interval_minutes,kwh,quality\nthis file was never gzipped\n"
    corrupt.landed, corrupt.rejected = False, "unreadable"
    return fl, forced


# --------------------------------------------------------------------------- truth and manifest


PLANTED_EFFECTS = {
    "csat": [
        {"feature": k, "direction": d, "note": n} for k, (d, n) in ev.CSAT_WEIGHTS.items()
    ] + [
        {"feature": "survey_response_bias", "direction": "+", "note": "P(respond) rises 0.9/point as latent CSAT falls below 3.6 and 0.06 per tenure year: raw survey means understate CSAT"},
    ],
    "ev_adoption": [
        {"feature": "income_band", "direction": "+", "note": "logit +0.55 per income band"},
        {"feature": "tenure=owner", "direction": "+", "note": "logit +0.9"},
        {"feature": "home_type=single_family", "direction": "+", "note": "logit +0.7"},
        {"feature": "has_solar", "direction": "+", "note": "logit +0.9 (solar program / midday export in AMI)"},
        {"feature": "hidden_ev_load", "direction": "+", "note": "EV bought 45-200 days before enrolling: ~7.2 kW night blocks of 2-4 h on ~55% of nights, visible in AMI before ev_rate/ev_charger_rebate"},
    ],
    "payment_risk": [
        {"feature": "income_band", "direction": "-", "note": "risk logit -0.45 per income band"},
        {"feature": "energy_burden", "direction": "+", "note": "risk logit +10 x (12 x mean bill / income)"},
        {"feature": "arrears_history", "direction": "+", "note": "risky accounts start with arrears and skip (0.01+0.3r), part-pay and pay late more; past_due_notice -> disconnect_notice when past due > max(150, 1.6 bills) twice within 45 days"},
        {"feature": "autopay", "direction": "-", "note": "autopay enrolment is less likely for risky accounts and autopay pays in full on time"},
    ],
}



@dataclass
class World:
    """The generator's simulated utility before any landing file is shaped: what the landing zone
    is written from, and what the counterfactual (generate/counterfactual.py) continues."""

    period: Period
    pop: Population
    tz: ZoneInfo
    weather: pd.DataFrame
    lf: pd.DataFrame
    daily: np.ndarray
    bills: pd.DataFrame
    burden: np.ndarray
    risk_z: np.ndarray
    programs: pd.DataFrame
    payments: pd.DataFrame
    collections: pd.DataFrame
    outages: pd.DataFrame
    contacts: pd.DataFrame
    drivers_at: object  # (account row, date) -> {csat driver: value}
    surveys: pd.DataFrame
    marketing: pd.DataFrame
    ledgers: dict = field(default_factory=dict)  # account_idx -> (ledger, last past-due check), see make_payments_collections


def payment_risk_logit(income_idx: np.ndarray, burden: np.ndarray, risk_noise: np.ndarray) -> np.ndarray:
    """The planted payment-risk logit (PLANTED_EFFECTS["payment_risk"])."""
    return -1.9 + 0.45 * (2 - income_idx) + 10.0 * burden + risk_noise


def simulate_world(*, seed: int, households: int, months: int, interval_minutes: int, time_zone: str, end_date: str) -> World:
    """Everything the generator plants, in the order its random streams are drawn (deterministic
    for the same arguments)."""
    period = period_for(end_date, months, time_zone)
    pop = build_population(seed, households, period)
    tz = ZoneInfo(period.time_zone)
    weather = hourly_weather(seed, period, pop.stations)
    lf = load_frame(seed, period, interval_minutes, weather, len(pop.stations))
    daily = daily_expected_kwh(pop, lf, period, interval_minutes)
    bills = ev.make_bills(seed, pop, period, daily)
    burden = ev.energy_burden(pop, bills)
    acc = pop.accounts
    risk_z = payment_risk_logit(acc["income_idx"].to_numpy(), burden, acc["risk_noise"].to_numpy())
    programs = ev.make_programs(seed, pop, period, risk_z)
    ledgers: dict = {}
    payments, collections = ev.make_payments_collections(seed, pop, period, bills, programs, risk_z, tz, ledgers=ledgers)
    outages = ev.make_outages(seed, pop, period, tz)
    contacts = ev.make_contacts(seed, pop, period, bills, outages, collections, programs, tz)
    driver_fn, drivers_at = _csat_driver_fn(pop, bills, outages, contacts, collections, tz)
    surveys = ev.make_surveys(seed, pop, period, contacts, driver_fn, tz)
    marketing = ev.make_marketing(seed, pop, period, tz)
    return World(period=period, pop=pop, tz=tz, weather=weather, lf=lf, daily=daily, bills=bills, burden=burden,
                 risk_z=risk_z, programs=programs, payments=payments, collections=collections, outages=outages,
                 contacts=contacts, drivers_at=drivers_at, surveys=surveys, marketing=marketing, ledgers=ledgers)


def generate_utility(
    spark: SparkSession,
    out_dir: str | Path,
    *,
    households: int,
    months: int,
    interval_minutes: int = 15,
    seed: int = 42,
    time_zone: str = "America/Chicago",
    end_date: str = "2025-12-31",
) -> dict:
    """Write a synthetic utility's landing zone to ``out_dir``; return (and write) its manifest.

    ``out_dir/<feed>/`` holds the contract files, ``out_dir/_manifest.json`` the
    exact expected outcome per feed (current / superseded / quarantined by rule),
    ``out_dir/_truth/`` the latent per-account truth and every planted defect.
    """
    if interval_minutes not in INTERVAL_MINUTES:
        raise ValueError(f"interval_minutes must be one of {INTERVAL_MINUTES}")
    if households < 10 or months < 1:
        raise ValueError("need households >= 10 and months >= 1")
    out = Path(out_dir)
    if out.exists():
        for sub in [*FEED_ORDER, "_truth", "_manifest.json"]:
            target = out / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    w = simulate_world(seed=seed, households=households, months=months, interval_minutes=interval_minutes,
                       time_zone=time_zone, end_date=end_date)
    period, pop, tz = w.period, w.pop, w.tz
    pl = _Plan(seed, period, pop)
    weather, lf, daily, bills, burden, risk_z = w.weather, w.lf, w.daily, w.bills, w.burden, w.risk_z
    programs, payments, collections, outages = w.programs, w.payments, w.collections, w.outages
    contacts, drivers_at, surveys, marketing = w.contacts, w.drivers_at, w.surveys, w.marketing

    landing: dict[str, FeedLanding] = {}
    landing["accounts"], refs = build_accounts(pl, programs)
    landing["households"], match = build_households(pl)
    landing["census"] = build_census(pl)
    landing["weather"] = build_weather(pl, weather)
    landing["bills"] = build_bills(pl, bills, refs)
    landing["payments"] = build_payments(pl, payments)
    landing["collections"] = build_collections(pl, collections)
    landing["programs"] = build_programs(pl, programs)
    landing["contacts"] = build_contacts(pl, contacts, refs)
    landing["surveys"] = build_surveys(pl, surveys)
    landing["outages"] = build_outages(pl, outages)
    landing["marketing"] = build_marketing(pl, marketing)
    n_int = int(lf["t"].max()) + 1
    ami_fl, forced = build_ami_small(pl, lf, daily, interval_minutes, n_int)
    landing["ami"] = ami_fl

    # Exact accounting (asserts the plan) before anything is written.
    accounts_acc = account_feed(landing["accounts"], tz, {})
    cur = accounts_acc.current_values.values()
    refs_sets = {
        "accounts.account_id": {r["account_id"] for r in cur},
        "accounts.meter_id": {r["meter_id"] for r in cur},
        "accounts.premise_id": {r["premise_id"] for r in cur},
    }
    ami_fl.base_count = len(pop.premises) * n_int
    ami_fl.base_stamp = _stamp(period.end_date + timedelta(days=1))
    base_meters = set(pop.premises["meter_id"])
    grid = {datetime.fromisoformat(s.replace("Z", "+00:00")).isoformat() for s in lf.loc[lf["station_idx"] == 0, "ts_z"]}
    ami_fl.in_base = lambda k: k[0] in base_meters and k[1] in grid
    results = {"accounts": accounts_acc}
    for feed in FEED_ORDER:
        if feed != "accounts":
            results[feed] = account_feed(landing[feed], tz, refs_sets)

    # Write: small feeds, then the AMI bulk with Spark.
    for feed in FEED_ORDER:
        d = out / feed
        d.mkdir(parents=True, exist_ok=True)
        for f in landing[feed].files:
            write_file(f, d)
    meters = pop.premises.rename(columns={"premise_idx": "meter_idx"})
    partitions = max(2, -(-ami_fl.base_count // ROWS_PER_AMI_FILE))
    ami_df = ami_frame(spark, meters, lf, n_intervals=n_int, interval_minutes=interval_minutes, seed=seed, forced_quality=forced, partitions=partitions)
    ami_fl.base_files = write_ami(ami_df, out / "ami", stamp=ami_fl.base_stamp)

    manifest = _manifest(pl, landing, results, seed=seed, households=households, months=months, interval_minutes=interval_minutes)
    manifest["planted_effects"] = PLANTED_EFFECTS
    manifest["truth"] = {"households": "_truth/households.csv", "premise_household_match": "_truth/premise_household_match.csv",
                         "defects": "_truth/defects.csv", "contacts": "_truth/contacts.csv"}
    _write_truth(out / "_truth", pl, pop, risk_z, burden, collections, programs, drivers_at, match, surveys)
    # why each contact happened, and the topic its transcript is about (ucx contacts is judged against it)
    contacts.assign(topic=contacts["cause"].map(ev.CAUSE_TOPIC))[["contact_id", "cause", "topic", "reason"]].to_csv(
        out / "_truth" / "contacts.csv", index=False)
    (out / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def _csat_driver_fn(pop: Population, bills: pd.DataFrame, outages: pd.DataFrame, contacts: pd.DataFrame, collections: pd.DataFrame, tz):
    o = outages.assign(
        _day=[t.astimezone(tz).date() for t in outages["started_at"]],
        _minutes=[(r - s).total_seconds() / 60 for s, r in zip(outages["started_at"], outages["restored_at"], strict=True)],
        _etr_err_min=[abs((r - e).total_seconds()) / 60 if not pd.isna(e) else np.nan for r, e in zip(outages["restored_at"], outages["first_etr"], strict=True)],
    )
    outages_by_prem = {
        int(k): (np.array([d.toordinal() for d in g["_day"]]), g["_minutes"].to_numpy(float), g["_etr_err_min"].to_numpy(float))
        for k, g in o.groupby("premise_idx")
    }
    bills_by_acc = {
        int(k): (np.array([d.toordinal() for d in g["bill_date"]]), g["bill_shock"].to_numpy(float))
        for k, g in bills.groupby("account_idx")
    }
    unresolved: dict[int, list[date]] = {}
    for c in contacts[contacts["first_contact_resolution"].eq(False)].itertuples(index=False):
        unresolved.setdefault(c.account_idx, []).append(c.started_at.astimezone(tz).date())
    past_due: dict[int, list[tuple[date, float]]] = {}
    for c in collections[collections["event_type"] == "past_due_notice"].sort_values("event_date").itertuples(index=False):
        past_due.setdefault(c.account_idx, []).append((c.event_date, float(c.amount_past_due or 0)))

    def drivers_at(a, at: date) -> dict[str, float]:
        return ev.csat_drivers(
            a.account_idx, a.premise_idx, at, outages_by_prem=outages_by_prem, bills_by_acc=bills_by_acc,
            unresolved_by_acc=unresolved, past_due_by_acc=past_due, since=a.start_date,
        )

    return drivers_at, drivers_at


def _manifest(pl: _Plan, landing: dict[str, FeedLanding], results: dict, **params: int) -> dict:
    feeds: dict[str, dict] = {}
    rejected = []
    for feed in FEED_ORDER:
        fl, r = landing[feed], results[feed]
        names = sorted(fl.base_files + [f.name for f in fl.files])
        assert r.landed == r.current + r.superseded + sum(r.quarantined.values())
        feeds[feed] = {
            "files": names,
            "landed_rows": r.landed,
            "expected_current": r.current,
            "expected_superseded": r.superseded,
            "expected_quarantined": {rule: r.quarantined[rule] for rule in RULES if r.quarantined[rule]},
            "defects": dict(sorted(fl.defects.items())),
        }
        rejected += [{"feed": feed, "file": f.name, "reason": f.rejected} for f in fl.files if f.rejected]
    return {
        "contract_version": CONTRACT_VERSION,
        "seed": params["seed"],
        "households": params["households"],
        "months": params["months"],
        "interval_minutes": params["interval_minutes"],
        "time_zone": pl.period.time_zone,
        "start_date": pl.period.start_date.isoformat(),
        "end_date": pl.period.end_date.isoformat(),
        "feeds": feeds,
        "rejected_files": rejected,
        "notes": [
            "Extract = file: no key appears in two files with the same extraction timestamp.",
            "AMI bulk part files share one extraction timestamp; the reread extract is later and supersedes by (meter_id, interval_start instant).",
            "One AMI correction spells interval_start with a -06:00/-05:00 offset: it supersedes the Z row of the same instant.",
            "A bad row in a later extract (e.g. bills amount 'abc' for an existing bill_id) supersedes nothing.",
        ],
    }


def _write_truth(d: Path, pl: _Plan, pop: Population, risk_z: np.ndarray, burden: np.ndarray, collections: pd.DataFrame,
                 programs: pd.DataFrame, drivers_at, match: pd.DataFrame, surveys: pd.DataFrame) -> None:
    d.mkdir(parents=True, exist_ok=True)
    prem = pop.premises
    period = pl.period
    dn = collections[collections["event_type"] == "disconnect_notice"].groupby("account_id").size()
    ev_enroll = programs[programs["program"].isin(["ev_rate", "ev_charger_rebate"])].groupby("account_id")["enrolled_on"].min()
    rows = []
    prem_rows = list(prem.itertuples(index=False))
    n_surveys = surveys["account_id"].value_counts()
    for a in pop.accounts.itertuples(index=False):
        p = prem_rows[a.premise_idx]
        at = min(a.end_date or period.end_date, period.end_date)
        drv = drivers_at(a, at)
        ev_since = period.day(int(p.ev_since_day)) if p.ev_since_day < 10**5 else None
        adopter = bool(p.ev_adopter and not a.is_move_in)
        rows.append(
            {
                "account_id": a.account_id, "premise_id": p.premise_id, "meter_id": p.meter_id,
                "customer_class": "COM" if p.is_com else "RES", "start_date": a.start_date.isoformat(), "end_date": _d(a.end_date),
                "income_band": a.income_band, "income_usd": int(INCOME_MID[a.income_idx]), "home_type": p.home_type, "tenure": p.tenure,
                "household_size": int(p.household_size), "vacant": bool(p.vacant),
                "has_solar": bool(p.has_solar), "solar_kw": float(p.solar_kw),
                # the planted weather response (load.py: kW per degree-hour beyond 60 F / 72 F), per
                # degree-day of a day entirely beyond the base: what a daily baseline's slopes estimate
                "heating_kwh_per_dd": round(24 * float(p.heat_slope), 4), "heating_base_f": HEAT_BASE_F,
                "cooling_kwh_per_dd": round(24 * float(p.cool_slope), 4), "cooling_base_f": COOL_BASE_F,
                "has_ev": bool(ev_since is not None and ev_since <= at and not a.is_move_in), "ev_since_date": _d(ev_since) if not a.is_move_in else "",
                "ev_adopter_future": adopter,
                "ev_adoption_date": period.day(int(p.ev_enroll_day)).isoformat() if adopter else "",
                "ev_enrolled_on_first": _d(ev_enroll.get(a.account_id)),
                "latent_csat": round(ev.latent_csat(a.csat_base, drv), 4), "csat_base": round(float(a.csat_base), 4),
                # the NPS answer is planted as round(2.4 x latent CSAT - 1.5 + noise), clipped to 0-10
                "latent_nps": round(float(np.clip(2.4 * ev.latent_csat(a.csat_base, drv) - 1.5, 0, 10)), 4),
                **{f"csat_{k}": round(v, 2) for k, v in drv.items()},
                "payment_risk": round(float(sigmoid(risk_z[a.account_idx])), 4), "payment_risk_logit": round(float(risk_z[a.account_idx]), 4),
                "energy_burden": round(float(burden[a.account_idx]), 4),
                "disconnect_notices": int(dn.get(a.account_id, 0)),
                "survey_responses": int(n_surveys.get(a.account_id, 0)),
            }
        )
    pd.DataFrame(rows).to_csv(d / "households.csv", index=False, lineterminator="\n")
    match.to_csv(d / "premise_household_match.csv", index=False, lineterminator="\n")
    pd.DataFrame(pl.truth_defects).to_csv(d / "defects.csv", index=False, lineterminator="\n")


__all__ = ["generate_utility"]
