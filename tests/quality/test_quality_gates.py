"""Quality gates end to end on tiny DataFrames: real GX Core validations, Delta tables, audit, Data Docs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.errors import DataError
from ucx_spark.io.delta import overwrite_table, read_table, table_path, table_version
from ucx_spark.quality import (
    GateResult,
    QualityRecord,
    Thresholds,
    publish_if_passed,
    quality_context,
    read_results,
    record_results,
    row_condition,
    split_rows,
    summary,
    validate,
)
from ucx_spark.quality.audit import data_docs_index, previous_row_count
from ucx_spark.quality.suites import ExpectationSpec, Suite, dump_suite

H1, H2 = "a" * 32, "b" * 32
M1, M2 = "1" * 32, "2" * 32
USAGE_DDL = (
    "meter_key string, household_id string, local_date date, kwh double, kwh_on_peak double, peak_kw double, "
    "intervals_actual long, intervals_estimated long, intervals_missing long"
)
KPI_DDL = "month date, segment_type string, segment_value string, kpi string, value double, n long"
D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quality-wh")


@pytest.fixture(scope="module")
def gx_context(warehouse: Path):
    """One file-mode context for the module: GX's first checkpoint costs seconds."""
    return quality_context(warehouse)


def usage_df(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, USAGE_DDL)


def good_usage(spark: SparkSession) -> DataFrame:
    return usage_df(spark, [
        (M1, H1, D1, 10.0, 2.0, 1.5, 24, 0, 0),
        (M1, H1, D2, 11.0, 2.5, 1.4, 23, 1, 0),
        (M2, H2, D1, 5.0, 1.0, 0.9, 24, 0, 0),
        (M2, H2, D2, 6.0, 1.1, 0.8, 24, 0, 0),
    ])


def accounts_ref(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("A1", H1, "MTR1", date(2020, 1, 1), None), ("A2", H2, "MTR2", date(2020, 1, 1), None)],
        "account_id string, household_id string, meter_id string, start_date date, end_date date",
    )


def completeness_from_intervals(spark: SparkSession, *, drop_every: int | None) -> DataFrame:
    """silver/ami_daily completeness columns of 2 meters x 5 days of hourly intervals (days
    starting at midnight UTC), every ``drop_every``-th interval missing (5 -> 20% missing)."""
    intervals_df = (
        spark.range(2 * 5 * 24)
        .select(
            F.when(F.col("id") < 120, F.lit("MTR1")).otherwise(F.lit("MTR2")).alias("meter_id"),
            F.date_add(F.lit(D1), ((F.col("id") % 120) / 24).cast("int")).alias("local_date"),
            F.col("id"),
        )
    )
    if drop_every:
        intervals_df = intervals_df.filter(F.col("id") % drop_every != 0)
    day_start = F.col("local_date").cast("timestamp")
    return (
        intervals_df.groupBy("meter_id", "local_date")
        .agg(F.count(F.lit(1)).cast("int").alias("present_intervals"))
        .select(
            "meter_id", "local_date", F.lit(60).alias("interval_minutes"), F.lit(24).alias("expected_intervals"),
            "present_intervals", (F.col("present_intervals") / 24.0).alias("completeness"),
            day_start.alias("day_start"), F.date_add("local_date", 1).cast("timestamp").alias("day_end"),
            day_start.alias("first_interval_start"),
            F.date_add("local_date", 1).cast("timestamp").alias("last_interval_end"),
        )
    )


def publish_usage(spark: SparkSession, warehouse: Path, gx_context, candidate_df: DataFrame, *, run_id: str,
                  completeness_df: DataFrame, echo: Callable[[str], None] = lambda _m: None) -> GateResult:
    return publish_if_passed(
        spark, candidate_df, lambda df: overwrite_table(df, warehouse, "gold", "meter_daily_usage"),
        layer="gold", table="meter_daily_usage", run_id=run_id, warehouse=warehouse, context=gx_context,
        references={"silver.accounts": accounts_ref(spark), "silver.ami_daily": completeness_df},
        thresholds=Thresholds(ami_min_meters_per_day=2),  # a fleet of two meters, judged per day
        echo=echo,
    )


def audit_rows(spark: SparkSession, warehouse: Path, run_id: str) -> DataFrame:
    results_df = read_results(spark, warehouse)
    assert results_df is not None
    return results_df.filter(F.col("run_id") == run_id)


def test_ami_completeness_gap_fails_closed_and_gold_keeps_its_version(spark, warehouse, gx_context):
    published_df = good_usage(spark)
    path = overwrite_table(published_df, warehouse, "gold", "meter_daily_usage")
    before = table_version(spark, path)
    candidate_df = good_usage(spark).withColumn("kwh", F.col("kwh") * 2)

    with pytest.raises(DataError) as err:
        publish_usage(spark, warehouse, gx_context, candidate_df, run_id="run-gap",
                      completeness_df=completeness_from_intervals(spark, drop_every=5))

    message = str(err.value)
    assert "gold.meter_daily_usage" in message and "ami_completeness" in message
    assert ("5 local days judged (10 meter-days expected, 0 sent nothing), 5 below 0.9: "
            "2026-01-01 0.7917 (2 meters, 0 sent nothing)") in message
    assert table_version(spark, path) == before
    assert_df_equality(read_table(spark, warehouse, "gold", "meter_daily_usage"), published_df,
                       ignore_row_order=True, ignore_nullable=True)
    # The failure is on record, with everything else that was checked.
    got = audit_rows(spark, warehouse, "run-gap").filter(~F.col("success")).select(
        "table", "expectation_id", "severity", "unexpected_count")
    expected = spark.createDataFrame([("meter_daily_usage", "ami_completeness", "critical", 5)],
                                     "table string, expectation_id string, severity string, unexpected_count long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_duplicate_keys_in_a_gold_candidate_fail_closed(spark, warehouse, gx_context):
    kpis = [(D1, "all", "all", "nps", 12.5, 40), (D1, "all", "all", "fcr", 0.7, 40)]
    path = overwrite_table(spark.createDataFrame(kpis, KPI_DDL), warehouse, "gold", "cx_kpis")
    before = table_version(spark, path)
    candidate_df = spark.createDataFrame([*kpis, (D1, "all", "all", "fcr", 0.8, 41)], KPI_DDL)

    with pytest.raises(DataError, match=r"gold\.cx_kpis.*key_unique \(expect_compound_columns_to_be_unique on "
                                        r"month,segment_type,segment_value,kpi\): observed 2 of 3 rows unexpected"):
        publish_if_passed(
            spark, candidate_df, lambda df: overwrite_table(df, warehouse, "gold", "cx_kpis"),
            layer="gold", table="cx_kpis", run_id="run-dup", warehouse=warehouse, context=gx_context,
            echo=lambda _m: None,
        )
    assert table_version(spark, path) == before


def test_warning_only_failure_publishes_and_records_the_warning(spark, warehouse, gx_context):
    path = table_path(warehouse, "gold", "meter_daily_usage")
    before = table_version(spark, path)
    assert before is not None
    candidate_df = usage_df(spark, [
        (M1, H1, D1, 10.0, 2.0, 1.5, 24, 0, 0),
        (M1, None, D2, 11.0, 2.5, 1.4, 23, 1, 0),  # vacant day: allowed, but 25% of rows is a warning
        (M2, H2, D1, 5.0, 1.0, 0.9, 24, 0, 0),
        (M2, H2, D2, 6.0, 1.1, 0.8, 24, 0, 0),
    ])
    shown: list[str] = []

    result = publish_usage(spark, warehouse, gx_context, candidate_df, run_id="run-warn",
                           completeness_df=completeness_from_intervals(spark, drop_every=None), echo=shown.append)

    assert result.passed and [r.expectation_id for r in result.warnings] == ["not_null_household_id"]
    assert table_version(spark, path) == before + 1
    assert_df_equality(read_table(spark, warehouse, "gold", "meter_daily_usage"), candidate_df,
                       ignore_row_order=True, ignore_nullable=True)
    assert "not_null_household_id" in shown[0] and "1 of 4 rows unexpected" in shown[0]
    got = audit_rows(spark, warehouse, "run-warn").filter(~F.col("success")).select(
        "layer", "table", "expectation_id", "severity", "observed_value", "unexpected_count", "row_count")
    expected = spark.createDataFrame(
        [("gold", "meter_daily_usage", "not_null_household_id", "warning", "1 of 4 rows unexpected (25.00%)", 1, 4)],
        "layer string, table string, expectation_id string, severity string, observed_value string, "
        "unexpected_count long, row_count long",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # Every check of the suite is on record, and the run left a browsable Data Docs site.
    assert audit_rows(spark, warehouse, "run-warn").count() == len(result.records) == 13
    index = data_docs_index(warehouse)
    assert index.is_file() and index.parent == Path(warehouse).resolve() / "_quality" / "data_docs"
    text = summary(spark, warehouse)
    assert "run run-warn" in text and "[warning] gold.meter_daily_usage not_null_household_id" in text
    assert str(index) in text and "not built yet" not in text


def test_audit_is_idempotent_per_run_and_feeds_row_count_drift(spark, tmp_path):
    def result(run_id: str, rows: int) -> GateResult:
        record = QualityRecord(run_id, "silver", "bills", "silver.bills", "key_unique",
                               "expect_column_values_to_be_unique", "bill_id", "critical", True,
                               f"0 of {rows} rows unexpected", 0, rows, datetime.now(UTC))
        return GateResult(run_id, "silver", "bills", "silver.bills", rows, (record,))

    import time
    from dataclasses import replace

    record_results(spark, tmp_path, result("r1", 100_000))  # the first full load
    for run_id, rows in (("r2", 30), ("r3", 34), ("r4", 90)):  # then daily batches (the last a big one)
        time.sleep(0.01)
        record_results(spark, tmp_path, result(run_id, rows))
    record_results(spark, tmp_path, result("r4", 90))  # a retried step replaces its rows
    got = read_results(spark, tmp_path).select("run_id", "expectation_id", "row_count")
    expected = spark.createDataFrame(
        [("r1", "key_unique", 100_000), ("r2", "key_unique", 30), ("r3", "key_unique", 34), ("r4", "key_unique", 90)],
        "run_id string, expectation_id string, row_count long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # a daily batch is compared with the daily batches before it, never with the first full load
    previous = previous_row_count(spark, tmp_path, layer="silver", table="bills", run_id="r5")
    assert previous is not None and (previous.run_id, previous.row_count, previous.batches) == ("r4", 34, 3)  # the median
    from ucx_spark.quality.checks import row_count_drift

    assert row_count_drift(31, previous, max_change=0.5).success  # -9% of the median (-66% of the last batch)
    assert not row_count_drift(60, previous, max_change=0.5).success  # +76%
    assert "median of the last 3 batches" in row_count_drift(31, previous, max_change=0.5).observed_value
    # a table whose only earlier run is its first load has nothing comparable: no warning
    first_only = result("r1", 5_000_000)
    record_results(spark, tmp_path, GateResult("r1", "silver", "ami", "silver.ami", 5_000_000, tuple(
        replace(r, table="ami", suite="silver.ami") for r in first_only.records)))
    assert previous_row_count(spark, tmp_path, layer="silver", table="ami", run_id="r6") is None


ROW_SPECS = (
    ExpectationSpec("not_null_kpi", "expect_column_values_to_not_be_null", "critical", {"column": "kpi"}),
    ExpectationSpec("in_set_segment", "expect_column_values_to_be_in_set", "critical",
                    {"column": "segment_type", "value_set": ["all", "zip"]}),
    ExpectationSpec("range_nps", "expect_column_values_to_be_between", "critical",
                    {"column": "value", "min_value": -100.0, "max_value": 100.0, "row_condition": "kpi = 'nps'"}),
    ExpectationSpec("range_share", "expect_column_values_to_be_between", "warning",
                    {"column": "value", "min_value": 0.0, "max_value": 1.0, "strict_max": True,
                     "row_condition": "kpi IN ('fcr')"}),
    ExpectationSpec("pattern_value", "expect_column_values_to_match_regex", "warning",
                    {"column": "segment_value", "regex": "^[a-z0-9]+$"}),
)


def test_row_condition_splits_rows_as_the_expectation_judges_them(spark, tmp_path, gx_context):
    rows = [
        (D1, "all", "all", "nps", 10.0, 1),  # good
        (D1, "all", "all", "nps", 150.0, 1),  # range_nps
        (D1, "zip", "75001", "fcr", 1.0, 1),  # range_share (strict max)
        (D1, "zip", "750 01", "fcr", 0.5, 1),  # pattern_value
        (D1, "rate", "all", None, 0.5, 1),  # not_null_kpi, in_set_segment
        (D1, None, None, "fcr", None, 1),  # nulls are judged by not-null rules only: good
        (D1, "all", "all", "ces", 500.0, 1),  # outside every row_condition: good
    ]
    df = spark.createDataFrame(rows, KPI_DDL)
    good_df, bad_df = split_rows(df, ROW_SPECS)

    assert_df_equality(good_df, spark.createDataFrame([rows[0], rows[5], rows[6]], KPI_DDL), ignore_row_order=True)
    expected_bad = spark.createDataFrame(
        [(r[3], r[4], ids) for r, ids in zip(rows[1:5], [["range_nps"], ["range_share"], ["pattern_value"],
                                                         ["not_null_kpi", "in_set_segment"]], strict=True)],
        "kpi string, value double, failed_expectations array<string>",
    )
    assert_df_equality(bad_df.select("kpi", "value", "failed_expectations"), expected_bad,
                       ignore_row_order=True, ignore_nullable=True)

    # GX counts the same rows as unexpected, expectation by expectation.
    (tmp_path / "gold.kpi_probe.yaml").write_text(dump_suite(Suite("gold", "kpi_probe", ROW_SPECS)))
    result = validate(spark, df, layer="gold", table="kpi_probe", run_id="run-rows", suite_dir=tmp_path,
                      context=gx_context, data_docs=False)
    for spec, record in zip(ROW_SPECS, result.records, strict=True):
        assert record.unexpected_count == df.filter(~row_condition(spec)).count(), spec.id
        assert record.success is False
    assert not result.passed and len(result.warnings) == 2
    assert yaml.safe_load((tmp_path / "gold.kpi_probe.yaml").read_text())["suite"] == "gold.kpi_probe"


def test_row_rules_computed_by_spark_agree_with_gx(spark, tmp_path, gx_context):
    """From quality.spark_row_rules_min_rows rows, row-level expectations run as one Spark aggregation:
    same verdicts, observed values and unexpected counts as GX, with and without mostly and nulls."""

    specs = (
        *ROW_SPECS,
        ExpectationSpec("mostly_in_set", "expect_column_values_to_be_in_set", "warning",
                        {"column": "segment_type", "value_set": ["all"], "mostly": 0.5}),
        ExpectationSpec("mostly_not_null", "expect_column_values_to_not_be_null", "warning",
                        {"column": "value", "mostly": 0.8, "row_condition": "kpi IS NOT NULL"}),
        ExpectationSpec("null_n", "expect_column_values_to_be_null", "critical", {"column": "n"}),
        ExpectationSpec("empty_domain", "expect_column_values_to_be_between", "critical",
                        {"column": "value", "min_value": 0.0, "row_condition": "kpi = 'none'"}),
        ExpectationSpec("all_null_domain", "expect_column_values_to_match_regex", "critical",
                        {"column": "segment_value", "regex": "^x$", "row_condition": "segment_value IS NULL"}),
    )
    rows = [
        (D1, "all", "all", "nps", 10.0, 1),
        (D1, "all", "all", "nps", 150.0, None),
        (D1, "zip", "75001", "fcr", 1.0, 1),
        (D1, "zip", "750 01", "fcr", 0.5, None),
        (D1, "rate", "all", None, 0.5, 1),
        (D1, None, None, "fcr", None, 1),
        (D1, "all", "all", "ces", 500.0, None),
    ]
    df = spark.createDataFrame(rows, KPI_DDL)
    (tmp_path / "gold.kpi_probe2.yaml").write_text(dump_suite(Suite("gold", "kpi_probe2", specs)))

    def outcomes(min_rows: int, pandas_rows: int = 0) -> list[tuple]:
        result = validate(spark, df, layer="gold", table="kpi_probe2", run_id=f"run-{min_rows}-{pandas_rows}",
                          suite_dir=tmp_path, context=gx_context, data_docs=False,
                          thresholds=Thresholds(spark_row_rules_min_rows=min_rows, pandas_max_rows=pandas_rows))
        return [(r.expectation_id, r.success, r.observed_value, r.unexpected_count) for r in result.records]

    # Spark's one aggregation, GX's Spark engine, GX's pandas engine (the small-batch path).
    by_spark, by_gx, by_gx_pandas = outcomes(0), outcomes(10**9), outcomes(10**9, pandas_rows=100)
    assert by_spark == by_gx
    assert by_gx_pandas == by_gx
    assert any(not ok for _, ok, _, _ in by_gx) and any(ok for _, ok, _, _ in by_gx)


def test_prepared_checkpoints_are_the_ones_a_small_batch_is_validated_by(spark, tmp_path):
    """quality.gates.prepare (the medallion's warm-up while bronze runs) builds exactly the
    checkpoints validate then uses: validating after it builds none, and the verdicts are those
    of a cold context."""
    from ucx_spark.pipelines.gates import Gates
    from ucx_spark.quality import gates as qgates

    (tmp_path / "gold.kpi_probe.yaml").write_text(dump_suite(Suite("gold", "kpi_probe", ROW_SPECS)))
    df = spark.createDataFrame([(D1, "all", "all", "nps", 10.0, 1), (D1, "all", "all", "nps", 150.0, 1)], KPI_DDL)
    cold = validate(spark, df, layer="gold", table="kpi_probe", run_id="run-cold", suite_dir=tmp_path,
                    context=quality_context(tmp_path / "cold"), data_docs=False)

    wh = tmp_path / "warm"
    gates = Gates(spark, str(wh), "run-warm", suite_dir=tmp_path)
    gates.warm_up(["gold", "silver"])  # silver: no suite in the folder, nothing to prepare
    gates.ready()
    built = len(qgates._CHECKPOINTS)
    warm = validate(spark, df, layer="gold", table="kpi_probe", run_id="run-warm", suite_dir=tmp_path,
                    context=quality_context(wh), data_docs=False)
    assert len(qgates._CHECKPOINTS) == built  # nothing built on the way: prepare's keys are validate's
    assert [(r.expectation_id, r.success, r.observed_value, r.unexpected_count) for r in warm.records] == [
        (r.expectation_id, r.success, r.observed_value, r.unexpected_count) for r in cold.records]
    assert any(not r.success for r in warm.records)


def test_one_context_validates_a_suite_on_spark_and_on_pandas_in_turn(spark, tmp_path):
    """A process that runs the pipeline twice (a scheduler's worker, the incremental bench) gates a
    table once as a large batch (GX on Spark, the row rules computed by Spark) and once as a small
    one (GX on pandas): the checkpoint built first must still run after the other was built (GX
    refused it: "ExpectationSuite 'bronze.probe' has changed since it has last been saved")."""
    specs = (
        ExpectationSpec("not_null_kpi", "expect_column_values_to_not_be_null", "critical", {"column": "kpi"}),
        ExpectationSpec("rows", "expect_table_row_count_to_be_between", "critical", {"min_value": 3}),
        ExpectationSpec("unique", "expect_compound_columns_to_be_unique", "warning", {"column_list": ["kpi", "n"]}),
    )
    (tmp_path / "bronze.probe.yaml").write_text(dump_suite(Suite("bronze", "probe", specs)))
    df = spark.createDataFrame([("a", 1), (None, 2)], "kpi string, n int")
    context = quality_context(tmp_path / "ctx")
    verdicts = []
    for i, (min_rows, pandas_rows) in enumerate([(0, 0), (10**9, 100), (0, 0), (10**9, 100)]):
        result = validate(spark, df, layer="bronze", table="probe", run_id=f"r{i}", suite_dir=tmp_path,
                          context=context, data_docs=True,
                          thresholds=Thresholds(spark_row_rules_min_rows=min_rows, pandas_max_rows=pandas_rows))
        verdicts.append(sorted((r.expectation_id, r.success) for r in result.records))
    assert verdicts == [[("not_null_kpi", False), ("rows", False), ("unique", True)]] * 4
