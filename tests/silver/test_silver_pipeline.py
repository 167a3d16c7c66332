"""Silver end to end on a tiny landing zone: every quarantine rule, superseding
across extracts and runs, duplicates, ambiguity, DST, completeness, pseudonyms,
scrubbing, household matching and the accounting identity.

One module fixture runs bronze + silver twice (run 2 brings a correction and a
late-arriving older extract) to keep the number of Delta commits low.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from conftest import TEST_KEY, TEST_TZ
from pyspark.sql import functions as F

from ucx_spark.contract import RULES
from ucx_spark.errors import DataError
from ucx_spark.identity import pseudonym_py
from ucx_spark.io.delta import table_path
from ucx_spark.pipelines import accounting, bronze, silver

ACC1 = "accounts_20240101T000000Z.csv"
HH1 = "households_20240101T000000Z.csv"
AMI1 = "ami_20240310T120000Z.csv"
AMI2 = "ami_20240311T120000Z.csv"
AMI_MISSING = "ami_20240312T120000Z_nq.csv"
AMI3 = "ami_20240313T120000Z.csv"  # run 2: correction
AMI0 = "ami_20240309T000000Z.csv"  # run 2: late-arriving older extract
CON1 = "contacts_20240102T000000Z.csv"

FILES_RUN1 = {
    ("accounts", ACC1): (
        "account_id,customer_id,premise_id,meter_id,customer_name,service_address,city,state,zip,"
        "customer_class,rate_plan,weather_station_id,start_date,end_date,email,phone\n"
        "A1,C1,P1,M1,John Smith,123 N Main Street Apt 4,Chicago,IL,60601,RES,R1,W1,2020-01-01,,john@example.com,312-555-0100\n"
        "A2,C2,P2,M2,Ann Lee,9 Elm St,Chicago,IL,6060,RES,R1,W1,2020-01-01,,,\n"
        "A3,C3,P3,M3,Bob Ray,1 Oak Ave,Chicago,IL,60602,RES,R1,W1,2020-13-01,,,\n"
        "A4,,P4,M4,Cy Dee,2 Oak Ave,Chicago,IL,60602,RES,R1,W1,2020-01-01,,,\n"
        'A5,C5,P5,M5,Eve Ng,"5 Pine Rd, Unit 2",Chicago,IL,60603,COM,R2,W1,2021-05-01,,,\n'
        "A6,C6\n"
    ),
    ("households", HH1): (
        "record_id,address_line,city,state,zip,household_size\n"
        "H1,123 N MAIN ST #4,Chicago,IL,60601,3\n"
        "H2,5 Pine Road # 2,Chicago,IL,60603,2\n"
        "H3,77 Nowhere Blvd,Chicago,IL,60601,\n"
        "H4,8 Oak Ln,Chicago,IL,60601,zero\n"
    ),
    ("ami", AMI1): (
        "meter_id,interval_start,interval_minutes,kwh,quality\n"
        "M1,2024-03-10T00:00:00-06:00,15,1.0,A\n"  # 1 superseded by AMI2
        "M1,2024-03-10T00:15:00-06:00,15,2.0,A\n"  # 2 current
        "M1,2024-03-10T00:15:00-06:00,15,2.0,A\n"  # 3 identical copy: superseded
        "M1,2024-03-10T00:30:00-06:00,15,3.0,A\n"  # 4 stands: AMI2 is ambiguous for this key
        "M1,2024-03-10 02:30:00,15,1,A\n"  # 5 DST gap
        "M1,2024-11-03 01:30:00,15,1,A\n"  # 6 DST overlap
        "M1,2024-03-10T00:45:00-0600,15,1,A\n"  # 7 bad offset
        "M1,2024-03-10T01:00:00-06:00,15,NaN,A\n"  # 8
        "M1,2024-03-10T01:15:00-06:00,10,1,A\n"  # 9
        "M1,2024-03-10T01:30:00-06:00,15,1.0,M\n"  # 10
        "M9,2024-03-10T01:45:00-06:00,15,1,A\n"  # 11
        "M1,2024-03-10T02:00:00-06:00,15,,M\n"  # 12 current, missing interval
        ",,,,\n"  # 13 all empty
    ),
    ("ami", AMI2): (
        "interval_start,meter_id,quality,kwh,interval_minutes\n"  # column order is free
        "2024-03-10T06:00:00z,M1,A,1.1,15\n"  # same key as AMI1 row 1 (UTC spelling)
        "2024-03-10T00:30:00-06:00,M1,A,3.5,15\n"
        "2024-03-10T00:30:00-06:00,M1,A,3.6,15\n"
    ),
    ("ami", AMI_MISSING): "meter_id,interval_start,interval_minutes,kwh\nM1,2024-03-10T03:00:00-06:00,15,1\n",
    ("contacts", CON1): (
        "contact_id,account_id,started_at,channel,reason,handle_seconds,first_contact_resolution,transcript\n"
        'K1,A1,2024-01-02T10:00:00Z,phone,billing,60,TRUE,"This is John Smith, call me at (312) 555-0100 '
        'or john@example.com; thanks, Mr. SMITH"\n'
        "K2,A1,2024-01-02T10:05:00Z,chat,billing,30,maybe,\n"
        "K3,A2,2024-01-02T10:06:00Z,chat,billing,30,false,\n"
        "K4,A5,2024-01-02T11:00:00Z,email,other,,,\n"
    ),
}
FILES_RUN2 = {
    ("ami", AMI3): "meter_id,interval_start,interval_minutes,kwh,quality\nM1,2024-03-10T00:00:00-06:00,15,1.2,E\n",
    ("ami", AMI0): "meter_id,interval_start,interval_minutes,kwh,quality\nM1,2024-03-10T00:15:00-06:00,15,9.9,A\n",
}


def write_landing(landing: Path, files: dict[tuple[str, str], str]) -> None:
    for (feed, name), text in files.items():
        (landing / feed).mkdir(parents=True, exist_ok=True)
        (landing / feed / name).write_text(text)


def run_all(spark, landing: Path, warehouse: Path, run_id: str) -> silver.SilverResult:
    bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id=run_id)
    return silver.run(spark, warehouse=str(warehouse), run_id=run_id, time_zone=TEST_TZ, pseudonym_key=TEST_KEY)


def read(spark, warehouse: Path, layer: str, table: str):
    return spark.read.format("delta").load(table_path(warehouse, layer, table))


def ami_current(spark, warehouse: Path):
    return read(spark, warehouse, "silver", "ami").select(
        "meter_id", F.col("interval_start").cast("string").alias("interval_start_utc"), "kwh", "quality", "_source_file"
    )


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("silver")
    landing, warehouse = root / "landing", root / "warehouse"
    write_landing(landing, FILES_RUN1)
    first = run_all(spark, landing, warehouse, "run-1")
    after_first = sorted(tuple(r) for r in ami_current(spark, warehouse).collect())
    write_landing(landing, FILES_RUN2)
    second = run_all(spark, landing, warehouse, "run-2")
    return {"warehouse": warehouse, "first": first, "second": second, "ami_after_first": after_first}


EXPECTED_QUARANTINE = [
    ("accounts", ACC1, 2, "out_of_domain"),
    ("accounts", ACC1, 3, "bad_date"),
    ("accounts", ACC1, 4, "missing_required"),
    ("accounts", ACC1, 6, "wrong_field_count"),
    ("households", HH1, 4, "bad_number"),
    ("ami", AMI1, 5, "nonexistent_local_time"),
    ("ami", AMI1, 6, "ambiguous_local_time"),
    ("ami", AMI1, 7, "bad_timestamp"),
    ("ami", AMI1, 8, "bad_number"),
    ("ami", AMI1, 9, "out_of_domain"),
    ("ami", AMI1, 10, "kwh_quality_mismatch"),
    ("ami", AMI1, 11, "unknown_reference"),
    ("ami", AMI1, 13, "missing_required"),
    ("ami", AMI2, 2, "ambiguous_key"),
    ("ami", AMI2, 3, "ambiguous_key"),
    ("ami", AMI_MISSING, 1, "file_rejected"),
    ("contacts", CON1, 2, "bad_boolean"),
    ("contacts", CON1, 3, "unknown_reference"),
]


def _quarantine(spark, warehouse: Path):
    parts = [
        read(spark, warehouse, "quarantine", feed).select(
            F.lit(feed).alias("feed"), "_source_file", "_row_number", "rule"
        )
        for feed in ("accounts", "households", "ami", "contacts")
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def test_quarantine_holds_every_bad_row_with_its_first_rule(spark, scenario) -> None:
    got = _quarantine(spark, scenario["warehouse"])
    expected = spark.createDataFrame(EXPECTED_QUARANTINE, got.schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_lands_in_quarantine(scenario, rule: str) -> None:
    assert any(r[3] == rule for r in EXPECTED_QUARANTINE)  # the scenario covers the rule ...
    got = scenario["first"].feeds
    assert any(dict(f.rules).get(rule, 0) > 0 for f in got)  # ... and run 1 quarantined it


def test_quarantine_keeps_raw_values_detail_and_run(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "quarantine", "ami").filter(F.col("_row_number").isin(7, 13)).filter(
        F.col("_source_file") == AMI1
    ).select("meter_id", "interval_start", "kwh", "rule", "detail", "_run_id")
    expected = spark.createDataFrame(
        [
            ("M1", "2024-03-10T00:45:00-0600", "1", "bad_timestamp",
             "interval_start='2024-03-10T00:45:00-0600' is not an RFC 3339 timestamp", "run-1"),
            (None, None, None, "missing_required", "meter_id is empty", "run-1"),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_superseding_duplicates_and_ambiguity_after_run_1(scenario) -> None:
    # AMI2 supersedes row 1 (1.0 -> 1.1); the copy of row 2 is one row; AMI2's
    # ambiguous rows leave AMI1's 3.0 standing.
    assert scenario["ami_after_first"] == [
        ("M1", "2024-03-10 06:00:00", 1.1, "A", AMI2),
        ("M1", "2024-03-10 06:15:00", 2.0, "A", AMI1),
        ("M1", "2024-03-10 06:30:00", 3.0, "A", AMI1),
        ("M1", "2024-03-10 08:00:00", None, "M", AMI1),
    ]


def test_later_run_correction_wins_and_late_older_extract_does_not(spark, scenario) -> None:
    got = ami_current(spark, scenario["warehouse"])
    expected = spark.createDataFrame(
        [
            ("M1", "2024-03-10 06:00:00", 1.2, "E", AMI3),
            ("M1", "2024-03-10 06:15:00", 2.0, "A", AMI1),
            ("M1", "2024-03-10 06:30:00", 3.0, "A", AMI1),
            ("M1", "2024-03-10 08:00:00", None, "M", AMI1),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_superseded_rows_are_logged(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "_superseded").select(
        "feed", "_source_file", "_row_number", "superseded_by_file", "superseded_by_row"
    )
    expected = spark.createDataFrame(
        [
            ("ami", AMI1, 3, AMI1, 2),  # identical copy
            ("ami", AMI1, 1, AMI2, 1),  # later extract, run 1
            ("ami", AMI2, 1, AMI3, 1),  # correction, run 2
            ("ami", AMI0, 1, AMI1, 2),  # late-arriving older extract
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_accounting_identity_holds(spark, scenario) -> None:
    got = accounting.check_accounting(spark, str(scenario["warehouse"])).filter(F.col("landed") > 0)
    expected = spark.createDataFrame(
        [
            ("accounts", 6, 2, 0, 4, True),
            ("households", 4, 3, 0, 1, True),
            ("ami", 19, 4, 4, 11, True),
            ("contacts", 4, 2, 0, 2, True),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_accounting_names_an_unbalanced_feed(spark, monkeypatch) -> None:
    monkeypatch.setattr(accounting, "feed_counts", lambda spark, wh: [("ami", 10, 4, 3, 2), ("bills", 0, 0, 0, 0)])
    with pytest.raises(DataError, match=r"ami: landed 10 != current 4 \+ superseded 3 \+ quarantined 2"):
        accounting.check_accounting(spark, "unused")


def test_daily_completeness_uses_local_days(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "ami_daily").select(
        "meter_id", "local_date", "interval_minutes", "expected_intervals", "present_intervals", "completeness"
    )
    expected = spark.createDataFrame(
        [("M1", __import__("datetime").date(2024, 3, 10), 15, 92, 3, 3 / 92)], got.schema
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_ami_local_time_and_meter_key(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "ami").select(
        F.col("interval_start").cast("string").alias("utc"), F.col("local_date").cast("string").alias("d"),
        "local_hour", "meter_key",
    )
    mk = pseudonym_py("M1", key=TEST_KEY, namespace="meter")
    expected = spark.createDataFrame(
        [
            ("2024-03-10 06:00:00", "2024-03-10", 0, mk),
            ("2024-03-10 06:15:00", "2024-03-10", 0, mk),
            ("2024-03-10 06:30:00", "2024-03-10", 0, mk),
            ("2024-03-10 08:00:00", "2024-03-10", 3, mk),  # 02:00 CST does not exist: 03:00 CDT
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_accounts_pseudonyms_and_normalized_address(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "accounts").select(
        "account_id", "household_id", "meter_key", "address_normalized", "zip"
    )
    expected = spark.createDataFrame(
        [
            ("A1", pseudonym_py("A1", key=TEST_KEY, namespace="account"),
             pseudonym_py("M1", key=TEST_KEY, namespace="meter"), "123 N MAIN ST #4", "60601"),
            ("A5", pseudonym_py("A5", key=TEST_KEY, namespace="account"),
             pseudonym_py("M5", key=TEST_KEY, namespace="meter"), "5 PINE RD #2", "60603"),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_transcripts_are_scrubbed_and_typed(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "contacts").select(
        "contact_id", "household_id", "handle_seconds", "first_contact_resolution", "transcript"
    )
    expected = spark.createDataFrame(
        [
            ("K1", pseudonym_py("A1", key=TEST_KEY, namespace="account"), 60, True,
             "This is [NAME], call me at [PHONE] or [EMAIL]; thanks, Mr. [NAME]"),
            ("K4", pseudonym_py("A5", key=TEST_KEY, namespace="account"), None, None, None),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_household_matches_and_rate(spark, scenario) -> None:
    got = read(spark, scenario["warehouse"], "silver", "household_matches")
    expected = spark.createDataFrame(
        [("H1", "P1", "address_zip"), ("H2", "P5", "address_zip"), ("H3", None, "unmatched")], got.schema
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    first, second = scenario["first"], scenario["second"]
    assert (first.households_total, first.households_matched) == (3, 2)
    assert first.household_match_rate == pytest.approx(2 / 3)
    assert second.household_match_rate == pytest.approx(2 / 3)


def test_second_run_processes_only_new_files(scenario) -> None:
    second = scenario["second"]
    assert [(f.feed, f.files) for f in second.feeds] == [("ami", (AMI0, AMI3))]


def _comparable(df):
    """Without the columns that say when a run wrote a row; maps (``_extra``) as JSON (sortable)."""
    from pyspark.sql.types import MapType

    df = df.drop("processed_at", "recorded_at")
    return df.select(*[F.to_json(F.col(f.name)).alias(f.name) if isinstance(f.dataType, MapType) else F.col(f.name)
                       for f in df.schema.fields])


def test_a_batch_resolved_in_one_ranked_plan_equals_one_whose_repeated_keys_are_found_first(
    spark, scenario, tmp_path, monkeypatch
) -> None:
    """Small batches (all of this module's) are classified, judged for ambiguity and ranked in one
    plan; larger ones find their repeated keys first and rank only those. The same two runs with
    every batch taken as large give every silver, quarantine and bookkeeping table row for row."""
    monkeypatch.setattr(silver, "SMALL_BATCH_ROWS", 0)
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    write_landing(landing, FILES_RUN1)
    first = run_all(spark, landing, warehouse, "run-1")
    write_landing(landing, FILES_RUN2)
    second = run_all(spark, landing, warehouse, "run-2")
    assert (first.feeds, second.feeds) == (scenario["first"].feeds, scenario["second"].feeds)
    compared = 0
    for layer in ("silver", "quarantine"):
        for table in sorted(p.name for p in (scenario["warehouse"] / layer).iterdir() if p.is_dir()):
            small, large = (_comparable(read(spark, wh, layer, table)) for wh in (scenario["warehouse"], warehouse))
            assert small.count() > 0, (layer, table)
            assert_df_equality(small, large, ignore_row_order=True, ignore_nullable=True)
            compared += 1
    assert compared >= 10
