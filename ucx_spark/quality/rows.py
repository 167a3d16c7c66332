"""Row-level rules as Spark Columns: split good and bad rows in one pass.

GX answers "did the table pass"; which rows failed is Spark's job, with the
same condition the expectation uses (DESIGN.md: no second full scan per
expectation, and no ``COMPLETE`` result format hauling failing rows to the
driver). The conditions follow GX's semantics: in-set, between and regex
expectations ignore nulls (a null is judged by the not-null expectation), and
a ``row_condition`` limits the rows an expectation applies to; rows outside
it pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.quality.suites import ExpectationSpec, Suite

ROW_LEVEL_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
)


def is_row_level(spec: ExpectationSpec) -> bool:
    return spec.type in ROW_LEVEL_TYPES


def _between(col: Column, kwargs: dict[str, object]) -> Column:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        raise ValueError("expect_column_values_to_be_between needs min_value or max_value")
    cond = F.lit(True)
    if lo is not None:
        cond = cond & ((col > F.lit(lo)) if kwargs.get("strict_min") else (col >= F.lit(lo)))
    if hi is not None:
        cond = cond & ((col < F.lit(hi)) if kwargs.get("strict_max") else (col <= F.lit(hi)))
    return cond


def row_condition(spec: ExpectationSpec) -> Column:
    """The Column that is true exactly for the rows the expectation accepts (never null).

    Supports the row-level types in ``ROW_LEVEL_TYPES``; ``mostly`` does not
    change which rows are bad, only whether the table passes.
    """
    if not is_row_level(spec):
        raise ValueError(f"expectation {spec.id} ({spec.type}) is not row-level: no row condition")
    kwargs = spec.kwargs
    col = F.col(str(kwargs["column"]))
    if spec.type == "expect_column_values_to_not_be_null":
        ok = col.isNotNull()
    elif spec.type == "expect_column_values_to_be_null":
        ok = col.isNull()
    elif spec.type == "expect_column_values_to_be_in_set":
        ok = col.isNull() | col.isin(list(kwargs["value_set"]))  # type: ignore[call-overload]
    elif spec.type == "expect_column_values_to_not_be_in_set":
        ok = col.isNull() | ~col.isin(list(kwargs["value_set"]))  # type: ignore[call-overload]
    elif spec.type == "expect_column_values_to_be_between":
        ok = col.isNull() | _between(col, kwargs)
    elif spec.type == "expect_column_values_to_match_regex":
        ok = col.isNull() | col.cast("string").rlike(str(kwargs["regex"]))
    else:  # expect_column_values_to_not_match_regex
        ok = col.isNull() | ~col.cast("string").rlike(str(kwargs["regex"]))
    where = kwargs.get("row_condition")
    if where:
        ok = ~F.coalesce(F.expr(str(where)), F.lit(False)) | ok
    return F.coalesce(ok, F.lit(False))


def quarantine_specs(suite: Suite) -> tuple[ExpectationSpec, ...]:
    """The critical row-level expectations of a suite: the rows that break one leave the table.

    Warning-level rules (often with ``mostly``) judge the table, not the row.
    """
    return tuple(s for s in suite.expectations if s.severity == "critical" and is_row_level(s))


def with_failed_expectations(
    df: DataFrame, specs: Iterable[ExpectationSpec], *, column: str = "failed_expectations"
) -> DataFrame:
    """Add ``column``: array<string> of the ids of the row-level expectations the row breaks.

    Needs the columns the expectations name; adds ``column`` (empty array = good row).
    Non-row-level expectations are skipped.
    """
    flags = [F.when(~row_condition(s), F.lit(s.id)) for s in specs if is_row_level(s)]
    if not flags:
        return df.withColumn(column, F.array().cast("array<string>"))
    return df.withColumn(column, F.filter(F.array(*flags), lambda x: x.isNotNull()))


def split_rows(
    df: DataFrame, specs: Iterable[ExpectationSpec], *, column: str = "failed_expectations"
) -> tuple[DataFrame, DataFrame]:
    """(good_df, bad_df): good rows without the marker column; bad rows with ``column`` listing
    the broken expectation ids (route them to quarantine). Both read one projection of ``df``:
    cache ``df`` when it is expensive to recompute.
    """
    marked_df = with_failed_expectations(df, specs, column=column)
    good_df = marked_df.filter(F.size(column) == 0).drop(column)
    bad_df = marked_df.filter(F.size(column) > 0)
    return good_df, bad_df
