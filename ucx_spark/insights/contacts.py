"""What customers say: a topic and a sentiment for every contact transcript, and
gold/contact_insights (issue 21).

DataFrame in, DataFrame out; the reads and the write are ``pipelines/contacts.py``.

- **Topic** is read from the (scrubbed) transcript, not copied from the agent's
  reason code: the first of ``gold.contact_text.TOPIC_PATTERNS`` whose words occur (outage,
  start_stop, program, payment, billing), else ``other``. The order settles a
  transcript that names two subjects the way its caller meant it: a call about
  paying a past-due bill is a payment call, enrolling in budget billing is a
  program call. A complaint is not a subject of its own: a caller complains
  *about* a bill or an outage, so ``complaint`` is a flag beside the topic
  (escalation words: supervisor, refund, furious, ...). The agent's code is kept
  beside the topic, and ``reason_agrees`` says whether the two name the same
  subject (an agent's ``complaint`` code never does).
- **Sentiment** is VADER's compound score (-1 to 1) of the transcript
  (``vaderSentiment``, its lexicon inside the package), computed in a vectorised
  ``pandas_udf``; ``<= -0.05`` is negative, VADER's own threshold.
- **gold/contact_insights**: by local month of the contact, topic and segment
  (customer class, and ``all``): contacts, households, mean sentiment, negative
  and complaint shares, first-contact resolution, the share of contacts followed
  by another contact of the same household within 7 days, and how often the
  agent's code names the same subject. A cell of fewer than ``min_households``
  households keeps its counts but no rate (``is_suppressed``).
- **Survey comments** (silver/surveys ``comment``, scrubbed like the transcripts) are read the
  same way: a topic, the complaint flag and VADER's sentiment, in rows of ``source``
  ``survey_comment`` beside the contacts' (``source`` ``contact``), by the local month of the
  response, with the mean CSAT the commenting respondents gave (what the unhappy write about). A
  comment has no agent, resolution or follow-up: its ``fcr_rate``, ``repeat_7d_rate`` and
  ``reason_agreement`` are null, as a contact's ``mean_csat`` is.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ucx_spark.config import DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.gold.contact_text import (  # noqa: F401 (the text readers, read here and by the tests)
    NEGATIVE_BELOW,
    REPEAT_DAYS,
    TOPICS,
    is_complaint,
    reason_topic,
    sentiment,
    text_topic,
)
from ucx_spark.local_time import local_date

CONTACT, SURVEY_COMMENT = "contact", "survey_comment"  # gold/contact_insights ``source``


def _segments(accounts_df: DataFrame) -> DataFrame:
    """account_id -> segment (the account's customer class), one row per account."""
    return accounts_df.select("account_id", F.col("customer_class").alias("segment")).dropDuplicates(["account_id"])


def scored_contacts(contacts_df: DataFrame, accounts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """One row per contact of silver/contacts: household_id, segment (the account's customer
    class), local contact_date and month, channel, reason (the agent's code), topic, reason_agrees
    (the code names the topic), complaint, sentiment (null without a transcript),
    first_contact_resolution and repeat_within_7d (the same household contacted again within 7
    days, on any topic)."""
    day = local_date(F.col("started_at"), time_zone=time_zone)
    by_household = Window.partitionBy("household_id").orderBy("started_at", "contact_id")
    return (
        contacts_df.join(_segments(accounts_df), "account_id", "left")
        .select(
            "contact_id", "household_id", F.coalesce("segment", F.lit("unknown")).alias("segment"),
            "started_at", day.alias("contact_date"), F.trunc(day, "month").alias("month"), "channel", "reason",
            text_topic(F.col("transcript")).alias("topic"), is_complaint(F.col("transcript")).alias("complaint"),
            sentiment(F.col("transcript")).alias("sentiment"), "first_contact_resolution",
        )
        .withColumn("reason_agrees", F.coalesce(reason_topic(F.col("reason")) == F.col("topic"), F.lit(False)))
        .withColumn("_next", F.lead("started_at").over(by_household))
        .withColumn("repeat_within_7d", F.coalesce(
            F.col("_next") <= F.col("started_at") + F.expr(f"INTERVAL {REPEAT_DAYS} DAYS"), F.lit(False)))
        .drop("_next")
        .withColumn("source", F.lit(CONTACT)).withColumn("csat", F.lit(None).cast("int"))
    )


def scored_comments(surveys_df: DataFrame, accounts_df: DataFrame, *, time_zone: str) -> DataFrame:
    """One row per survey response with a comment, in the columns of ``scored_contacts``
    (``source`` survey_comment; the survey_id as contact_id; the response's csat; no agent code,
    resolution or follow-up)."""
    day = local_date(F.col("responded_at"), time_zone=time_zone)
    text = F.col("comment")
    return (
        surveys_df.filter(F.length(F.trim(F.coalesce(text, F.lit("")))) > 0)
        .join(_segments(accounts_df), "account_id", "left")
        .select(
            F.col("survey_id").alias("contact_id"), "household_id",
            F.coalesce("segment", F.lit("unknown")).alias("segment"), F.col("responded_at").alias("started_at"),
            day.alias("contact_date"), F.trunc(day, "month").alias("month"), F.lit("survey").alias("channel"),
            F.lit(None).cast("string").alias("reason"), text_topic(text).alias("topic"),
            is_complaint(text).alias("complaint"), sentiment(text).alias("sentiment"),
            F.lit(None).cast("boolean").alias("first_contact_resolution"),
            F.lit(None).cast("boolean").alias("reason_agrees"), F.lit(None).cast("boolean").alias("repeat_within_7d"),
            F.lit(SURVEY_COMMENT).alias("source"), F.col("csat").cast("int").alias("csat"),
        )
    )


def scored_texts(contacts_df: DataFrame, surveys_df: DataFrame | None, accounts_df: DataFrame, *,
                 time_zone: str) -> DataFrame:
    """``scored_contacts`` and, with silver/surveys, ``scored_comments``: what gold/contact_insights counts."""
    parts = [scored_contacts(contacts_df, accounts_df, time_zone=time_zone)]
    if surveys_df is not None:
        parts.append(scored_comments(surveys_df, accounts_df, time_zone=time_zone))
    return reduce(lambda a, b: a.unionByName(b), parts)


def contact_insights(scored_df: DataFrame, *, min_households: int = DEFAULT_MIN_HOUSEHOLDS) -> DataFrame:
    """gold/contact_insights from ``scored_texts``: month, source (contact, survey_comment), topic,
    segment (a customer class, or ``all``), volume (contacts, or comments), households,
    mean_sentiment, negative_share, complaint_share, fcr_rate, repeat_7d_rate, reason_agreement,
    mean_csat (comments), n (households: the privacy count), is_suppressed."""
    both = scored_df.unionByName(scored_df.withColumn("segment", F.lit("all")))
    agg = both.groupBy("month", "source", "topic", "segment").agg(
        F.count(F.lit(1)).alias("volume"),
        F.countDistinct("household_id").alias("households"),
        F.avg("sentiment").alias("mean_sentiment"),
        F.avg(F.when(F.col("sentiment").isNotNull(), (F.col("sentiment") <= NEGATIVE_BELOW).cast("double"))).alias(
            "negative_share"),
        F.avg(F.col("complaint").cast("double")).alias("complaint_share"),
        F.avg(F.col("first_contact_resolution").cast("double")).alias("fcr_rate"),
        F.avg(F.col("repeat_within_7d").cast("double")).alias("repeat_7d_rate"),
        F.avg(F.col("reason_agrees").cast("double")).alias("reason_agreement"),
        F.avg(F.col("csat").cast("double")).alias("mean_csat"),
    )
    suppressed = F.col("households") < F.lit(min_households)
    rates = ("mean_sentiment", "negative_share", "complaint_share", "fcr_rate", "repeat_7d_rate", "reason_agreement",
             "mean_csat")
    return agg.select(
        "month", "source", "topic", "segment", "volume", "households",
        *[F.when(~suppressed, F.col(c)).alias(c) for c in rates],
        F.col("households").alias("n"), suppressed.alias("is_suppressed"),
    )
