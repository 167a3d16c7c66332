"""Privacy rules of gold (contract section 3) as reusable Column/DataFrame helpers.

- Small cells: an aggregate whose ``n`` (distinct households, or premises for
  the outage KPIs) is below ``min_households`` is suppressed (value null).
- Dominance (the second "15" of the 15/15 rule): an aggregate of energy in
  which one household holds more than ``max_household_energy_share`` of the
  energy is suppressed.
- No direct identifier or free text in a gold schema: ``FORBIDDEN_COLUMNS``.
Suppression nulls the value and keeps ``n``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.config import DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE, DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.contract import FEEDS

# Keys that identify a customer, meter or premise directly, plus every PII or
# free-text column of the contract (names, addresses, email, phone, transcript, comment).
FORBIDDEN_COLUMNS: tuple[str, ...] = tuple(
    sorted(
        {"account_id", "customer_id", "meter_id", "premise_id", "record_id", "address", "address_normalized"}
        | {c for feed in FEEDS.values() for c in feed.pii_columns}
    )
)


def forbidden_columns_in(schema: T.StructType) -> list[str]:
    """Forbidden column names anywhere in ``schema`` (nested struct fields included)."""
    found: list[str] = []

    def walk(dtype: T.DataType, prefix: str) -> None:
        if isinstance(dtype, T.StructType):
            for field in dtype.fields:
                if field.name.lower() in FORBIDDEN_COLUMNS:
                    found.append(prefix + field.name)
                walk(field.dataType, prefix + field.name + ".")
        elif isinstance(dtype, T.ArrayType):
            walk(dtype.elementType, prefix)
        elif isinstance(dtype, T.MapType):
            walk(dtype.valueType, prefix)

    walk(schema, "")
    return found


def assert_no_pii(df: DataFrame, *, table: str) -> DataFrame:
    """Return ``df`` unchanged, or raise if its schema holds a forbidden column (a schema check, no job)."""
    found = forbidden_columns_in(df.schema)
    if found:
        raise ValueError(f"gold/{table} would publish identifying columns: {', '.join(found)}")
    return df


def is_small_cell(n: Column, *, min_households: int) -> Column:
    """True when fewer than ``min_households`` households back the cell (n null counts as 0)."""
    return F.coalesce(n, F.lit(0)) < F.lit(min_households)


def is_dominated(max_share: Column, *, max_household_energy_share: float) -> Column:
    """True when one household holds more than the allowed share; null share (no energy) is not dominated."""
    return F.coalesce(max_share > F.lit(max_household_energy_share), F.lit(False))


def household_max_share(household_max_abs: Column, total_abs: Column) -> Column:
    """Largest household share of the energy: max |household energy| / sum |household energy|.

    Absolute values, so net exporters (negative kWh) count by the size of
    their flow; null when the cell sums no energy.
    """
    return F.when(total_abs > 0, household_max_abs / total_abs)


def suppressed(
    value: Column,
    *,
    n: Column,
    min_households: int,
    max_share: Column | None = None,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
) -> Column:
    """``value``, or null when the cell is small or (if ``max_share`` is given) dominated by one household."""
    hide = is_small_cell(n, min_households=min_households)
    if max_share is not None:
        hide = hide | is_dominated(max_share, max_household_energy_share=max_household_energy_share)
    return F.when(~hide, value)


def suppress_cells(
    df: DataFrame,
    *,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
    value_col: str = "value",
    n_col: str = "n",
    max_share_col: str | None = None,
) -> DataFrame:
    """Null ``value_col`` where the cell breaks a rule; ``n_col`` and every other column are kept.

    ``max_share_col`` (optional) holds the largest household share of the
    energy; rows where it is null are judged on ``n`` only.
    """
    max_share = F.col(max_share_col) if max_share_col else None
    return df.withColumn(
        value_col,
        suppressed(
            F.col(value_col),
            n=F.col(n_col),
            min_households=min_households,
            max_share=max_share,
            max_household_energy_share=max_household_energy_share,
        ),
    )
