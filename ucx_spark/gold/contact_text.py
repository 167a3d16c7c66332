"""How a contact reads: its topic from the (scrubbed) transcript, a complaint flag and VADER's
sentiment (issue 21). Read by gold/household_features (a household's negative-sentiment and
repeated contacts, its topic mix) and gold/contact_insights (``insights/contacts.py``, whose
module doc says how the topics are read).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

TOPICS = ("outage", "start_stop", "program", "payment", "billing", "other")
# The first match wins, in this order (see the module doc). Case-insensitive; on the scrubbed text.
TOPIC_PATTERNS: tuple[tuple[str, str], ...] = (
    ("outage", r"\b(outages?|blackout|no power|power\b[\w\s']{0,24}\b(out|off|back)|lights? out|restor\w*)\b"),
    ("start_stop", r"\b((start|stop)\w* (of )?service|move-in|mov(e|es|ed|ing)\b|new (address|home)|transfer service)"),
    ("program", r"\b(programs?|enrol\w*|sign up|rebates?|eligib\w*|autopay|budget billing)\b"),
    ("payment", r"\b(payments?|pay|paid|arrangement|past due|disconnect\w*|extension|late fee)\b"),
    ("billing", r"\b(bills?|billing|charges?|statement|invoice|rate plan|kwh|usage|overcharge\w*|meter read)\b"),
)
COMPLAINT_PATTERN = (r"\b(supervisor|complain\w*|furious|angry|upset|unacceptable|ripoff|rip-off|fed up|refund|"
                     r"useless|terrible|awful|unfair)\b")
NEGATIVE_BELOW = -0.05  # VADER's compound threshold for negative text
REPEAT_DAYS = 7
# the agent's reason code -> the topic it names (complaint names none)
REASON_TOPIC = {"billing": "billing", "payment": "payment", "outage": "outage", "start_stop": "start_stop",
                "program": "program", "other": "other"}

_ANALYZER: Any = None


def text_topic(text: Column) -> Column:
    """The topic of a transcript (``TOPICS``); ``other`` when it is null or names none."""
    lowered = F.lower(F.coalesce(text, F.lit("")))
    out = F.lit("other")
    for topic, pattern in reversed(TOPIC_PATTERNS):  # built inside out: the first pattern is tried first
        out = F.when(lowered.rlike(pattern), F.lit(topic)).otherwise(out)
    return out


def reason_topic(reason: Column) -> Column:
    """The topic an agent's reason code names (``REASON_TOPIC``; null for ``complaint``)."""
    return F.create_map(*[F.lit(x) for kv in REASON_TOPIC.items() for x in kv])[reason]


def is_complaint(text: Column) -> Column:
    return F.lower(F.coalesce(text, F.lit(""))).rlike(COMPLAINT_PATTERN)


def compound_scores(texts: pd.Series) -> pd.Series:
    """VADER's compound score of each text (null for a null or empty text)."""
    global _ANALYZER
    if _ANALYZER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _ANALYZER = SentimentIntensityAnalyzer()
    analyzer = _ANALYZER
    return texts.map(lambda t: analyzer.polarity_scores(t)["compound"] if isinstance(t, str) and t.strip() else None
                     ).astype("float64")


@F.pandas_udf(T.DoubleType())  # type: ignore[call-overload]
def sentiment(texts: pd.Series) -> pd.Series:
    """VADER compound score of each transcript, in batches on the executors."""
    return compound_scores(texts)
