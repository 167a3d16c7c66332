"""Customer events on the driver: bills, payments, collections, programs, outages, contacts, surveys, marketing.

The order of generation is the causal order of the planted effects: usage ->
bills -> energy burden -> payment behaviour -> arrears -> collections; outages,
bill shock, arrears and unresolved contacts -> latent CSAT -> surveys (whose
response is biased toward unhappy, long-tenure customers).  All sizes are
bounded by households x months, so plain numpy/Python is enough.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from ucx_spark.generate.population import INCOME_MID, TARIFFS, Population, rng_for, sigmoid
from ucx_spark.generate.timeutil import Period


def _at(d: date, tz, hour: float) -> datetime:
    """A UTC instant at a local hour of a local date."""
    h = int(hour)
    m = int((hour - h) * 60)
    return datetime(d.year, d.month, d.day, h, m, int(((hour - h) * 60 - m) * 60), tzinfo=tz).astimezone(UTC)


def _months(period: Period) -> list[tuple[date, date]]:
    out = []
    d = period.start_date.replace(day=1)
    while d <= period.end_date:
        nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        out.append((max(d, period.start_date), min(nxt - timedelta(days=1), period.end_date)))
        d = nxt
    return out


def make_bills(seed: int, pop: Population, period: Period, daily_kwh: np.ndarray) -> pd.DataFrame:
    """Monthly bills from (expected) metered usage and the account's tariff."""
    rng = rng_for(seed, "bills")
    rows = []
    seq = 0
    for a in pop.accounts.itertuples(index=False):
        energy, fixed, peak = TARIFFS[a.rate_plan]
        for ms, me in _months(period):
            ps = max(ms, a.start_date)
            pe = min(me, a.end_date) if a.end_date else me
            if ps > pe:
                continue
            d0, d1 = (ps - period.start_date).days, (pe - period.start_date).days
            kwh = float(daily_kwh[a.premise_idx, d0 : d1 + 1].sum()) * (1 + rng.normal(0, 0.015))
            share = 0.24 if a.rate_plan != "RES_EV" else 0.13
            rate = energy if peak is None else share * peak + (1 - share) * energy
            days_frac = (pe - ps).days / max((me - ms).days, 1)
            amount = fixed * min(days_frac + 0.04, 1.0) + (kwh * rate if kwh > 0 else kwh * energy * 0.7)
            amount = max(amount, 0.0)
            bill_date = pe + timedelta(days=2)
            seq += 1
            rows.append(
                {
                    "bill_id": f"B{7_000_000 + seq * 13:09d}",
                    "account_id": a.account_id,
                    "account_idx": a.account_idx,
                    "period_start": ps,
                    "period_end": pe,
                    "bill_date": bill_date,
                    "due_date": bill_date + timedelta(days=21),
                    "kwh": round(kwh, 1),
                    "amount_due": round(amount, 2),
                }
            )
    bills = pd.DataFrame(rows)
    # Bill shock: this bill vs the mean of the account's previous (up to 3) bills.
    prev = bills.groupby("account_id")["amount_due"].transform(lambda s: s.shift(1).rolling(3, min_periods=1).mean())
    bills["bill_shock"] = ((bills["amount_due"] / prev.where(prev > 20)) - 1.3).clip(lower=0).fillna(0.0)
    return bills


def make_programs(seed: int, pop: Population, period: Period, risk_z: np.ndarray) -> pd.DataFrame:
    """Enrollment spells per account; EV programs at the adoption date (the planted EV label)."""
    rng = rng_for(seed, "programs")
    prem = list(pop.premises.itertuples(index=False))
    rows: list[dict] = []

    def add(a, program: str, on: date, off: date | None = None) -> None:
        if on < a.start_date:
            on = a.start_date + timedelta(days=int(rng.integers(0, 20)))
        if a.end_date and on > a.end_date:
            return
        if a.end_date and (off is None or off > a.end_date):
            off = a.end_date
        if off is not None and off < on:
            return
        rows.append({"account_id": a.account_id, "account_idx": a.account_idx, "program": program, "enrolled_on": on, "ended_on": off})

    def some_day(a, before_start_p: float) -> date:
        if rng.random() < before_start_p:
            return period.start_date - timedelta(days=int(rng.integers(1, 1500)))
        return period.day(int(rng.integers(0, period.days)))

    for a in pop.accounts.itertuples(index=False):
        p = prem[a.premise_idx]
        rz = risk_z[a.account_idx]
        if rng.random() < sigmoid(-0.3 - 0.9 * rz):
            add(a, "autopay", some_day(a, 0.7), None if rng.random() > 0.05 else period.day(int(rng.integers(0, period.days))))
        if rng.random() < 0.42:
            add(a, "paperless", some_day(a, 0.6))
        if not p.is_com and rng.random() < 0.05 + 0.05 * (a.income_idx <= 2):
            add(a, "budget_billing", some_day(a, 0.5))
        if not p.is_com and rng.random() < (0.45 if a.income_idx == 0 else 0.15 if a.income_idx == 1 else 0.0):
            for year in range(period.start_date.year - 1, period.end_date.year + 1):
                on = date(year, 11, 15) + timedelta(days=int(rng.integers(0, 30)))
                if on <= period.end_date and rng.random() < 0.8:
                    add(a, "liheap", on, date(year + 1, 3, 31))
        if rng.random() < 0.04:
            add(a, "ee_rebate", some_day(a, 0.3))
        if p.has_solar and not a.is_move_in:
            add(a, "solar", period.day(int(p.solar_install_day)) if p.solar_install_day < period.days else period.start_date)
        if p.ev_now and p.ev_enrolled_before and not a.is_move_in:
            add(a, "ev_rate", period.day(int(p.ev_since_day) + int(rng.integers(10, 120))))
        if p.ev_adopter and not a.is_move_in:
            on = period.day(int(p.ev_enroll_day))
            first = rng.random() < 0.7
            if first:
                add(a, "ev_rate", on)
            if not first or rng.random() < 0.45:
                add(a, "ev_charger_rebate", on + timedelta(days=int(rng.integers(0, 20))))
        if not p.is_com and p.tenure == "owner" and rng.random() < 0.03 + 0.4 * p.cool_slope:
            add(a, "demand_response", some_day(a, 0.5))
    df = pd.DataFrame(rows, columns=["account_id", "account_idx", "program", "enrolled_on", "ended_on"])
    return df.drop_duplicates(["account_id", "program", "enrolled_on"]).reset_index(drop=True)


def make_payments_collections(
    seed: int, pop: Population, period: Period, bills: pd.DataFrame, programs: pd.DataFrame, risk_z: np.ndarray, tz,
    ledgers: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Payments per bill by payer behaviour (driven by payment risk) and the collections they trigger.

    ``ledgers`` (optional, filled in place): account_idx -> (ledger [(date, +billed / -paid)], date of
    the last past-due check that found more than 40 USD past due or None): the state the
    counterfactual simulation (generate/counterfactual.py) continues from. Draws nothing."""
    rng = rng_for(seed, "payments")
    autopay = programs[programs["program"] == "autopay"].set_index("account_id")["enrolled_on"].to_dict()
    liheap = set(programs.loc[programs["program"] == "liheap", "account_id"])
    pays: list[dict] = []
    cols: list[dict] = []
    pseq = 0
    cseq = 0
    horizon = period.end_date + timedelta(days=5)

    def pay(a, when: datetime, amount: float, method: str) -> None:
        nonlocal pseq
        if when.date() > horizon or amount <= 0:
            return
        pseq += 1
        pays.append({"payment_id": f"PY{3_000_000 + pseq * 7:09d}", "account_id": a.account_id, "account_idx": a.account_idx, "paid_at": when, "amount": round(amount, 2), "method": method})

    def collect(a, on: date, kind: str, past_due: float | None) -> None:
        nonlocal cseq
        if on > horizon or (a.end_date and on > a.end_date + timedelta(days=60)):
            return
        cseq += 1
        cols.append({"event_id": f"CE{500_000 + cseq * 3:08d}", "account_id": a.account_id, "account_idx": a.account_idx, "event_date": on, "event_type": kind, "amount_past_due": None if past_due is None else round(past_due, 2)})

    by_acc = dict(tuple(bills.groupby("account_idx")))
    for a in pop.accounts.itertuples(index=False):
        r = float(sigmoid(risk_z[a.account_idx]))
        ab = by_acc.get(a.account_idx)
        if ab is None:
            continue
        arrears0 = float(rng.uniform(60, 400)) if rng.random() < 0.6 * r else 0.0
        ledger: list[tuple[date, float]] = []  # (date, +billed / -paid) for past-due checks
        if arrears0:
            ledger.append((period.start_date - timedelta(days=40), arrears0))
        last_notice: date | None = None
        for b in ab.itertuples(index=False):
            amt = float(b.amount_due)
            ledger.append((b.due_date, amt))
            ap = autopay.get(a.account_id)
            if ap is not None and ap <= b.bill_date:
                when = _at(b.due_date - timedelta(days=1), tz, 6.0 + rng.random() * 2)
                pay(a, when, amt, "autopay")
                ledger.append((when.date(), -amt))
            else:
                u = rng.random()
                if u < 0.01 + 0.3 * r:
                    pass  # skipped this bill
                else:
                    frac = float(rng.uniform(0.3, 0.85)) if rng.random() < 0.04 + 0.4 * r else 1.0
                    late = rng.random() < 0.08 + 0.6 * r
                    day = b.due_date + timedelta(days=int(rng.integers(3, 40))) if late else b.bill_date + timedelta(days=int(rng.integers(2, 22)))
                    when = _at(day, tz, 7 + rng.random() * 14)
                    method = str(rng.choice(["online", "phone", "mail", "in_person"], p=[0.55, 0.15, 0.2, 0.1]))
                    pay(a, when, amt * frac, method)
                    ledger.append((when.date(), -amt * frac))
            if a.account_id in liheap and b.bill_date.month in (12, 1, 2) and rng.random() < 0.5:
                when = _at(b.due_date - timedelta(days=int(rng.integers(0, 10))), tz, 10 + rng.random() * 6)
                amount = float(rng.uniform(80, 250))
                pay(a, when, amount, "assistance")
                ledger.append((when.date(), -amount))
            check = b.due_date + timedelta(days=10)
            past_due = sum(v for d, v in ledger if d <= check and (v < 0 or d < check - timedelta(days=9)))
            if past_due > 40:
                collect(a, check, "past_due_notice", past_due)
                if past_due > max(150.0, 1.6 * amt) and last_notice is not None and (check - last_notice).days <= 45:
                    dn = check + timedelta(days=5)
                    collect(a, dn, "disconnect_notice", past_due)
                    v = rng.random()
                    if v < 0.3:
                        collect(a, dn + timedelta(days=6), "payment_arrangement", past_due)
                        when = _at(dn + timedelta(days=8), tz, 12)
                        pay(a, when, past_due * 0.4, "phone")
                        ledger.append((when.date(), -past_due * 0.4))
                    elif v < 0.5:
                        cut = dn + timedelta(days=14)
                        collect(a, cut, "disconnect", past_due)
                        when = _at(cut + timedelta(days=int(rng.integers(1, 4))), tz, 11)
                        pay(a, when, past_due, "in_person")
                        ledger.append((when.date(), -past_due))
                        collect(a, when.date() + timedelta(days=1), "reconnect", None)
                    else:
                        when = _at(dn + timedelta(days=int(rng.integers(3, 12))), tz, 9 + rng.random() * 9)
                        paid = past_due * float(rng.uniform(0.5, 1.0))
                        pay(a, when, paid, "online")
                        ledger.append((when.date(), -paid))
                last_notice = check
        if ledgers is not None:
            ledgers[a.account_idx] = (ledger, last_notice)
    payments = pd.DataFrame(pays).sort_values(["paid_at", "payment_id"]).reset_index(drop=True)
    collections = pd.DataFrame(cols, columns=["event_id", "account_id", "account_idx", "event_date", "event_type", "amount_past_due"])
    return payments, collections.sort_values(["event_date", "event_id"]).reset_index(drop=True)


def make_outages(seed: int, pop: Population, period: Period, tz) -> pd.DataFrame:
    """Outage events affecting groups of premises (same outage_id), with per-premise restoration and the first ETR."""
    rng = rng_for(seed, "outages")
    prem = pop.premises
    months = period.days / 30.44
    n_events = max(8, int(round(len(prem) * months / 90)))
    rows = []
    by_zip = {z: g["premise_idx"].to_numpy() for z, g in prem.groupby("zip")}
    zips = sorted(by_zip)
    for k in range(n_events):
        z = zips[int(rng.integers(0, len(zips)))]
        members = by_zip[z]
        day = period.day(int(rng.integers(0, period.days)))
        summer = day.month in (5, 6, 7, 8, 9)
        size_u = rng.random()
        if size_u < 0.55:
            size = int(rng.integers(1, 6))
        elif size_u < 0.9:
            size = int(rng.integers(5, 40))
        else:
            size = int(len(members) * rng.uniform(0.4, 1.0))
        size = max(1, min(size, len(members)))
        hit = np.sort(rng.choice(members, size=size, replace=False))
        planned = rng.random() < 0.08
        cause = "planned" if planned else str(rng.choice(["weather", "equipment", "vegetation", "other"], p=[0.5 if summer else 0.35, 0.3, 0.15, 0.05 if summer else 0.2]))
        start = _at(day, tz, 9.0 if planned else float(rng.uniform(0, 24)))
        dur = float(np.clip(rng.lognormal(np.log(75 if size < 40 else 160), 0.8), 5, 2_800))
        etr = start + timedelta(minutes=dur if planned else dur * float(np.exp(rng.normal(-0.15, 0.5))) + 20)
        etr = etr.replace(minute=(etr.minute // 15) * 15, second=0)
        no_etr = rng.random() < 0.06
        for p in hit:
            stagger = 0.0 if size < 5 else float(rng.uniform(0, 0.25 * dur))
            rows.append(
                {
                    "outage_id": f"OUT{100_000 + k * 11:07d}",
                    "premise_idx": int(p),
                    "premise_id": prem["premise_id"].iat[int(p)],
                    "started_at": start,
                    "restored_at": start + timedelta(minutes=round(dur + stagger)),
                    "first_etr": None if no_etr else etr,
                    "cause": cause if rng.random() > 0.03 else None,
                }
            )
    return pd.DataFrame(rows).sort_values(["started_at", "outage_id", "premise_id"]).reset_index(drop=True)


def csat_drivers(
    acc_idx: int,
    premise_idx: int,
    at: date,
    *,
    outages_by_prem: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    bills_by_acc: dict[int, tuple[np.ndarray, np.ndarray]],
    unresolved_by_acc: dict[int, list[date]],
    past_due_by_acc: dict[int, list[tuple[date, float]]],
    since: date,
) -> dict[str, float]:
    """The planted CSAT drivers over the 180 days before ``at`` (never before the account started).

    Outages per premise are (day ordinal, minutes, ETR error minutes) arrays and
    bills per account (bill_date ordinal, shock) arrays, so a call is a few numpy masks.
    """
    lo = max(at - timedelta(days=180), since).toordinal()
    hi = at.toordinal()
    out_min = etr_err = 0.0
    o = outages_by_prem.get(premise_idx)
    if o is not None:
        sel = (o[0] >= lo) & (o[0] <= hi)
        if sel.any():
            out_min = float(o[1][sel].sum())
            errs = o[2][sel]
            etr_err = float(np.nanmax(errs)) if np.isfinite(errs).any() else 0.0
    b = bills_by_acc.get(acc_idx)
    shock = 0.0
    if b is not None:
        sel = (b[0] >= lo) & (b[0] <= hi)
        shock = float(b[1][sel].max()) if sel.any() else 0.0
    unresolved = sum(1 for d in unresolved_by_acc.get(acc_idx, []) if lo <= d.toordinal() <= hi)
    pdue = past_due_by_acc.get(acc_idx, [])
    k = bisect_right([d for d, _ in pdue], at)
    arrears = pdue[k - 1][1] if k and (at - pdue[k - 1][0]).days <= 45 else 0.0
    return {"outage_minutes": out_min, "etr_error_minutes": etr_err, "bill_shock": shock, "unresolved_contacts": float(unresolved), "arrears_usd": arrears}


CSAT_WEIGHTS = {
    "outage_minutes": ("-", "0.45 x log1p(minutes/60) over the trailing 180 days"),
    "etr_error_minutes": ("-", "0.35 x log1p(|restored-first_etr| minutes/60), worst outage in 180 days"),
    "bill_shock": ("-", "1.2 x (bill / mean of previous 3 bills - 1.3)+, worst bill in 180 days"),
    "unresolved_contacts": ("-", "0.35 per contact without first-contact resolution in 180 days (max 3)"),
    "arrears_usd": ("-", "0.25 x log1p(past-due USD/100) at the latest collections check"),
}


def latent_csat(base, d):  # noqa: ANN001, ANN201 - floats or numpy arrays of the same shape
    """The planted latent CSAT (CSAT_WEIGHTS): a float for scalar drivers, an array for arrays."""
    v = (
        base
        - 0.45 * np.log1p(np.asarray(d["outage_minutes"], dtype=float) / 60)
        - 0.35 * np.log1p(np.asarray(d["etr_error_minutes"], dtype=float) / 60)
        - 1.2 * np.minimum(d["bill_shock"], 1.0)
        - 0.35 * np.minimum(d["unresolved_contacts"], 3)
        - 0.25 * np.log1p(np.asarray(d["arrears_usd"], dtype=float) / 100)
    )
    out = np.clip(v, 1.0, 5.0)
    return float(out) if np.ndim(out) == 0 else out


# Why a contact happened (the generator's own record, _truth/contacts.csv), the topic a reader of its
# transcript should find, and the words customers and agents use for it: neutral ones, and the
# angry ones of a complaint or of an unhappy caller (drawn from their own random stream, so the
# contacts themselves and their reason codes do not depend on the text).
CAUSE_TOPIC = {"bill": "billing", "bill_shock": "billing", "outage": "outage", "notice": "payment",
               "move": "start_stop", "enrolment": "program", "general": "other"}
CAUSE_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bill": (
        ("Question about a charge on the latest bill; agent explained the fixed charge.",
         "Customer asked how the monthly statement is calculated.",
         "Caller wanted a copy of last month's invoice and an explanation of the rate plan."),
        ("Customer confused and annoyed by the charges on the bill.",),
    ),
    "bill_shock": (
        ("Customer asked why the bill went up this month; agent reviewed usage and rate plan.",
         "Caller said the statement was much higher than usual and asked for the meter read to be checked.",
         "High bill inquiry: agent compared this month's kWh usage with last year's."),
        ("Customer furious that the bill doubled, said the charges are a ripoff and asked for a supervisor.",
         "Caller angry about a terrible, unfair bill and threatened to file a complaint.",
         "Upset customer says the invoice is wrong and awful, wants a refund of the overcharge."),
    ),
    "outage": (
        ("Customer reported power out; agent gave the estimated restoration time.",
         "Caller asked when the lights would be back on after the outage.",
         "Customer reported an outage on the street and asked for the restoration estimate."),
        ("Caller angry that the power is still out and the restoration estimate was wrong again.",
         "Complaint: estimated restoration time was missed again, customer is fed up with the outages.",
         "Customer upset about repeated outages and a useless restore estimate, asked for a supervisor."),
    ),
    "notice": (
        ("Customer wanted to set up a payment arrangement for the past due balance.",
         "Caller received a disconnect notice and asked for an extension to pay.",
         "Customer asked how much to pay to avoid disconnection and set up a payment plan."),
        ("Customer upset about the disconnection notice, says the payment was already sent.",
         "Angry caller disputes the late fee on the past due amount."),
    ),
    "move": (
        ("Customer requested start of service at a new address.",
         "Customer requested stop of service, moving out.",
         "Caller is moving next week and wants to transfer service to the new home."),
        ("Customer frustrated that the move-in start of service was delayed.",),
    ),
    "enrolment": (
        ("Customer asked about enrolling in a program; agent sent the form.",
         "Question about eligibility and rebates for a program.",
         "Caller wants to sign up for the autopay and budget billing programs."),
        ("Customer annoyed that the rebate program enrollment was rejected.",),
    ),
    "general": (
        ("General question about the account.",
         "Customer updated contact preferences.",
         "Caller asked to change the mailing address and phone number on the account. Thanks for the help."),
        ("Customer unhappy with the wait time on the phone line.",),
    ),
}


def contact_text(rng: np.random.Generator, cause: str, *, angry: bool) -> str:
    """A transcript of a contact with this cause, angry or not."""
    calm, upset = CAUSE_TEXT[cause]
    bank = upset if angry else calm
    return str(bank[int(rng.integers(0, len(bank)))])


def make_contacts(
    seed: int, pop: Population, period: Period, bills: pd.DataFrame, outages: pd.DataFrame, collections: pd.DataFrame, programs: pd.DataFrame, tz
) -> pd.DataFrame:
    """Contacts caused by bill shock, outages, collections, moves and enrollments, plus background."""
    rng = rng_for(seed, "contacts")
    text_rng = rng_for(seed, "contact_text")
    acc = pop.accounts
    rows: list[dict] = []
    horizon = period.end_utc

    def add(a, when: datetime, reason: str, cause: str) -> None:
        if when >= horizon or when < period.start_utc:
            return
        if when.date() < a.start_date or (a.end_date and when.date() > a.end_date + timedelta(days=3)):
            return
        channel = str(rng.choice(["phone", "chat", "email", "ivr", "web"], p=[0.5, 0.15, 0.1, 0.15, 0.1]))
        if reason == "complaint" and channel in ("ivr", "web"):
            channel = "phone"
        hs: float | None
        if channel == "phone":
            hs = rng.lognormal(5.9, 0.5) * (1.4 if reason == "complaint" else 1.0)
        elif channel == "chat":
            hs = rng.lognormal(6.3, 0.5)
        elif channel == "email":
            hs = rng.lognormal(5.4, 0.6)
        elif channel == "ivr":
            hs = rng.uniform(30, 240)
        else:
            hs = None
        p_fcr = 0.8 - (0.35 if reason == "complaint" else 0.0) - (0.12 if reason in ("payment", "outage") else 0.0)
        fcr = None if rng.random() < 0.07 else bool(rng.random() < p_fcr)
        rng.integers(0, 2)  # the draw that once chose the transcript: kept, so every later contact is as before
        text = contact_text(text_rng, cause, angry=reason == "complaint" or text_rng.random() < 0.15)
        pii = rng.random()
        if pii < 0.12:
            text = f"My name is {a.customer_name}. " + text
        elif pii < 0.2 and a.phone:
            text += f" Call back at {a.phone}."
        elif pii < 0.26 and a.email:
            text += f" Send details to {a.email}."
        elif pii < 0.3:
            text = f'Customer said "this is the third time", {text.lower()}'
        rows.append(
            {
                "account_id": a.account_id, "account_idx": a.account_idx, "started_at": when, "channel": channel, "reason": reason,
                "handle_seconds": None if hs is None else int(round(hs)), "first_contact_resolution": fcr,
                "transcript": text if channel in ("phone", "chat", "email") else None,
                "cause": cause,
            }
        )

    def business(d: date) -> datetime:
        return _at(d, tz, float(rng.uniform(8, 19.5)))

    acc_by_idx = {a.account_idx: a for a in acc.itertuples(index=False)}
    for b in bills.itertuples(index=False):
        a = acc_by_idx[b.account_idx]
        p = 0.45 if b.bill_shock > 0 else 0.025
        if rng.random() < p:
            reason = "complaint" if b.bill_shock > 0.3 and rng.random() < 0.3 else "billing"
            add(a, business(b.bill_date + timedelta(days=int(rng.integers(1, 12)))), reason,
                "bill_shock" if b.bill_shock > 0 else "bill")
    active_at = acc.groupby("premise_idx")
    for o in outages.itertuples(index=False):
        mins = (o.restored_at - o.started_at).total_seconds() / 60
        etr_err = abs((o.restored_at - o.first_etr).total_seconds() / 60) if not pd.isna(o.first_etr) else 0
        if mins > 45 and rng.random() < 0.22 + (0.15 if etr_err > 60 else 0.0):
            for a in active_at.get_group(o.premise_idx).itertuples(index=False):
                d = o.started_at.date()
                if a.start_date <= d and (a.end_date is None or d <= a.end_date):
                    when = o.started_at + timedelta(minutes=float(rng.uniform(5, max(mins, 10))))
                    add(a, when, "complaint" if etr_err > 90 and rng.random() < 0.35 else "outage", "outage")
    for c in collections.itertuples(index=False):
        if c.event_type in ("past_due_notice", "disconnect_notice") and rng.random() < (0.3 if c.event_type == "past_due_notice" else 0.6):
            add(acc_by_idx[c.account_idx], business(c.event_date + timedelta(days=int(rng.integers(0, 6)))), "payment", "notice")
    for a in acc.itertuples(index=False):
        if a.is_move_in:
            add(a, business(a.start_date - timedelta(days=int(rng.integers(0, 6)))), "start_stop", "move")
        if a.end_date is not None:
            add(a, business(a.end_date - timedelta(days=int(rng.integers(1, 8)))), "start_stop", "move")
        n_bg = rng.poisson(0.02 * period.days / 30.44)
        for _ in range(n_bg):
            add(a, business(period.day(int(rng.integers(0, period.days)))), "other", "general")
    for e in programs.itertuples(index=False):
        if period.start_date <= e.enrolled_on <= period.end_date and rng.random() < 0.2:
            add(acc_by_idx[e.account_idx], business(e.enrolled_on - timedelta(days=int(rng.integers(0, 5)))), "program", "enrolment")
    df = pd.DataFrame(rows).sort_values(["started_at", "account_id"]).reset_index(drop=True)
    df.insert(0, "contact_id", [f"CT{2_000_000 + 17 * i:09d}" for i in range(len(df))])
    return df


def make_surveys(
    seed: int,
    pop: Population,
    period: Period,
    contacts: pd.DataFrame,
    driver_fn,
    tz,
) -> pd.DataFrame:
    """Relationship waves and post-contact surveys; response biased to unhappy, long-tenure customers."""
    rng = rng_for(seed, "surveys")
    acc = pop.accounts
    rows: list[dict] = []
    n_waves = max(1, len(range(0, period.days, 91)))
    invite_share = min(0.8, 1.2 / n_waves)

    def respond(a, invited: date, kind: str, related: str | None, slope: float, base: float) -> None:
        latent = latent_csat(a.csat_base, driver_fn(a, invited))
        p = sigmoid(base + slope * (3.6 - latent) + 0.06 * min(a.tenure_years, 25))
        if rng.random() >= p:
            return
        when = datetime.combine(invited, datetime.min.time(), tzinfo=UTC) + timedelta(hours=float(rng.uniform(14, 140)))
        if when >= period.end_utc + timedelta(days=5):
            return
        csat = int(np.clip(round(latent + rng.normal(0, 0.5)), 1, 5))
        nps = int(np.clip(round(2.4 * latent - 1.5 + rng.normal(0, 1.1)), 0, 10))
        ces = int(np.clip(round(8.0 - 1.4 * latent + rng.normal(0, 0.8)), 1, 7))
        comment = None
        if rng.random() < 0.3:
            comment = (
                "Power keeps going out and the estimates are useless." if latent < 2.5
                else "Bill was higher than expected." if latent < 3.5
                else "Fine overall, thanks."
            )
            if rng.random() < 0.15:
                comment += f" - {a.customer_name}"
        rows.append(
            {
                "account_id": a.account_id, "account_idx": a.account_idx, "responded_at": when, "survey_type": kind,
                "related_contact_id": related, "csat": csat if rng.random() > 0.03 else None,
                "nps": nps if rng.random() > 0.1 else None,
                "ces": ces if kind == "transactional" or rng.random() < 0.3 else None,
                "comment": comment, "_latent": latent,
            }
        )

    acc_by_idx = {a.account_idx: a for a in acc.itertuples(index=False)}
    for w in range(0, period.days, 91):
        wave_day = period.day(min(w + 45, period.days - 1))
        for a in acc.itertuples(index=False):
            if a.start_date <= wave_day and (a.end_date is None or wave_day <= a.end_date) and rng.random() < invite_share:
                respond(a, wave_day, "relationship", None, 0.9, -2.6)
    for c in contacts.itertuples(index=False):
        if c.channel in ("phone", "chat") and rng.random() < 0.5:
            respond(acc_by_idx[c.account_idx], c.started_at.date(), "transactional", c.contact_id, 0.9, -2.4)
    columns = ["account_id", "account_idx", "responded_at", "survey_type", "related_contact_id",
               "csat", "nps", "ces", "comment", "_latent"]
    # A tiny population can produce no response at all: keep the columns so callers still work.
    df = pd.DataFrame(rows, columns=columns).sort_values(["responded_at", "account_id"]).reset_index(drop=True)
    df.insert(0, "survey_id", [f"SV{400_000 + 7 * i:08d}" for i in range(len(df))])
    return df


CAMPAIGNS = (
    ("ev", "ev_rate"), ("paperless", None), ("budget", None), ("dr", None), ("efficiency", None), ("autopay", None),
)


def make_marketing(seed: int, pop: Population, period: Period, tz) -> pd.DataFrame:
    """Campaign funnels: sent -> delivered -> opened -> clicked -> converted, with unsubscribes."""
    rng = rng_for(seed, "marketing")
    acc = pop.accounts
    prem = list(pop.premises.itertuples(index=False))
    rows: list[dict] = []
    n_campaigns = max(2, int(period.days // 45))
    for k in range(n_campaigns):
        topic = CAMPAIGNS[k % len(CAMPAIGNS)][0]
        launch = period.day(int(k * period.days / n_campaigns) + int(rng.integers(0, 10)))
        channel = str(rng.choice(["email", "sms", "direct_mail", "ivr"], p=[0.6, 0.2, 0.15, 0.05]))
        cid = f"CMP-{topic.upper()}-{launch:%Y%m}"
        for a in acc.itertuples(index=False):
            p = prem[a.premise_idx]
            if not (a.start_date <= launch and (a.end_date is None or launch <= a.end_date)):
                continue
            share = 0.3
            if topic == "ev":
                share = 0.6 if (p.home_type == "single_family" and p.tenure == "owner") else 0.05
            if channel == "email" and not a.email:
                continue
            if rng.random() >= share:
                continue
            t = _at(launch, tz, 10 + rng.random() * 2)
            seq = [("sent", t)]
            if rng.random() < {"email": 0.95, "sms": 0.97, "direct_mail": 0.98, "ivr": 0.7}[channel]:
                t = t + (timedelta(days=3) if channel == "direct_mail" else timedelta(minutes=float(rng.uniform(1, 30))))
                seq.append(("delivered", t))
                if channel in ("email", "sms") and rng.random() < 0.01:
                    seq.append(("unsubscribed", t + timedelta(hours=float(rng.uniform(1, 48)))))
                elif channel == "email" and rng.random() < 0.28:
                    t = t + timedelta(hours=float(rng.exponential(10)))
                    seq.append(("opened", t))
                    if rng.random() < 0.18:
                        t = t + timedelta(minutes=float(rng.uniform(0, 20)))
                        seq.append(("clicked", t))
                        if rng.random() < 0.15:
                            seq.append(("converted", t + timedelta(days=float(rng.uniform(0, 5)))))
                elif channel == "sms" and rng.random() < 0.06:
                    t = t + timedelta(hours=float(rng.exponential(3)))
                    seq.append(("clicked", t))
            for ev, when in seq:
                if when < period.end_utc:
                    rows.append({"account_id": a.account_id, "account_idx": a.account_idx, "campaign_id": cid, "channel": channel, "event_type": ev, "occurred_at": when})
    df = pd.DataFrame(rows).sort_values(["occurred_at", "account_id", "event_type"]).reset_index(drop=True)
    df.insert(0, "event_id", [f"MK{9_000_000 + 3 * i:09d}" for i in range(len(df))])
    return df


def energy_burden(pop: Population, bills: pd.DataFrame) -> np.ndarray:
    """Annualised bill / income midpoint per account (the planted payment-risk driver)."""
    mean_bill = bills.groupby("account_idx")["amount_due"].mean()
    m = mean_bill.reindex(pop.accounts["account_idx"]).fillna(0).to_numpy()
    return 12 * m / INCOME_MID[pop.accounts["income_idx"].to_numpy()]
