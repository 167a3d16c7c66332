"""`ucx contacts`: what customers say -> gold/contact_insights (insights/contacts.py).

Reads silver/contacts (transcripts scrubbed of names, phones and e-mails in
silver), silver/surveys (their comments, scrubbed the same way) and
silver/accounts (the customer class), scores every text's topic and sentiment
once, gates the monthly table like every gold table and replaces
it. The summary says how the topics read from the text agree with the agents'
reason codes; ``topic_agreement`` judges them against a generated utility's
record of why each contact happened (``_truth/contacts.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import CONTACT_INSIGHTS
from ucx_spark.config import DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import contacts as C
from ucx_spark.io.delta import overwrite_table, read_optional
from ucx_spark.quality import publish_if_passed


@dataclass
class ContactsResult:
    run_id: str
    path: str
    contacts: int
    transcripts: int
    by_topic: list[tuple[str, int, float | None, float]] = field(default_factory=list)  # topic, contacts, sentiment, agreement
    comments: list[tuple[str, int, float | None, float | None]] = field(default_factory=list)  # topic, n, sentiment, csat

    def summary(self) -> str:
        lines = [f"contact insights -> {self.path}: {self.contacts:,} contacts, {self.transcripts:,} with a transcript",
                 f"{'topic':<11} {'contacts':>8} {'sentiment':>9} {'agent code agrees':>17}"]
        for topic, n, mean, agree in self.by_topic:
            sentiment = "      n/a" if mean is None else f"{mean:>+9.3f}"
            lines.append(f"{topic:<11} {n:>8,} {sentiment} {100 * agree:>16.1f}%")
        if self.comments:
            lines += [f"survey comments: {sum(n for _, n, _, _ in self.comments):,}",
                      f"{'topic':<11} {'comments':>8} {'sentiment':>9} {'mean CSAT':>9}"]
            for topic, n, mean, csat in self.comments:
                sentiment = "      n/a" if mean is None else f"{mean:>+9.3f}"
                lines.append(f"{topic:<11} {n:>8,} {sentiment} {'n/a' if csat is None else f'{csat:.2f}':>9}")
        return "\n".join(lines)


def scored(spark: SparkSession, warehouse: str, *, time_zone: str, comments: bool = False) -> DataFrame:
    """Every contact of silver/contacts with its topic and sentiment (``insights.contacts.scored_contacts``),
    and with ``comments`` every survey comment of silver/surveys too (``scored_texts``)."""
    contacts_df = read_optional(spark, warehouse, "silver", "contacts")
    accounts_df = read_optional(spark, warehouse, "silver", "accounts")
    if contacts_df is None or accounts_df is None:
        raise UcxError(f"silver/contacts or silver/accounts missing in {warehouse}: run `ucx pipeline` first")
    if not comments:
        return C.scored_contacts(contacts_df, accounts_df, time_zone=time_zone)
    surveys_df = read_optional(spark, warehouse, "silver", "surveys")
    return C.scored_texts(contacts_df, surveys_df, accounts_df, time_zone=time_zone)


def run(spark: SparkSession, *, warehouse: str, run_id: str, time_zone: str,
        min_households: int = DEFAULT_MIN_HOUSEHOLDS) -> ContactsResult:
    created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
    scored_df = scored(spark, warehouse, time_zone=time_zone, comments=True).persist()
    try:
        insights_df = (C.contact_insights(scored_df, min_households=min_households)
                       .withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at))
        written: dict[str, str] = {}
        publish_if_passed(spark, assert_no_pii(insights_df, table=CONTACT_INSIGHTS),
                          lambda ok: written.__setitem__("path", overwrite_table(ok, warehouse, "gold", CONTACT_INSIGHTS)),
                          layer="gold", table=CONTACT_INSIGHTS, run_id=run_id, warehouse=warehouse)
        both = (scored_df.groupBy("source", "topic").agg(
            F.count(F.lit(1)).alias("n"), F.avg("sentiment").alias("sentiment"),
            F.avg(F.col("reason_agrees").cast("double")).alias("agree"),
            F.count("sentiment").alias("texts"), F.avg("csat").alias("csat"),
        ).orderBy(F.desc("n")).collect())  # one row per source and topic (twelve at most)
    finally:
        scored_df.unpersist()
    rows = [r for r in both if r["source"] == C.CONTACT]
    return ContactsResult(
        run_id=run_id, path=written["path"], contacts=sum(int(r["n"]) for r in rows),
        transcripts=sum(int(r["texts"]) for r in rows),
        by_topic=[(r["topic"], int(r["n"]), r["sentiment"], float(r["agree"])) for r in rows],
        comments=[(r["topic"], int(r["n"]), r["sentiment"], r["csat"]) for r in both if r["source"] == C.SURVEY_COMMENT],
    )


@dataclass(frozen=True)
class TopicAgreement:
    """How the topics read from transcripts, and the agents' codes, agree with why each contact
    happened (a generated utility's ``_truth/contacts.csv``), over the contacts with a transcript."""

    contacts: int
    topic_agreement: float
    reason_agreement: float
    by_cause: dict[str, float]


def topic_agreement(spark: SparkSession, warehouse: str, truth_dir: str | Path, *, time_zone: str) -> TopicAgreement:
    truth_path = Path(truth_dir) / "_truth" / "contacts.csv"
    if not truth_path.is_file():
        truth_path = Path(truth_dir) / "contacts.csv"
    if not truth_path.is_file():
        raise UcxError(f"no _truth/contacts.csv under {truth_dir}: a utility generated by `ucx generate` has one")
    truth_df = spark.read.option("header", True).csv(str(truth_path)).select(
        "contact_id", "cause", F.col("topic").alias("true_topic"))
    judged = (scored(spark, warehouse, time_zone=time_zone).filter(F.col("sentiment").isNotNull())
              .join(truth_df, "contact_id")
              .select("cause", (F.col("topic") == F.col("true_topic")).cast("double").alias("topic_ok"),
                      F.coalesce(C.reason_topic(F.col("reason")) == F.col("true_topic"), F.lit(False)).cast("double")
                      .alias("reason_ok")))
    rows = judged.groupBy("cause").agg(F.count(F.lit(1)).alias("n"), F.sum("topic_ok").alias("t"),
                                       F.sum("reason_ok").alias("r")).collect()  # one row per cause (seven)
    n = sum(int(r["n"]) for r in rows)
    if n == 0:
        raise UcxError("no contact with a transcript matches _truth/contacts.csv: is the warehouse built from that utility?")
    return TopicAgreement(
        contacts=n, topic_agreement=sum(float(r["t"]) for r in rows) / n,
        reason_agreement=sum(float(r["r"]) for r in rows) / n,
        by_cause={r["cause"]: float(r["t"]) / int(r["n"]) for r in rows},
    )
