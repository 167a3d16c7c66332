"""What customers say (issue 21): topics read from transcripts, VADER sentiment, gold/contact_insights."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.generate.events import CAUSE_TEXT, CAUSE_TOPIC
from ucx_spark.insights import contacts as C
from ucx_spark.quality.suites import insight_suites

TZ = "America/Chicago"


def _topics(spark, texts: list[str | None]) -> list[str]:
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i int, text string")
    return [r[0] for r in df.orderBy("i").select(C.text_topic(F.col("text"))).collect()]


def test_every_generated_transcript_reads_as_the_topic_of_its_cause(spark) -> None:
    texts, expected = [], []
    for cause, (calm, upset) in CAUSE_TEXT.items():
        for text in (*calm, *upset):
            texts.append(text)
            expected.append(CAUSE_TOPIC[cause])
    assert _topics(spark, texts) == expected


def test_the_first_subject_in_topic_order_wins_and_nothing_reads_as_other(spark) -> None:
    got = _topics(spark, [
        "I want to sign up for budget billing",            # a program, though it says billing
        "Can I pay the past due bill next week?",          # a payment, though it says bill
        "Power is still off since the storm, my bill too",  # an outage first
        "Stopping service when I move out",                # start/stop
        "My name is [NAME]. Just checking in, thanks.",    # nothing: other
        None,                                              # no transcript (IVR, web): other
    ])
    assert got == ["program", "payment", "outage", "start_stop", "other", "other"]


def test_complaints_are_flagged_and_angry_text_scores_negative(spark) -> None:
    df = spark.createDataFrame([
        (1, "Customer furious that the bill doubled, asked for a supervisor."),
        (2, "Caller asked to change the mailing address. Thanks for the help."),
        (3, None),
    ], "i int, text string").select("i", C.is_complaint(F.col("text")).alias("complaint"),
                                    C.sentiment(F.col("text")).alias("s"))
    rows = {r["i"]: r for r in df.collect()}
    assert rows[1]["complaint"] and not rows[2]["complaint"] and not rows[3]["complaint"]
    assert rows[1]["s"] <= C.NEGATIVE_BELOW < 0.05 <= rows[2]["s"]
    assert rows[3]["s"] is None


def test_contact_insights_counts_rates_repeats_and_suppresses_small_cells(spark) -> None:
    contacts = spark.createDataFrame([
        # contact_id, account_id, started_at (UTC), channel, reason, first_contact_resolution, transcript, household_id
        ("c1", "A1", datetime(2026, 3, 2, 15), "phone", "billing", True, "Why did my bill go up?", "h1"),
        ("c2", "A1", datetime(2026, 3, 5, 15), "phone", "complaint", False, "Angry: the bill is a ripoff.", "h1"),
        ("c3", "A2", datetime(2026, 3, 9, 15), "chat", "billing", True, "Question about a charge.", "h2"),
        ("c4", "A3", datetime(2026, 3, 20, 15), "phone", "other", None, "Power is out again.", "h3"),
        ("c5", "A2", datetime(2026, 3, 30, 15), "ivr", "billing", True, None, "h2"),
    ], "contact_id string, account_id string, started_at timestamp, channel string, reason string, "
       "first_contact_resolution boolean, transcript string, household_id string")
    accounts = spark.createDataFrame([("A1", "RES"), ("A2", "RES"), ("A3", "COM")], "account_id string, customer_class string")
    scored = C.scored_contacts(contacts, accounts, time_zone=TZ).cache()
    by_id = {r["contact_id"]: r for r in scored.collect()}
    assert [by_id[c]["topic"] for c in ("c1", "c2", "c3", "c4", "c5")] == ["billing", "billing", "billing", "outage", "other"]
    assert [by_id[c]["repeat_within_7d"] for c in ("c1", "c2", "c3", "c4", "c5")] == [True, False, False, False, False]
    assert by_id["c2"]["complaint"] and by_id["c5"]["sentiment"] is None
    got = C.contact_insights(scored, min_households=2).filter("topic = 'billing'").orderBy("segment")
    s1, s2, s3 = (by_id[c]["sentiment"] for c in ("c1", "c2", "c3"))
    mean = (s1 + s2 + s3) / 3
    negative = sum(s <= C.NEGATIVE_BELOW for s in (s1, s2, s3)) / 3
    expected = spark.createDataFrame([
        # month, source, topic, segment, volume, households, mean_sentiment, negative_share, complaint_share,
        # fcr_rate, repeat_7d_rate, reason_agreement, mean_csat (comments only), n, is_suppressed
        (date(2026, 3, 1), "contact", "billing", "RES", 3, 2, mean, negative, 1 / 3, 2 / 3, 1 / 3, 2 / 3, None, 2, False),
        (date(2026, 3, 1), "contact", "billing", "all", 3, 2, mean, negative, 1 / 3, 2 / 3, 1 / 3, 2 / 3, None, 2, False),
    ], got.schema)
    assert_df_equality(got, expected, ignore_nullable=True, allow_nan_equality=True)
    # one household: counts stay, every rate is withheld
    small = C.contact_insights(scored, min_households=2).filter("topic = 'outage' AND segment = 'COM'").first()
    assert small["volume"] == 1 and small["is_suppressed"]
    assert all(small[c] is None for c in ("mean_sentiment", "negative_share", "fcr_rate", "reason_agreement"))


def test_the_gate_knows_every_topic() -> None:
    suite = next(s for s in insight_suites() if s.table == "contact_insights")
    topics = next(e for e in suite.expectations if e.id == "in_set_topic").kwargs["value_set"]
    assert topics == list(C.TOPICS)


def test_survey_comments_are_read_like_transcripts_beside_the_contacts(spark) -> None:
    """Issue 21: a survey comment gets a topic, the complaint flag and a sentiment; its rows in
    gold/contact_insights are ``survey_comment`` rows by the local month of the response, with the
    mean CSAT of the respondents who wrote them; a response without a comment is no row; a comment
    has no agent code, resolution or follow-up."""
    surveys = spark.createDataFrame([
        # survey_id, account_id, responded_at (UTC), csat, comment, household_id
        ("s1", "A1", datetime(2026, 3, 2, 15), 1, "Power keeps going out and the estimates are useless.", "h1"),
        ("s2", "A2", datetime(2026, 3, 9, 15), 2, "Power keeps going out and the estimates are useless.", "h2"),
        ("s3", "A3", datetime(2026, 3, 20, 15), 3, "Bill was higher than expected. - [NAME]", "h3"),
        ("s4", "A1", datetime(2026, 3, 25, 15), 5, None, "h1"),      # no comment: no row
        ("s5", "A2", datetime(2026, 3, 26, 15), 4, "   ", "h2"),     # blank: no row
        ("s6", "A2", datetime(2026, 4, 1, 3), 5, "Fine overall, thanks.", "h2"),  # March 31 in Chicago
    ], "survey_id string, account_id string, responded_at timestamp, csat int, comment string, household_id string")
    contacts = spark.createDataFrame([
        ("c1", "A1", datetime(2026, 3, 2, 15), "phone", "outage", True, "Power is out again.", "h1"),
    ], "contact_id string, account_id string, started_at timestamp, channel string, reason string, "
       "first_contact_resolution boolean, transcript string, household_id string")
    accounts = spark.createDataFrame([("A1", "RES"), ("A2", "RES"), ("A3", "RES")], "account_id string, customer_class string")
    scored = C.scored_texts(contacts, surveys, accounts, time_zone=TZ).cache()
    comments = {r["contact_id"]: r for r in scored.filter(F.col("source") == C.SURVEY_COMMENT).collect()}
    assert sorted(comments) == ["s1", "s2", "s3", "s6"]
    assert [comments[s]["topic"] for s in ("s1", "s3", "s6")] == ["outage", "billing", "other"]
    assert comments["s1"]["complaint"] and not comments["s6"]["complaint"]  # "useless"
    assert comments["s1"]["sentiment"] <= C.NEGATIVE_BELOW < 0.05 <= comments["s6"]["sentiment"]
    assert comments["s6"]["month"] == date(2026, 3, 1)
    assert all(comments[s]["reason_agrees"] is None and comments[s]["repeat_within_7d"] is None for s in comments)
    insights = C.contact_insights(scored, min_households=2).filter("segment = 'all'")
    outage = insights.filter("source = 'survey_comment' AND topic = 'outage'").first()
    s1 = comments["s1"]["sentiment"]
    assert (outage["volume"], outage["households"], outage["is_suppressed"]) == (2, 2, False)
    assert outage["mean_csat"] == pytest.approx(1.5) and outage["mean_sentiment"] == pytest.approx(s1)
    assert (outage["fcr_rate"], outage["repeat_7d_rate"], outage["reason_agreement"]) == (None, None, None)
    assert outage["complaint_share"] == 1.0
    # the contact on the same topic is its own row; a single commenter's cell keeps its count only
    contact = insights.filter("source = 'contact' AND topic = 'outage'").first()
    assert (contact["volume"], contact["mean_csat"]) == (1, None)
    billing = insights.filter("source = 'survey_comment' AND topic = 'billing'").first()
    assert billing["volume"] == 1 and billing["is_suppressed"] and billing["mean_csat"] is None
    # without silver/surveys, the contacts alone
    assert C.scored_texts(contacts, None, accounts, time_zone=TZ).filter(F.col("source") != C.CONTACT).count() == 0
