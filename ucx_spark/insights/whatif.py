"""What-if simulation: change the inputs a scenario would really change, re-score
through the champion models, and report the change with bootstrap intervals.

Scenarios (``parse_scenario``):

- ``rate_increase_usd=X``: every bill of the households in scope rises by X USD
  for the first year under the new rate: ``last_bill_usd`` and
  ``mean_bill_12_usd`` +X, ``annual_bill_usd`` +12X; bill shock is the first
  new bill against the old trailing mean (``bill_shock_ratio``, ``is_bill_shock``,
  ``max_bill_shock_ratio_180d``: the worst bill of the window rises by X over the
  trailing mean too); ``energy_burden`` = new annual bill / income midpoint;
  second round: past-due balances (``arrears_usd``, ``past_due_usd_45d``) and
  ``same_season_bill_ratio`` scale with the bill (a household that carries k bills
  past due carries k dearer bills). CSAT, given the household's bill history
  (``bill_history``: its bill at each of its last 12 month ends), walks the
  horizon instead (``csat_walk``): at each of its month ends both worlds meet the
  bill of the same month a year earlier (plus X under the scenario), each bill
  described as gold/household_features describes it (against the bills before
  it: old ones, then the horizon's), and CSAT on each side is the mean over the
  horizon's month ends, as the survey answers of the horizon would measure it.
- ``rate_increase_pct=Y``: the same with bills x (1 + Y/100).
- ``liheap_enrollment_pct=+P``: P percentage points of the households in scope
  that are eligible (income band lt25k or 25-50k, residential, not enrolled)
  enroll, chosen by their propensity to enroll (a look-alike logistic model
  of current LIHEAP enrollment on burden, income, arrears and collections,
  fitted on the income-eligible residential households; ties by household_id). Each gets the configured
  annual benefit B (``insights.liheap_annual_benefit_usd``), paid inside the
  payment-risk horizon in equal parts in the months of
  ``insights.liheap_benefit_months`` (December to February: LIHEAP pays in the
  heating season; ``benefit_in_horizon``): the models see
  today's balance paid down by B, one more assistance payment in the payment
  mix and ``energy_burden`` = max(annual bill - B, 0) / income midpoint; the
  expected arrears over the horizon are what the household would owe without
  the benefit (today's balance as it is, the risk as the models now say) less
  the mean over the horizon's month ends of the benefit paid by each, never
  below 0: a credit paid in January lowers every later month end's past-due
  balance one for one until it is used up, and a month end before the first
  payment sees none of it (a snapshot on December 31: 61% of B), in expectation
  over whether each month's part came (``insights.liheap_take_up``). The models'
  inputs describe the enrolled household's year (today's balance less B, the
  annual burden less B): payment risk is a 6-month outlook of a household that
  receives the benefit, whenever in the season it comes. (Before December 2026 the
  benefit only lowered today's balance, of which the arrears line keeps about
  28%: the scenario read a quarter of the generator's true effect.)
- ``--set feature=SQL expression`` (repeatable) with ``--where``: a general
  change of any feature column, e.g. ``outage_minutes_365d=outage_minutes_365d*0.8``.

``--where`` narrows the scope: ``column=value`` (equality on a snapshot
column) or any Spark SQL predicate over snapshot columns. Households outside
the scope keep their inputs, so their scores cannot move.

Outcomes per household: expected CSAT (``csat``), top-2-box (predicted CSAT >=
``insights.csat_top2box_threshold``), payment risk, and expected arrears: the
mean past-due balance at the month ends of the payment-risk horizon, from a
linear model learned on the utility's own history (``fit_arrears_model``):
``a + b x arrears_usd + c x payment_risk x bill + d x bill + e x
late_bill_share_365d x bill + payment_share_autopay_365d x (f + g x bill) + h x
record``, with its own a, d and e for a household owing nothing today (bill =
``mean_bill_12_usd``; autopay pays a bill when due; record = the household's mean
past-due balance at its previous 6 month ends, ``arrears_history``, passed
beside the snapshot; today's balance without it), fitted on every (household, month end D) of the
payment-risk population whose 6-month window lies in the data, with the
realised disconnect notice of the window in place of ``payment_risk`` (its
expectation, so the model's expectation is the same line with the risk). With
fewer than ``ARREARS_MIN_ROWS`` such rows the rule of thumb
``arrears_usd + 2 x payment_risk x bill`` stands (``ArrearsModel.rule_of_thumb``).

Uncertainty: households are hashed (with the seed) into ``BUCKETS`` buckets;
Spark sums the per-household deltas per segment and bucket, and the driver
resamples buckets with replacement (a cluster bootstrap: the driver only
holds segments x buckets numbers, never household rows). The interval is the
percentile interval of the mean delta at ``confidence_level``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException
from pyspark.sql.window import Window

from ucx_spark.errors import UcxError
from ucx_spark.insights.base import suppress, with_segments
from ucx_spark.models.labels import CSAT_HORIZON_MONTHS, PAYMENT_HORIZON_MONTHS
from ucx_spark.models.score import LoadedModel, predict_frame

LIHEAP_INCOME_BANDS = ("lt25k", "25-50k")
BUCKETS = 1000
METRICS = ("mean_csat", "csat_top2box_share", "mean_payment_risk", "expected_arrears_usd")
ARREARS_BILLS_AT_NOTICE = 2.0
ARREARS_MIN_ROWS = 200
BILL_SHOCK_RATIO = 1.5
TODAY_ARREARS = "_arrears_today"  # the past-due balance before a scenario's second round or assistance
BILL_HISTORY = "_bill_history"  # the household's bills at its last BILL_HISTORY_MONTHS month ends, oldest first
BILL_HISTORY_MONTHS = 12
ASSISTANCE = "_assistance_usd"  # assistance a scenario pays inside the horizon (LIHEAP's benefit), its mean
ASSISTANCE_SCHEDULE = "_assistance_schedule"  # ... as (weight, paid by a month end) pairs (benefit_schedule)
LIHEAP_BENEFIT_MONTHS = (12, 1, 2)  # the months LIHEAP's benefit is paid in (insights.liheap_benefit_months)
PROPENSITY_FEATURES = ("energy_burden", "income_midpoint_usd", "arrears_usd", "collections_past_due_notice_365d", "annual_bill_usd")
_NAMED = re.compile(r"^\s*(rate_increase_usd|rate_increase_pct|liheap_enrollment_pct)\s*=\s*([+-]?\d+(?:\.\d+)?)\s*$")
_SET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.+)$")
_WHERE_EQ = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^=<>!'\"]+?)\s*$")


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: a named one (kind, value) and/or general ``sets``, with a scope."""

    label: str
    kind: str = "set"  # rate_increase_usd | rate_increase_pct | liheap_enrollment_pct | set
    value: float = 0.0
    sets: tuple[tuple[str, str], ...] = ()
    where: str | None = None
    options: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "value": self.value, "sets": [list(s) for s in self.sets], "where": self.where, "options": self.options},
            sort_keys=True,
        )


def parse_scenario(scenario: str | None = None, *, sets: list[str] | None = None, where: str | None = None) -> Scenario:
    """Scenario from the CLI: ``--scenario NAME=VALUE`` and/or ``--set feature=expr`` (repeatable), ``--where``."""
    parsed_sets: list[tuple[str, str]] = []
    for text in sets or []:
        m = _SET.match(text)
        if not m or not m.group(2).strip():
            raise UcxError(f"--set {text!r}: expected feature=expression, e.g. outage_minutes_365d=outage_minutes_365d*0.8")
        parsed_sets.append((m.group(1), m.group(2).strip()))
    if scenario:
        m = _NAMED.match(scenario)
        if not m:
            raise UcxError(
                f"--scenario {scenario!r}: expected rate_increase_usd=X, rate_increase_pct=Y or liheap_enrollment_pct=+P"
            )
        kind, value = m.group(1), float(m.group(2))
        if kind == "liheap_enrollment_pct" and not 0 < value <= 100:
            raise UcxError(f"--scenario {scenario!r}: the LIHEAP enrollment lift must be in (0, 100] percentage points")
        label = scenario.strip() + "".join(f"; set {c}={e}" for c, e in parsed_sets)
        return Scenario(label=label + (f"; where {where}" if where else ""), kind=kind, value=value, sets=tuple(parsed_sets), where=where)
    if not parsed_sets:
        raise UcxError("nothing to simulate: give --scenario NAME=VALUE or at least one --set feature=expression")
    label = "; ".join(f"set {c}={e}" for c, e in parsed_sets)
    return Scenario(label=label + (f"; where {where}" if where else ""), sets=tuple(parsed_sets), where=where)


def scope_condition(where: str | None, columns: list[str]) -> Column:
    """The scope predicate: ``column=value`` shorthand or a Spark SQL predicate; all rows when None."""
    if not where:
        return F.lit(True)
    m = _WHERE_EQ.match(where)
    if m and m.group(1) in columns:
        return F.col(m.group(1)).cast("string") == F.lit(m.group(2).strip())
    return F.expr(where)


def _has(df: DataFrame, *cols: str) -> bool:
    return all(c in df.columns for c in cols)


def _require(df: DataFrame, scenario: Scenario, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UcxError(f"scenario {scenario.label!r} needs feature columns missing from gold/household_features: {missing}")


def _income_mid() -> Column:
    return F.col("income_midpoint_usd")


def _burden(annual_bill: Column) -> Column:
    """``energy_burden`` as gold defines it: the annual bill over the income band's midpoint."""
    return F.when(_income_mid() > 0, annual_bill / _income_mid())


def _apply_bills(df: DataFrame, touched: Column, *, add: Column | None = None, factor: Column | None = None) -> DataFrame:
    def new(c: str) -> Column:
        old = F.col(c)
        return old + add if add is not None else old * factor

    out = df.withColumn("_old_last_bill_usd", F.col("last_bill_usd"))
    # gold/household_features keeps the bill shock ratio, not its denominator (the mean of the bills
    # before the last): read it back as last / ratio, from the bills before the rate changes them.
    # Until December 2026 the what-if looked for a `trailing_mean_bill_usd` column that only its own
    # tests' snapshots had, so on a real warehouse no bill shock moved and a rate increase read a
    # twelfth of the generator's true CSAT effect.
    if _has(df, "trailing_mean_bill_usd"):
        trailing = F.col("trailing_mean_bill_usd")
    elif _has(df, "bill_shock_ratio"):
        trailing = F.when(F.col("bill_shock_ratio") > 0, F.col("last_bill_usd") / F.col("bill_shock_ratio"))
    else:
        trailing = F.lit(None).cast("double")
    out = out.withColumn("_trailing_mean_bill_usd", trailing)
    mean_before = F.col("_trailing_mean_bill_usd")
    out = out.withColumn("last_bill_usd", F.when(touched, new("last_bill_usd")).otherwise(F.col("last_bill_usd")))
    if _has(df, "mean_bill_12_usd"):
        out = out.withColumn("mean_bill_12_usd", F.when(touched, new("mean_bill_12_usd")).otherwise(F.col("mean_bill_12_usd")))
    if _has(df, "annual_bill_usd"):
        annual = F.col("annual_bill_usd") + add * 12 if add is not None else F.col("annual_bill_usd") * factor
        out = out.withColumn("annual_bill_usd", F.when(touched, annual).otherwise(F.col("annual_bill_usd")))
    if _has(df, "bill_shock_ratio"):
        ratio = F.when(mean_before > 0, F.col("last_bill_usd") / mean_before).otherwise(F.col("bill_shock_ratio"))
        out = out.withColumn("bill_shock_ratio", F.when(touched, ratio).otherwise(F.col("bill_shock_ratio")))
        if _has(df, "is_bill_shock"):
            out = out.withColumn("is_bill_shock", F.when(touched, F.col("bill_shock_ratio") >= BILL_SHOCK_RATIO).otherwise(F.col("is_bill_shock")))
        if _has(df, "max_bill_shock_ratio_180d"):
            # every bill of the window is dearer against the trailing mean of bills before the rate
            # change, so the worst bill's ratio rises too (by X / mean, or x factor)
            worst = F.col("max_bill_shock_ratio_180d")
            lifted = (worst + add / mean_before if add is not None else worst * factor)
            out = out.withColumn(
                "max_bill_shock_ratio_180d",
                F.when(touched & (mean_before > 0),
                       F.greatest(lifted, F.col("bill_shock_ratio"))).otherwise(worst),
            )
    # second round: a household that carries k bills past due carries k dearer bills (its
    # past-due-to-bill ratio holds); the same for the year-ago comparison of the last bill
    if _has(df, "arrears_usd"):
        out = out.withColumn(TODAY_ARREARS, F.col("arrears_usd"))
    old_last = F.col("_old_last_bill_usd")
    scale = F.when(touched & (old_last > 0), F.col("last_bill_usd") / old_last).otherwise(F.lit(1.0))
    for c in ("arrears_usd", "past_due_usd_45d", "same_season_bill_ratio"):
        if _has(df, c):
            out = out.withColumn(c, F.col(c) * scale)
    if _has(df, "energy_burden", "annual_bill_usd", "income_midpoint_usd"):
        out = out.withColumn("energy_burden", F.when(touched, _burden(F.col("annual_bill_usd"))).otherwise(F.col("energy_burden")))
    return out.drop("_old_last_bill_usd", "_trailing_mean_bill_usd")


def liheap_propensity(snapshot_df: DataFrame) -> DataFrame:
    """household_id + ``liheap_propensity``: a look-alike logistic model of current
    LIHEAP enrollment on ``PROPENSITY_FEATURES`` (those present; nulls as 0),
    fitted on ``snapshot_df`` (pass the eligible population: who among the
    eligible enrolls). Without any enrolled (or any non-enrolled) household,
    the propensity is the energy burden (higher burden first)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    feats = [c for c in PROPENSITY_FEATURES if c in snapshot_df.columns]
    label = F.coalesce(F.col("is_enrolled_liheap").cast("double"), F.lit(0.0))
    data = snapshot_df.select("household_id", label.alias("label"), *[F.coalesce(F.col(c).cast("double"), F.lit(0.0)).alias(c) for c in feats])
    classes = data.agg(F.countDistinct("label").alias("k")).first()["k"]
    if not feats or classes < 2:
        fallback = F.coalesce(F.col("energy_burden").cast("double"), F.lit(0.0)) if "energy_burden" in snapshot_df.columns else F.lit(0.0)
        return snapshot_df.select("household_id", fallback.alias("liheap_propensity"))
    vec = VectorAssembler(inputCols=feats, outputCol="_raw").transform(data)
    scaler = StandardScaler(inputCol="_raw", outputCol="features", withMean=True, withStd=True).fit(vec)
    scaled = scaler.transform(vec)
    model = LogisticRegression(regParam=0.01, maxIter=50).fit(scaled)
    from pyspark.ml.functions import vector_to_array

    return model.transform(scaled).select("household_id", vector_to_array("probability")[1].alias("liheap_propensity"))


def benefit_schedule(as_of: Column, *, benefit_usd: float, months: tuple[int, ...], take_up: float = 1.0,
                     horizon_months: int = PAYMENT_HORIZON_MONTHS) -> Column:
    """What the year's benefit has paid by each month end of the horizon, as an array of
    ``struct(w, paid)`` whose weights sum to 1: each of the ``horizon_months`` month ends after
    ``as_of`` weighs 1/horizon_months, split over the number j of parts paid by then. A bill of a
    month in ``months`` brings a part with probability ``take_up`` (before that month's
    collection check); a part is ``benefit_usd / (len(months) x take_up)``, so the year's
    expected benefit stays ``benefit_usd``, and j is binomial over the benefit months so far.
    ``take_up`` 1: December 31 with (12, 1, 2) pays one part by January and two by February to
    June (61% of the year's benefit on average); June 30 only December's part, at the last month
    end."""
    if not 0 < take_up <= 1:
        raise ValueError(f"take_up must be in (0, 1], got {take_up}")
    size, q = horizon_months + 1, float(take_up)
    part = float(benefit_usd) / (len(months) * q)
    comb = F.array(*[F.lit(float(math.comb(n, j))) for n in range(size) for j in range(size)])
    entries, n = [], F.lit(0)
    for k in range(1, horizon_months + 1):
        n = n + F.when(F.month(F.add_months(as_of, k)).isin(*months), F.lit(1)).otherwise(F.lit(0))
        for j in range(k + 1):  # j parts paid by the k-th month end (at most one a month)
            pmf = F.element_at(comb, n * size + j + 1) * F.lit(q ** j) * F.pow(F.lit(1.0 - q), (n - j).cast("double"))
            entries.append(F.struct(F.when(F.lit(j) <= n, pmf / horizon_months).otherwise(F.lit(0.0)).alias("w"),
                                    F.lit(j * part).alias("paid")))
    return F.array(*entries)


def owed_after_benefit(owed: Column, schedule: Column) -> Column:
    """What is owed at each month end less what the benefit paid by then, never below 0, in
    expectation over ``schedule`` (``benefit_schedule``; null stays null). Not ``owed`` less the
    benefit's mean: a household owing 100 USD whose 600 USD part comes with probability one half
    still owes 100 in the half of the worlds where it did not come."""
    return F.aggregate(schedule, F.lit(0.0), lambda acc, x: acc + x["w"] * F.greatest(owed - x["paid"], F.lit(0.0)))


def _mean_paid(schedule: Column) -> Column:
    return F.aggregate(schedule, F.lit(0.0), lambda acc, x: acc + x["w"] * x["paid"])


def benefit_in_horizon(as_of: Column, **schedule: object) -> Column:
    """The mean over the horizon's month ends of what the benefit paid by each (``benefit_schedule``'s
    arguments)."""
    return _mean_paid(benefit_schedule(as_of, **schedule))  # type: ignore[arg-type]


def _apply_liheap(df: DataFrame, in_scope: Column, *, lift_pct: float, benefit_usd: float,
                  benefit_months: tuple[int, ...] = LIHEAP_BENEFIT_MONTHS, take_up: float = 1.0) -> DataFrame:
    eligible = (
        in_scope
        & ~F.coalesce(F.col("is_enrolled_liheap"), F.lit(False))
        & F.col("income_band").isin(*LIHEAP_INCOME_BANDS)
    )
    if "customer_class" in df.columns:
        eligible = eligible & (F.col("customer_class") != F.lit("COM"))
    population = F.col("income_band").isin(*LIHEAP_INCOME_BANDS)
    if "customer_class" in df.columns:
        population = population & (F.col("customer_class") != F.lit("COM"))
    prop_df = liheap_propensity(df.filter(population))
    marked = df.join(prop_df, "household_id", "left").withColumn("_eligible", eligible)
    n_eligible = marked.filter("_eligible").count()
    k = int(round(n_eligible * lift_pct / 100.0))
    picks = (
        marked.filter("_eligible")
        .orderBy(F.desc_nulls_last("liheap_propensity"), "household_id")
        .limit(k)
        .select("household_id", F.lit(True).alias("_pick"))
    )
    out = marked.join(picks, "household_id", "left").withColumn("_touched", F.coalesce(F.col("_pick"), F.lit(False)))
    touched = F.col("_touched")
    b = F.lit(float(benefit_usd))
    out = out.withColumn("is_enrolled_liheap", F.when(touched, F.lit(True)).otherwise(F.col("is_enrolled_liheap")))
    # the benefit is paid inside the horizon, in its months: it pays down what the household would
    # owe over it (``household_outcomes``) by what was paid up to each month end (no date: all of it)
    if "as_of_date" in out.columns:
        schedule = benefit_schedule(F.col("as_of_date"), benefit_usd=benefit_usd, months=benefit_months,
                                    take_up=take_up)
    else:
        schedule = F.array(F.struct(F.lit(1.0).alias("w"), b.alias("paid")))
    out = out.withColumn(ASSISTANCE_SCHEDULE, F.when(touched, schedule))
    out = out.withColumn(ASSISTANCE, F.when(touched, _mean_paid(F.col(ASSISTANCE_SCHEDULE))).otherwise(F.lit(0.0)))
    if _has(out, "arrears_usd"):
        out = out.withColumn(TODAY_ARREARS, F.col("arrears_usd"))
        out = out.withColumn(
            "arrears_usd",
            F.when(touched, F.greatest(F.coalesce(F.col("arrears_usd"), F.lit(0.0)) - b, F.lit(0.0))).otherwise(F.col("arrears_usd")),
        )
    if _has(out, "payment_share_assistance_365d", "payments_365d"):
        p = F.coalesce(F.col("payments_365d").cast("double"), F.lit(0.0))
        share = (F.coalesce(F.col("payment_share_assistance_365d"), F.lit(0.0)) * p + 1.0) / (p + 1.0)
        out = out.withColumn("payment_share_assistance_365d", F.when(touched, share).otherwise(F.col("payment_share_assistance_365d")))
        out = out.withColumn("payments_365d", F.when(touched, F.col("payments_365d") + 1).otherwise(F.col("payments_365d")))
    if _has(out, "energy_burden", "annual_bill_usd", "income_midpoint_usd"):
        burden = _burden(F.greatest(F.col("annual_bill_usd") - b, F.lit(0.0)))
        out = out.withColumn("energy_burden", F.when(touched, burden).otherwise(F.col("energy_burden")))
    return out.drop("_pick", "_eligible", "liheap_propensity")


def apply_scenario(snapshot_df: DataFrame, scenario: Scenario, *, liheap_annual_benefit_usd: float,
                   liheap_benefit_months: tuple[int, ...] = LIHEAP_BENEFIT_MONTHS,
                   liheap_take_up: float = 1.0) -> DataFrame:
    """The snapshot under ``scenario``: same columns and types, plus ``_touched`` (inputs changed)
    and, for a rate scenario, ``_arrears_today`` (the balance before the second round).

    Rows outside the scope are returned unchanged.
    """
    try:
        in_scope = scope_condition(scenario.where, snapshot_df.columns)
        snapshot_df.select(in_scope.alias("_probe")).schema  # noqa: B018 - analyse the predicate now
    except AnalysisException as exc:
        raise UcxError(f"--where {scenario.where!r} is not a valid condition over gold/household_features: {exc.getMessage() if hasattr(exc, 'getMessage') else exc}") from None
    # The scope is fixed before any input changes (a predicate on a bill column
    # must not be re-evaluated on the raised bill).
    df = snapshot_df.withColumn("_scope", in_scope)
    in_scope = F.col("_scope")
    touched = in_scope
    if scenario.kind in ("rate_increase_usd", "rate_increase_pct"):
        _require(df, scenario, "last_bill_usd")
        if scenario.kind == "rate_increase_usd":
            df = _apply_bills(df, in_scope, add=F.lit(scenario.value))
        else:
            df = _apply_bills(df, in_scope, factor=F.lit(1.0 + scenario.value / 100.0))
        df = df.withColumn("_touched", in_scope & F.col("last_bill_usd").isNotNull())
    elif scenario.kind == "liheap_enrollment_pct":
        _require(df, scenario, "is_enrolled_liheap", "income_band")
        df = _apply_liheap(df, in_scope, lift_pct=scenario.value, benefit_usd=liheap_annual_benefit_usd,
                           benefit_months=liheap_benefit_months, take_up=liheap_take_up)
    else:
        df = df.withColumn("_touched", F.lit(False))
    for column, expression in scenario.sets:
        if column not in snapshot_df.columns or column in ("household_id", "as_of_date"):
            raise UcxError(f"--set {column}=...: {column!r} is not a feature column of gold/household_features")
        try:
            new = F.expr(expression).cast(snapshot_df.schema[column].dataType)
            df.select(new).schema  # noqa: B018
        except AnalysisException as exc:
            raise UcxError(f"--set {column}={expression}: not a valid Spark SQL expression ({str(exc).splitlines()[0]})") from None
        df = df.withColumn(column, F.when(touched, new).otherwise(F.col(column)))
        if column == "arrears_usd" and TODAY_ARREARS in df.columns:  # a balance set by hand is today's
            df = df.withColumn(TODAY_ARREARS, F.when(touched, F.col(column)).otherwise(F.col(TODAY_ARREARS)))
        df = df.withColumn("_touched", F.col("_touched") | touched)
    original = [F.col(f.name).cast(f.dataType).alias(f.name) for f in snapshot_df.schema.fields]
    extra = [F.col(c) for c in (TODAY_ARREARS, ASSISTANCE, ASSISTANCE_SCHEDULE) if c in df.columns]
    return df.select(*original, F.coalesce(F.col("_touched"), F.lit(False)).alias("_touched"), *extra)


@dataclass(frozen=True)
class ArrearsModel:
    """Expected mean past-due balance (USD) at the month ends of the payment-risk horizon:
    ``intercept + arrears x arrears_usd + notice_bill x payment_risk x bill + late_bill x
    late_bill_share_365d x bill + bill x bill``, plus for a household owing nothing today
    ``settled + settled_bill x bill + settled_late_bill x late_bill_share_365d x bill``."""

    intercept: float
    arrears: float
    notice_bill: float
    bill: float
    rows: int  # the (household, month end) rows it was fitted on; 0 for the rule of thumb
    r2: float | None = None
    # the share of last year's bills paid late, x the bill: who carries a balance short of a
    # disconnect notice. Without it every household was expected to owe intercept + 0.116 x
    # bill (about 12 USD) whatever its record, and the LIHEAP scenario, which pays that down,
    # read 6.8 times the generator's true effect
    late_bill: float = 0.0
    # a household owing nothing today (settled) has its own level, bill and late-share slopes: one
    # line through every household expected a settled one with a clean year to owe 14 USD (they
    # owed 3.9 on the 1,000-household utility) and one with a bill paid late to owe 45 (13.5)
    settled: float = 0.0
    settled_bill: float = 0.0
    settled_late_bill: float = 0.0
    # the share of last year's payments made by autopay, alone and x the bill: autopay pays the whole
    # bill on its due date, so such a household carries no past-due balance. Without it the line
    # expected the households the LIHEAP scenario enrols (16 of 20 on autopay, owing 0.00 over the
    # horizon in every one of the generator's 200 replicates) to owe 1-3 USD each, for the benefit
    # to pay down: the scenario read 2.75 times the true effect
    autopay: float = 0.0
    autopay_bill: float = 0.0
    # the household's own record: its mean past-due balance at its previous ARREARS_HISTORY_ROWS
    # month ends (today's balance at its first). A balance persists in some households and is a
    # slip in others; one line through all of them read the slips as persistent
    history: float = 0.0

    @classmethod
    def rule_of_thumb(cls) -> ArrearsModel:
        """Today's balance plus, with the probability of a disconnect notice, two monthly bills."""
        return cls(intercept=0.0, arrears=1.0, notice_bill=ARREARS_BILLS_AT_NOTICE, bill=0.0, rows=0)

    def expected(self, arrears: Column, risk: Column, bill: Column, late_share: Column | None = None,
                 autopay_share: Column | None = None, history: Column | None = None) -> Column:
        """Never negative: a balance is owed or it is not."""
        line = (F.lit(self.intercept) + F.lit(self.arrears) * arrears + F.lit(self.notice_bill) * risk * bill
                + F.lit(self.bill) * bill)
        if late_share is not None:
            settled = (arrears <= 0).cast("double")
            line = (line + F.lit(self.late_bill) * late_share * bill + settled * (
                F.lit(self.settled) + F.lit(self.settled_bill) * bill + F.lit(self.settled_late_bill) * late_share * bill))
        if autopay_share is not None:
            line = line + autopay_share * (F.lit(self.autopay) + F.lit(self.autopay_bill) * bill)
        if self.history:
            line = line + F.lit(self.history) * (history if history is not None else arrears)
        return F.greatest(line, F.lit(0.0))

    def params(self) -> dict[str, float | int]:
        return {"arrears_model.intercept": round(self.intercept, 6), "arrears_model.arrears": round(self.arrears, 6),
                "arrears_model.notice_bill": round(self.notice_bill, 6), "arrears_model.bill": round(self.bill, 6),
                "arrears_model.late_bill": round(self.late_bill, 6), "arrears_model.settled": round(self.settled, 6),
                "arrears_model.settled_bill": round(self.settled_bill, 6),
                "arrears_model.settled_late_bill": round(self.settled_late_bill, 6),
                "arrears_model.autopay": round(self.autopay, 6), "arrears_model.autopay_bill": round(self.autopay_bill, 6),
                "arrears_model.history": round(self.history, 6),
                "arrears_model.rows": self.rows, "arrears_model.r2": round(self.r2, 4) if self.r2 is not None else "n/a"}


LATE_SHARE = "late_bill_share_365d"


def _late_share(df: DataFrame) -> Column:
    """The share of last year's bills paid late (0 without the column or a bill)."""
    return F.coalesce(F.col(LATE_SHARE).cast("double"), F.lit(0.0)) if LATE_SHARE in df.columns else F.lit(0.0)


AUTOPAY_SHARE = "payment_share_autopay_365d"
ARREARS_HISTORY = "_arrears_history_usd"
ARREARS_HISTORY_ROWS = 6


def arrears_history(features_df: DataFrame) -> DataFrame:
    """household_id, as_of_date, ARREARS_HISTORY: the household's mean ``arrears_usd`` over its
    previous ARREARS_HISTORY_ROWS as_of dates of gold/household_features (month ends), null at its
    first."""
    earlier = Window.partitionBy("household_id").orderBy("as_of_date").rowsBetween(-ARREARS_HISTORY_ROWS, -1)
    return features_df.select(
        "household_id", "as_of_date",
        F.avg(F.coalesce(F.col("arrears_usd").cast("double"), F.lit(0.0))).over(earlier).alias(ARREARS_HISTORY))


def _autopay_share(df: DataFrame) -> Column:
    """The share of last year's payments made by autopay (0 without the column or a payment)."""
    return F.coalesce(F.col(AUTOPAY_SHARE).cast("double"), F.lit(0.0)) if AUTOPAY_SHARE in df.columns else F.lit(0.0)


def _bill(df: DataFrame) -> Column:
    if "mean_bill_12_usd" in df.columns:
        return F.coalesce(F.col("mean_bill_12_usd"), F.col("last_bill_usd"), F.lit(0.0))
    return F.coalesce(F.col("last_bill_usd"), F.lit(0.0))


def fit_arrears_model(features_df: DataFrame, collections_df: DataFrame | None, *,
                      horizon_months: int = 6, min_rows: int = ARREARS_MIN_ROWS) -> ArrearsModel:
    """Least squares of the mean ``arrears_usd`` over the month ends in (D, D + horizon] on
    today's ``arrears_usd``, the realised disconnect notice x bill, the bill at D and, where the
    columns exist, the late share and the autopay share terms of ``ArrearsModel``, over the
    payment-risk population (``labels.payment_risk_labels``) of every as_of_date D whose window
    lies in the data. Spark sums the normal equations (at most a 10 x 10 system on the driver); with fewer
    than ``min_rows`` rows, no collections or no ``arrears_usd``, the rule of thumb."""
    from ucx_spark.models.labels import payment_risk_labels

    if collections_df is None or not _has(features_df, "arrears_usd", "last_bill_usd"):
        return ArrearsModel.rule_of_thumb()
    data_end = features_df.agg(F.max("as_of_date")).first()[0]
    if data_end is None:
        return ArrearsModel.rule_of_thumb()
    at_d = features_df.select("household_id", "as_of_date",
                              F.coalesce(F.col("arrears_usd"), F.lit(0.0)).cast("double").alias("_a"),
                              _bill(features_df).cast("double").alias("_b"), _late_share(features_df).alias("_l"),
                              (F.coalesce(F.col("arrears_usd"), F.lit(0.0)) <= 0).cast("double").alias("_s"),
                              _autopay_share(features_df).alias("_p"))
    at_d = at_d.join(arrears_history(features_df), ["household_id", "as_of_date"], "left").withColumn(
        "_h", F.coalesce(F.col(ARREARS_HISTORY), F.col("_a"))).drop(ARREARS_HISTORY)
    labels_df = payment_risk_labels(features_df.select("household_id", "as_of_date"), collections_df,
                                    data_end=data_end, horizon_months=horizon_months)
    later = at_d.select("household_id", F.col("as_of_date").alias("_later"), F.col("_a").alias("_a_later"))
    y_df = (
        labels_df.join(later, "household_id")
        .filter((F.col("_later") > F.col("as_of_date")) & (F.col("_later") <= F.col("window_end")))
        .groupBy("household_id", "as_of_date").agg(F.avg("_a_later").alias("_y"))
    )
    rows = (labels_df.join(y_df, ["household_id", "as_of_date"]).join(at_d, ["household_id", "as_of_date"])
            .select(F.lit(1.0).alias("x0"), F.col("_a").alias("x1"), (F.col("label") * F.col("_b")).alias("x2"),
                    F.col("_b").alias("x3"), (F.col("_l") * F.col("_b")).alias("x4"), F.col("_s").alias("x5"),
                    (F.col("_s") * F.col("_b")).alias("x6"), (F.col("_s") * F.col("_l") * F.col("_b")).alias("x7"),
                    F.col("_p").alias("x8"), (F.col("_p") * F.col("_b")).alias("x9"), F.col("_h").alias("x10"),
                    F.col("_y").alias("y")))
    xs = ("x0", "x1", "x2", "x3")
    if _has(features_df, LATE_SHARE):
        xs += ("x4", "x5", "x6", "x7")
    if _has(features_df, AUTOPAY_SHARE):
        xs += ("x8", "x9")
    xs += ("x10",)
    sums = rows.agg(F.count("*").alias("n"),
                    *[F.sum(F.col(a) * F.col(b)).alias(f"{a}_{b}") for i, a in enumerate(xs) for b in xs[i:]],
                    *[F.sum(F.col(a) * F.col("y")).alias(f"{a}_y") for a in xs],
                    F.sum(F.col("y") * F.col("y")).alias("yy")).first()
    n = int(sums["n"] or 0)
    if n < min_rows:
        return ArrearsModel.rule_of_thumb()
    xtx = np.array([[float(sums[f"{xs[min(i, j)]}_{xs[max(i, j)]}"]) for j in range(len(xs))] for i in range(len(xs))])
    xty = np.array([float(sums[f"{a}_y"]) for a in xs])
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    y_mean = xty[0] / n
    sst = float(sums["yy"]) - n * y_mean**2
    sse = float(sums["yy"]) - 2 * beta @ xty + beta @ xtx @ beta
    names = dict(zip(("x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10"),
                     ("intercept", "arrears", "notice_bill", "bill", "late_bill", "settled", "settled_bill",
                      "settled_late_bill", "autopay", "autopay_bill", "history"), strict=True))
    return ArrearsModel(rows=n, r2=float(1 - sse / sst) if sst > 0 else None,
                        **{names[x]: float(b) for x, b in zip(xs, beta, strict=True)})


def household_outcomes(
    features_df: DataFrame,
    models: dict[str, LoadedModel],
    *,
    csat_top2box_threshold: float,
    arrears_model: ArrearsModel | None = None,
    history_df: DataFrame | None = None,
    csat_df: DataFrame | None = None,
) -> DataFrame:
    """household_id + csat, csat_top2box (0/1, or a share), payment_risk, expected_arrears_usd for
    ``features_df`` (a snapshot, possibly under a scenario). Needs the csat and payment_risk
    champions; ``arrears_model`` defaults to the rule of thumb; ``csat_df`` (household_id, csat,
    csat_top2box) gives CSAT scored otherwise (``csat_walk``) instead of on ``features_df``."""
    arrears_model = arrears_model or ArrearsModel.rule_of_thumb()
    if csat_df is None:
        csat_df = predict_frame(features_df, models["csat"], keep=("household_id",)).select(
            "household_id", F.col("score").alias("csat"),
            (F.col("score") >= F.lit(csat_top2box_threshold)).cast("double").alias("csat_top2box"))
    risk_df = predict_frame(features_df, models["payment_risk"], keep=("household_id",)).withColumnRenamed("score", "payment_risk")
    bill = _bill(features_df)
    # today's balance: a rate change leaves it as it is (its models see the dearer balance the
    # household carries under the new rate: ``_apply_bills``); LIHEAP pays it down
    today = next((c for c in (TODAY_ARREARS, "arrears_usd") if c in features_df.columns), None)
    arrears = F.coalesce(F.col(today).cast("double"), F.lit(0.0)) if today else F.lit(0.0)
    # a benefit the scenario pays inside the horizon (LIHEAP: ``_apply_liheap``'s schedule; none: nothing)
    scheduled = ASSISTANCE_SCHEDULE in features_df.columns
    money_df = features_df.select("household_id", arrears.alias("_arrears"), bill.cast("double").alias("_bill"),
                                  _late_share(features_df).alias("_late"), _autopay_share(features_df).alias("_autopay"),
                                  *([F.col(ASSISTANCE_SCHEDULE).alias("_schedule")] if scheduled else []))
    if history_df is not None:  # the household's own past-due record (``arrears_history``); else today's
        money_df = money_df.join(history_df.select("household_id", ARREARS_HISTORY), "household_id", "left")
        history = F.coalesce(F.col(ARREARS_HISTORY), F.col("_arrears"))
    else:
        history = F.col("_arrears")
    owed = arrears_model.expected(F.col("_arrears"), F.col("payment_risk"), F.col("_bill"), F.col("_late"),
                                  F.col("_autopay"), history)
    expected = F.greatest(owed, F.lit(0.0))
    if scheduled:
        expected = F.coalesce(owed_after_benefit(owed, F.col("_schedule")), expected)
    return (
        csat_df.join(risk_df, "household_id")
        .join(money_df, "household_id")
        .select(
            "household_id",
            "csat",
            "csat_top2box",
            "payment_risk",
            expected.alias("expected_arrears_usd"),
        )
    )


OUTCOME_OF_METRIC = {
    "mean_csat": "csat",
    "csat_top2box_share": "csat_top2box",
    "mean_payment_risk": "payment_risk",
    "expected_arrears_usd": "expected_arrears_usd",
}


def simulate(
    snapshot_df: DataFrame,
    scenario: Scenario,
    models: dict[str, LoadedModel],
    *,
    liheap_annual_benefit_usd: float,
    csat_top2box_threshold: float,
    arrears_model: ArrearsModel | None = None,
    liheap_benefit_months: tuple[int, ...] = LIHEAP_BENEFIT_MONTHS,
    liheap_take_up: float = 1.0,
    arrears_history_df: DataFrame | None = None,
    bill_history_df: DataFrame | None = None,
) -> DataFrame:
    """Per household: household_id, touched, and ``<outcome>_baseline`` / ``<outcome>_scenario``
    for csat, csat_top2box, payment_risk and expected_arrears_usd. Both sides are
    scored by the same champions; nothing is copied from one side to the other. With
    ``bill_history_df`` (``bill_history``), a rate scenario's CSAT on both sides is the mean over
    the horizon's month ends as its bills arrive (``csat_walk``)."""
    changed_df = apply_scenario(snapshot_df, scenario, liheap_annual_benefit_usd=liheap_annual_benefit_usd,
                                liheap_benefit_months=liheap_benefit_months, liheap_take_up=liheap_take_up)
    kw = {"csat_top2box_threshold": csat_top2box_threshold, "arrears_model": arrears_model,
          "history_df": arrears_history_df}
    walked: dict[str, DataFrame | None] = {"baseline": None, "scenario": None}
    if bill_history_df is not None and scenario.kind in ("rate_increase_usd", "rate_increase_pct"):
        walk_df = csat_walk(snapshot_df, changed_df, bill_history_df, scenario, models["csat"],
                            csat_top2box_threshold=csat_top2box_threshold)
        walked = {side: walk_df.select("household_id", F.col(f"csat_{side}").alias("csat"),
                                       F.col(f"csat_top2box_{side}").alias("csat_top2box"))
                  for side in walked}
    base_df = household_outcomes(snapshot_df, models, **kw, csat_df=walked["baseline"])
    scen_df = household_outcomes(changed_df.drop("_touched"), models, **kw, csat_df=walked["scenario"])
    outcomes = list(OUTCOME_OF_METRIC.values())
    return (
        base_df.select("household_id", *[F.col(o).alias(f"{o}_baseline") for o in outcomes])
        .join(scen_df.select("household_id", *[F.col(o).alias(f"{o}_scenario") for o in outcomes]), "household_id")
        .join(changed_df.select("household_id", F.col("_touched").alias("touched")), "household_id")
    )


def bill_history(features_df: DataFrame, *, as_of: object | None = None) -> DataFrame:
    """household_id + BILL_HISTORY: the household's ``last_bill_usd`` at the last as_of date of each
    of its last BILL_HISTORY_MONTHS calendar months up to ``as_of`` (default: the latest
    as_of_date of ``features_df``), oldest first; months without a bill are left out."""
    if as_of is None:
        as_of = features_df.agg(F.max("as_of_date")).first()[0]
    month = F.trunc(F.col("as_of_date"), "month")
    last_in_month = Window.partitionBy("household_id", month).orderBy(F.col("as_of_date").desc())
    latest_first = Window.partitionBy("household_id").orderBy(F.col("as_of_date").desc())
    rows = (
        features_df.filter(F.col("as_of_date") <= F.lit(as_of))
        .select("household_id", "as_of_date", F.col("last_bill_usd").cast("double").alias("_bill"))
        .withColumn("_in_month", F.row_number().over(last_in_month))
        .filter(F.col("_in_month") == 1)
        .withColumn("_age", F.row_number().over(latest_first))
        .filter((F.col("_age") <= BILL_HISTORY_MONTHS) & F.col("_bill").isNotNull())
    )
    return rows.groupBy("household_id").agg(
        F.transform(F.array_sort(F.collect_list(F.struct("as_of_date", "_bill"))), lambda x: x["_bill"])
        .alias(BILL_HISTORY))


def _mean_sql(array: str) -> str:
    return f"(aggregate({array}, 0D, (a, x) -> a + x) / size({array}))"


def _ratio_sql(num: str, den: str) -> str:
    return f"(CASE WHEN {den} > 0 THEN {num} / {den} END)"


def walk_bills(df: DataFrame, k: int, *, add: float = 0.0, factor: float = 1.0, touched: Column | None = None) -> DataFrame:
    """``df`` (with BILL_HISTORY) at the k-th month end of the horizon: the bill of each horizon month
    is the household's bill of the same month a year earlier (its mean bill without one) x
    ``factor`` + ``add`` where ``touched``, and the bill columns are computed from the old bills
    followed by the horizon's k as gold.household_features.bill_features computes them:
    ``last_bill_usd``; ``mean_bill_12_usd`` and ``annual_bill_usd`` (the last 12); ``bill_shock_ratio``
    (against the mean of the up to 12 before it) and ``is_bill_shock``; ``max_bill_shock_ratio_180d``
    (the worst of the last 6 bills, each against the mean of the up to 3 before it);
    ``same_season_bill_ratio``; ``energy_burden``. Rows without a history keep their columns."""
    h = f"`{BILL_HISTORY}`"
    n = f"size({h})"

    def year_ago(j: str) -> str:  # horizon month j's bill a year earlier: position j - (12 - n) of the history
        at = f"{j} - ({BILL_HISTORY_MONTHS} - {n})"
        return f"(CASE WHEN {at} >= 1 THEN element_at({h}, {at}) ELSE {_mean_sql(h)} END)"

    lift = F.coalesce(touched, F.lit(False)) if touched is not None else F.lit(True)
    df = df.withColumn("_add", F.when(lift, F.lit(float(add))).otherwise(F.lit(0.0))).withColumn(
        "_factor", F.when(lift, F.lit(float(factor))).otherwise(F.lit(1.0)))
    seq = F.expr(f"concat({h}, transform(sequence(1, {k}), j -> {year_ago('j')} * _factor + _add))")
    has = F.col(BILL_HISTORY).isNotNull() & (F.size(F.col(BILL_HISTORY)) > 0)
    out = df.withColumn("_seq", F.when(has, seq))
    size = "size(_seq)"
    last = F.expr("element_at(_seq, -1)")
    last12 = f"slice(_seq, greatest(1, {size} - 11), least(12, {size}))"
    before = f"slice(_seq, greatest(1, {size} - 12), least(12, {size} - 1))"
    worst = (f"array_max(transform(sequence(greatest(2, {size} - 5), {size}), "
             f"p -> {_ratio_sql('element_at(_seq, p)', _mean_sql('slice(_seq, greatest(1, p - 3), least(3, p - 1))'))}))")
    mean12 = F.expr(_mean_sql(last12))
    values = {
        "last_bill_usd": last,
        "mean_bill_12_usd": mean12,
        "annual_bill_usd": mean12 * 12.0,
        "bill_shock_ratio": F.expr(f"CASE WHEN {size} > 1 THEN {_ratio_sql('element_at(_seq, -1)', _mean_sql(before))} END"),
        "max_bill_shock_ratio_180d": F.expr(f"CASE WHEN {size} > 1 THEN {worst} END"),
        "same_season_bill_ratio": F.expr(_ratio_sql("element_at(_seq, -1)", year_ago(str(k)))),
    }
    for column, value in values.items():
        if column in df.columns:
            out = out.withColumn(column, F.when(has, value.cast(df.schema[column].dataType)).otherwise(F.col(column)))
    if "is_bill_shock" in df.columns and "bill_shock_ratio" in df.columns:
        out = out.withColumn("is_bill_shock", F.when(has, F.col("bill_shock_ratio") >= BILL_SHOCK_RATIO)
                             .otherwise(F.col("is_bill_shock")))
    if _has(df, "energy_burden", "annual_bill_usd", "income_midpoint_usd"):
        burden = _burden(F.col("annual_bill_usd"))
        out = out.withColumn("energy_burden", F.when(has, burden.cast(df.schema["energy_burden"].dataType))
                             .otherwise(F.col("energy_burden")))
    return out.drop("_seq", "_add", "_factor")


def csat_walk(
    snapshot_df: DataFrame,
    changed_df: DataFrame,
    bill_history_df: DataFrame,
    scenario: Scenario,
    model: LoadedModel,
    *,
    csat_top2box_threshold: float,
    months: int = CSAT_HORIZON_MONTHS,
) -> DataFrame:
    """household_id, csat_baseline, csat_scenario, csat_top2box_baseline, csat_top2box_scenario: a
    rate scenario's CSAT as the mean over the horizon's ``months`` month ends, both worlds walking
    the same year-ago bills (``walk_bills``; the scenario's dearer where it touched the household).
    Besides the bill columns each side keeps its own snapshot (the scenario's: its second round).
    One scoring pass over 2 x ``months`` rows per household."""
    add, factor = (scenario.value, 1.0) if scenario.kind == "rate_increase_usd" else (0.0, 1.0 + scenario.value / 100.0)
    columns = snapshot_df.columns
    base = snapshot_df.join(bill_history_df.select("household_id", BILL_HISTORY), "household_id", "left")
    scen = changed_df.select(*columns, "_touched").join(
        bill_history_df.select("household_id", BILL_HISTORY), "household_id", "left")
    frames = []
    for k in range(1, months + 1):
        frames.append(walk_bills(base, k).select(*columns).withColumn("_world", F.lit("baseline")))
        frames.append(walk_bills(scen, k, add=add, factor=factor, touched=F.col("_touched")).select(*columns)
                      .withColumn("_world", F.lit("scenario")))
    walked_df = frames[0]
    for frame in frames[1:]:
        walked_df = walked_df.unionByName(frame)
    scored = predict_frame(walked_df, model, keep=("household_id", "_world"))
    top2 = (F.col("score") >= F.lit(csat_top2box_threshold)).cast("double")
    return scored.groupBy("household_id").agg(
        *[F.avg(F.when(F.col("_world") == w, F.col("score"))).alias(f"csat_{w}") for w in ("baseline", "scenario")],
        *[F.avg(F.when(F.col("_world") == w, top2)).alias(f"csat_top2box_{w}") for w in ("baseline", "scenario")],
    )


def _bucket(seed: int) -> Column:
    return F.pmod(F.xxhash64(F.col("household_id"), F.lit(seed)), F.lit(BUCKETS)).cast("int")


def bucket_sums(sim_df: DataFrame, snapshot_df: DataFrame, *, segments_df: DataFrame | None, seed: int) -> DataFrame:
    """Per segment and bucket: households, touched households, and the sums of every
    outcome's baseline and delta (small: segments x ``BUCKETS`` rows)."""
    seg_df = with_segments(snapshot_df).select("household_id", "segment_type", "segment_value")
    if segments_df is not None:
        seg_df = seg_df.unionByName(segments_df.select("household_id", "segment_type", "segment_value"))
    aggs = [F.count("*").alias("n"), F.sum(F.col("touched").cast("long")).alias("n_touched")]
    for metric, o in OUTCOME_OF_METRIC.items():
        aggs.append(F.sum(f"{o}_baseline").alias(f"{metric}__base"))
        aggs.append(F.sum(F.col(f"{o}_scenario") - F.col(f"{o}_baseline")).alias(f"{metric}__delta"))
    return sim_df.join(seg_df, "household_id").withColumn("bucket", _bucket(seed)).groupBy("segment_type", "segment_value", "bucket").agg(*aggs)


def summarise(
    sums_pdf: pd.DataFrame,
    *,
    replicates: int,
    confidence_level: float,
    seed: int,
) -> pd.DataFrame:
    """Rows of gold/whatif_results (without run/scenario columns) from ``bucket_sums`` on the driver.

    Point estimates are the means over the segment's households; intervals the
    percentile interval of the mean delta over ``replicates`` bucket resamples.
    """
    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1 - confidence_level) / 2, 1 - (1 - confidence_level) / 2
    rows = []
    for (seg_type, seg_value), g in sums_pdf.groupby(["segment_type", "segment_value"], sort=True):
        n = g["n"].to_numpy(dtype=np.float64)
        total = n.sum()
        idx = rng.integers(0, len(g), size=(replicates, len(g)))
        n_rep = n[idx].sum(axis=1)
        for metric in METRICS:
            base = g[f"{metric}__base"].to_numpy(dtype=np.float64)
            delta = g[f"{metric}__delta"].to_numpy(dtype=np.float64)
            mean_base = base.sum() / total
            mean_delta = delta.sum() / total
            rep = delta[idx].sum(axis=1) / np.where(n_rep > 0, n_rep, np.nan)
            lo, hi = np.nanquantile(rep, [lo_q, hi_q])
            rows.append(
                {
                    "segment_type": seg_type,
                    "segment_value": seg_value,
                    "metric": metric,
                    "baseline": float(mean_base),
                    "scenario_value": float(mean_base + mean_delta),
                    "delta": float(mean_delta),
                    "delta_ci_low": float(lo),
                    "delta_ci_high": float(hi),
                    "n": int(total),
                    "n_touched": int(g["n_touched"].sum()),
                }
            )
    return pd.DataFrame(rows)


VALUE_COLUMNS = ["baseline", "scenario_value", "delta", "delta_ci_low", "delta_ci_high"]


def suppress_results(results_df: DataFrame, *, min_households: int) -> DataFrame:
    """Null the values of segment cells with n < ``min_households`` (adds is_suppressed)."""
    return suppress(results_df, value_cols=VALUE_COLUMNS, min_households=min_households)
