"""Gold step: silver -> gold/meter_daily_usage, gold/cx_kpis, gold/household_features.

Reads silver tables, calls the pure transforms of ``ucx_spark.gold`` and
replaces each gold table in one Delta commit. Every table's schema is checked
for identifying columns before it is written (contract section 3).

Default as_of_dates of household_features: the last day of every local month
whose last day lies within the AMI span (first to last local date with an
interval), the latest ``max_default_as_of_dates`` (24) of them. A month whose
end is after the last interval is left out: its features would describe a
month not yet over.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.contract import BOOL, DATE, DECIMAL, FEEDS, INT, MONEY, TIMESTAMP
from ucx_spark.gold.cx_kpis import cx_kpis
from ucx_spark.gold.household_features import household_features
from ucx_spark.gold.local_time import local_date
from ucx_spark.gold.meter_daily_usage import meter_daily_usage
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.io.delta import overwrite_table, read_table, table_exists, table_path
from ucx_spark.silver.parse import require_time_zone, require_utc_session

TABLES = ("meter_daily_usage", "cx_kpis", "household_features")
MATCHES_TABLE = "household_matches"

_KIND_TYPES: dict[str, T.DataType] = {
    TIMESTAMP: T.TimestampType(),
    DATE: T.DateType(),
    INT: T.IntegerType(),
    DECIMAL: T.DoubleType(),
    MONEY: T.DecimalType(14, 2),
    BOOL: T.BooleanType(),
}


@dataclass(frozen=True)
class GoldResult:
    run_id: str
    tables: tuple[tuple[str, str], ...]  # (table, path)
    rows: tuple[tuple[str, int], ...]  # (table, rows written)
    as_of_dates: tuple[date, ...]
    missing_silver: tuple[str, ...]  # silver tables absent, read as empty

    def summary(self) -> str:
        counts = ", ".join(f"{t} {n:,} rows" for t, n in self.rows)
        span = f"{self.as_of_dates[0]}..{self.as_of_dates[-1]}" if self.as_of_dates else "none"
        text = f"{counts}; {len(self.as_of_dates)} as_of_dates ({span})"
        if self.missing_silver:
            text += f"; empty silver: {', '.join(self.missing_silver)}"
        return text


def empty_silver_schema(feed: str) -> T.StructType:
    """The typed contract columns of silver/<feed> (plus household_id for account feeds)."""
    spec = FEEDS[feed]
    fields = [T.StructField(c.name, _KIND_TYPES.get(c.kind, T.StringType())) for c in spec.columns]
    if "account_id" in spec.column_names:
        fields.append(T.StructField("household_id", T.StringType()))
    if feed == "ami":
        fields += [T.StructField("meter_key", T.StringType()), T.StructField("local_date", T.DateType()),
                   T.StructField("local_hour", T.IntegerType())]
    return T.StructType(fields)


def _read_silver(spark: SparkSession, warehouse: str, table: str, missing: list[str]) -> DataFrame:
    if table_exists(spark, table_path(warehouse, "silver", table)):
        return read_table(spark, warehouse, "silver", table)
    missing.append(table)
    if table == MATCHES_TABLE:
        schema = T.StructType([T.StructField(c, T.StringType()) for c in ("record_id", "premise_id", "match_method")])
    else:
        schema = empty_silver_schema(table)
    return spark.createDataFrame([], schema)


def month_ends_between(first: date, last: date) -> list[date]:
    """Last days of the months that end within [first, last]."""
    out: list[date] = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        end = date(y, m, calendar.monthrange(y, m)[1])
        if first <= end <= last:
            out.append(end)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def default_as_of_dates(ami_df: DataFrame, *, time_zone: str, limit: int = 24) -> list[date]:
    """Month ends within the AMI span (local dates), the latest ``limit``; one small aggregate."""
    day = local_date(F.col("interval_start"), time_zone=time_zone)
    row = ami_df.agg(F.min(day).alias("lo"), F.max(day).alias("hi")).first()
    if row is None or row["lo"] is None:
        return []
    return month_ends_between(row["lo"], row["hi"])[-limit:]


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    time_zone: str,
    min_households: int = 15,
    max_household_energy_share: float = 0.15,
    as_of_dates: list[date] | None = None,
    run_id: str,
    max_default_as_of_dates: int = 24,
    energy_kpis: bool = False,
    gate: Callable[[DataFrame, str, Callable[[DataFrame], object]], None] | None = None,
) -> GoldResult:
    """Rebuild the three gold tables from silver; each one Delta commit.

    ``energy_kpis`` adds the ``kwh_per_household`` KPI (not in the contract's
    KPI table) to cx_kpis, under the 15% dominance rule. ``gate(df, table, write)``,
    when given, validates each candidate and calls ``write`` only if it passes
    (a failed gate leaves the published table at its previous Delta version).
    """
    require_utc_session(spark)
    require_time_zone(time_zone)
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    missing: list[str] = []

    def silver(table: str) -> DataFrame:
        return _read_silver(spark, warehouse, table, missing)

    ami_df, accounts_df = silver("ami"), silver("accounts")
    matches_df, households_df = silver(MATCHES_TABLE), silver("households")
    bills_df, payments_df = silver("bills"), silver("payments")
    contacts_df, outages_df = silver("contacts"), silver("outages")
    programs_df, marketing_df = silver("programs"), silver("marketing")

    paths: list[tuple[str, str]] = []
    rows: list[tuple[str, int]] = []

    def publish(df: DataFrame, table: str) -> None:
        def write(candidate_df: DataFrame) -> None:
            paths.append((table, overwrite_table(candidate_df, warehouse, "gold", table)))

        checked_df = assert_no_pii(df, table=table)
        if gate is None:
            write(checked_df)
        else:
            gate(checked_df, table, write)
        rows.append((table, read_table(spark, warehouse, "gold", table).count()))

    publish(meter_daily_usage(ami_df, accounts_df, time_zone=time_zone), "meter_daily_usage")

    publish(
        cx_kpis(
            ami_df,
            accounts_df,
            surveys_df=silver("surveys"),
            contacts_df=contacts_df,
            outages_df=outages_df,
            programs_df=programs_df,
            marketing_df=marketing_df,
            payments_df=payments_df,
            bills_df=bills_df,
            household_matches_df=matches_df,
            households_df=households_df,
            time_zone=time_zone,
            min_households=min_households,
            max_household_energy_share=max_household_energy_share,
            daily_usage_df=read_table(spark, warehouse, "gold", "meter_daily_usage") if energy_kpis else None,
        ),
        "cx_kpis",
    )

    dates = (
        sorted(set(as_of_dates)) if as_of_dates is not None
        else default_as_of_dates(ami_df, time_zone=time_zone, limit=max_default_as_of_dates)
    )
    publish(
        household_features(
            accounts_df,
            as_of_dates=dates,
            time_zone=time_zone,
            ami_df=ami_df,
            weather_df=silver("weather"),
            bills_df=bills_df,
            payments_df=payments_df,
            collections_df=silver("collections"),
            contacts_df=contacts_df,
            outages_df=outages_df,
            programs_df=programs_df,
            marketing_df=marketing_df,
            household_matches_df=matches_df,
            households_df=households_df,
            census_df=silver("census"),
        ),
        "household_features",
    )
    return GoldResult(
        run_id=run_id,
        tables=tuple(paths),
        rows=tuple(rows),
        as_of_dates=tuple(dates),
        missing_silver=tuple(dict.fromkeys(missing)),
    )
