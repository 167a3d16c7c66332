"""The generator's true counterfactual (generate/counterfactual.py): no Spark, its own small world.

The what-if's estimate is compared with it on the evaluation utility (`ucx evaluate`, see
test_models_utility.py); here: the world is the one the generator writes, nothing moves
without a scenario, and each scenario moves the outcomes the way the planted formulas say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ucx_spark.generate import counterfactual as cf
from ucx_spark.generate.utility import simulate_world

R = 200


@pytest.fixture(scope="module")
def world():
    return simulate_world(seed=11, households=150, months=14, interval_minutes=60, time_zone="America/Chicago",
                          end_date="2025-12-31")


def test_the_world_is_deterministic(world) -> None:
    again = simulate_world(seed=11, households=150, months=14, interval_minutes=60, time_zone="America/Chicago",
                           end_date="2025-12-31")
    pd.testing.assert_frame_equal(world.payments, again.payments)
    pd.testing.assert_frame_equal(world.collections, again.collections)
    # the ledgers the forward play starts from hold every bill and payment of the account
    acc = int(world.bills["account_idx"].iloc[0])
    ledger, _ = world.ledgers[acc]
    billed = world.bills.loc[world.bills["account_idx"] == acc, "amount_due"].sum()
    assert sum(v for _, v in ledger if v > 0) == pytest.approx(billed + (ledger[0][1] if ledger[0][0] < world.period.start_date else 0))


def test_no_scenario_moves_nothing(world) -> None:
    per = cf.simulate(world, replicates=50, seed=3)
    for o in cf.OUTCOMES:
        np.testing.assert_array_equal(per[f"{o}_factual"], per[f"{o}_scenario"])
        assert (per[f"{o}_delta_var"] == 0).all()
    # the factual world's notice rate is the one the data shows over a horizon (not 0, not everyone)
    assert 0.02 < per["payment_risk_factual"].mean() < 0.5
    assert per["csat_factual"].between(1, 5).all()


def test_a_rate_increase_raises_risk_and_arrears_and_lowers_csat(world) -> None:
    per = cf.simulate(world, extra_bill_usd=5.0, replicates=R, seed=3)
    eff = cf.effects(per, replicates=R)
    assert eff["payment_risk"].delta > 3 * eff["payment_risk"].delta_se > 0
    assert eff["arrears_usd"].delta > 3 * eff["arrears_usd"].delta_se > 0
    assert eff["csat"].delta < 0
    # more money, more risk: a bigger increase moves further
    eff10 = cf.effects(cf.simulate(world, extra_bill_usd=10.0, replicates=R, seed=3), replicates=R)
    assert eff10["payment_risk"].delta > eff["payment_risk"].delta
    assert eff10["arrears_usd"].delta > eff["arrears_usd"].delta


def test_liheap_enrolment_helps_only_those_enrolled(world) -> None:
    acc = world.pop.accounts
    enrolled = set(world.programs.loc[world.programs["program"] == "liheap", "account_id"])
    eligible = [a for a in acc.loc[acc["income_band"].isin(["lt25k", "25-50k"]), "account_id"] if a not in enrolled]
    chosen = frozenset(eligible[:15])
    per = cf.simulate(world, liheap_accounts=chosen, replicates=R, seed=3)
    treated = cf.effects(per, replicates=R, accounts=set(chosen))
    assert treated["payment_risk"].delta < -3 * treated["payment_risk"].delta_se < 0
    assert treated["arrears_usd"].delta < -3 * treated["arrears_usd"].delta_se < 0
    assert treated["csat"].delta >= 0
    others = per[~per["account_id"].isin(chosen)]
    np.testing.assert_array_equal(others["payment_risk_factual"], others["payment_risk_scenario"])
    assert pytest.approx(247.5) == cf.PLANTED_LIHEAP_ANNUAL_USD
