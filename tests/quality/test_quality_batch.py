"""A gate's small batch read from the Delta files (quality.batch) is the frame Spark would give:
same rows, columns, dtypes and values, row conditions judged as Spark judges them, the same
verdicts; anything outside its scope falls back to Spark."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.quality import quality_context, validate
from ucx_spark.quality.batch import TableBatch, parse_condition, read_batch
from ucx_spark.quality.suites import ExpectationSpec, Suite, dump_suite

DDL = ("_source_file string, _row_number long, name string, quality string, kpi string, kwh double, "
       "n int, amount decimal(12,2), flag boolean, day date, at timestamp, month date")
CONDITIONS = [
    "quality IN ('A', 'E')",
    "quality = 'M'",
    "quality != 'M'",
    "quality NOT IN ('A')",
    "name IS NULL",
    "name IS NOT NULL",
    "kpi = 'nps' AND name IS NULL",
    "kpi IN ('fcr', 'ces') OR kpi LIKE 'enrollment_rate:%'",
    "(kpi = 'nps' OR quality = 'E') AND n = 3",
    "`kpi` NOT LIKE 'enroll%'",
    "kwh = 1.5",
]


def _rows() -> list[tuple]:
    at = datetime(2026, 3, 1, 6, 30)
    return [
        ("f1.csv", 1, "x", "A", "nps", 1.5, 3, Decimal("10.25"), True, date(2026, 3, 1), at, date(2026, 3, 1)),
        ("f1.csv", 2, None, "E", "fcr", None, None, None, None, None, None, date(2026, 3, 1)),
        ("f1.csv", 3, "it's", "M", "enrollment_rate:solar", 2.0, 3, Decimal("-1.00"), False, date(2026, 2, 28),
         datetime(2026, 2, 28, 23, 59, 59, 123456), date(2026, 2, 1)),
        ("f2.csv", 1, None, None, None, 0.0, 0, Decimal("0.00"), True, date(2026, 3, 2), at, date(2026, 3, 1)),
        ("f2.csv", 2, "y", "A", "nps", 7.0, 1, Decimal("3.10"), None, date(2026, 3, 2), at, date(2026, 3, 1)),
        ("f3.csv", 1, "z", "E", "ces", 9.0, 2, Decimal("1.00"), True, date(2026, 3, 3), at, date(2026, 3, 1)),
    ]


def _write(spark: SparkSession, path: Path, *, partition_by: tuple[str, ...]) -> DataFrame:
    df = spark.createDataFrame(_rows(), DDL)
    for f in ("f1.csv", "f2.csv", "f3.csv"):  # one commit per landed file, as the steps write
        part = df.filter(F.col("_source_file") == f)
        writer = part.write.format("delta").mode("append")
        writer.partitionBy(*partition_by).save(str(path)) if partition_by else writer.save(str(path))
    return spark.read.format("delta").load(str(path))


def _spark_frame(df: DataFrame, conditions: list[str]) -> pd.DataFrame:
    return df.select(
        *df.columns, *[F.coalesce(F.expr(c), F.lit(False)).alias(f"__c{i}") for i, c in enumerate(conditions)]
    ).toPandas()


def _same(arrow_pdf: pd.DataFrame, spark_pdf: pd.DataFrame) -> None:
    order = ["_source_file", "_row_number"]
    a = arrow_pdf.sort_values(order).reset_index(drop=True)
    b = spark_pdf.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=True)


@pytest.mark.parametrize("layout", ["bronze", "silver"])
def test_a_batch_read_from_the_files_is_the_frame_spark_gives(spark, tmp_path, layout: str) -> None:
    path = tmp_path / layout
    if layout == "bronze":  # partitioned by landed file (and a date partition, cast from the log's string)
        table_df = _write(spark, path, partition_by=("_source_file", "month"))
        source = TableBatch(str(path), partitions={"_source_file": frozenset({"f1.csv", "f2.csv"})})
    else:  # unpartitioned: the batch is the rows of the run's files
        table_df = _write(spark, path, partition_by=())
        source = TableBatch(str(path), rows=("_source_file", frozenset({"f1.csv", "f2.csv"})))
    batch_df = table_df.filter(F.col("_source_file").isin("f1.csv", "f2.csv"))

    got = read_batch(batch_df, source, CONDITIONS, 100, "__c")
    # the same batch read through Spark is the one the gate falls back to
    assert_df_equality(source.frame(spark), batch_df, ignore_row_order=True)

    assert got is not None and len(got) == 5
    _same(got, _spark_frame(batch_df, CONDITIONS))
    # a narrower column list (the gate keeps the columns its suite reads) keeps its order
    narrow_df = batch_df.select("kpi", "_row_number", "_source_file", "month")
    _same(read_batch(narrow_df, source, [], 100, "__c"), _spark_frame(narrow_df, []))


def test_what_the_files_cannot_answer_exactly_is_left_to_spark(spark, tmp_path) -> None:
    path = tmp_path / "t"
    table_df = _write(spark, path, partition_by=())
    source = TableBatch(str(path), rows=("_source_file", frozenset({"f1.csv"})))
    assert read_batch(table_df, source, [], 5, "__c") is None  # the table's 6 rows exceed the bound
    assert read_batch(table_df, source, ["quality RLIKE '^A'"], 100, "__c") is None  # outside the subset
    assert read_batch(table_df, TableBatch(str(path), partitions={"_source_file": frozenset({"nope"})}),
                      [], 100, "__c") is None  # no file: Spark says what an empty batch is

    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE _row_number = 2 AND _source_file = 'f1.csv'")
    assert read_batch(spark.read.format("delta").load(str(path)), source, [], 100, "__c") is None


def test_row_conditions_are_judged_as_spark_judges_them(spark) -> None:
    df = spark.createDataFrame(_rows(), DDL)
    spark_pdf = _spark_frame(df, CONDITIONS)
    pdf = df.toPandas()
    for i, cond in enumerate(CONDITIONS):
        parsed = parse_condition(cond)
        assert parsed is not None, cond
        assert parsed(pdf).tolist() == spark_pdf[f"__c{i}"].tolist(), cond
    for outside in ("NOT quality = 'A'", "quality > 'A'", "quality = ", "lower(quality) = 'a'", "a = 1 b"):
        assert parse_condition(outside) is None, outside
    assert parse_condition("missing = 'A'")(pdf) is None  # a column the frame lacks: Spark decides
    # SQL casts a literal to the column's type; pandas would compare unlike values as unequal
    for cast in ("day = '2026-03-01'", "name = 3", "n IN ('3')", "amount = 10.25", "flag = 1"):
        assert parse_condition(cast)(pdf) is None, cast


def test_a_gate_reading_the_files_gives_the_verdicts_of_a_gate_reading_through_spark(spark, tmp_path) -> None:
    path = tmp_path / "bronze"
    table_df = _write(spark, path, partition_by=("_source_file",))
    batch_df = table_df.filter(F.col("_source_file").isin("f1.csv", "f2.csv", "f3.csv"))
    specs = [
        ExpectationSpec("in_set_quality", "expect_column_values_to_be_in_set", "critical",
                        {"column": "quality", "value_set": ["A", "E"], "row_condition": "kpi IS NOT NULL"}),
        ExpectationSpec("not_null_name", "expect_column_values_to_not_be_null", "warning", {"column": "name"}),
        ExpectationSpec("kwh_range", "expect_column_values_to_be_between", "warning",
                        {"column": "kwh", "min_value": 0, "max_value": 5, "row_condition": "quality IN ('A', 'M')"}),
        ExpectationSpec("unique_rows", "expect_compound_columns_to_be_unique", "critical",
                        {"column_list": ["_source_file", "_row_number"]}),
    ]
    (tmp_path / "bronze.probe.yaml").write_text(dump_suite(Suite("bronze", "probe", specs)))
    context = quality_context(tmp_path / "wh")
    common = dict(layer="bronze", table="probe", run_id="r", suite_dir=tmp_path, context=context, data_docs=False)
    source = TableBatch(str(path), partitions={"_source_file": frozenset({"f1.csv", "f2.csv", "f3.csv"})})
    jobs = {}
    for name, kwargs in (("spark", {}), ("files", {"source": source})):
        spark.sparkContext.setJobGroup(f"batch-{name}", name)
        try:
            jobs[name] = (validate(spark, batch_df, **common, **kwargs),)
        finally:
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        jobs[name] += (len(spark.sparkContext.statusTracker().getJobIdsForGroup(f"batch-{name}")),)
    (through_spark, spark_jobs), (from_files, file_jobs) = jobs["spark"], jobs["files"]
    assert spark_jobs >= 1 and file_jobs == 0, (spark_jobs, file_jobs)  # the batch never went through Spark

    def verdicts(result):  # noqa: ANN001, ANN202
        return [(r.expectation_id, r.success, r.observed_value, r.unexpected_count) for r in result.records]

    assert from_files.row_count == through_spark.row_count == 6
    assert verdicts(from_files) == verdicts(through_spark)
    assert [r.success for r in from_files.records] == [False, False, False, True]  # the planted failures
