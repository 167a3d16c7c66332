"""Segmentation: foundational personas and objective-driven segments -> gold/segments.

Personas. Spark ML KMeans (k = ``insights.personas``, fixed seed) on the
behavioural and demographic features of the scoring snapshot
(``SEGMENT_FEATURES``: usage, bill, burden, income, tenure, contacts,
engagement, arrears, solar export, programs, bill shock, home and tenure),
imputed with the mean and standardised. Each cluster is named from its
profile: the two features whose standardised cluster mean deviates most from
0 (|z| >= ``MIN_NAMING_Z``) become adjectives ("High-burden, lower-income"),
and the noun says who they mostly are (businesses, owners or renters). Ids
(``persona_01``...) follow cluster size, largest first. For a fixed seed the
input is hash-partitioned by household_id and sorted, so the same snapshot
gives the same clusters, ids and names.

Objective-driven segments. For one objective (a model score of
gold/household_scores: payment_risk, ev_adoption, csat; or a program of
contract.PROGRAMS, whose outcome is enrollment), a shallow
DecisionTreeRegressor (depth ``OBJECTIVE_DEPTH``, minInstancesPerNode =
``privacy.min_households``) on the raw features splits households into the
groups that differ most in the outcome; every leaf is a segment named from
its split rules ("energy burden > 6.2% & income <= $50k"). Features that
restate a program's own enrollment (``LEAKY_FEATURES``) are left out of that
program's tree. Ids (``<objective>_01``...) follow the leaf's outcome mean,
highest first.

Profiles (gold/segment_profiles): n and the mean of every feature and of the
outcome per segment; cells of segments with n < ``privacy.min_households``
are null. Persona KPIs: the cx_kpis facts aggregated by persona
(``segment_type = 'persona'``, ``segment_value`` = persona name) with the
same n and suppression as every other cx_kpis cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import Imputer, StandardScaler, VectorAssembler
from pyspark.ml.regression import DecisionTreeRegressor
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.config import DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE
from ucx_spark.contract import PROGRAMS
from ucx_spark.gold.cx_kpis import OUTPUT_COLUMNS, UNKNOWN, aggregate_facts
from ucx_spark.gold.privacy import suppress_cells
from ucx_spark.models.score import MODEL_NAMES

PERSONA = "persona"
OBJECTIVE_PREFIX = "objective:"
OBJECTIVE_DEPTH = 3
MIN_NAMING_Z = 0.25
OBJECTIVE_ALIASES = {"ebilling": "paperless", "e-billing": "paperless", "e_billing": "paperless"}


@dataclass(frozen=True)
class SegmentFeature:
    """A feature of the segmentations: how to compute it and how to say it in words."""

    name: str
    high: str          # adjective when the cluster is above the mean (persona names)
    low: str           # ... below the mean
    label: str         # noun phrase in split rules (objective names)
    kind: str          # num, usd, pct, bool, days


SEGMENT_FEATURES: tuple[SegmentFeature, ...] = (
    SegmentFeature("kwh_per_day_90d", "high-usage", "low-usage", "usage kWh/day", "num"),
    SegmentFeature("annual_bill_usd", "high-bill", "low-bill", "annual bill", "usd"),
    SegmentFeature("energy_burden", "high-burden", "low-burden", "energy burden", "pct"),
    SegmentFeature("income_midpoint_usd", "affluent", "lower-income", "income", "usd"),
    SegmentFeature("account_tenure_days", "long-tenure", "newer", "tenure", "days"),
    SegmentFeature("contacts_365d", "frequent-contact", "low-contact", "contacts/yr", "num"),
    SegmentFeature("email_open_rate_365d", "engaged", "unengaged", "email open rate", "pct"),
    SegmentFeature("arrears_usd", "in-arrears", "current-paying", "arrears", "usd"),
    SegmentFeature("export_kwh_365d", "solar", "non-solar", "solar export kWh", "num"),
    SegmentFeature("programs_enrolled", "program-enrolled", "unenrolled", "programs", "num"),
    SegmentFeature("bill_shock_ratio", "bill-shocked", "steady-bill", "bill shock ratio", "num"),
    SegmentFeature("is_single_family", "single-family", "multi-family", "single-family", "bool"),
    SegmentFeature("is_owner", "owner", "renter", "owner", "bool"),
    SegmentFeature("is_commercial", "commercial", "residential", "commercial", "bool"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in SEGMENT_FEATURES)
_BY_NAME = {f.name: f for f in SEGMENT_FEATURES}
NOUN_FEATURES = ("is_owner", "is_commercial")  # say who, not how: never adjectives

# Features that restate enrollment in the program (or its direct effect): left out of its tree.
LEAKY_FEATURES: dict[str, tuple[str, ...]] = {
    "autopay": ("payment_share_autopay_365d",),
    "liheap": ("payment_share_assistance_365d",),
    "solar": ("export_kwh_365d",),
    "ev_rate": ("night_minus_evening_kw_90d",),
    "ev_charger_rebate": ("night_minus_evening_kw_90d",),
}

SEGMENTS_COLUMNS = ("household_id", "as_of_date", "segmentation", "segment_id", "segment_name")
PROFILE_COLUMNS = (
    "segmentation", "segment_id", "segment_name", "definition", "as_of_date", "n", "outcome_mean",
    *(f"mean_{f}" for f in FEATURE_NAMES), "is_suppressed",
)


# --- features ----------------------------------------------------------------------------------

def _enrolled_count(columns: list[str], *, exclude: str | None = None) -> Column:
    flags = [F.coalesce(F.col(f"is_enrolled_{p}").cast("int"), F.lit(0))
             for p in PROGRAMS if f"is_enrolled_{p}" in columns and p != exclude]
    total = F.lit(0)
    for flag in flags:
        total = total + flag
    return total.cast("double")


def with_segment_features(df: DataFrame) -> DataFrame:
    """Adds every ``SEGMENT_FEATURES`` column as double (null when unknown; missing inputs are null).

    Needs the gold/household_features columns (those absent give null features):
    customer_class, tenure, home_type, is_enrolled_<program>, and the numeric features named above.
    """
    derived: dict[str, Column] = {
        "is_commercial": F.when(F.col("customer_class").isNotNull(), (F.col("customer_class") == "COM").cast("double"))
        if "customer_class" in df.columns else F.lit(None),
        "is_owner": F.when(F.col("tenure").isNotNull(), (F.col("tenure") == "owner").cast("double"))
        if "tenure" in df.columns else F.lit(None),
        "is_single_family": F.when(F.col("home_type").isNotNull(), (F.col("home_type") == "single_family").cast("double"))
        if "home_type" in df.columns else F.lit(None),
        "programs_enrolled": _enrolled_count(df.columns),
    }
    out = df
    for name in FEATURE_NAMES:
        if name in derived:
            out = out.withColumn(name, derived[name].cast("double"))
        elif name in df.columns:
            out = out.withColumn(name, F.col(name).cast("double"))
        else:
            out = out.withColumn(name, F.lit(None).cast("double"))
    return out


def _ordered(df: DataFrame, *, partitions: int) -> DataFrame:
    """The same rows in the same partitions and order every run (ML fits sample by partition)."""
    return df.repartition(partitions, "household_id").sortWithinPartitions("household_id")


def _usable(df: DataFrame, features: tuple[str, ...]) -> list[str]:
    """Features with at least one value (Imputer fails on an all-null column). One small job."""
    row = df.agg(*[F.count(F.col(f)).alias(f) for f in features]).first()
    return [f for f in features if row[f] > 0]


# --- personas ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonaModel:
    """A fitted persona clustering: the feature pipeline + KMeans and the name of each cluster."""

    model: PipelineModel
    features: tuple[str, ...]
    names: dict[int, tuple[str, str, str]]  # cluster -> (segment_id, segment_name, definition)


def fit_personas(snapshot_df: DataFrame, *, k: int, seed: int, partitions: int = 8) -> PersonaModel:
    """KMeans personas on the snapshot (one row per household, household_features columns).

    Collects k rows of cluster means to name the clusters (a bounded hand-off).
    """
    df = _ordered(snapshot_df.transform(with_segment_features), partitions=partitions)
    features = tuple(_usable(df, FEATURE_NAMES))
    imputed = [f"_imp_{f}" for f in features]
    pipeline = Pipeline(stages=[
        Imputer(inputCols=list(features), outputCols=imputed, strategy="mean"),
        VectorAssembler(inputCols=imputed, outputCol="_raw_vec"),
        StandardScaler(inputCol="_raw_vec", outputCol="_z", withMean=True, withStd=True),
        KMeans(featuresCol="_z", predictionCol="_cluster", k=k, seed=seed, maxIter=30),
    ])
    df = df.cache()
    try:
        model = pipeline.fit(df)
        scored = model.transform(df)
        from pyspark.ml.functions import vector_to_array

        z = vector_to_array(F.col("_z"))
        profile = (
            scored.groupBy("_cluster")
            .agg(
                F.count("*").alias("n"),
                *[F.avg(z[i]).alias(f) for i, f in enumerate(features)],
                *[F.avg(f).alias(f"_share_{f}") for f in NOUN_FEATURES],
            )
            .collect()
        )
    finally:
        df.unpersist()
    return PersonaModel(model, features, name_clusters([r.asDict() for r in profile], features=features))


def _noun(profile: dict) -> str:
    """Who the cluster mostly is, from the raw shares (``_share_<feature>``)."""
    if (profile.get("_share_is_commercial") or 0.0) >= 0.5:
        return "businesses"
    owners = profile.get("_share_is_owner")
    if owners is None:
        return "households"
    return "owners" if owners >= 0.5 else "renters"


def name_clusters(profiles: list[dict], *, features: tuple[str, ...]) -> dict[int, tuple[str, str, str]]:
    """(segment_id, segment_name, definition) per cluster from its standardised feature means.

    ``profiles``: one dict per cluster with ``_cluster``, ``n`` and the mean z of each feature.
    Ids follow size (largest first, then cluster number); names are made distinct by
    adding the next most deviating feature, then a number.
    """
    ordered = sorted(profiles, key=lambda p: (-int(p["n"]), int(p["_cluster"])))
    adjective_features = [f for f in features if f not in NOUN_FEATURES]

    def deviations(p: dict) -> list[tuple[str, float]]:
        devs = [(f, float(p.get(f) or 0.0)) for f in adjective_features]
        return sorted(devs, key=lambda d: (-abs(d[1]), d[0]))

    def words(p: dict, count: int) -> tuple[str, str]:
        devs = [d for d in deviations(p) if abs(d[1]) >= MIN_NAMING_Z][:count]
        adjectives = [(_BY_NAME[f].high if zv > 0 else _BY_NAME[f].low) for f, zv in devs]
        noun = _noun(p)
        name = (", ".join(adjectives) + " " + noun) if adjectives else f"typical {noun}"
        definition = "; ".join(f"{f} z={zv:+.2f}" for f, zv in deviations(p)[:4])
        return name[0].upper() + name[1:], definition

    names: dict[int, tuple[str, str, str]] = {}
    taken: set[str] = set()
    for i, p in enumerate(ordered, start=1):
        name, definition = words(p, 2)
        extra = 3
        while name in taken and extra <= len(adjective_features):
            name, definition = words(p, extra)
            extra += 1
        base, j = name, 2
        while name in taken:
            name, j = f"{base} ({j})", j + 1
        taken.add(name)
        names[int(p["_cluster"])] = (f"persona_{i:02d}", name, definition)
    return names


def assign_personas(snapshot_df: DataFrame, model: PersonaModel) -> DataFrame:
    """gold/segments rows of the personas: household_id, as_of_date, segmentation, segment_id, segment_name."""
    spark = snapshot_df.sparkSession
    names_df = spark.createDataFrame(
        [(c, sid, name) for c, (sid, name, _) in sorted(model.names.items())],
        "_cluster int, segment_id string, segment_name string",
    )
    scored = model.model.transform(snapshot_df.transform(with_segment_features))
    return (
        scored.join(F.broadcast(names_df), "_cluster")
        .select("household_id", "as_of_date", F.lit(PERSONA).alias("segmentation"), "segment_id", "segment_name")
    )


# --- objective-driven segments -----------------------------------------------------------------

def resolve_objective(name: str) -> str:
    """The canonical objective name, or ValueError listing what is allowed."""
    key = OBJECTIVE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key in MODEL_NAMES or key in PROGRAMS:
        return key
    allowed = ", ".join([*MODEL_NAMES, *PROGRAMS, *OBJECTIVE_ALIASES])
    raise ValueError(f"unknown objective '{name}' (allowed: {allowed})")


def objective_features(objective: str) -> tuple[str, ...]:
    """Tree features for ``objective``: program objectives drop their leaky features and the program count."""
    if objective in PROGRAMS:
        drop = {"programs_enrolled", *LEAKY_FEATURES.get(objective, ())}
        return tuple(f for f in FEATURE_NAMES if f not in drop)
    return FEATURE_NAMES


def with_objective_outcome(snapshot_df: DataFrame, objective: str, *, scores_df: DataFrame | None) -> DataFrame:
    """Adds ``outcome`` (double): the champion's score for a model objective (households
    without a score drop out), enrollment (0/1) in the program for a program objective."""
    if objective in PROGRAMS:
        return snapshot_df.withColumn("outcome", F.coalesce(F.col(f"is_enrolled_{objective}").cast("double"), F.lit(0.0)))
    if scores_df is None:
        raise ValueError(f"objective '{objective}' needs gold/household_scores: run `ucx score` first")
    scores = (
        # households outside the model's population have a null score (not_scored_reason): no outcome
        scores_df.filter((F.col("model_name") == objective) & F.col("score").isNotNull())
        .select("household_id", "as_of_date", F.col("score").cast("double").alias("outcome"))
    )
    return snapshot_df.join(scores, ["household_id", "as_of_date"])


@dataclass(frozen=True)
class TreeLeaf:
    """A leaf of the objective tree: its conditions (feature, is_greater, threshold) and prediction."""

    conditions: tuple[tuple[str, bool, float], ...]
    prediction: float


@dataclass(frozen=True)
class ObjectiveModel:
    objective: str
    surrogates: dict[str, float]        # imputation value of each feature
    leaves: tuple[tuple[str, str, TreeLeaf], ...]  # (segment_id, segment_name, leaf), best outcome first


def _walk(node, features: tuple[str, ...], path: tuple[tuple[str, bool, float], ...]) -> list[TreeLeaf]:  # noqa: ANN001 - a py4j node
    if node.getClass().getSimpleName() == "LeafNode":
        return [TreeLeaf(path, float(node.prediction()))]
    split = node.split()
    feature = features[int(split.featureIndex())]
    threshold = float(split.threshold())
    return (_walk(node.leftChild(), features, (*path, (feature, False, threshold)))
            + _walk(node.rightChild(), features, (*path, (feature, True, threshold))))


def _fmt(feature: str, value: float) -> str:
    kind = _BY_NAME[feature].kind if feature in _BY_NAME else "num"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "usd":
        return f"${value / 1000:,.1f}k" if abs(value) >= 1000 else f"${value:,.0f}"
    if kind == "days":
        return f"{value / 365.25:.1f}y"
    return f"{value:.3g}"


def rule_name(conditions: tuple[tuple[str, bool, float], ...]) -> str:
    """Words for a leaf's path: one phrase per feature (ranges merged), in order of first split."""
    if not conditions:
        return "all households"
    order: list[str] = []
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for feature, greater, threshold in conditions:
        if feature not in order:
            order.append(feature)
        if greater:
            lo[feature] = max(lo.get(feature, threshold), threshold)
        else:
            hi[feature] = min(hi.get(feature, threshold), threshold)
    parts = []
    for f in order:
        spec = _BY_NAME.get(f)
        if spec is not None and spec.kind == "bool":
            parts.append(spec.high if f in lo else spec.low)
            continue
        label = spec.label if spec else f
        if f in lo and f in hi:
            parts.append(f"{label} {_fmt(f, lo[f])}-{_fmt(f, hi[f])}")
        elif f in lo:
            parts.append(f"{label} > {_fmt(f, lo[f])}")
        else:
            parts.append(f"{label} <= {_fmt(f, hi[f])}")
    return " & ".join(parts)


def fit_objective_segments(
    snapshot_df: DataFrame,
    objective: str,
    *,
    scores_df: DataFrame | None,
    min_households: int,
    seed: int,
    depth: int = OBJECTIVE_DEPTH,
    partitions: int = 8,
) -> ObjectiveModel:
    """A shallow regression tree of the objective's outcome on the segment features.

    minInstancesPerNode = ``min_households``, so no leaf is smaller than the
    privacy threshold. The tree (at most 2**depth leaves) and the imputation
    means are read back to the driver.
    """
    df = _ordered(
        with_objective_outcome(snapshot_df.transform(with_segment_features), objective, scores_df=scores_df),
        partitions=partitions,
    )
    features = tuple(_usable(df, objective_features(objective)))
    imputed = [f"_imp_{f}" for f in features]
    pipeline = Pipeline(stages=[
        Imputer(inputCols=list(features), outputCols=imputed, strategy="mean"),
        VectorAssembler(inputCols=imputed, outputCol="_x"),
        DecisionTreeRegressor(featuresCol="_x", labelCol="outcome", maxDepth=depth,
                              minInstancesPerNode=max(1, min_households), seed=seed),
    ])
    model = pipeline.fit(df)
    imputer_model, tree = model.stages[0], model.stages[-1]
    surrogate_row = imputer_model.surrogateDF.first()
    surrogates = {f: float(surrogate_row[f]) for f in features}
    leaves = _walk(tree._java_obj.rootNode(), features, ())
    ranked = sorted(enumerate(leaves), key=lambda t: (-t[1].prediction, t[0]))
    named = tuple((f"{objective}_{i:02d}", rule_name(leaf.conditions), leaf)
                  for i, (_, leaf) in enumerate(ranked, start=1))
    return ObjectiveModel(objective, surrogates, named)


def _leaf_condition(leaf: TreeLeaf, surrogates: dict[str, float]) -> Column:
    cond = F.lit(True)
    for feature, greater, threshold in leaf.conditions:
        value = F.coalesce(F.col(feature), F.lit(surrogates[feature]))
        cond = cond & ((value > threshold) if greater else (value <= threshold))
    return cond


def assign_objective_segments(snapshot_df: DataFrame, model: ObjectiveModel) -> DataFrame:
    """gold/segments rows of the objective: each household in the leaf whose rules it meets (as Spark does:
    left when feature <= threshold, nulls imputed with the training mean)."""
    df = snapshot_df.transform(with_segment_features)
    seg_id: Column = F.lit(None).cast("string")
    seg_name: Column = F.lit(None).cast("string")
    for sid, name, leaf in reversed(model.leaves):
        cond = _leaf_condition(leaf, model.surrogates)
        seg_id = F.when(cond, F.lit(sid)).otherwise(seg_id)
        seg_name = F.when(cond, F.lit(name)).otherwise(seg_name)
    return df.select(
        "household_id", "as_of_date", F.lit(OBJECTIVE_PREFIX + model.objective).alias("segmentation"),
        seg_id.alias("segment_id"), seg_name.alias("segment_name"),
    )


# --- profiles and KPIs -------------------------------------------------------------------------

def segment_profiles(
    segments_df: DataFrame,
    snapshot_df: DataFrame,
    *,
    min_households: int,
    outcome_df: DataFrame | None = None,
    definitions: dict[tuple[str, str], str] | None = None,
) -> DataFrame:
    """gold/segment_profiles: per (segmentation, segment): n and feature/outcome means, null below
    ``min_households`` (``is_suppressed``).

    ``outcome_df`` (household_id, segmentation, outcome) gives the outcome of objective segmentations.
    """
    feats = snapshot_df.transform(with_segment_features).select("household_id", *FEATURE_NAMES)
    df = segments_df.join(feats, "household_id", "left")
    if outcome_df is not None:
        df = df.join(outcome_df.select("household_id", "segmentation", "outcome"), ["household_id", "segmentation"], "left")
    else:
        df = df.withColumn("outcome", F.lit(None).cast("double"))
    value_cols = ["outcome_mean", *(f"mean_{f}" for f in FEATURE_NAMES)]
    spark = segments_df.sparkSession
    defs = sorted((definitions or {}).items())
    defs_df = spark.createDataFrame([(s, i, d) for (s, i), d in defs] or [], "segmentation string, segment_id string, definition string")
    profiles = (
        df.groupBy("segmentation", "segment_id", "segment_name")
        .agg(
            F.max("as_of_date").alias("as_of_date"),
            F.countDistinct("household_id").alias("n"),
            F.avg("outcome").alias("outcome_mean"),
            *[F.avg(f).alias(f"mean_{f}") for f in FEATURE_NAMES],
        )
        .join(defs_df, ["segmentation", "segment_id"], "left")
    )
    small = F.col("n") < F.lit(min_households)
    for c in value_cols:
        profiles = profiles.withColumn(c, F.when(~small, F.col(c)))
    return profiles.withColumn("is_suppressed", small).select(*PROFILE_COLUMNS)


def persona_accounts(accounts_df: DataFrame, segments_df: DataFrame) -> DataFrame:
    """account_id, persona (the persona name of the account's household; ``unknown`` when it has none).

    ``accounts_df`` needs account_id, household_id; ``segments_df`` the persona rows of gold/segments.
    """
    names = segments_df.filter(F.col("segmentation") == PERSONA).select("household_id", F.col("segment_name").alias("persona"))
    return accounts_df.select("account_id", "household_id").join(names, "household_id", "left").select(
        "account_id", F.coalesce(F.col("persona"), F.lit(UNKNOWN)).alias(PERSONA)
    )


def persona_kpis(
    facts_df: DataFrame,
    persona_accounts_df: DataFrame,
    *,
    months_df: DataFrame,
    kpis_df: DataFrame,
    min_households: int,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
) -> DataFrame:
    """gold/cx_kpis rows with segment_type ``persona``: every month x persona x KPI, with n and suppression.

    ``facts_df``: cx_kpis facts (``ucx_spark.gold.cx_kpis.*_facts``); ``persona_accounts_df``:
    account_id, persona. The persona of a household is its current one, applied to every month.
    """
    cells_df = aggregate_facts(facts_df, persona_accounts_df, segment_types=(PERSONA,), include_all=False)
    values_df = persona_accounts_df.select(F.lit(PERSONA).alias("segment_type"), F.col(PERSONA).alias("segment_value")).distinct()
    grid_df = months_df.select("month").crossJoin(values_df).crossJoin(F.broadcast(kpis_df.select("kpi")))
    return (
        grid_df.join(cells_df, ["month", "segment_type", "segment_value", "kpi"], "left")
        .withColumn("n", F.coalesce(F.col("n"), F.lit(0)).cast("long"))
        .transform(suppress_cells, min_households=min_households,
                   max_household_energy_share=max_household_energy_share, max_share_col="max_household_share")
        .select(*OUTPUT_COLUMNS)
    )
