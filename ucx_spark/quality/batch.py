"""A gate's small batch read from the Delta table's files, without a Spark job.

A bronze or silver gate validates the rows this run wrote: a few files of a
table. Through Spark, handing that batch to GX's pandas engine costs ~5 Spark
jobs per table (the snapshot's state, the file filtering, the read, adaptive
stages): ~60 jobs and several seconds per gated step on a small utility. The
table's log already says which files hold the batch and how many rows they
have (``io.delta_log``), so a batch the log shows to be small is read with
pyarrow and converted as Spark's ``toPandas`` converts it; the suites' row
conditions (a small SQL subset) are evaluated on the frame. Anything outside
that scope (a deletion vector, column mapping, a condition this module does not
parse, a batch too large) gives None and the gate reads through Spark as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from ucx_spark.io import delta_log


@dataclass(frozen=True)
class TableBatch:
    """Where a gate's batch lies in a Delta table: the files whose partition values are in
    ``partitions`` and, of their rows, those whose ``rows[0]`` column value is in ``rows[1]``."""

    path: str
    partitions: Mapping[str, frozenset[str]] | None = None
    rows: tuple[str, frozenset[Any]] | None = None

    def frame(self, spark: SparkSession) -> DataFrame:
        """The same batch read through Spark: the Delta table filtered on the same values."""
        from pyspark.sql import functions as F

        from ucx_spark.io.delta import read_path

        df = read_path(spark, self.path)
        for column, values in [*(self.partitions or {}).items(), *([self.rows] if self.rows else [])]:
            df = df.filter(F.col(column).isin(sorted(values)))
        return df


def to_pandas(table: Any) -> Any:
    """A pyarrow Table as Spark's ``toPandas`` gives it (UTC session): dates as ``datetime.date``
    objects, timestamps as naive nanosecond datetimes in UTC."""
    import pyarrow as pa

    pdf = table.to_pandas(date_as_object=True, coerce_temporal_nanoseconds=True)
    for field in table.schema:
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            pdf[field.name] = pdf[field.name].dt.tz_convert("UTC").dt.tz_localize(None)
    return pdf


def read_batch(df: DataFrame, source: TableBatch, conditions: list[str], max_rows: int, prefix: str) -> Any | None:
    """The batch ``source`` describes, with ``df``'s columns, as a pandas frame of at most
    ``max_rows`` rows, each of ``conditions`` evaluated as the boolean column ``prefix<i>`` (null
    counts as false, as the Spark path's ``coalesce(cond, false)``); None when it cannot be read
    here exactly (the caller reads through Spark)."""
    masks_from: list[Any] = []
    for cond in conditions:
        parsed = parse_condition(cond)
        if parsed is None:
            return None
        masks_from.append(parsed)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    table = delta_log.read_arrow(
        source.path, columns=list(df.columns), types=types, max_rows=max_rows,
        partitions={k: set(v) for k, v in source.partitions.items()} if source.partitions else None,
        rows=(source.rows[0], set(source.rows[1])) if source.rows else None,
    )
    if table is None:
        return None
    pdf = to_pandas(table)
    for i, condition in enumerate(masks_from):
        mask = condition(pdf)
        if mask is None:
            return None
        pdf[f"{prefix}{i}"] = mask.astype(bool)
    return pdf


# --- Row conditions: the SQL subset the suites use ------------------------------------------------
# expr := term (OR term)* ; term := factor (AND factor)* ; factor := '(' expr ')' | column IS [NOT]
# NULL | column (= | != | <>) literal | column [NOT] IN (literal, ...) | column [NOT] LIKE 'pattern'.
# No general NOT: with it, SQL's three-valued logic would not reduce to pandas' two values. Without
# it a null operand makes a comparison false, and AND/OR of such falses equal SQL's result once its
# nulls count as false (null AND x is false or null; null OR x is x or null).

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|('(?:[^']|'')*')|(-?\d+(?:\.\d+)?)|(!=|<>|=)|`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*))")


def _tokens(text: str) -> list[tuple[str, Any]] | None:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        lp, rp, comma, string, number, op, quoted, word = m.groups()
        if lp or rp or comma:
            out.append(("p", lp or rp or comma))
        elif string is not None:
            out.append(("lit", string[1:-1].replace("''", "'")))
        elif number is not None:
            out.append(("lit", float(number) if "." in number else int(number)))
        elif op:
            out.append(("op", "!=" if op == "<>" else op))
        elif quoted is not None:
            out.append(("col", quoted))
        else:
            upper = word.upper()
            kw = upper in {"AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE"}
            out.append(("kw", upper) if kw else ("col", word))
    return out


def parse_condition(text: str) -> Any | None:
    """``text`` as a function of a pandas frame giving a boolean Series (None for a column the
    frame lacks), or None when ``text`` is outside the subset above."""
    tokens = _tokens(text)
    if tokens is None:
        return None
    pos = 0

    def peek(kind: str, value: Any = None) -> bool:
        return pos < len(tokens) and tokens[pos][0] == kind and (value is None or tokens[pos][1] == value)

    def take(kind: str, value: Any = None) -> Any:
        nonlocal pos
        if not peek(kind, value):
            raise ValueError(text)
        pos += 1
        return tokens[pos - 1][1]

    def joined(keyword: str, operand: Any) -> Any:
        """operand (keyword operand)*: OR of terms, AND of factors."""
        parts = [operand()]
        while peek("kw", keyword):
            take("kw")
            parts.append(operand())
        return parts[0] if len(parts) == 1 else _combine(parts, keyword.lower())

    def expr() -> Any:
        return joined("OR", term)

    def term() -> Any:
        return joined("AND", factor)

    def literals() -> list[Any]:
        take("p", "(")
        values = [take("lit")]
        while peek("p", ","):
            take("p")
            values.append(take("lit"))
        take("p", ")")
        return values

    def factor() -> Any:
        if peek("p", "("):
            take("p")
            inner = expr()
            take("p", ")")
            return inner
        column = take("col")
        if peek("kw", "IS"):
            take("kw")
            negated = peek("kw", "NOT")
            if negated:
                take("kw")
            take("kw", "NULL")
            return _column(column, lambda s: s.notna() if negated else s.isna())
        negated = peek("kw", "NOT")
        if negated:
            take("kw")
        if peek("kw", "IN"):
            take("kw")
            values = literals()
            return _column(column, lambda s: (~s.isin(values) if negated else s.isin(values)) & s.notna(),
                           tuple(values))
        if peek("kw", "LIKE"):
            take("kw")
            pattern = take("lit")
            regex = "^" + "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern) + "$"
            return _column(column, lambda s: s.astype("string").str.match(regex, na=False).astype(bool)
                           .pipe(lambda m: ~m if negated else m) & s.notna(), (pattern,))
        if negated:
            raise ValueError(text)
        op = take("op")
        value = take("lit")
        return _column(column, lambda s: ((s == value) if op == "=" else (s != value)) & s.notna(), (value,))

    try:
        parsed = expr()
        if pos != len(tokens):
            return None
    except (ValueError, IndexError):
        return None
    return parsed


def _column(name: str, test: Any, literals: tuple[Any, ...] = ()) -> Any:
    """``test`` of column ``name``; None (Spark decides) when the frame lacks the column or a
    literal is not of the column's kind (SQL would cast one to the other: '2026-03-01' = a date,
    3 = a string), which pandas' comparison does not."""
    def evaluate(pdf: Any) -> Any:
        if name not in pdf.columns:
            return None
        column = pdf[name]
        if literals and not _same_kind(column, literals):
            return None
        return test(column).fillna(False).astype(bool)

    return evaluate


def _same_kind(column: Any, literals: tuple[Any, ...]) -> bool:
    from pandas.api import types as pdt

    if all(isinstance(v, str) for v in literals):
        return bool(column.dropna().map(lambda v: isinstance(v, str)).all())
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in literals)
    return numeric and pdt.is_numeric_dtype(column) and not pdt.is_bool_dtype(column)


def _combine(parts: list[Any], how: str) -> Any:
    def evaluate(pdf: Any) -> Any:
        out = None
        for part in parts:
            mask = part(pdf)
            if mask is None:
                return None
            out = mask if out is None else (out & mask if how == "and" else out | mask)
        return out

    return evaluate
