"""What customers say (issue 21): topics read from transcripts, VADER sentiment, gold/contact_insights."""

from __future__ import annotations

from datetime import date, datetime

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
        # month, topic, segment, contacts, households, mean_sentiment, negative_share, complaint_share, fcr_rate,
        # repeat_7d_rate, reason_agreement, n, is_suppressed
        (date(2026, 3, 1), "billing", "RES", 3, 2, mean, negative, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 2, False),
        (date(2026, 3, 1), "billing", "all", 3, 2, mean, negative, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 2, False),
    ], got.schema)
    assert_df_equality(got, expected, ignore_nullable=True, allow_nan_equality=True)
    # one household: counts stay, every rate is withheld
    small = C.contact_insights(scored, min_households=2).filter("topic = 'outage' AND segment = 'COM'").first()
    assert small["contacts"] == 1 and small["is_suppressed"]
    assert all(small[c] is None for c in ("mean_sentiment", "negative_share", "fcr_rate", "reason_agreement"))


def test_the_gate_knows_every_topic() -> None:
    suite = next(s for s in insight_suites() if s.table == "contact_insights")
    topics = next(e for e in suite.expectations if e.id == "in_set_topic").kwargs["value_set"]
    assert topics == list(C.TOPICS)
