"""The true effect of a what-if scenario, from the generator's own planted formulas.

`ucx whatif` estimates what a rate increase or more LIHEAP enrolment would do
through the trained models. This module answers the same question the way the
generator would have played it out: it rebuilds the simulated utility
(``utility.simulate_world``, same seed, same streams), then plays the payment
process of ``events.make_payments_collections`` forward from the scoring date
(the end of the data, ``t0``) over the payment-risk horizon, twice with the same
random numbers: once as things were (factual) and once under the scenario.

Scenarios (the ones ``ucx whatif`` names):

- ``rate_increase_usd=X``: every bill issued after t0 is X USD higher; the
  planted payment-risk logit moves with the energy burden
  (+10 x 12 X / income midpoint, ``utility.payment_risk_logit``); the first
  bill under the new rate is compared with the old bills for bill shock.
- ``liheap_enrollment_pct=+P``: the given accounts (the households the what-if
  enrolled) receive assistance as enrolled accounts do (a payment of
  80-250 USD with probability 0.5 on bills dated December to February).

Outcomes per account active at t0, averaged over ``replicates`` runs:

- ``payment_risk``: P(a disconnect notice in (t0, t0 + horizon]), the
  payment-risk model's label;
- ``arrears_usd``: the mean past-due balance at the past-due checks of the
  horizon (what the what-if's expected arrears stand for);
- ``csat``: the mean latent CSAT at the month ends of the horizon
  (``events.latent_csat``; outage, ETR and unresolved-contact drivers held at
  their t0 values in both worlds, bill shock and arrears from the simulation).

Approximations, the same in both worlds: bills after t0 repeat the account's
bill of the same calendar month a year earlier (its mean bill when there is
none); payments dated after t0 for bills issued before it are not replayed; the
autopay enrolment is the one held at t0. The payment draws follow
``make_payments_collections`` rule by rule (skip, part-pay, late, assistance,
past-due notice at due + 10 days, disconnect notice when more than
max(150, 1.6 bills) is past due twice within 45 days, then an arrangement,
a disconnection or a payment); the time of day of a payment does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ucx_spark.generate import events as ev
from ucx_spark.generate.population import INCOME_MID, sigmoid
from ucx_spark.generate.utility import World, payment_risk_logit

ASSISTANCE_MONTHS = (12, 1, 2)
ASSISTANCE_TAKE_UP = 0.5  # each of those bills brings assistance with this probability
# what an enrolled account receives a year on average (events.make_payments_collections: 80-250 USD
# with probability 0.5 on each bill dated December to February)
PLANTED_LIHEAP_ANNUAL_USD = len(ASSISTANCE_MONTHS) * ASSISTANCE_TAKE_UP * (80 + 250) / 2
OUTCOMES = ("payment_risk", "arrears_usd", "csat")


@dataclass(frozen=True)
class Effect:
    """Per outcome: the mean over the accounts asked for, factual and scenario, and the
    Monte Carlo standard error of the mean difference."""

    outcome: str
    factual: float
    scenario: float
    delta: float
    delta_se: float
    n: int


def _add_months(d: date, months: int) -> date:
    """Calendar months later, clamped to the month's end (Dec 31 + 6 months = Jun 30)."""
    return (pd.Timestamp(d) + pd.DateOffset(months=months)).date()


def _active(world: World) -> pd.DataFrame:
    """Accounts open at t0 with at least one bill."""
    t0 = world.period.end_date
    acc = world.pop.accounts
    keep = acc["end_date"].map(lambda d: d is None or pd.isna(d) or d >= t0)
    billed = set(world.bills["account_idx"])
    return acc[keep & acc["account_idx"].isin(billed)].reset_index(drop=True)


@dataclass(frozen=True)
class _Step:
    """A past-due check of the horizon: of a bill issued after t0 (``new_bill``) or of the last
    bill issued before it, whose check falls after t0."""

    bill_date: date
    new_bill: bool

    @property
    def check(self) -> date:
        return self.bill_date + timedelta(days=21 + 10)


def _steps(world: World, horizon_months: int) -> list[_Step]:
    t0 = world.period.end_date
    end = _add_months(t0, horizon_months)
    month_start = date(t0.year, t0.month, 1)
    steps = []
    pending = date(month_start.year, month_start.month, 2)  # the generator dates a month's bill on the 2nd of the next
    if pending <= t0 < pending + timedelta(days=31):
        steps.append(_Step(pending, new_bill=False))
    k = 1
    while True:
        bd = _add_months(pending, k)
        if bd + timedelta(days=21 + 10 + 5) > end:  # its disconnect notice would fall after the horizon
            break
        steps.append(_Step(bd, new_bill=bd > t0))
        k += 1
    return steps


def _amounts(world: World, acc: pd.DataFrame, steps: list[_Step]) -> np.ndarray:
    """(accounts x steps) bill amounts: the real bill when the data has it, else the account's
    bill of the same month a year earlier, else its mean bill."""
    by_acc = {int(i): g for i, g in world.bills.groupby("account_idx")}
    amounts = np.zeros((len(acc), len(steps)))
    for row, idx in enumerate(acc["account_idx"].to_numpy()):
        g = by_acc[int(idx)]
        by_date = dict(zip(g["bill_date"], g["amount_due"], strict=True))
        mean = float(g["amount_due"].mean())
        for col, st in enumerate(steps):
            bd = st.bill_date
            amounts[row, col] = by_date.get(bd, by_date.get(date(bd.year - 1, bd.month, bd.day), mean))
    return amounts


def _start_state(world: World, acc: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[tuple[date, float] | None]]:
    """Per account: the balance of every ledger entry dated up to t0, the ordinal of the last
    past-due check that found more than 40 USD, and the last past-due notice (date, amount)."""
    t0 = world.period.end_date
    balance = np.zeros(len(acc))
    last_check = np.full(len(acc), -1e9)
    for row, idx in enumerate(acc["account_idx"].to_numpy()):
        ledger, last = world.ledgers.get(int(idx), ([], None))
        balance[row] = sum(v for d, v in ledger if d <= t0)
        if last is not None and last <= t0:
            last_check[row] = last.toordinal()
    cols = world.collections
    notices = cols[(cols["event_type"] == "past_due_notice") & (cols["event_date"] <= t0)]
    latest = notices.sort_values("event_date").groupby("account_idx").tail(1).set_index("account_idx")
    last_notice = [
        (latest.at[int(i), "event_date"], float(latest.at[int(i), "amount_past_due"] or 0.0)) if int(i) in latest.index else None
        for i in acc["account_idx"].to_numpy()
    ]
    return balance, last_check, last_notice


def simulate(
    world: World,
    *,
    extra_bill_usd: float = 0.0,
    liheap_accounts: frozenset[str] = frozenset(),
    horizon_months: int = 6,
    replicates: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Per account active at t0: account_id and, for the factual world and the scenario
    (``<outcome>_factual`` / ``<outcome>_scenario``, replicate means), the OUTCOMES, plus
    ``<outcome>_delta_var`` (the variance over replicates of the account's difference)."""
    t0 = world.period.end_date
    acc = _active(world)
    n = len(acc)
    steps = _steps(world, horizon_months)
    amounts = _amounts(world, acc, steps)
    balance0, last_check0, last_notice0 = _start_state(world, acc)
    horizon_end = _add_months(t0, horizon_months)
    idx = acc["account_idx"].to_numpy()
    income = INCOME_MID[acc["income_idx"].to_numpy()]
    z_factual = np.asarray(world.risk_z)[idx]
    z_scenario = payment_risk_logit(acc["income_idx"].to_numpy(), np.asarray(world.burden)[idx] + 12.0 * extra_bill_usd / income,
                                    acc["risk_noise"].to_numpy())
    progs = world.programs
    autopay_on = progs[progs["program"] == "autopay"].groupby("account_id")["enrolled_on"].min().to_dict()
    liheap_now = set(progs.loc[progs["program"] == "liheap", "account_id"])
    ids = acc["account_id"].to_numpy()
    liheap_factual = np.array([a in liheap_now for a in ids])
    liheap_scenario = liheap_factual | np.array([a in liheap_accounts for a in ids])
    autopay = np.array([[a in autopay_on and autopay_on[a] <= st.bill_date for st in steps] for a in ids], dtype=bool).reshape(n, len(steps))

    # the same random numbers in both worlds: (replicates, accounts) per step and draw
    rng = np.random.default_rng([seed, 20_260_105])
    names = ("skip", "part", "frac", "late", "late_day", "assist", "assist_amt", "dn", "dn_frac")
    draws = [{name: rng.random((replicates, n)) for name in names} for _ in steps]

    # CSAT: drivers other than bill shock and arrears held at t0; shocks of the bills before t0
    held = [world.drivers_at(a, t0) for a in acc.itertuples(index=False)]
    outage = np.array([h["outage_minutes"] for h in held])[None, :]
    etr = np.array([h["etr_error_minutes"] for h in held])[None, :]
    unresolved = np.array([h["unresolved_contacts"] for h in held])[None, :]
    base = acc["csat_base"].to_numpy(dtype=float)[None, :]
    past = world.bills[world.bills["bill_date"] <= t0]
    past_by = {int(i): (np.array([d.toordinal() for d in g["bill_date"]]), g["bill_shock"].to_numpy(float),
                        g.sort_values("bill_date")["amount_due"].to_numpy(float)[-3:]) for i, g in past.groupby("account_idx")}
    month_ends = [_add_months(date(t0.year, t0.month, 1), k + 1) - timedelta(days=1) for k in range(1, horizon_months + 1)]
    past_shock = {}
    for me in month_ends:
        o = me.toordinal()
        past_shock[o] = np.array([
            float(past_by[int(i)][1][(past_by[int(i)][0] >= o - 180) & (past_by[int(i)][0] <= o)].max(initial=0.0))
            if int(i) in past_by else 0.0 for i in idx])

    def play(z: np.ndarray, extra: float, liheap: np.ndarray) -> dict[str, np.ndarray]:
        r = sigmoid(z)[None, :]
        bal = np.repeat(balance0[None, :], replicates, axis=0)
        last = np.repeat(last_check0[None, :], replicates, axis=0)
        deferred = np.zeros((replicates, n))
        notice_in_h = np.zeros((replicates, n), dtype=bool)
        past_due_sum = np.zeros((replicates, n))
        checks_in_h = 0
        notices: list[tuple[int, np.ndarray, np.ndarray]] = []  # (check ordinal, notice, past due)
        shocks: list[tuple[int, np.ndarray]] = []  # (bill ordinal, shock per account)
        hist = [list(past_by[int(i)][2]) if int(i) in past_by else [] for i in idx]
        for k, st in enumerate(steps):
            dr = draws[k]
            amt = amounts[:, k] + (extra if st.new_bill else 0.0)
            if st.new_bill:
                prev = np.array([np.mean(h[-3:]) if h else np.nan for h in hist])
                ok = np.nan_to_num(prev, nan=0.0) > 20
                shocks.append((st.bill_date.toordinal(), np.where(ok, np.clip(amt / np.where(ok, prev, 1.0) - 1.3, 0, None), 0.0)))
                for h, a in zip(hist, amt, strict=True):
                    h.append(a)
                bal = bal + deferred + amt[None, :]  # the last bill's late payment lands before this check
                ap = autopay[:, k][None, :]
                paying = ~(dr["skip"] < 0.01 + 0.3 * r)
                frac = np.where(dr["part"] < 0.04 + 0.4 * r, 0.3 + 0.55 * dr["frac"], 1.0)
                late = dr["late"] < 0.08 + 0.6 * r
                now = ~late | (3 + np.floor(dr["late_day"] * 37) <= 10)  # late by 3..39 days; check at due + 10
                pay = np.where(ap, amt[None, :], np.where(paying, amt[None, :] * frac, 0.0))
                pay_now = np.where(ap | now, pay, 0.0)
                deferred = pay - pay_now
                bal = bal - pay_now
                if st.bill_date.month in ASSISTANCE_MONTHS:
                    bal = bal - np.where(liheap[None, :] & (dr["assist"] < ASSISTANCE_TAKE_UP), 80 + 170 * dr["assist_amt"],
                                         0.0)
            past_due = bal
            notice = past_due > 40
            ordinal = st.check.toordinal()
            dn = notice & (past_due > np.maximum(150.0, 1.6 * amt[None, :])) & (ordinal - last <= 45)
            if t0 < st.check + timedelta(days=5) <= horizon_end:
                notice_in_h |= dn
            if t0 < st.check <= horizon_end:
                past_due_sum += np.maximum(past_due, 0.0)
                checks_in_h += 1
            paid = np.where(dr["dn"] < 0.3, 0.4, np.where(dr["dn"] < 0.5, 1.0, 0.5 + 0.5 * dr["dn_frac"])) * past_due
            bal = bal - np.where(dn, paid, 0.0)
            last = np.where(notice, ordinal, last)
            notices.append((ordinal, notice, past_due))
        csat = np.zeros((replicates, n))
        for me in month_ends:
            o = me.toordinal()
            shock = np.repeat(past_shock[o][None, :], replicates, 0)
            for bo, sh in shocks:
                if o - 180 <= bo <= o:
                    shock = np.maximum(shock, sh[None, :])
            arrears = np.zeros((replicates, n))
            found = np.zeros((replicates, n), dtype=bool)
            for co, mask, pdue in reversed(notices):  # the latest notice up to the month end, if within 45 days
                if co <= o:
                    arrears = np.where(mask & ~found & (o - co <= 45), pdue, arrears)
                    found |= mask
            for i, ln in enumerate(last_notice0):  # else a notice from before t0 may still be the latest
                if ln is not None and o - ln[0].toordinal() <= 45:
                    arrears[:, i] = np.where(found[:, i], arrears[:, i], ln[1])
            csat += ev.latent_csat(base, {"outage_minutes": outage, "etr_error_minutes": etr, "bill_shock": shock,
                                          "unresolved_contacts": unresolved, "arrears_usd": arrears})
        return {"payment_risk": notice_in_h.astype(float), "arrears_usd": past_due_sum / max(checks_in_h, 1),
                "csat": csat / len(month_ends)}

    factual = play(z_factual, 0.0, liheap_factual)
    scenario = play(z_scenario, extra_bill_usd, liheap_scenario)
    out = pd.DataFrame({"account_id": ids})
    for o in OUTCOMES:
        out[f"{o}_factual"] = factual[o].mean(axis=0)
        out[f"{o}_scenario"] = scenario[o].mean(axis=0)
        out[f"{o}_delta_var"] = (scenario[o] - factual[o]).var(axis=0, ddof=1) if replicates > 1 else 0.0
    return out


def effects(per_account: pd.DataFrame, *, replicates: int, accounts: set[str] | None = None) -> dict[str, Effect]:
    """Mean factual, scenario and delta of each outcome over ``accounts`` (all when None), with the
    Monte Carlo standard error of the mean delta (accounts simulated independently)."""
    rows = per_account if accounts is None else per_account[per_account["account_id"].isin(accounts)]
    n = len(rows)
    result = {}
    for o in OUTCOMES:
        f, s = float(rows[f"{o}_factual"].mean()), float(rows[f"{o}_scenario"].mean())
        se = float(np.sqrt(rows[f"{o}_delta_var"].sum() / max(replicates, 1)) / max(n, 1))
        result[o] = Effect(outcome=o, factual=f, scenario=s, delta=s - f, delta_se=se, n=n)
    return result


__all__ = ["OUTCOMES", "PLANTED_LIHEAP_ANNUAL_USD", "Effect", "effects", "simulate"]
