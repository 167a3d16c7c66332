"""gold/cx_kpis: monthly CX KPIs by segment (contract section 4, KPI table).

Columns: month (first day, DateType), segment_type, segment_value, kpi,
value (double, null when undefined or suppressed), n (long).

How it is computed. Every KPI is a ratio of sums over "fact" rows:
``value = sum(num) / sum(den)`` (a share has num 0/1 and den 1, a mean has
num = the value and den 1, saidi has outage minutes as num and one den row
per premise, collection_rate has payments as num and bills as den).
A fact row also carries the ``entity`` that ``n`` counts (the account, or the
premise for saidi/caidi/etr_accuracy), whether the row enters the
denominator (``in_den``), and the account whose attributes place it in
segments. Facts are exploded over their segments and aggregated twice: per
entity (so the 15% dominance rule can see households) and per cell. A grid of
every month x segment x KPI makes months without data present (value null, n 0).

Decisions where the contract leaves room (also in the report):
- Segment of an event: the attributes of the event's own account (events of
  a previous tenant stay with the previous tenant's segment). Segment
  attributes are the account's customer_class, rate_plan, zip, and the
  income_band of the third-party record matched to its premise ('unknown'
  when unmatched or the band is null).
- Outage KPIs are per premise. A premise-month is placed in segments by the
  account active in M with the latest start_date, then the largest
  account_id (the move-day rule applied to the month); a premise with no
  active account in M falls back to its latest account started by the end of
  M, else its earliest. saidi counts only premises with an active account in M
  (numerator and denominator); caidi and etr_accuracy count every premise
  outage started in M.
- n of ratio KPIs whose numerator and denominator are different records
  (email_open_rate, collection_rate, saidi): the entities of the denominator
  records (delivered emails, bills due in M, premises active in M).
- email_open_rate is opened events / delivered events as written; it can
  exceed 1 when opens outnumber deliveries in a month (e.g. an open in the
  month after the delivery). It is not clipped.
- collection_rate: payments are not matched to bills; amounts are summed
  per month as written.
- No contract KPI sums energy, so the 15% dominance rule applies only to the
  optional ``kwh_per_household`` KPI (``daily_usage_df`` given).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.config import DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE, DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.contract import PROGRAMS
from ucx_spark.gold.accounts import premise_household_records
from ucx_spark.gold.privacy import household_max_share, suppress_cells
from ucx_spark.local_time import is_active_between, is_active_on, local_month, minutes_between, month_start

ENROLLMENT_PREFIX = "enrollment_rate:"
CONTRACT_KPIS: tuple[str, ...] = (
    "csat_top2box", "nps", "ces", "fcr", "aht_seconds", "saidi_minutes", "caidi_minutes",
    "etr_accuracy", *(ENROLLMENT_PREFIX + p for p in PROGRAMS), "email_open_rate", "collection_rate",
)
ENERGY_KPI = "kwh_per_household"
SEGMENT_TYPES: tuple[str, ...] = ("customer_class", "rate_plan", "zip", "income_band")
ALL = "all"
UNKNOWN = "unknown"
ETR_TOLERANCE_MINUTES = 30.0

FACT_COLUMNS = ("month", "kpi", "entity", "account_id", "num", "den", "in_den", "energy")
OUTPUT_COLUMNS = ("month", "segment_type", "segment_value", "kpi", "value", "n")


def _fact(
    df: DataFrame,
    *,
    month: Column,
    kpi: str | Column,
    entity: Column,
    num: Column,
    den: Column,
    in_den: Column,
    energy: Column | None = None,
) -> DataFrame:
    """Project ``df`` (which has account_id) onto ``FACT_COLUMNS``."""
    return df.select(
        month.alias("month"),
        (F.lit(kpi) if isinstance(kpi, str) else kpi).alias("kpi"),
        entity.cast("string").alias("entity"),
        F.col("account_id"),
        num.cast("double").alias("num"),
        den.cast("double").alias("den"),
        in_den.alias("in_den"),
        (energy if energy is not None else F.lit(None)).cast("double").alias("energy"),
    )


def _share(cond: Column) -> tuple[Column, Column]:
    return F.when(cond, 1.0).otherwise(0.0), F.lit(1.0)


# --- calendar --------------------------------------------------------------------------------

def kpi_months(ami_df: DataFrame, *, time_zone: str) -> DataFrame:
    """One row (``month``) per local month from the earliest to the latest AMI interval.

    Needs interval_start (silver/ami), or local_date (silver/ami_daily: the local
    days of the same intervals). Empty when ``ami_df`` is empty.
    """
    if "interval_start" not in ami_df.columns:
        span = ami_df.agg(F.min("local_date").alias("lo"), F.max("local_date").alias("hi"))
        lo, hi = month_start(F.col("lo")), month_start(F.col("hi"))
        return span.filter(F.col("lo").isNotNull()).select(
            F.explode(F.sequence(lo, hi, F.expr("interval 1 month"))).alias("month")
        )
    span = ami_df.agg(F.min("interval_start").alias("lo"), F.max("interval_start").alias("hi"))
    lo = local_month(F.col("lo"), time_zone=time_zone)
    hi = local_month(F.col("hi"), time_zone=time_zone)
    return span.filter(F.col("lo").isNotNull()).select(
        F.explode(F.sequence(lo, hi, F.expr("interval 1 month"))).alias("month")
    )


def account_months(accounts_df: DataFrame, months_df: DataFrame) -> DataFrame:
    """Every (account, month of ``months_df``) in which the account is active on some day.

    Adds ``month`` and ``month_end`` (last day) to the columns of ``accounts_df``
    (account_id, start_date, end_date, ...). Built by exploding each account's
    own month range, not by a cross join of accounts and months.
    """
    span = months_df.agg(F.min("month").alias("_lo"), F.max("month").alias("_hi"))
    first = F.greatest(F.trunc("start_date", "month"), F.col("_lo"))
    last = F.least(F.trunc(F.coalesce("end_date", F.last_day("_hi")), "month"), F.col("_hi"))
    months = F.when(first <= last, F.sequence(first, last, F.expr("interval 1 month")))
    return (
        accounts_df.crossJoin(F.broadcast(span))
        .withColumn("month", F.explode(months))
        .withColumn("month_end", F.last_day("month"))
        .drop("_lo", "_hi")
    )


# --- segments --------------------------------------------------------------------------------

def account_segments(
    accounts_df: DataFrame, household_matches_df: DataFrame, households_df: DataFrame
) -> DataFrame:
    """account_id, premise_id, start_date, end_date, household_id + ``SEGMENT_TYPES`` (never null)."""
    records = premise_household_records(household_matches_df, households_df).select("premise_id", "income_band")
    return accounts_df.select(
        "account_id", "premise_id", "start_date", "end_date", "household_id",
        "customer_class", "rate_plan", "zip",
    ).join(records, "premise_id", "left").select(
        "account_id", "premise_id", "start_date", "end_date", "household_id",
        *[F.coalesce(F.col(s).cast("string"), F.lit(UNKNOWN)).alias(s) for s in SEGMENT_TYPES],
    )


def _segments_array(segment_types: tuple[str, ...] = SEGMENT_TYPES, *, include_all: bool = True) -> Column:
    pairs = [F.struct(F.lit(ALL).alias("segment_type"), F.lit(ALL).alias("segment_value"))] if include_all else []
    pairs += [F.struct(F.lit(s).alias("segment_type"), F.col(s).alias("segment_value")) for s in segment_types]
    return F.array(*pairs)


def segment_values(segments_df: DataFrame) -> DataFrame:
    """Every (segment_type, segment_value) to publish: all/all and each value any account has."""
    return (
        segments_df.select(F.explode(_segments_array()).alias("s"))
        .select("s.segment_type", "s.segment_value")
        .distinct()
    )


# --- facts per KPI family ------------------------------------------------------------------

def survey_facts(surveys_df: DataFrame, *, time_zone: str) -> DataFrame:
    """csat_top2box, nps, ces. Needs account_id, responded_at, csat, nps, ces."""
    month = local_month(F.col("responded_at"), time_zone=time_zone)
    account = F.col("account_id")
    top2_num, top2_den = _share(F.col("csat") >= 4)
    nps_score = F.when(F.col("nps") >= 9, 100.0).when(F.col("nps") <= 6, -100.0).otherwise(0.0)
    return (
        _fact(surveys_df.filter(F.col("csat").isNotNull()), month=month, kpi="csat_top2box",
              entity=account, num=top2_num, den=top2_den, in_den=F.lit(True))
        .unionByName(_fact(surveys_df.filter(F.col("nps").isNotNull()), month=month, kpi="nps",
                           entity=account, num=nps_score, den=F.lit(1.0), in_den=F.lit(True)))
        .unionByName(_fact(surveys_df.filter(F.col("ces").isNotNull()), month=month, kpi="ces",
                           entity=account, num=F.col("ces"), den=F.lit(1.0), in_den=F.lit(True)))
    )


def contact_facts(contacts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """fcr, aht_seconds. Needs account_id, started_at, channel, handle_seconds, first_contact_resolution."""
    month = local_month(F.col("started_at"), time_zone=time_zone)
    account = F.col("account_id")
    fcr_num, fcr_den = _share(F.col("first_contact_resolution"))
    return _fact(
        contacts_df.filter(F.col("first_contact_resolution").isNotNull()), month=month, kpi="fcr",
        entity=account, num=fcr_num, den=fcr_den, in_den=F.lit(True),
    ).unionByName(
        _fact(
            contacts_df.filter((F.col("channel") == "phone") & F.col("handle_seconds").isNotNull()),
            month=month, kpi="aht_seconds", entity=account, num=F.col("handle_seconds"),
            den=F.lit(1.0), in_den=F.lit(True),
        )
    )


def premise_months(segments_df: DataFrame, months_df: DataFrame, outage_premise_months_df: DataFrame) -> DataFrame:
    """premise_id, month, account_id (whose segments the premise takes), has_active_account.

    Rows: every premise with an active account in a month of ``months_df``, and
    every (premise_id, month) of ``outage_premise_months_df``. The account is
    the one active in M with the latest start_date then largest account_id;
    without one, the latest account started by the end of M, else the earliest.
    """
    active_df = account_months(segments_df.select("premise_id", "account_id", "start_date", "end_date"), months_df)
    keys_df = active_df.select("premise_id", "month").unionByName(
        outage_premise_months_df.select("premise_id", "month")
    ).distinct()
    acc = segments_df.select("premise_id", "account_id", "start_date", "end_date")
    month_end = F.last_day("month")
    is_active = is_active_between(F.col("month"), month_end, start_date=F.col("start_date"), end_date=F.col("end_date"))
    started = F.col("start_date") <= month_end
    order = Window.partitionBy("premise_id", "month").orderBy(
        is_active.desc(),
        started.desc(),
        F.when(started, F.col("start_date")).desc_nulls_last(),
        F.col("start_date").asc(),
        F.col("account_id").desc(),
    )
    return (
        keys_df.join(acc, "premise_id")
        .withColumn("has_active_account", is_active)
        .withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") == 1)
        .select("premise_id", "month", "account_id", "has_active_account")
    )


def outage_facts(outages_df: DataFrame, segments_df: DataFrame, months_df: DataFrame, *, time_zone: str) -> DataFrame:
    """saidi_minutes, caidi_minutes, etr_accuracy (entity = premise).

    Needs outages: premise_id, started_at, restored_at, first_etr.
    """
    outages = outages_df.select(
        "premise_id",
        local_month(F.col("started_at"), time_zone=time_zone).alias("month"),
        minutes_between(F.col("started_at"), F.col("restored_at")).alias("minutes"),
        F.abs(minutes_between(F.col("first_etr"), F.col("restored_at"))).alias("etr_error_minutes"),
    )
    pm_df = premise_months(segments_df, months_df, outages)
    outages = outages.join(pm_df, ["premise_id", "month"])
    premise = F.col("premise_id")
    restored = outages.filter(F.col("minutes").isNotNull())
    saidi_den = _fact(pm_df.filter("has_active_account"), month=F.col("month"), kpi="saidi_minutes",
                      entity=premise, num=F.lit(0.0), den=F.lit(1.0), in_den=F.lit(True))
    saidi_num = _fact(restored.filter("has_active_account"), month=F.col("month"), kpi="saidi_minutes",
                      entity=premise, num=F.col("minutes"), den=F.lit(0.0), in_den=F.lit(False))
    caidi = _fact(restored, month=F.col("month"), kpi="caidi_minutes",
                  entity=premise, num=F.col("minutes"), den=F.lit(1.0), in_den=F.lit(True))
    etr_num, etr_den = _share(F.col("etr_error_minutes") <= ETR_TOLERANCE_MINUTES)
    etr = _fact(outages.filter(F.col("etr_error_minutes").isNotNull()), month=F.col("month"),
                kpi="etr_accuracy", entity=premise, num=etr_num, den=etr_den, in_den=F.lit(True))
    return saidi_den.unionByName(saidi_num).unionByName(caidi).unionByName(etr)


def enrollment_facts(segments_df: DataFrame, programs_df: DataFrame, months_df: DataFrame) -> DataFrame:
    """enrollment_rate:<program> for every program of contract.PROGRAMS.

    Denominator: accounts active on the last day D of M; numerator: those with
    an enrollment row of the program with enrolled_on <= D and (ended_on null or >= D).
    """
    spark = months_df.sparkSession
    programs_list_df = spark.createDataFrame([(p,) for p in PROGRAMS], "program string")
    active_df = (
        account_months(segments_df.select("account_id", "start_date", "end_date"), months_df)
        .filter(is_active_on(F.col("month_end"), start_date=F.col("start_date"), end_date=F.col("end_date")))
        .select("account_id", "month", "month_end")
        .crossJoin(F.broadcast(programs_list_df))
    )
    enrolled = programs_df.select(
        F.col("account_id").alias("_p_account_id"), F.col("program").alias("_p_program"), "enrolled_on", "ended_on"
    )
    cond = (
        (F.col("account_id") == F.col("_p_account_id"))
        & (F.col("program") == F.col("_p_program"))
        & is_active_on(F.col("month_end"), start_date=F.col("enrolled_on"), end_date=F.col("ended_on"))
    )
    per_account = (
        active_df.join(enrolled, cond, "left")
        .groupBy("account_id", "month", "program")
        .agg(F.max(F.col("_p_account_id").isNotNull().cast("double")).alias("is_enrolled"))
    )
    return _fact(per_account, month=F.col("month"), kpi=F.concat(F.lit(ENROLLMENT_PREFIX), F.col("program")),
                 entity=F.col("account_id"), num=F.col("is_enrolled"), den=F.lit(1.0), in_den=F.lit(True))


def email_facts(marketing_df: DataFrame, *, time_zone: str) -> DataFrame:
    """email_open_rate: opened / delivered events of channel email. Needs account_id, channel, event_type, occurred_at."""
    email = marketing_df.filter((F.col("channel") == "email") & F.col("event_type").isin("opened", "delivered"))
    delivered = F.col("event_type") == "delivered"
    return _fact(
        email, month=local_month(F.col("occurred_at"), time_zone=time_zone), kpi="email_open_rate",
        entity=F.col("account_id"), num=F.when(delivered, 0.0).otherwise(1.0),
        den=F.when(delivered, 1.0).otherwise(0.0), in_den=delivered,
    )


def collection_facts(payments_df: DataFrame, bills_df: DataFrame, *, time_zone: str) -> DataFrame:
    """collection_rate: payments paid in M / amount_due of bills due in M (n: accounts with a bill due in M)."""
    paid = _fact(payments_df, month=local_month(F.col("paid_at"), time_zone=time_zone), kpi="collection_rate",
                 entity=F.col("account_id"), num=F.col("amount"), den=F.lit(0.0), in_den=F.lit(False))
    billed = _fact(bills_df, month=F.trunc("due_date", "month"), kpi="collection_rate",
                   entity=F.col("account_id"), num=F.lit(0.0), den=F.col("amount_due"), in_den=F.lit(True))
    return paid.unionByName(billed)


def energy_facts(daily_usage_df: DataFrame, segments_df: DataFrame) -> DataFrame:
    """kwh_per_household: kWh of M per household with usage in M (gold/meter_daily_usage rows with a household)."""
    per_household = (
        daily_usage_df.filter(F.col("household_id").isNotNull() & F.col("kwh").isNotNull())
        .groupBy("household_id", F.trunc("local_date", "month").alias("month"))
        .agg(F.sum("kwh").alias("kwh"))
        .join(segments_df.select("household_id", "account_id"), "household_id")
    )
    return _fact(per_household, month=F.col("month"), kpi=ENERGY_KPI, entity=F.col("account_id"),
                 num=F.col("kwh"), den=F.lit(1.0), in_den=F.lit(True), energy=F.col("kwh"))


# --- aggregation -----------------------------------------------------------------------------

def aggregate_facts(
    facts_df: DataFrame,
    segments_df: DataFrame,
    *,
    segment_types: tuple[str, ...] = SEGMENT_TYPES,
    include_all: bool = True,
) -> DataFrame:
    """Cells (month, segment_type, segment_value, kpi) with value, n and max_household_share.

    ``segments_df`` has account_id and one column per ``segment_types``; other
    segmentations (e.g. the personas of gold/segments) pass their own columns
    and ``include_all=False`` to get only their cells.
    """
    seg_cols = segments_df.select("account_id", *segment_types)
    per_entity = (
        facts_df.join(seg_cols, "account_id", "left")
        .select(
            *[c for c in FACT_COLUMNS if c != "account_id"],
            *[F.coalesce(F.col(s), F.lit(UNKNOWN)).alias(s) for s in segment_types],
        )
        .withColumn("s", F.explode(_segments_array(segment_types, include_all=include_all)))
        .groupBy("month", "s.segment_type", "s.segment_value", "kpi", "entity")
        .agg(
            F.sum("num").alias("num"),
            F.sum("den").alias("den"),
            F.max(F.col("in_den").cast("int")).alias("in_den"),
            F.sum("energy").alias("energy"),
        )
    )
    return (
        per_entity.groupBy("month", "segment_type", "segment_value", "kpi")
        .agg(
            F.sum("num").alias("num"),
            F.sum("den").alias("den"),
            F.count(F.when(F.col("in_den") == 1, 1)).alias("n"),
            F.max(F.abs("energy")).alias("_energy_max"),
            F.sum(F.abs("energy")).alias("_energy_total"),
        )
        .select(
            "month", "segment_type", "segment_value", "kpi",
            F.when(F.col("den") != 0, F.col("num") / F.col("den")).alias("value"),
            "n",
            household_max_share(F.col("_energy_max"), F.col("_energy_total")).alias("max_household_share"),
        )
    )


def cx_kpis(
    ami_df: DataFrame,
    accounts_df: DataFrame,
    *,
    surveys_df: DataFrame,
    contacts_df: DataFrame,
    outages_df: DataFrame,
    programs_df: DataFrame,
    marketing_df: DataFrame,
    payments_df: DataFrame,
    bills_df: DataFrame,
    household_matches_df: DataFrame,
    households_df: DataFrame,
    time_zone: str,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
    daily_usage_df: DataFrame | None = None,
) -> DataFrame:
    """gold/cx_kpis from silver tables (columns as in docs/layers.md).

    One row per month (of the AMI span) x segment (all/all and every value of
    ``SEGMENT_TYPES`` that an account has) x KPI (``CONTRACT_KPIS``, plus
    ``kwh_per_household`` when ``daily_usage_df`` is given). Months without
    data are present with value null and n 0. Values of cells with n below
    ``min_households``, or (energy KPIs) with one household holding more than
    ``max_household_energy_share`` of the energy, are suppressed.
    """
    months_df = kpi_months(ami_df, time_zone=time_zone)
    segments_df = account_segments(accounts_df, household_matches_df, households_df)
    facts_df = (
        survey_facts(surveys_df, time_zone=time_zone)
        .unionByName(contact_facts(contacts_df, time_zone=time_zone))
        .unionByName(outage_facts(outages_df, segments_df, months_df, time_zone=time_zone))
        .unionByName(enrollment_facts(segments_df, programs_df, months_df))
        .unionByName(email_facts(marketing_df, time_zone=time_zone))
        .unionByName(collection_facts(payments_df, bills_df, time_zone=time_zone))
    )
    kpis = list(CONTRACT_KPIS)
    if daily_usage_df is not None:
        facts_df = facts_df.unionByName(energy_facts(daily_usage_df, segments_df))
        kpis.append(ENERGY_KPI)
    cells_df = aggregate_facts(facts_df, segments_df)
    kpis_df = months_df.sparkSession.createDataFrame([(k,) for k in kpis], "kpi string")
    grid_df = months_df.crossJoin(segment_values(segments_df)).crossJoin(F.broadcast(kpis_df))
    return (
        grid_df.join(cells_df, ["month", "segment_type", "segment_value", "kpi"], "left")
        .withColumn("n", F.coalesce(F.col("n"), F.lit(0)).cast("long"))
        .transform(
            suppress_cells,
            min_households=min_households,
            max_household_energy_share=max_household_energy_share,
            max_share_col="max_household_share",
        )
        .select(*OUTPUT_COLUMNS)
    )
