"""Silver transforms on tiny inline DataFrames: timestamp grammar and DST,
expected intervals, rule precedence, ambiguity, scrubbing (no Delta I/O)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from conftest import TEST_TZ
from pyspark.sql import functions as F

from ucx_spark.bronze import bronze_schema
from ucx_spark.errors import ConfigError
from ucx_spark.silver.ami import expected_intervals
from ucx_spark.silver.parse import TimestampColumns, require_time_zone, with_timestamp
from ucx_spark.silver.rules import classify
from ucx_spark.silver.text import scrub_free_text


def test_timestamp_grammar_offsets_and_dst(spark) -> None:
    cases = [
        ("2024-01-01T10:00:00Z", "2024-01-01 10:00:00", "ok"),
        ("2024-01-01t10:00:00z", "2024-01-01 10:00:00", "ok"),  # lower-case T and Z
        ("2024-01-01 04:00:00-06:00", "2024-01-01 10:00:00", "ok"),  # space instead of T
        ("2024-01-01T15:30:00.5+05:30", "2024-01-01 10:00:00.5", "ok"),
        ("2024-01-01 04:00:00", "2024-01-01 10:00:00", "ok"),  # no offset: utility time (CST)
        ("2024-07-01 05:00:00", "2024-07-01 10:00:00", "ok"),  # no offset: utility time (CDT)
        ("2024-01-01T10:00:00-0600", None, "bad"),
        ("2024-01-01T10:00Z", None, "bad"),  # no seconds
        ("2024-02-30T10:00:00Z", None, "bad"),
        ("2024-03-10 02:30:00", None, "gap"),  # America/Chicago springs forward at 02:00
        ("2024-11-03 01:30:00", None, "overlap"),  # and falls back at 02:00
        ("2024-11-03 01:30:00-05:00", "2024-11-03 06:30:00", "ok"),  # an offset settles it
        (None, None, "ok"),
    ]
    df = spark.createDataFrame(cases, "raw string, utc string, verdict string")
    out = TimestampColumns(value="v", is_bad="bad", is_nonexistent="gap", is_ambiguous="ovl")
    parsed = with_timestamp(df.select("raw"), "raw", out, time_zone=TEST_TZ)
    assert parsed.columns == ["raw", "bad", "gap", "ovl", "v"]  # the stages' helper columns are gone
    verdict = F.when(F.col("bad"), "bad").when(F.col("gap"), "gap").when(F.col("ovl"), "overlap").otherwise("ok")
    got = parsed.select("raw", F.col("v").cast("string").alias("utc"), verdict.alias("verdict"))
    assert_df_equality(got, df, ignore_row_order=True, ignore_nullable=True)


def test_expected_intervals_follow_dst(spark) -> None:
    rows = [
        (date(2024, 3, 10), 15, 92),  # 23-hour day
        (date(2024, 3, 11), 15, 96),
        (date(2024, 11, 3), 15, 100),  # 25-hour day
        (date(2024, 11, 3), 60, 25),
        (date(2024, 3, 11), 5, 288),
        (None, 15, None),
    ]
    df = spark.createDataFrame(rows, "local_date date, interval_minutes int, expected int")
    got = df.select(
        "local_date",
        "interval_minutes",
        expected_intervals(F.col("local_date"), F.col("interval_minutes"), time_zone=TEST_TZ).alias("expected"),
    )
    assert_df_equality(got, df, ignore_row_order=True, ignore_nullable=True)


def _bronze(spark, feed: str, rows: list[dict]):
    schema = bronze_schema(feed)
    base = {
        "_extra": {}, "_malformed": False, "_file_rejected": None, "_source_file": "f.csv",
        "_extracted_at": datetime(2024, 1, 1), "_ingested_at": datetime(2024, 1, 1), "_run_id": "r",
    }
    full = [{**base, "_row_number": i + 1, **r} for i, r in enumerate(rows)]
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in full], schema)


def test_first_broken_rule_wins_and_identical_copies_are_not_ambiguous(spark) -> None:
    ok = {"payment_id": "P1", "account_id": "A1", "paid_at": "2024-01-01T00:00:00Z", "amount": "10.50", "method": "online"}
    rows = [
        ok,
        ok,  # identical copy: not ambiguous (deduplicated later)
        {**ok, "payment_id": "P2", "amount": "10.505", "method": "cash"},  # bad_number before out_of_domain
        {**ok, "payment_id": "P3", "account_id": None, "amount": "1,000"},  # missing_required first
        {**ok, "payment_id": "P4", "account_id": "A9"},  # unknown account
        {**ok, "payment_id": "P5", "amount": "1"},
        {**ok, "payment_id": "P5", "amount": "2"},  # same key, other value: both ambiguous
        {**ok, "payment_id": "P6", "_file_rejected": "missing_column:method", "method": None},
        {**ok, "payment_id": "P7", "_malformed": True},
        {k: None for k in ok},  # all empty
    ]
    refs = {"account_id": spark.createDataFrame([("A1",)], "account_id string")}
    got = classify(_bronze(spark, "payments", rows), feed="payments", time_zone=TEST_TZ, refs=refs).select(
        "_row_number", "rule"
    )
    expected = spark.createDataFrame(
        [
            (1, None), (2, None), (3, "bad_number"), (4, "missing_required"), (5, "unknown_reference"),
            (6, "ambiguous_key"), (7, "ambiguous_key"), (8, "file_rejected"), (9, "wrong_field_count"),
            (10, "missing_required"),
        ],
        "_row_number long, rule string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_scrub_free_text(spark) -> None:
    rows = [
        ("Jane Doe here, reach me at jane.doe@mail.com or +1 312.555.0199", "Jane Doe",
         "[NAME] here, reach me at [EMAIL] or [PHONE]"),
        ("Ms. DOE called about bill 12345", "Jane Doe", "Ms. [NAME] called about bill 12345"),
        ("Janet called (3125550100)", "Jane Doe", "Janet called ([PHONE])"),  # a word boundary
        ("no name known, 312-555-0100", None, "no name known, [PHONE]"),
        (None, "Jane Doe", None),
    ]
    df = spark.createDataFrame(rows, "text string, name string, expected string")
    got = df.select("text", "name", scrub_free_text(F.col("text"), F.col("name")).alias("expected"))
    assert_df_equality(got, df, ignore_row_order=True, ignore_nullable=True)


def test_bad_time_zone_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="Mars/Base"):
        require_time_zone("Mars/Base")
