"""Program saturation: who can still enroll, how likely, and what a goal can reach -> gold/program_saturation.

For each program of contract.PROGRAMS, on the scoring snapshot (one row per
active household at the latest as_of_date):

- eligible: ``ELIGIBILITY`` (below; unknown attributes are not eligible);
- enrolled: ``is_enrolled_<program>`` of the snapshot;
- propensity of every eligible household: for ``ev_rate`` and
  ``ev_charger_rebate`` the ev_adoption champion's score (a 12-month
  probability) when gold/household_scores has it (households outside its
  population, already driving an EV, keep the look-alike); otherwise a look-alike
  logistic regression (Spark ML) of enrolled vs not among the eligible, on
  the segment features (``segments.objective_features``: the program's leaky
  features and the program count left out); when fewer than
  ``MIN_CLASS_HOUSEHOLDS`` eligible households are enrolled (or not), the
  eligible enrollment rate (``propensity_source = base_rate``);
- modelled_potential = sum of propensity over eligible, not-enrolled households;
- historical velocity: conversions_12m = households active now, not enrolled
  at the start of the window (``horizon_months`` before as_of_date) and
  enrolled within it (silver/programs enrolled_on); conversion_rate_12m =
  conversions / eligible households not enrolled at the window start;
- reachable in the horizon: organic_new = conversion_rate_12m x eligible
  not-enrolled (the historical pace continues) plus campaign_new =
  ``campaign_capture`` x (modelled_potential - organic_new, if positive): a
  year of targeted campaigns converts that share of the remaining
  look-alike potential. reachable_new_12m = organic_new + campaign_new;
  reachable_rate_12m = (enrolled + reachable_new) / active households;
  reachable_lift_pp_12m = 100 x reachable_new / active households.
  Rates use the cx_kpis denominator (all active households), so a "+5 pp
  autopay" goal reads against the enrollment_rate:autopay KPI.
  ``achievable(row, lift_pp)`` answers "is a +X pp lift reachable?".
  Churn (enrollments ending) is not modelled.

Every value is suppressed (null) when the program has fewer than
``privacy.min_households`` eligible households (``n``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import Imputer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.contract import PROGRAMS
from ucx_spark.insights.segments import _ordered, _usable, objective_features, with_segment_features

MIN_CLASS_HOUSEHOLDS = 5
DEFAULT_CAMPAIGN_CAPTURE = 0.3
EV_PROGRAMS = ("ev_rate", "ev_charger_rebate")
LOW_INCOME_BANDS = ("lt25k", "25-50k")

ELIGIBILITY_RULES: dict[str, str] = {
    "autopay": "every active account",
    "paperless": "every active account",
    "budget_billing": "residential (RES)",
    "liheap": "residential with income band lt25k or 25-50k",
    "ee_rebate": "every active account",
    "ev_rate": "residential (RES)",
    "ev_charger_rebate": "residential (RES)",
    "solar": "residential owner of a single-family home",
    "demand_response": "residential (RES)",
}


def eligibility(program: str) -> Column:
    """True when the snapshot row is eligible for ``program`` (``ELIGIBILITY_RULES``); never null.

    Needs customer_class, income_band, tenure, home_type.
    """
    res = F.col("customer_class") == "RES"
    rules: dict[str, Column] = {
        "autopay": F.lit(True),
        "paperless": F.lit(True),
        "budget_billing": res,
        "liheap": res & F.col("income_band").isin(*LOW_INCOME_BANDS),
        "ee_rebate": F.lit(True),
        "ev_rate": res,
        "ev_charger_rebate": res,
        "solar": res & (F.col("tenure") == "owner") & (F.col("home_type") == "single_family"),
        "demand_response": res,
    }
    if program not in rules:
        raise ValueError(f"no eligibility rule for program '{program}'")
    return F.coalesce(rules[program], F.lit(False))


def program_households(snapshot_df: DataFrame, *, programs: tuple[str, ...] = PROGRAMS) -> DataFrame:
    """One row per (household, program): household_id, as_of_date, program, is_eligible, is_enrolled.

    Needs the snapshot's customer_class, income_band, tenure, home_type, is_enrolled_<program>.
    """
    df = snapshot_df
    for c in ("customer_class", "income_band", "tenure", "home_type"):
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    pairs = [
        F.struct(
            F.lit(p).alias("program"),
            eligibility(p).alias("is_eligible"),
            (F.coalesce(F.col(f"is_enrolled_{p}").cast("boolean"), F.lit(False))
             if f"is_enrolled_{p}" in df.columns else F.lit(False)).alias("is_enrolled"),
        )
        for p in programs
    ]
    return df.select("household_id", "as_of_date", F.explode(F.array(*pairs)).alias("_p")).select(
        "household_id", "as_of_date", "_p.program", "_p.is_eligible", "_p.is_enrolled"
    )


def _lookalike(df: DataFrame, program: str, *, seed: int) -> DataFrame | None:
    """household_id, propensity from a look-alike logistic regression among the eligible, or None
    when either class has fewer than MIN_CLASS_HOUSEHOLDS households. ``df`` has the segment features
    and ``label`` (1.0 enrolled)."""
    counts = df.groupBy("label").count().collect()  # two rows
    by_label = {float(r["label"]): int(r["count"]) for r in counts}
    if min(by_label.get(0.0, 0), by_label.get(1.0, 0)) < MIN_CLASS_HOUSEHOLDS:
        return None
    features = _usable(df, objective_features(program))
    imputed = [f"_imp_{f}" for f in features]
    model = Pipeline(stages=[
        Imputer(inputCols=features, outputCols=imputed, strategy="mean"),
        VectorAssembler(inputCols=imputed, outputCol="_x"),
        LogisticRegression(featuresCol="_x", labelCol="label", maxIter=30, regParam=0.01, probabilityCol="_prob"),
    ]).fit(df)
    return model.transform(df).select("household_id", vector_to_array(F.col("_prob"))[1].alias("propensity"))


def program_propensity(
    snapshot_df: DataFrame,
    *,
    seed: int,
    scores_df: DataFrame | None = None,
    programs: tuple[str, ...] = PROGRAMS,
    partitions: int = 8,
) -> DataFrame:
    """program_households plus ``propensity`` (eligible rows; null otherwise) and ``propensity_source``
    (lookalike, ev_adoption, base_rate). Fits one look-alike model per program (an action each)."""
    ph = program_households(snapshot_df, programs=programs).cache()
    feats = _ordered(snapshot_df.transform(with_segment_features), partitions=partitions).cache()
    ev_scores = None
    if scores_df is not None:
        ev_scores = scores_df.filter(F.col("model_name") == "ev_adoption").select(
            "household_id", "as_of_date", F.col("score").cast("double").alias("propensity"))
        if ev_scores.limit(1).count() == 0:
            ev_scores = None
    parts = []
    try:
        for program in programs:
            rows = ph.filter(F.col("program") == program)
            eligible = rows.filter("is_eligible")
            train = feats.join(eligible.select("household_id", F.col("is_enrolled").cast("double").alias("label")),
                               "household_id")
            predicted = _lookalike(train, program, seed=seed)
            if predicted is not None:
                scored = eligible.join(predicted, "household_id", "left").withColumn("_source", F.lit("lookalike"))
            else:
                base = eligible.agg(F.avg(F.col("is_enrolled").cast("double")).alias("propensity"))
                scored = eligible.crossJoin(base).withColumn("_source", F.lit("base_rate"))
            if program in EV_PROGRAMS and ev_scores is not None:
                # the EV model's score where it gave one; households outside its population (already
                # driving an EV: a null score with not_scored_reason) keep the look-alike estimate
                scored = (
                    scored.join(ev_scores.withColumnRenamed("propensity", "_ev"), ["household_id", "as_of_date"], "left")
                    .withColumn("_source", F.when(F.col("_ev").isNotNull(), F.lit("ev_adoption")).otherwise(F.col("_source")))
                    .withColumn("propensity", F.coalesce("_ev", "propensity"))
                )
            parts.append(
                rows.join(scored.select("household_id", "propensity", "_source"), "household_id", "left")
                .withColumn("propensity_source", F.when(F.col("is_eligible"), F.col("_source")))
                .drop("_source")
            )
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        return out.select("household_id", "as_of_date", "program", "is_eligible", "is_enrolled",
                          F.col("propensity").cast("double").alias("propensity"), "propensity_source").localCheckpoint()
    finally:
        ph.unpersist()
        feats.unpersist()


def enrollment_history(programs_df: DataFrame, snapshot_df: DataFrame, *, horizon_months: int) -> DataFrame:
    """household_id, program, was_enrolled_at_start, converted_in_window for every (household of the
    snapshot, program it has a row of). The window is (as_of_date - horizon_months, as_of_date].

    Needs programs: household_id, program, enrolled_on, ended_on; snapshot: household_id, as_of_date.
    """
    start = F.add_months(F.col("as_of_date"), -horizon_months)
    rows = programs_df.select("household_id", "program", "enrolled_on", "ended_on").join(
        snapshot_df.select("household_id", "as_of_date"), "household_id"
    )
    at_start = (F.col("enrolled_on") <= start) & (F.col("ended_on").isNull() | (F.col("ended_on") >= start))
    within = (F.col("enrolled_on") > start) & (F.col("enrolled_on") <= F.col("as_of_date"))
    return (
        rows.groupBy("household_id", "program")
        .agg(F.max(at_start.cast("int")).alias("_start"), F.max(within.cast("int")).alias("_within"))
        .select(
            "household_id", "program",
            (F.col("_start") == 1).alias("was_enrolled_at_start"),
            ((F.col("_start") == 0) & (F.col("_within") == 1)).alias("converted_in_window"),
        )
    )


VALUE_COLUMNS = (
    "active_households", "eligible_households", "enrolled_households", "enrollment_rate", "eligible_enrollment_rate",
    "eligible_not_enrolled", "modelled_potential", "conversions_12m", "conversion_rate_12m", "organic_new_12m",
    "campaign_new_12m", "reachable_new_12m", "reachable_rate_12m", "reachable_lift_pp_12m",
)
SATURATION_COLUMNS = (
    "program", "as_of_date", "eligibility_rule", "propensity_source", *VALUE_COLUMNS,
    "horizon_months", "campaign_capture", "n", "is_suppressed",
)


def program_saturation(
    propensity_df: DataFrame,
    history_df: DataFrame,
    *,
    min_households: int,
    horizon_months: int = 12,
    campaign_capture: float = DEFAULT_CAMPAIGN_CAPTURE,
) -> DataFrame:
    """gold/program_saturation: one row per program (``SATURATION_COLUMNS``).

    ``propensity_df``: program_propensity rows; ``history_df``: enrollment_history rows.
    n = eligible households; every value is null when n < ``min_households``.
    """
    df = propensity_df.join(history_df, ["household_id", "program"], "left")
    eligible = F.col("is_eligible")
    open_now = eligible & ~F.col("is_enrolled")
    pool_at_start = eligible & ~F.coalesce(F.col("was_enrolled_at_start"), F.lit(False))
    converted = F.coalesce(F.col("converted_in_window"), F.lit(False))
    rules_df = propensity_df.sparkSession.createDataFrame(
        sorted(ELIGIBILITY_RULES.items()), "program string, eligibility_rule string")
    agg = df.groupBy("program").agg(
        F.max("as_of_date").alias("as_of_date"),
        # the source of most of the modelled potential (eligible households not enrolled yet)
        F.mode(F.when(open_now, F.col("propensity_source"))).alias("propensity_source"),
        F.countDistinct("household_id").alias("active_households"),
        F.count(F.when(eligible, 1)).alias("eligible_households"),
        F.count(F.when(F.col("is_enrolled"), 1)).alias("enrolled_households"),
        F.count(F.when(eligible & F.col("is_enrolled"), 1)).alias("_eligible_enrolled"),
        F.count(F.when(open_now, 1)).alias("eligible_not_enrolled"),
        F.coalesce(F.sum(F.when(open_now, F.col("propensity"))), F.lit(0.0)).alias("modelled_potential"),
        F.count(F.when(eligible & converted, 1)).alias("conversions_12m"),
        F.count(F.when(pool_at_start, 1)).alias("_pool_at_start"),
    )
    organic = F.col("conversion_rate_12m") * F.col("eligible_not_enrolled")
    out = (
        agg.withColumn("enrollment_rate", F.col("enrolled_households") / F.col("active_households"))
        .withColumn("eligible_enrollment_rate",
                    F.when(F.col("eligible_households") > 0, F.col("_eligible_enrolled") / F.col("eligible_households")))
        .withColumn("conversion_rate_12m",
                    F.when(F.col("_pool_at_start") > 0, F.col("conversions_12m") / F.col("_pool_at_start")).otherwise(0.0))
        .withColumn("organic_new_12m", F.least(organic, F.col("eligible_not_enrolled").cast("double")))
        .withColumn("campaign_new_12m",
                    F.lit(campaign_capture) * F.greatest(F.col("modelled_potential") - F.col("organic_new_12m"), F.lit(0.0)))
        .withColumn("reachable_new_12m", F.col("organic_new_12m") + F.col("campaign_new_12m"))
        .withColumn("reachable_rate_12m",
                    (F.col("enrolled_households") + F.col("reachable_new_12m")) / F.col("active_households"))
        .withColumn("reachable_lift_pp_12m", F.lit(100.0) * F.col("reachable_new_12m") / F.col("active_households"))
        .withColumn("horizon_months", F.lit(horizon_months))
        .withColumn("campaign_capture", F.lit(float(campaign_capture)))
        .withColumn("n", F.col("eligible_households").cast("long"))
        .join(F.broadcast(rules_df), "program", "left")
    )
    small = F.col("n") < F.lit(min_households)
    for c in VALUE_COLUMNS:
        out = out.withColumn(c, F.when(~small, F.col(c).cast("double")))
    return out.withColumn("is_suppressed", small).select(*SATURATION_COLUMNS)


# --- goals -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    program: str
    lift_pp: float


def parse_goal(text: str) -> Goal:
    """``autopay=+5`` (percentage points of enrollment_rate) -> Goal; ValueError when malformed."""
    program, sep, value = text.partition("=")
    program = program.strip().lower()
    if not sep or program not in PROGRAMS:
        raise ValueError(f"goal '{text}': expected PROGRAM=+PP with PROGRAM one of {', '.join(PROGRAMS)}")
    try:
        lift = float(value.strip().rstrip("%").replace("pp", "").strip())
    except ValueError:
        raise ValueError(f"goal '{text}': '{value}' is not a number of percentage points (e.g. +5)") from None
    return Goal(program, lift)


def achievable(row: dict, lift_pp: float) -> bool | None:
    """Is a +``lift_pp`` percentage-point lift of the program's enrollment rate reachable in the
    horizon? ``row`` is a gold/program_saturation row; None when the row is suppressed."""
    reachable = row.get("reachable_lift_pp_12m")
    if reachable is None:
        return None
    return lift_pp <= float(reachable) + 1e-9


