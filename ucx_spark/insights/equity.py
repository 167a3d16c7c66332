"""Who is treated unfairly (issue 21): gold/equity_audit, outcomes by income band, ZIP and the
ZIP's poverty rate against the whole utility, with household-bootstrap intervals.

DataFrame in, DataFrame out; the reads and the write are ``pipelines/equity.py``.

**Rows**: for each of the last ``months`` local months and for the whole window (``period`` =
``YYYY-MM`` or ``window``), each dimension (``income_band``, ``zip``, ``poverty_band``) and its
values (``unknown`` where the household has none), each metric:

| metric | numerator (per household) | denominator |
| --- | --- | --- |
| disconnect_notices_per_1000 | disconnect notices dated in the period, x 1,000 | active households |
| disconnections_per_1000 | disconnections dated in the period, x 1,000 | active households |
| program_enrollment_rate | enrolled on the period's last day in an assistance or savings program (liheap, budget_billing, ee_rebate, demand_response, solar, ev_rate, ev_charger_rebate) | active households |
| campaign_reach_rate | reached by a delivered marketing event in the period | active households |
| outage_minutes_per_household | minutes without power (outages at its premise started in the period) | active households |
| etr_late_minutes | minutes restoration came after the first estimate told (early counts 0: late is worse) | outages with an estimate |
| payment_risk_predicted | the payment-risk score (latest scoring date, its month and the window) | scored households |

A household is active in a period when its account is active on any day of it. ``value`` is
numerator / denominator; ``overall`` the same over every household of the dimension; ``ratio`` =
value / overall. **Interval** of a count metric (notices, disconnections, enrolled and reached
household-months: ``COUNT_METRICS``): exact, from the binomial split of the period's events between
the group and the rest given its share of the denominator (Clopper-Pearson): a group holding the
only few events gets the wide interval it deserves. Of the others: a Poisson bootstrap over
households (``replicates`` draws, each
household weighted by a Poisson(1) draw seeded from its id; for the outage metrics each outage,
since one outage strikes every home of its feeder, and their interval also spans the exact one of
the group's share of the outages, as the bootstrap cannot see chance in which feeders were struck):
the numerator's sum is redrawn, the
group's denominator held at its size (a bootstrap stratified by group, so a replicate's overall is
the sum of its groups' numerators); only households with a non-zero numerator enter the draws, so
the cost follows the events, not the population. The 2.5% and 97.5% quantiles of the replicate
ratios bound it. ``flagged`` when ratio > ``FLAG_RATIO`` (1.25) and the interval's low end > 1.
A bootstrap redraws the homes (outages) that had an event; it cannot see the chance in the events
themselves, so a group whose events come from few of them gets a narrow interval it has not earned
(a group holding a month's only notice has a fixed ratio in every replicate): a group needs
``MIN_FLAG_EVENTS`` (5) households (outages) with an event to be flagged (``events``).
A group of fewer than ``min_households`` households keeps its household count and denominator only
(numerator, value, ratio and interval null, never flagged), after the privacy rule of every gold aggregate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.config import DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.local_time import local_date

DIMENSIONS = ("income_band", "zip", "poverty_band")
FLAG_RATIO = 1.25
MIN_FLAG_EVENTS = 5  # households (outages) with an event a group needs before it can be flagged
REPLICATES = 200
UNKNOWN = "unknown"
WINDOW = "window"
AUDITED_PROGRAMS = ("liheap", "budget_billing", "ee_rebate", "demand_response", "solar", "ev_rate", "ev_charger_rebate")
METRICS = ("disconnect_notices_per_1000", "disconnections_per_1000", "program_enrollment_rate", "campaign_reach_rate",
           "outage_minutes_per_household", "etr_late_minutes", "payment_risk_predicted")
# metrics whose numerator counts events (x the scale): their interval is exact (``exact_interval``)
COUNT_METRICS = {"disconnect_notices_per_1000": 1000.0, "disconnections_per_1000": 1000.0,
                 "program_enrollment_rate": 1.0, "campaign_reach_rate": 1.0}
OUTAGE_METRICS = ("outage_minutes_per_household", "etr_late_minutes")
# census pct_below_poverty (a fraction or a percentage) -> band
POVERTY_BANDS = ((0.10, "lt10pct"), (0.20, "10-20pct"), (0.30, "20-30pct"))
# Poisson(1) inverse CDF: the weight is the number of thresholds a uniform draw exceeds
_POISSON1_CDF = (0.36787944, 0.73575888, 0.91969860, 0.98101184, 0.99634015, 0.99940582, 0.99991676, 0.99998975)
COLUMNS = ("period", "dimension", "group_value", "metric", "n", "events", "numerator", "denominator", "value", "overall",
           "ratio", "ci_low", "ci_high", "flagged", "is_suppressed")


def poverty_band(pct: Column) -> Column:
    """A ZIP's share below the poverty line (census ``pct_below_poverty``, a fraction or a percent)."""
    share = F.when(pct > 1, pct / 100.0).otherwise(pct)
    out = F.lit("30pct_plus")
    for upper, name in reversed(POVERTY_BANDS):
        out = F.when(share < upper, F.lit(name)).otherwise(out)
    return F.when(pct.isNull(), F.lit(UNKNOWN)).otherwise(out)


def household_groups(features_df: DataFrame) -> DataFrame:
    """household_id, income_band, zip, poverty_band: each household's latest row of
    gold/household_features (``unknown`` where it has none)."""
    latest = Window.partitionBy("household_id").orderBy(F.col("as_of_date").desc())
    return (features_df.withColumn("_r", F.row_number().over(latest)).filter("_r = 1")
            .select("household_id",
                    F.coalesce(F.col("income_band"), F.lit(UNKNOWN)).alias("income_band"),
                    F.coalesce(F.col("zip").cast("string"), F.lit(UNKNOWN)).alias("zip"),
                    poverty_band(F.col("census_pct_below_poverty")).alias("poverty_band")))


def audit_months(last_month: Column, months: int) -> Column:
    """The ``months`` first-days of month ending with ``last_month``'s, oldest first."""
    return F.sequence(F.add_months(F.trunc(last_month, "month"), -(months - 1)), F.trunc(last_month, "month"),
                      F.expr("INTERVAL 1 MONTH"))


def active_household_months(accounts_df: DataFrame, months_df: DataFrame) -> DataFrame:
    """household_id, premise_id, month: accounts active on any day of the month (silver/accounts)."""
    month_end = F.last_day("month")
    return (accounts_df.select("household_id", "premise_id", "start_date", "end_date").crossJoin(months_df)
            .filter((F.col("start_date") <= month_end) & (F.col("end_date").isNull() | (F.col("end_date") >= F.col("month"))))
            .groupBy("household_id", "month").agg(F.first("premise_id").alias("premise_id")))


def household_month_metrics(
    active_df: DataFrame,
    *,
    collections_df: DataFrame,
    programs_df: DataFrame,
    marketing_df: DataFrame,
    outages_df: DataFrame,
    time_zone: str,
) -> DataFrame:
    """household_id, month, metric, cluster, numerator, denominator: the rows of the table in the
    module doc (payment risk apart: ``score_metrics``). Each active household-month has a row per
    metric (``cluster`` its own id); the outage metrics' numerators come in rows of their own, one
    per outage at the household's premise, clustered by the outage (``cluster`` = outage_id): the
    bootstrap redraws outages, not homes, since one outage strikes every home of its feeder."""
    month = F.trunc("event_date", "month")
    notices = (collections_df.filter(F.col("event_type").isin("disconnect_notice", "disconnect"))
               .select("household_id", month.alias("month"), "event_type")
               .groupBy("household_id", "month").agg(
                   F.sum((F.col("event_type") == "disconnect_notice").cast("double")).alias("notices"),
                   F.sum((F.col("event_type") == "disconnect").cast("double")).alias("disconnects")))
    enrolled = (active_df.select("household_id", "month").join(
        programs_df.filter(F.col("program").isin(*AUDITED_PROGRAMS)).select("household_id", "enrolled_on", "ended_on"),
        "household_id")
        .filter((F.col("enrolled_on") <= F.last_day("month"))
                & (F.col("ended_on").isNull() | (F.col("ended_on") >= F.last_day("month"))))
        .select("household_id", "month").distinct().withColumn("enrolled", F.lit(1.0)))
    reached = (marketing_df.filter(F.col("event_type") == "delivered")
               .select("household_id", F.trunc(local_date(F.col("occurred_at"), time_zone=time_zone), "month")
                       .alias("month")).distinct().withColumn("reached", F.lit(1.0)))
    started = local_date(F.col("started_at"), time_zone=time_zone)
    premise_outages = (outages_df.filter(F.col("restored_at").isNotNull()).select(
        "premise_id", "outage_id", F.trunc(started, "month").alias("month"),
        ((F.col("restored_at").cast("long") - F.col("started_at").cast("long")) / 60.0).alias("minutes"),
        F.when(F.col("first_etr").isNotNull(), F.greatest(
            (F.col("restored_at").cast("long") - F.col("first_etr").cast("long")) / 60.0, F.lit(0.0))).alias("late")))
    # outages strike feeders, not homes one by one: their rows are clustered by the outage
    outages = active_df.join(premise_outages, ["premise_id", "month"]).select(
        "household_id", "month", F.col("outage_id").alias("cluster"), "minutes", "late")
    outage_rows = outages.select(
        "household_id", "month", "cluster", F.explode(F.array(
            F.struct(F.lit("outage_minutes_per_household").alias("metric"), F.col("minutes").alias("numerator"),
                     F.lit(0.0).alias("denominator")),
            F.struct(F.lit("etr_late_minutes").alias("metric"), F.col("late").alias("numerator"),
                     F.when(F.col("late").isNotNull(), F.lit(1.0)).otherwise(F.lit(0.0)).alias("denominator")),
        )).alias("m")).select("household_id", "month", "m.metric", "cluster", "m.numerator", "m.denominator")
    wide = (active_df.join(notices, ["household_id", "month"], "left").join(enrolled, ["household_id", "month"], "left")
            .join(reached, ["household_id", "month"], "left"))
    zero = F.lit(0.0)
    pairs = [
        ("disconnect_notices_per_1000", F.coalesce("notices", zero) * 1000),
        ("disconnections_per_1000", F.coalesce("disconnects", zero) * 1000),
        ("program_enrollment_rate", F.coalesce("enrolled", zero)),
        ("campaign_reach_rate", F.coalesce("reached", zero)),
        ("outage_minutes_per_household", zero),  # the household's denominator; its minutes are outage_rows
    ]
    stacked = F.array(*[F.struct(F.lit(m).alias("metric"), num.cast("double").alias("numerator")) for m, num in pairs])
    household_rows = (wide.select("household_id", "month", F.explode(stacked).alias("m"))
                      .select("household_id", "month", "m.metric", F.col("household_id").alias("cluster"),
                              "m.numerator", F.lit(1.0).alias("denominator")))
    return household_rows.unionByName(outage_rows.filter((F.col("numerator") > 0) | (F.col("denominator") > 0)))


def score_metrics(scores_df: DataFrame) -> DataFrame:
    """household_id, month, metric, numerator, denominator of gold/household_scores' latest
    payment-risk scores (the month of their as_of_date)."""
    risk = scores_df.filter(F.col("model_name") == "payment_risk")
    latest = risk.agg(F.max("as_of_date").alias("_d"))
    return (risk.join(latest, F.col("as_of_date") == F.col("_d")).filter(F.col("score").isNotNull())
            .select("household_id", F.trunc("as_of_date", "month").alias("month"),
                    F.lit("payment_risk_predicted").alias("metric"), F.col("household_id").alias("cluster"),
                    F.col("score").cast("double").alias("numerator"),
                    F.lit(1.0).alias("denominator")))


# a StructType, not a DDL string: parsing DDL needs a live session, and this runs at import
@F.pandas_udf(T.StructType([T.StructField("low", T.DoubleType()), T.StructField("high", T.DoubleType())]))  # type: ignore[call-overload]
def exact_interval(events: pd.Series, total: pd.Series, exposure: pd.Series) -> pd.DataFrame:
    """95% interval of a group's ratio to the whole: conditional on the total, the group's events
    are binomial with the share ``exposure * ratio`` (its share of the denominator times the
    ratio), so Clopper-Pearson's interval of that share over ``exposure`` bounds the ratio."""
    from scipy import stats

    x, n, e = events.to_numpy(float), total.to_numpy(float), exposure.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, stats.beta.ppf(0.025, x, n - x + 1), 0.0) / e
        high = np.where(x < n, stats.beta.ppf(0.975, x + 1, n - x), 1.0) / e
    bad = ~(n > 0) | ~(e > 0)
    return pd.DataFrame({"low": np.where(bad, np.nan, low), "high": np.where(bad, np.nan, high)})


def _poisson1(u: Column) -> Column:
    return sum((F.when(u > F.lit(c), F.lit(1)).otherwise(F.lit(0)) for c in _POISSON1_CDF), F.lit(0))


def equity_audit(
    metrics_df: DataFrame,
    groups_df: DataFrame,
    *,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    replicates: int = REPLICATES,
    seed: int = 42,
) -> DataFrame:
    """gold/equity_audit (``COLUMNS``) from ``household_month_metrics`` (and ``score_metrics``)
    rows and ``household_groups``: see the module doc."""
    monthly = metrics_df.withColumn("period", F.date_format("month", "yyyy-MM"))
    window = metrics_df.groupBy("household_id", "metric", "cluster").agg(
        F.sum("numerator").alias("numerator"), F.sum("denominator").alias("denominator")
    ).withColumn("period", F.lit(WINDOW))
    per_household = monthly.drop("month").unionByName(window)
    long_groups = groups_df.select("household_id", F.explode(F.array(*[
        F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("group_value")) for d in DIMENSIONS
    ])).alias("g")).select("household_id", "g.dimension", "g.group_value")
    rows = per_household.join(long_groups, "household_id")
    keys = ["period", "dimension", "group_value", "metric"]
    groups = rows.groupBy(*keys).agg(
        F.countDistinct("household_id").alias("n"), F.sum("numerator").alias("numerator"),
        F.countDistinct(F.when(F.col("numerator") != 0, F.col("cluster"))).alias("events"),
        F.sum("denominator").alias("denominator"))
    overall_keys = ["period", "dimension", "metric"]
    totals = groups.groupBy(*overall_keys).agg(F.sum("numerator").alias("_on"), F.sum("denominator").alias("_od"),
                                               F.sum("events").alias("_oe"))
    # the bootstrap (continuous metrics): households with a non-zero numerator, one weight per replicate
    rows = rows.filter(~F.col("metric").isin(*COUNT_METRICS))
    u = F.pmod(F.xxhash64(F.col("cluster"), F.col("period"), F.col("b"), F.lit(seed)),
               F.lit(2**31).cast("long")) / F.lit(2.0**31)
    drawn = (rows.filter(F.col("numerator") != 0)
             .withColumn("b", F.explode(F.sequence(F.lit(1), F.lit(replicates))))
             .withColumn("w", _poisson1(u))
             .groupBy(*keys, "b").agg(F.sum(F.col("w") * F.col("numerator")).alias("s")))
    every = groups.filter(~F.col("metric").isin(*COUNT_METRICS)).select(*keys, "denominator").crossJoin(
        groups.sparkSession.range(1, replicates + 1).select(F.col("id").cast("int").alias("b")))
    replicate = every.join(drawn, [*keys, "b"], "left").withColumn("s", F.coalesce("s", F.lit(0.0)))
    replicate_totals = replicate.groupBy(*overall_keys, "b").agg(F.sum("s").alias("_os"), F.sum("denominator").alias("_od"))
    ratios = (replicate.join(replicate_totals, [*overall_keys, "b"])
              .withColumn("r", F.when(F.col("_os") > 0, (F.col("s") / F.col("denominator")) / (F.col("_os") / F.col("_od"))))
              .groupBy(*keys).agg(F.percentile_approx("r", [0.025, 0.975], 10000).alias("_q")))
    hidden = F.col("n") < F.lit(min_households)
    value = F.col("numerator") / F.col("denominator")
    overall = F.col("_on") / F.col("_od")
    ratio = F.when(overall != 0, value / overall)
    scale = F.create_map(*[F.lit(x) for kv in COUNT_METRICS.items() for x in kv])[F.col("metric")]
    exact = exact_interval(F.round(F.col("numerator") / scale), F.round(F.col("_on") / scale),
                           F.col("denominator") / F.col("_od"))
    # outage metrics: the bootstrap's interval joined with the exact one of the group's share of the
    # outages (a group struck by every outage of the period has the same ratio in every replicate)
    shared = exact_interval(F.col("events").cast("double"), F.col("_oe").cast("double"), F.col("denominator") / F.col("_od"))
    interval = (F.when(scale.isNotNull(), F.array(exact["low"], exact["high"]))
                .when(F.col("metric").isin(*OUTAGE_METRICS),
                      F.array(F.least(F.col("_q")[0], shared["low"]), F.greatest(F.col("_q")[1], shared["high"])))
                .otherwise(F.col("_q")))
    out = (groups.join(totals, overall_keys).join(ratios, keys, "left")
           .withColumn("_q", interval)
           .select(*keys, "n", F.when(~hidden, F.col("events")).alias("events"),
                   F.when(~hidden, F.col("numerator")).alias("numerator"), "denominator",
                   F.when(~hidden, value).alias("value"), overall.alias("overall"),
                   F.when(~hidden, ratio).alias("ratio"),
                   F.when(~hidden, F.col("_q")[0]).alias("ci_low"), F.when(~hidden, F.col("_q")[1]).alias("ci_high"),
                   hidden.alias("is_suppressed")))
    flagged = (~F.col("is_suppressed") & (F.col("ratio") > FLAG_RATIO) & (F.col("ci_low") > 1.0)
               & (F.col("events") >= MIN_FLAG_EVENTS))
    return out.withColumn("flagged", F.coalesce(flagged, F.lit(False))).select(*COLUMNS)
