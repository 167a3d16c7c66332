"""Contract rules for bronze rows of one feed (DataFrame -> DataFrame).

``classify`` adds, to bronze rows, the typed value of every contract column
(``__v_<col>``) and ``rule``/``detail``: the FIRST rule of
``contract.RULES`` the row breaks (null for a valid row). Row-local rules
are one projection; ``unknown_reference`` is a left join against the
referenced values; ``ambiguous_key`` a window over (file, key) among rows
that pass every other rule.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from ucx_spark.contract import BOOL, DATE, DECIMAL, FEEDS, INT, MONEY, RULES, TIMESTAMP
from ucx_spark.contract import Column as ContractColumn
from ucx_spark.silver.parse import (
    TimestampColumns,
    is_bad,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
    with_timestamp,
)

VALUE_PREFIX = "__v_"
_NUMBER_KINDS = (INT, DECIMAL, MONEY)


def value_col(name: str) -> str:
    return VALUE_PREFIX + name


def _quoted(name: str, raw: Column, hint: str) -> Column:
    return F.concat(F.lit(f"{name}='"), raw, F.lit(f"' {hint}"))


def timestamp_columns(name: str) -> TimestampColumns:
    """Where with_typed_values puts a timestamp column's value and verdicts."""
    return TimestampColumns(value=value_col(name), is_bad=f"__bad_{name}", is_nonexistent=f"__gap_{name}",
                            is_ambiguous=f"__ovl_{name}")


def with_typed_values(df: DataFrame, *, feed: str, time_zone: str) -> DataFrame:
    """Adds ``__v_<col>`` (typed value or null) for every contract column, and
    for timestamps ``__bad_``/``__gap_``/``__ovl_<col>`` flags."""
    cols: dict[str, Column] = {}
    for c in FEEDS[feed].columns:
        raw = F.col(c.name)
        if c.kind == TIMESTAMP:
            df = with_timestamp(df, c.name, timestamp_columns(c.name), time_zone=time_zone)
        elif c.kind == DATE:
            cols[value_col(c.name)] = parse_date(raw)
        elif c.kind == INT:
            cols[value_col(c.name)] = parse_int(raw)
        elif c.kind == DECIMAL:
            cols[value_col(c.name)] = parse_decimal(raw)
        elif c.kind == MONEY:
            cols[value_col(c.name)] = parse_money(raw)
        elif c.kind == BOOL:
            cols[value_col(c.name)] = parse_bool(raw)
        else:
            cols[value_col(c.name)] = raw
    return df.withColumns(cols)


def _domain_violation(c: ContractColumn) -> Column | None:
    raw, typed = F.col(c.name), F.col(value_col(c.name))
    conds: list[tuple[Column, str]] = []
    if c.domain is not None:
        conds.append((~raw.isin(*c.domain), "not in (" + ", ".join(c.domain) + ")"))
    if c.int_domain is not None:
        conds.append((~typed.isin(*c.int_domain), "not in (" + ", ".join(map(str, c.int_domain)) + ")"))
    if c.min_value is not None:
        conds.append((typed < F.lit(c.min_value), f"below {c.min_value:g}"))
    if c.max_value is not None:
        conds.append((typed > F.lit(c.max_value), f"above {c.max_value:g}"))
    if c.pattern is not None:
        conds.append((~raw.rlike(f"^(?:{c.pattern})$"), f"does not match {c.pattern}"))
    if not conds:
        return None
    detail: Column | None = None
    for cond, hint in reversed(conds):
        this = F.when(raw.isNotNull() & typed.isNotNull() & cond, _quoted(c.name, raw, hint))
        detail = this if detail is None else F.coalesce(this, detail)
    return detail


def row_checks(feed: str) -> list[tuple[str, Column]]:
    """(rule, detail-or-null) per row-local check, in RULES order then column order."""
    f = FEEDS[feed]
    checks: list[tuple[str, Column]] = [
        ("file_rejected", F.col("_file_rejected")),
        (
            "wrong_field_count",
            F.when(F.col("_malformed"), F.lit("the row has a different number of fields than the header")),
        ),
    ]
    checks += [("missing_required", F.when(F.col(c).isNull(), F.lit(f"{c} is empty"))) for c in f.required]
    ts_cols = [c.name for c in f.columns if c.kind == TIMESTAMP]
    checks += [
        ("bad_timestamp", F.when(F.col(f"__bad_{c}"), _quoted(c, F.col(c), "is not an RFC 3339 timestamp")))
        for c in ts_cols
    ]
    checks += [
        (
            "nonexistent_local_time",
            F.when(F.col(f"__gap_{c}"), _quoted(c, F.col(c), "does not exist in the utility time zone (DST gap)")),
        )
        for c in ts_cols
    ]
    checks += [
        (
            "ambiguous_local_time",
            F.when(F.col(f"__ovl_{c}"), _quoted(c, F.col(c), "is ambiguous in the utility time zone (DST overlap)")),
        )
        for c in ts_cols
    ]
    checks += [
        ("bad_date", F.when(is_bad(F.col(c.name), F.col(value_col(c.name))), _quoted(c.name, F.col(c.name), "is not a YYYY-MM-DD date")))
        for c in f.columns
        if c.kind == DATE
    ]
    checks += [
        ("bad_number", F.when(is_bad(F.col(c.name), F.col(value_col(c.name))), _quoted(c.name, F.col(c.name), f"is not a plain {c.kind}")))
        for c in f.columns
        if c.kind in _NUMBER_KINDS
    ]
    checks += [
        ("bad_boolean", F.when(is_bad(F.col(c.name), F.col(value_col(c.name))), _quoted(c.name, F.col(c.name), "is not true/false")))
        for c in f.columns
        if c.kind == BOOL
    ]
    for c in f.columns:
        d = _domain_violation(c)
        if d is not None:
            checks.append(("out_of_domain", d))
    if feed == "ami":
        kwh, quality = F.col("kwh"), F.col("quality")
        checks.append(
            (
                "kwh_quality_mismatch",
                F.when((quality == "M") & kwh.isNotNull(), _quoted("kwh", kwh, "with quality M")).when(
                    quality.isin("A", "E") & kwh.isNull(), F.concat(F.lit("kwh is empty with quality "), quality)
                ),
            )
        )
    order = {r: i for i, r in enumerate(RULES)}
    assert all(r in order for r, _ in checks)
    return sorted(checks, key=lambda rc: order[rc[0]])  # stable: column order kept within a rule


def with_row_rules(df: DataFrame, *, feed: str) -> DataFrame:
    """Adds ``rule``: the first row-local rule broken (needs with_typed_values).

    Only the conditions run here; the text naming the value (``detail``) is
    built by with_detail, for the bad rows alone (building it for every row
    was the dearest part of classifying AMI).
    """
    checks = row_checks(feed)
    return df.withColumn(
        "rule", F.coalesce(*[F.when(d.isNotNull(), F.lit(r)) for r, d in checks], F.lit(None).cast(StringType()))
    )


def with_reference_rule(df: DataFrame, *, feed: str, refs: dict[str, DataFrame]) -> DataFrame:
    """``unknown_reference`` for rows without a rule whose foreign key is not among ``refs[column]``
    (a one-column DataFrame of the referenced values; absent = nothing to reference)."""
    for fk in FEEDS[feed].foreign_keys:
        flag = f"__ref_{fk.column}"
        ref_df = refs.get(fk.column)
        if ref_df is None:
            df = df.withColumn(flag, F.lit(False))
        else:
            ref_df = ref_df.select(F.col(ref_df.columns[0]).alias("__ref_value")).distinct()
            df = (
                df.join(ref_df, F.col(fk.column) == F.col("__ref_value"), "left")
                .withColumn(flag, F.col("__ref_value").isNotNull())
                .drop("__ref_value")
            )
        df = df.withColumn(
            "rule", F.when(F.col("rule").isNull() & ~F.col(flag), F.lit("unknown_reference")).otherwise(F.col("rule"))
        ).drop(flag)
    return df


def with_ambiguous_key_rule(df: DataFrame, *, feed: str) -> DataFrame:
    """``ambiguous_key`` for every otherwise-valid row whose (typed) key occurs in
    its file with different raw contract values."""
    f = FEEDS[feed]
    raw_json = F.to_json(F.struct(*[F.col(c) for c in f.column_names]))
    candidate = F.col("rule").isNull()
    typed_key = [value_col(k) for k in f.key]
    w = Window.partitionBy("_source_file", candidate.alias("__candidate"), *typed_key)
    df = df.withColumn("__raw", raw_json)
    ambiguous = candidate & (F.min("__raw").over(w) != F.max("__raw").over(w))
    return df.withColumn("rule", F.when(ambiguous, F.lit("ambiguous_key")).otherwise(F.col("rule"))).drop("__raw")


def with_detail(df: DataFrame, *, feed: str) -> DataFrame:
    """Adds ``detail``, the text naming the column, value and rule of a bad row (null for a valid
    one). Needs the columns of classify (typed values, flags, ``rule``)."""
    f = FEEDS[feed]
    rule = F.col("rule")
    detail = F.when(rule.isNull(), F.lit(None).cast(StringType()))
    for fk in f.foreign_keys:  # the contract gives a feed one foreign key at most
        detail = detail.when(
            rule == "unknown_reference", _quoted(fk.column, F.col(fk.column), f"is not a {fk.ref_column} of {fk.feed}")
        )
    key_text = F.concat_ws(", ", *[F.concat(F.lit(f"{k}='"), F.col(k), F.lit("'")) for k in f.key])
    detail = detail.when(
        rule == "ambiguous_key", F.concat(F.lit("key "), key_text, F.lit(" has different values in one extract"))
    )
    detail = detail.otherwise(F.coalesce(*[d for _, d in row_checks(feed)]))
    return df.withColumn("detail", detail.cast(StringType()))


def classify_rows(df: DataFrame, *, feed: str, time_zone: str, refs: dict[str, DataFrame]) -> DataFrame:
    """Bronze rows -> the same rows plus ``__v_<col>`` typed values and ``rule`` for every rule but
    ``ambiguous_key`` (which needs the other rows of the key: see with_ambiguous_key_rule)."""
    return (
        df.transform(with_typed_values, feed=feed, time_zone=time_zone)
        .transform(with_row_rules, feed=feed)
        .transform(with_reference_rule, feed=feed, refs=refs)
    )


def classify(df: DataFrame, *, feed: str, time_zone: str, refs: dict[str, DataFrame]) -> DataFrame:
    """Bronze rows -> the same rows plus ``__v_<col>`` typed values, ``rule`` and ``detail``."""
    return (
        classify_rows(df, feed=feed, time_zone=time_zone, refs=refs)
        .transform(with_ambiguous_key_rule, feed=feed)
        .transform(with_detail, feed=feed)
    )


def profile_columns() -> list[Column]:
    """Aggregations over classified rows: ``valid`` (rows that passed every rule) and ``rule_<i>``,
    the rows whose first broken rule is ``contract.RULES[i]``."""
    return [
        F.count(F.when(F.col("rule").isNull(), 1)).alias("valid"),
        *[F.count(F.when(F.col("rule") == r, 1)).alias(f"rule_{i}") for i, r in enumerate(RULES)],
    ]


def repeated_keys(classified_df: DataFrame, *, feed: str) -> DataFrame:
    """The typed keys (``__v_<key>`` columns) that more than one valid row of the batch holds."""
    typed_key = [value_col(k) for k in FEEDS[feed].key]
    return (
        classified_df.filter(F.col("rule").isNull())
        .groupBy(*typed_key)
        .agg(F.count(F.lit(1)).alias("__n"))
        .filter(F.col("__n") > 1)
        .select(*typed_key)
    )
