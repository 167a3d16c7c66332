"""Bronze: landing discovery, raw CSV reading, rejected files, exactly-once ingestion."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ucx_spark.io.delta import table_path, table_version
from ucx_spark.io.landing import discover
from ucx_spark.pipelines import bronze

QUOTED = 'a, ""quoted""\nnote'  # RFC 4180: comma, doubled quote and newline inside quotes


def _landing(root: Path) -> Path:
    landing = root / "landing"
    census = landing / "census"
    (census / "_tmp").mkdir(parents=True)
    (census / "_tmp" / "census_20230101T000000Z.csv").write_text("zip\n1\n")  # ignored folder
    (census / "census_20240101T000000Z.csv").write_text(
        "ZIP,Population,Notes,median_household_income\n"
        f'60601,100,"{QUOTED}",50000\n'
        "60602,,,\n"
        "60603,5\n"
    )
    with gzip.open(census / "census_20240102T000000Z_b.csv.gz", "wt") as fh:
        fh.write("population,zip\n7,60604\n")
    (census / "census_20240103T000000Z_x.csv").write_text("population\n8\n9\n")  # no zip
    (census / "census_20240104T000000Z.csv.gz").write_text("zip\n60605\n")  # not gzip
    (census / "census_20240105T000000Z.csv").write_bytes(bytes(range(256)) * 4)  # not text
    (census / "census_20240106T000000Z.csv").write_text("")  # no header
    (census / "notes.txt").write_text("zip\n1\n")
    (census / "weather_20240101T000000Z.csv").write_text("zip\n1\n")  # another feed's name
    return landing


def test_discover_orders_by_extract_time_then_name(tmp_path: Path) -> None:
    folder = tmp_path / "ami"
    folder.mkdir()
    for name in ("ami_20240102T000000Z.csv", "ami_20240101T000000Z_b.csv.gz", "ami_20240101T000000Z.csv", "AMI.csv"):
        (folder / name).write_text("x\n")
    found = discover(tmp_path)
    assert [f.name for f in found.files] == [
        "ami_20240101T000000Z.csv",
        "ami_20240101T000000Z_b.csv.gz",
        "ami_20240102T000000Z.csv",
    ]
    assert found.files[0].extracted_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert [(r.name, r.reason) for r in found.rejected] == [("AMI.csv", "bad_file_name")]


def test_a_folder_the_contract_does_not_know_is_reported_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "ami").mkdir()
    (tmp_path / "ami" / "ami_20240101T000000Z.csv").write_text("x\n")
    (tmp_path / "bill").mkdir()  # a typo of "bills"
    (tmp_path / "bill" / "bills_20240101T000000Z.csv").write_text("x\n")
    (tmp_path / "_archive").mkdir()  # bookkeeping folders stay ignored
    (tmp_path / "_archive" / "old.csv").write_text("x\n")
    found = discover(tmp_path)
    assert [f.name for f in found.files] == ["ami_20240101T000000Z.csv"]
    assert [(r.feed, r.name, r.reason) for r in found.rejected] == [("bill", "bills_20240101T000000Z.csv", "unknown_feed")]


def test_discover_names_a_missing_landing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        discover(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def bronze_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("bronze")
    landing = _landing(root)
    warehouse = root / "warehouse"
    first = bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id="run-1")
    return landing, warehouse, first


def test_bronze_rows_strings_extra_malformed_and_rejected_file(spark, bronze_run) -> None:
    _, warehouse, _ = bronze_run
    got = spark.read.format("delta").load(table_path(warehouse, "bronze", "census")).select(
        "zip", "median_household_income", "pct_renter", "population",
        F.to_json("_extra").alias("extra"), "_malformed", "_file_rejected", "_source_file", "_row_number",
        F.col("_extracted_at").cast("string").alias("extracted_at"), "_run_id",
    )
    f1, f2, f3 = "census_20240101T000000Z.csv", "census_20240102T000000Z_b.csv.gz", "census_20240103T000000Z_x.csv"
    rows = [
        ("60601", "50000", None, "100", '{"notes":"a, \\"quoted\\"\\nnote"}', False, None, f1, 1, "2024-01-01 00:00:00", "run-1"),
        ("60602", None, None, None, '{"notes":null}', False, None, f1, 2, "2024-01-01 00:00:00", "run-1"),
        ("60603", None, None, "5", '{"notes":null}', True, None, f1, 3, "2024-01-01 00:00:00", "run-1"),
        ("60604", None, None, "7", "{}", False, None, f2, 1, "2024-01-02 00:00:00", "run-1"),
        (None, None, None, "8", "{}", False, "missing_column:zip", f3, 1, "2024-01-03 00:00:00", "run-1"),
        (None, None, None, "9", "{}", False, "missing_column:zip", f3, 2, "2024-01-03 00:00:00", "run-1"),
    ]
    expected = spark.createDataFrame(rows, got.schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_rejected_files_are_recorded_with_reason(spark, bronze_run) -> None:
    _, warehouse, result = bronze_run
    got = spark.read.format("delta").load(table_path(warehouse, "quarantine", "_files")).select(
        "feed", "file", "reason", "landed_rows", "run_id"
    )
    rows = [
        ("census", "census_20240103T000000Z_x.csv", "missing_column:zip", 2, "run-1"),
        ("census", "census_20240104T000000Z.csv.gz", "unreadable:not_gzip", 0, "run-1"),
        ("census", "census_20240105T000000Z.csv", "unreadable:not_text", 0, "run-1"),
        ("census", "census_20240106T000000Z.csv", "unreadable:no_header", 0, "run-1"),
        ("census", "notes.txt", "bad_file_name", 0, "run-1"),
        ("census", "weather_20240101T000000Z.csv", "bad_file_name", 0, "run-1"),
    ]
    assert_df_equality(got, spark.createDataFrame(rows, got.schema), ignore_row_order=True, ignore_nullable=True)
    assert result.rows_landed == 6
    assert result.ingested[0].files == (
        "census_20240101T000000Z.csv", "census_20240102T000000Z_b.csv.gz", "census_20240103T000000Z_x.csv",
    )


def test_unknown_columns_are_kept_and_reported_once_per_file(bronze_run) -> None:
    _, _, first = bronze_run
    census = next(f for f in first.ingested if f.feed == "census")
    assert census.extra_columns == (("census_20240101T000000Z.csv", ("notes",)),)
    assert "census/census_20240101T000000Z.csv (notes)" in first.summary()


def test_second_run_ingests_nothing_and_commits_nothing(spark, bronze_run) -> None:
    landing, warehouse, _ = bronze_run
    bronze_path = table_path(warehouse, "bronze", "census")
    files_path = table_path(warehouse, "quarantine", "_files")
    before = (table_version(spark, bronze_path), table_version(spark, files_path))
    again = bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id="run-2")
    assert again.ingested == () and again.rejected == ()
    assert (table_version(spark, bronze_path), table_version(spark, files_path)) == before


def test_a_file_replaced_after_ingest_is_a_rejected_resend_and_in_flight_files_wait(spark, bronze_run) -> None:
    """After run-2 (nothing new): one ingested extract is rewritten with other bytes under the same
    name, one copied over with the same bytes (a new mtime only), and a file still being written
    sits under a temporary name. The rewrite is reported once and loads nothing; the copy is not a
    change; the temporary file is neither ingested nor rejected until it is renamed."""
    import os
    import time

    landing, warehouse, _ = bronze_run
    census = Path(landing) / "census"
    bronze_path = table_path(warehouse, "bronze", "census")
    rows_before = spark.read.format("delta").load(bronze_path).count()
    # other bytes of the same size (a new mtime): only the content hash tells
    replaced = census / "census_20240101T000000Z.csv"
    original = replaced.read_bytes()
    changed = original.translate(bytes.maketrans(b"0123456789", b"1234567890"))
    assert changed != original and len(changed) == len(original)
    time.sleep(0.01)
    replaced.write_bytes(changed)
    same = census / "census_20240102T000000Z_b.csv.gz"
    data = same.read_bytes()
    time.sleep(0.01)
    same.write_bytes(data)  # same bytes, new mtime
    os.utime(same)
    (census / "census_20240201T000000Z.csv.part").write_text("zip,population\n606")  # still being written
    third = bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id="run-3")
    assert third.ingested == ()
    assert [(r.feed, r.name, r.reason) for r in third.rejected] == [
        ("census", "census_20240101T000000Z.csv", "replaced_after_ingest")]
    assert spark.read.format("delta").load(bronze_path).count() == rows_before  # nothing loaded twice
    fourth = bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id="run-4")
    assert fourth.rejected == () and fourth.ingested == ()  # reported once
    (census / "census_20240201T000000Z.csv.part").rename(census / "census_20240201T000000Z.csv")
    (census / "census_20240201T000000Z.csv").write_text("zip,population\n60606,1\n")
    fifth = bronze.run(spark, landing=str(landing), warehouse=str(warehouse), run_id="run-5")
    assert [f.files for f in fifth.ingested] == [("census_20240201T000000Z.csv",)]
