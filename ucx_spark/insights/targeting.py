"""Campaign targeting, next best action and preferred channel -> gold/campaign_targets; the
collections worklist (``COLLECTIONS``: ``collections_rows``, held by ``moratoria``).

A campaign's objective is a program (``CAMPAIGN_PROGRAMS``). For every
household of the scoring snapshot and every program:

    expected_benefit = propensity (saturation.program_propensity) x value

where value is an annual amount in USD (``program_value``):

- autopay: avoided arrears, payment_risk x 30% (relative risk reduction)
  x exposure (two average monthly bills), + $2 payment processing saved;
- budget_billing: payment_risk x 20% x exposure;
- liheap: ``insights.liheap_annual_benefit_usd`` of assistance to the
  household + payment_risk x 50% x exposure;
- paperless: $7.20 of print and postage (12 bills x $0.60);
- ev_rate: $90 of off-peak EV load margin (3,000 kWh x $0.03);
  ev_charger_rebate: $60 (the same load, less the rebate);
- ee_rebate: 5% of the annual bill saved by the customer;
- demand_response: $40 of peak capacity.
- solar is customer-driven (no value, never proposed, not a campaign).
  CSAT gain is not monetised: it is reported by the what-if, not here.

payment_risk is the champion's score (1 for a household already in the disconnection process,
which the model leaves unscored; 0 when there is no score at all). The next
best action is the program with the largest expected benefit among those the
household is eligible for and not enrolled in (ties: program name).

Preferred channel (``preferred_channels``): the marketing channel with the
best engagement ((opened + clicked) / delivered, at least one delivery, not
unsubscribed on that channel); else the household's most used contact-center
channel (phone, ivr -> phone; chat, email, web -> email); else direct_mail.
Ties follow ``CHANNEL_ORDER``.

Suppression (``suppression_reason``, first that applies; suppressed
households are kept but not ranked, so gold/campaign_targets is the audit of
who was left out and why): ``not_eligible``; ``do_not_contact``: on the
do-not-contact list for every channel on as_of_date (``contact_policy`` below);
``already_enrolled`` (``insights.suppress_enrolled``); ``collections_hardship``:
a disconnect_notice or disconnect in the 6 months up to as_of_date
(``insights.suppress_collections_hardship``); ``recent_contact``: a
contact-center contact in the ``insights.suppress_recent_contact_days`` days
up to as_of_date; ``frequency_cap``: at least
``insights.max_campaign_contacts_30d`` marketing messages sent to the household
(any campaign) in the 30 days up to as_of_date; ``no_permitted_channel``: every
channel is opted out or on the do-not-contact list. Rank 1 is the largest
expected benefit (ties: household_id).

Contact policy per channel: a channel the household unsubscribed from
(marketing ``unsubscribed`` events; ``ivr`` stands for ``phone``) or that the
do-not-contact list names for it is never its preferred channel; the next
permitted one is (``DEFAULT_CHANNEL``, then ``CHANNEL_ORDER``). The
do-not-contact list is a restricted file (``docs/contact_policy.md``):
account_id, channel (email, sms, phone, direct_mail or all), reason,
effective_from, effective_to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.contract import PROGRAMS
from ucx_spark.identity import household_id as household_pseudonym

CHANNEL_ORDER = ("email", "sms", "phone", "direct_mail")
MARKETING_CHANNELS = ("email", "sms", "direct_mail")
CONTACT_CHANNEL_MAP = {"phone": "phone", "ivr": "phone", "chat": "email", "email": "email", "web": "email"}
DEFAULT_CHANNEL = "direct_mail"
HARDSHIP_EVENTS = ("disconnect_notice", "disconnect")
HARDSHIP_MONTHS = 6
CAMPAIGN_PROGRAMS: tuple[str, ...] = tuple(p for p in PROGRAMS if p != "solar")
# The collections worklist: households with arrears, ranked by the loss a contact can avert, held
# by the collections moratoria (``moratoria``) rather than by the marketing rules.
COLLECTIONS = "collections"
CAMPAIGNS: tuple[str, ...] = (*CAMPAIGN_PROGRAMS, COLLECTIONS)
MORATORIUM_REASONS = ("medical_certificate", "extreme_weather")
MORATORIUM_DAYS = 2  # extreme weather on the day or the day before holds collections

# Benefit constants (USD per year); see the module docstring.
EXPOSURE_MONTHS = 2.0
RISK_REDUCTION = {"autopay": 0.30, "budget_billing": 0.20, "liheap": 0.50}
AUTOPAY_PROCESSING_USD = 2.0
PAPERLESS_USD = 12 * 0.60
EV_RATE_USD = 90.0
EV_CHARGER_REBATE_USD = 60.0
EE_SAVINGS_SHARE = 0.05
DEMAND_RESPONSE_USD = 40.0

TARGET_COLUMNS = (
    "campaign", "household_id", "rank", "expected_benefit", "next_best_action", "next_best_action_benefit",
    "preferred_channel", "suppression_reason", "as_of_date", "run_id", "created_at",
)


def program_value(program: str, *, liheap_annual_benefit_usd: float) -> Column:
    """Annual value in USD of enrolling ``program`` (0 when not valued). Needs payment_risk,
    mean_bill_12_usd, annual_bill_usd (nulls count as 0)."""
    risk = F.coalesce(F.col("payment_risk"), F.lit(0.0))
    exposure = F.lit(EXPOSURE_MONTHS) * F.coalesce(F.col("mean_bill_12_usd"), F.lit(0.0))
    annual = F.coalesce(F.col("annual_bill_usd"), F.lit(0.0))
    values: dict[str, Column] = {
        "autopay": risk * RISK_REDUCTION["autopay"] * exposure + F.lit(AUTOPAY_PROCESSING_USD),
        "budget_billing": risk * RISK_REDUCTION["budget_billing"] * exposure,
        "liheap": F.lit(liheap_annual_benefit_usd) + risk * RISK_REDUCTION["liheap"] * exposure,
        "paperless": F.lit(PAPERLESS_USD),
        "ev_rate": F.lit(EV_RATE_USD),
        "ev_charger_rebate": F.lit(EV_CHARGER_REBATE_USD),
        "ee_rebate": F.lit(EE_SAVINGS_SHARE) * annual,
        "demand_response": F.lit(DEMAND_RESPONSE_USD),
    }
    return values.get(program, F.lit(0.0)).cast("double")


def with_expected_benefit(
    propensity_df: DataFrame, snapshot_df: DataFrame, scores_df: DataFrame | None, *, liheap_annual_benefit_usd: float
) -> DataFrame:
    """propensity rows + ``value_usd`` and ``expected_benefit`` (propensity x value; null when not eligible).

    ``snapshot_df`` gives mean_bill_12_usd and annual_bill_usd, ``scores_df`` (gold/household_scores) payment_risk.
    """
    cols = [c for c in ("mean_bill_12_usd", "annual_bill_usd") if c in snapshot_df.columns]
    feats = snapshot_df.select("household_id", *cols)
    for c in ("mean_bill_12_usd", "annual_bill_usd"):
        if c not in cols:
            feats = feats.withColumn(c, F.lit(None).cast("double"))
    df = with_payment_risk(propensity_df.join(feats, "household_id", "left"), scores_df)
    value: Column = F.lit(0.0)
    for p in PROGRAMS:
        value = F.when(F.col("program") == p, program_value(p, liheap_annual_benefit_usd=liheap_annual_benefit_usd)).otherwise(value)
    return (
        df.withColumn("value_usd", value)
        .withColumn("expected_benefit", F.when(F.col("is_eligible"), F.coalesce(F.col("propensity"), F.lit(0.0)) * F.col("value_usd")))
    )


def with_payment_risk(df: DataFrame, scores_df: DataFrame | None) -> DataFrame:
    """``df`` with ``payment_risk``: the champion's score of gold/household_scores (1 for a
    household outside the payment-risk population because it is already in the disconnection
    process: score null, not_scored_reason set; its risk has come true, not vanished)."""
    if scores_df is None:
        return df.withColumn("payment_risk", F.lit(None).cast("double"))
    reason = F.col("not_scored_reason") if "not_scored_reason" in scores_df.columns else F.lit(None)
    risk = scores_df.filter(F.col("model_name") == "payment_risk").select(
        "household_id",
        F.coalesce(F.col("score").cast("double"), F.when(reason.isNotNull(), F.lit(1.0))).alias("payment_risk"))
    return df.join(risk, "household_id", "left")


def collections_rows(snapshot_df: DataFrame, scores_df: DataFrame | None) -> DataFrame:
    """The collections worklist's rows, in the columns ``with_expected_benefit`` gives a program's:
    every snapshot household; eligible with arrears (``arrears_usd`` > 0: the past-due balance
    from bills, payments and due dates); ``expected_benefit`` = payment_risk x arrears_usd, the
    loss a collections contact can avert (a household without a risk score counts its arrears
    whole); never enrolled, never a next best action (value 0)."""
    arrears = F.coalesce(F.col("arrears_usd"), F.lit(0.0)) if "arrears_usd" in snapshot_df.columns else F.lit(0.0)
    df = with_payment_risk(snapshot_df.select("household_id", "as_of_date", arrears.alias("_arrears")), scores_df)
    eligible = F.col("_arrears") > 0
    return df.select(
        "household_id", "as_of_date", F.lit(COLLECTIONS).alias("program"), eligible.alias("is_eligible"),
        F.lit(False).alias("is_enrolled"), F.lit(0.0).alias("value_usd"),
        F.when(eligible, F.coalesce(F.col("payment_risk"), F.lit(1.0)) * F.col("_arrears")).alias("expected_benefit"),
    )


def daily_extremes(weather_df: DataFrame, *, time_zone: str) -> DataFrame:
    """station_id, local_date, min_temp_f, max_temp_f: each station's coldest and hottest reading
    of each local day (silver/weather)."""
    from ucx_spark.local_time import local_date

    return (weather_df.filter(F.col("temp_f").isNotNull())
            .groupBy("station_id", local_date(F.col("observed_at"), time_zone=time_zone).alias("local_date"))
            .agg(F.min("temp_f").alias("min_temp_f"), F.max("temp_f").alias("max_temp_f")))


def moratoria(keys_df: DataFrame, day: Column, *, stations_df: DataFrame, extremes_df: DataFrame,
              dnc_df: DataFrame | None, cold_f: float, heat_f: float) -> DataFrame:
    """household_id, moratorium: why a collections contact is held on ``day`` (a column of
    ``keys_df``, e.g. as_of_date, or a literal): ``medical_certificate`` when the do-not-contact
    list holds an entry of that reason in force on the day (whatever its channel), else
    ``extreme_weather`` when the household's station (``stations_df``: household_id, station_id)
    recorded a daily minimum at or below ``cold_f`` or a maximum at or above ``heat_f`` on the day
    or the day before (``MORATORIUM_DAYS``). Households without either have no row."""
    keyed = keys_df.select("household_id", day.alias("_day"))
    near = (F.col("local_date") <= F.col("_day")) & (F.col("local_date") > F.date_sub(F.col("_day"), MORATORIUM_DAYS))
    extreme = (F.col("min_temp_f") <= F.lit(cold_f)) | (F.col("max_temp_f") >= F.lit(heat_f))
    weather = (keyed.join(stations_df, "household_id").join(extremes_df.filter(extreme), "station_id")
               .filter(near).select("household_id", F.lit(2).alias("_order"), F.lit("extreme_weather").alias("moratorium")))
    parts = [weather]
    if dnc_df is not None:
        medical = listed_channels(dnc_df.filter(F.col("reason") == "medical_certificate").join(keyed, "household_id"),
                                  F.col("_day"))
        parts.append(medical.select("household_id", F.lit(1).alias("_order"), F.lit("medical_certificate").alias("moratorium")))
    first = Window.partitionBy("household_id").orderBy("_order")
    return (reduce(DataFrame.unionByName, parts).withColumn("_r", F.row_number().over(first))
            .filter(F.col("_r") == 1).select("household_id", "moratorium"))


def next_best_actions(benefit_df: DataFrame) -> DataFrame:
    """household_id, next_best_action, next_best_action_benefit: the eligible, not-enrolled, valued
    program with the largest expected benefit (none -> no row)."""
    w = Window.partitionBy("household_id").orderBy(F.col("expected_benefit").desc(), F.col("program"))
    return (
        benefit_df.filter(F.col("is_eligible") & ~F.col("is_enrolled") & (F.col("value_usd") > 0))
        .withColumn("_r", F.row_number().over(w))
        .filter(F.col("_r") == 1)
        .select("household_id", F.col("program").alias("next_best_action"),
                F.col("expected_benefit").alias("next_best_action_benefit"))
    )


DNC_CHANNELS = ("email", "sms", "phone", "direct_mail", "all")
DNC_REASONS = ("customer_request", "medical_certificate", "legal", "other")
FREQUENCY_DAYS = 30


def opted_out_channels(marketing_df: DataFrame, day: Column) -> DataFrame:
    """household_id, channel: the channels the household unsubscribed from (``unsubscribed`` events
    dated up to ``day``, a column of ``marketing_df`` or a literal; ivr counts as phone)."""
    channel = F.when(F.col("channel") == "ivr", F.lit("phone")).otherwise(F.col("channel"))
    return (marketing_df.filter((F.col("event_type") == "unsubscribed") & (F.to_date("occurred_at") <= day))
            .select("household_id", channel.alias("channel")))


def listed_channels(dnc_df: DataFrame, day: Column) -> DataFrame:
    """household_id, channel (of ``CHANNEL_ORDER``, or ``all``): the do-not-contact entries in force
    on ``day`` (a column of ``dnc_df`` or a literal)."""
    return dnc_df.filter((F.col("effective_from").isNull() | (F.col("effective_from") <= day))
                         & (F.col("effective_to").isNull() | (F.col("effective_to") >= day))
                         ).select("household_id", "channel")


def permitted_channel(preferred: Column, blocked: Column) -> Column:
    """``preferred`` unless ``blocked`` (an array of channels) holds it or ``all``; else the first
    permitted of DEFAULT_CHANNEL then CHANNEL_ORDER; null when none is."""
    blocked = F.coalesce(blocked, F.array().cast("array<string>"))
    out = F.lit(None).cast("string")
    for c in reversed((DEFAULT_CHANNEL, *[c for c in CHANNEL_ORDER if c != DEFAULT_CHANNEL])):
        out = F.when(~F.array_contains(blocked, F.lit(c)), F.lit(c)).otherwise(out)
    ok = preferred.isNotNull() & ~F.array_contains(blocked, preferred)
    return F.when(F.array_contains(blocked, F.lit("all")), F.lit(None).cast("string")).when(ok, preferred).otherwise(out)


def preferred_channels(marketing_df: DataFrame, contacts_df: DataFrame) -> DataFrame:
    """household_id, preferred_channel for households with marketing or contact history (see module doc).

    Needs marketing: household_id, channel, event_type; contacts: household_id, channel. Opt-outs and
    the do-not-contact list are applied after (``permitted_channel``).
    """
    engagement = (
        marketing_df.filter(F.col("channel").isin(*MARKETING_CHANNELS))
        .groupBy("household_id", "channel")
        .agg(
            F.count(F.when(F.col("event_type") == "delivered", 1)).alias("_delivered"),
            F.count(F.when(F.col("event_type").isin("opened", "clicked"), 1)).alias("_engaged"),
            F.max((F.col("event_type") == "unsubscribed").cast("int")).alias("_unsubscribed"),
        )
        .filter((F.col("_delivered") > 0) & (F.col("_unsubscribed") == 0))
        .select("household_id", "channel", (F.col("_engaged") / F.col("_delivered")).alias("_score"), F.lit(1).alias("_tier"))
        .filter(F.col("_score") > 0)
    )
    mapping = F.create_map(*[F.lit(x) for kv in CONTACT_CHANNEL_MAP.items() for x in kv])
    contact = (
        contacts_df.select("household_id", mapping[F.col("channel")].alias("channel"))
        .filter(F.col("channel").isNotNull())
        .groupBy("household_id", "channel")
        .agg(F.count("*").cast("double").alias("_score"))
        .withColumn("_tier", F.lit(2))
    )
    order = F.create_map(*[x for i, c in enumerate(CHANNEL_ORDER) for x in (F.lit(c), F.lit(i))])
    w = Window.partitionBy("household_id").orderBy(F.col("_tier"), F.col("_score").desc(), order[F.col("channel")])
    return (
        engagement.unionByName(contact)
        .withColumn("_r", F.row_number().over(w))
        .filter(F.col("_r") == 1)
        .select("household_id", F.col("channel").alias("preferred_channel"))
    )


@dataclass(frozen=True)
class SuppressionRules:
    """Which households a campaign skips (InsightsConfig suppress_* keys)."""

    suppress_enrolled: bool = True
    suppress_collections_hardship: bool = True
    recent_contact_days: int = 30
    hardship_months: int = HARDSHIP_MONTHS
    max_campaign_contacts_30d: int = 0  # 0: no frequency cap
    moratorium_cold_f: float = 32.0  # the collections worklist's weather moratorium (``moratoria``)
    moratorium_heat_f: float = 95.0


def with_suppression(
    campaign_df: DataFrame, *, contacts_df: DataFrame, collections_df: DataFrame, rules: SuppressionRules,
    marketing_df: DataFrame | None = None,
) -> DataFrame:
    """Adds ``suppression_reason`` (null = targetable). Needs household_id, as_of_date, is_eligible,
    is_enrolled (and, for the contact policy, preferred_channel and ``_blocked``: the household's
    blocked channels; for the collections worklist, ``_moratorium``); contacts: household_id,
    started_at; collections: household_id, event_date, event_type; marketing (for the frequency
    cap): household_id, event_type, occurred_at. The collections worklist's moratoria take the
    place of the marketing rules (enrolment, hardship, recent contact, frequency cap)."""
    policy = "_blocked" in campaign_df.columns
    worklist = "_moratorium" in campaign_df.columns
    reason = F.when(~F.col("is_eligible"), F.lit("not_eligible"))
    if worklist:
        reason = reason.when(F.col("_moratorium").isNotNull(), F.col("_moratorium"))
    if policy:
        reason = reason.when(F.array_contains(F.coalesce(F.col("_blocked"), F.array().cast("array<string>")),
                                              F.lit("all")), F.lit("do_not_contact"))
    out = campaign_df
    if not worklist:
        out, reason = _marketing_rules(out, reason, contacts_df=contacts_df, collections_df=collections_df,
                                       rules=rules, marketing_df=marketing_df)
    if policy:
        reason = reason.when(F.col("preferred_channel").isNull(), F.lit("no_permitted_channel"))
    return out.withColumn("suppression_reason", reason).drop("_hardship", "_recent", "_capped", "_moratorium")


def _marketing_rules(
    campaign_df: DataFrame, reason: Column, *, contacts_df: DataFrame, collections_df: DataFrame,
    rules: SuppressionRules, marketing_df: DataFrame | None,
) -> tuple[DataFrame, Column]:
    """``campaign_df`` with the flags of the marketing rules joined on, and ``reason`` with them:
    already_enrolled, collections_hardship, recent_contact, frequency_cap (``with_suppression``)."""
    keys = campaign_df.select("household_id", "as_of_date")
    hardship = (
        collections_df.filter(F.col("event_type").isin(*HARDSHIP_EVENTS))
        .join(keys, "household_id")
        .filter((F.col("event_date") > F.add_months(F.col("as_of_date"), -rules.hardship_months))
                & (F.col("event_date") <= F.col("as_of_date")))
        .select("household_id").distinct().withColumn("_hardship", F.lit(True))
    )
    contact_day = F.to_date(F.col("started_at"))
    recent = (
        contacts_df.join(keys, "household_id")
        .filter((contact_day > F.date_sub(F.col("as_of_date"), rules.recent_contact_days))
                & (contact_day <= F.col("as_of_date")))
        .select("household_id").distinct().withColumn("_recent", F.lit(True))
    )
    if rules.suppress_enrolled:
        reason = reason.when(F.col("is_enrolled"), F.lit("already_enrolled"))
    if rules.suppress_collections_hardship:
        reason = reason.when(F.coalesce(F.col("_hardship"), F.lit(False)), F.lit("collections_hardship"))
    if rules.recent_contact_days > 0:
        reason = reason.when(F.coalesce(F.col("_recent"), F.lit(False)), F.lit("recent_contact"))
    out = campaign_df.join(hardship, "household_id", "left").join(recent, "household_id", "left")
    if rules.max_campaign_contacts_30d > 0 and marketing_df is not None:
        sent_day = F.to_date("occurred_at")
        capped = (marketing_df.filter(F.col("event_type") == "sent").join(keys, "household_id")
                  .filter((sent_day > F.date_sub(F.col("as_of_date"), FREQUENCY_DAYS)) & (sent_day <= F.col("as_of_date")))
                  .groupBy("household_id").count()
                  .filter(F.col("count") >= rules.max_campaign_contacts_30d)
                  .select("household_id", F.lit(True).alias("_capped")))
        reason = reason.when(F.coalesce(F.col("_capped"), F.lit(False)), F.lit("frequency_cap"))
        out = out.join(capped, "household_id", "left")
    return out, reason


def with_rank(df: DataFrame) -> DataFrame:
    """Adds ``rank`` (1 = largest expected_benefit, ties by household_id) to unsuppressed rows; null otherwise."""
    w = Window.partitionBy("campaign").orderBy(F.col("expected_benefit").desc_nulls_last(), F.col("household_id"))
    ranked = df.filter(F.col("suppression_reason").isNull()).withColumn("rank", F.row_number().over(w))
    return ranked.unionByName(df.filter(F.col("suppression_reason").isNotNull()).withColumn("rank", F.lit(None).cast("int")))


def campaign_targets(
    benefit_df: DataFrame,
    *,
    campaign: str,
    channels_df: DataFrame,
    contacts_df: DataFrame,
    collections_df: DataFrame,
    rules: SuppressionRules,
    run_id: str,
    created_at: Column,
    marketing_df: DataFrame | None = None,
    dnc_df: DataFrame | None = None,
    campaign_rows: DataFrame | None = None,
    moratoria_df: DataFrame | None = None,
) -> DataFrame:
    """gold/campaign_targets rows (``TARGET_COLUMNS``) of one campaign: every snapshot household.

    ``benefit_df``: with_expected_benefit rows (all programs); ``channels_df``: preferred_channels;
    ``marketing_df`` (household_id, channel, event_type, occurred_at): opt-outs and the frequency cap;
    ``dnc_df`` (``read_do_not_contact``): the do-not-contact list. Without either, no contact policy.
    The collections worklist (``COLLECTIONS``) ranks ``campaign_rows`` (``collections_rows``)
    instead of a program's, held by ``moratoria_df`` (``moratoria``) and the list's ``all``
    entries, not by the marketing rules.
    """
    if campaign not in CAMPAIGNS:
        raise ValueError(f"unknown campaign '{campaign}' (allowed: {', '.join(CAMPAIGNS)})")
    if (campaign == COLLECTIONS) != (campaign_rows is not None):
        raise ValueError("campaign_rows (collections_rows) are the collections worklist's rows, and only its")
    rows = (campaign_rows if campaign_rows is not None else benefit_df).filter(F.col("program") == campaign).select(
        "household_id", "as_of_date", "is_eligible", "is_enrolled", "expected_benefit")
    if campaign == COLLECTIONS:
        held = moratoria_df if moratoria_df is not None else rows.sparkSession.createDataFrame(
            [], "household_id string, moratorium string")
        rows = rows.join(held.withColumnRenamed("moratorium", "_moratorium"), "household_id", "left")
    rows = rows.join(channels_df, "household_id", "left")
    if marketing_df is not None or dnc_df is not None:
        keys, day = rows.select("household_id", "as_of_date"), F.col("as_of_date")  # each household's snapshot day
        parts = []
        if marketing_df is not None:
            parts.append(opted_out_channels(marketing_df.join(keys, "household_id"), day))
        if dnc_df is not None:
            parts.append(listed_channels(dnc_df.join(keys, "household_id"), day))
        blocked = reduce(DataFrame.unionByName, parts).groupBy("household_id").agg(
            F.collect_set("channel").alias("_blocked"))
        rows = (rows.join(blocked, "household_id", "left")
                .withColumn("preferred_channel", permitted_channel(F.col("preferred_channel"), F.col("_blocked"))))
    else:
        rows = rows.withColumn("preferred_channel", F.coalesce(F.col("preferred_channel"), F.lit(DEFAULT_CHANNEL)))
    return (
        rows.withColumn("campaign", F.lit(campaign))
        .transform(with_suppression, contacts_df=contacts_df, collections_df=collections_df, rules=rules,
                   marketing_df=marketing_df)
        .drop("_blocked")
        .join(next_best_actions(benefit_df), "household_id", "left")
        .transform(with_rank)
        .withColumn("run_id", F.lit(run_id))
        .withColumn("created_at", created_at)
        .select(*TARGET_COLUMNS)
    )


# --- activation --------------------------------------------------------------------------------

ACTIVATION_COLUMNS = (
    "account_id", "customer_name", "email", "phone", "mailing_address", "next_best_action",
    "preferred_channel", "rank", "expected_benefit",
)


def reidentified_targets(targets_df: DataFrame, accounts_df: DataFrame, *, campaign: str, pseudonym_key: bytes) -> DataFrame:
    """Unsuppressed targets of ``campaign`` joined back to silver/accounts by recomputing
    household_id from account_id with the key (``ACTIVATION_COLUMNS``, ordered by rank).

    Only the contact detail the channel needs is filled: email for email, phone for sms and
    phone, the service address for direct_mail. Needs accounts: account_id, customer_name,
    email, phone, service_address, city, state, zip (missing ones are null).
    """
    acc = accounts_df
    for c in ("customer_name", "email", "phone", "service_address", "city", "state", "zip"):
        if c not in acc.columns:
            acc = acc.withColumn(c, F.lit(None).cast("string"))
    acc = acc.select(
        household_pseudonym(F.col("account_id"), key=pseudonym_key).alias("household_id"),
        "account_id", "customer_name", "email", "phone",
        F.concat_ws(", ", "service_address", "city", F.concat_ws(" ", "state", "zip")).alias("_address"),
    )
    channel = F.col("preferred_channel")
    return (
        targets_df.filter((F.col("campaign") == campaign) & F.col("suppression_reason").isNull() & F.col("rank").isNotNull())
        .join(acc, "household_id")
        .select(
            "account_id", "customer_name",
            F.when(channel == "email", F.col("email")).alias("email"),
            F.when(channel.isin("sms", "phone"), F.col("phone")).alias("phone"),
            F.when(channel == "direct_mail", F.col("_address")).alias("mailing_address"),
            "next_best_action", "preferred_channel", "rank", F.round("expected_benefit", 2).alias("expected_benefit"),
        )
        .orderBy("rank", "account_id")
    )
