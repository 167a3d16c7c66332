"""Address normalisation (USPS Pub 28) and household-to-premise matching."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.silver.addresses import match_households, normalize_address


def test_normalize_address_examples(spark) -> None:
    rows = [
        ("123 N Main Street Apt 4", "123 N MAIN ST #4"),
        ("123 N MAIN ST #4", "123 N MAIN ST #4"),
        ("123 north main st., unit 4", "123 N MAIN ST #4"),
        ("55 West Oak Avenue, Suite 200", "55 W OAK AVE #200"),
        ("9 Elm St # 3B", "9 ELM ST #3B"),
        ("5 Pine Road Apt #2", "5 PINE RD #2"),  # PINE is the street name, not the suffix
        ("100 Main Street North", "100 MAIN ST N"),
        ("7 Court Street", "7 COURT ST"),
        (None, None),
    ]
    df = spark.createDataFrame(rows, "address string, expected string")
    got = df.select("address", normalize_address(F.col("address")).alias("normalized"))
    expected = df.select("address", F.col("expected").alias("normalized"))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_same_home_written_two_ways_is_equal(spark) -> None:
    df = spark.createDataFrame([("123 N Main Street Apt 4", "123 N MAIN ST #4")], "a string, b string")
    row = df.select((normalize_address(F.col("a")) == normalize_address(F.col("b"))).alias("same")).first()
    assert row["same"] is True


def test_match_households_exact_ambiguous_unmatched(spark) -> None:
    households = spark.createDataFrame(
        [
            ("H1", "123 N MAIN ST #4", "60601"),
            ("H2", "123 N MAIN ST #4", "60699"),  # right street, other zip
            ("H3", "9 ELM ST", "60601"),  # two premises share it
            ("H4", None, "60601"),
        ],
        "record_id string, address_normalized string, zip string",
    )
    accounts = spark.createDataFrame(
        [
            ("P1", "123 N MAIN ST #4", "60601"),
            ("P1", "123 N MAIN ST #4", "60601"),  # two accounts over time at one premise
            ("P7", "9 ELM ST", "60601"),
            ("P8", "9 ELM ST", "60601"),
        ],
        "premise_id string, address_normalized string, zip string",
    )
    got = match_households(households, accounts)
    expected = spark.createDataFrame(
        [("H1", "P1", "address_zip"), ("H2", None, "unmatched"), ("H3", None, "ambiguous"), ("H4", None, "unmatched")],
        "record_id string, premise_id string, match_method string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
