"""Gold step: silver -> gold/meter_daily_usage, gold/cx_kpis, gold/household_features, gold/survey_features.

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
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.catalog import (
    AMI_DAILY,
    BILL_EXPLANATIONS,
    CONTACT_INSIGHTS,
    CX_KPIS,
    HOUSEHOLD_FEATURES,
    HOUSEHOLD_MATCHES,
    METER_DAILY_USAGE,
    SURVEY_FEATURES,
    USAGE_BASELINES,
    silver_inputs,
    spec,
)
from ucx_spark.concurrency import job_tag
from ucx_spark.config import DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE, DEFAULT_MIN_HOUSEHOLDS
from ucx_spark.contract import BOOL, DATE, DECIMAL, FEEDS, INT, MONEY, TIMESTAMP
from ucx_spark.gold.cx_kpis import cx_kpis
from ucx_spark.gold.household_features import (
    EVENT_DAY_COLUMNS,
    daily_temperatures,
    household_features,
    survey_features,
    usage_part,
)
from ucx_spark.gold.meter_daily_usage import meter_daily_usage_from_daily
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import baselines as B
from ucx_spark.insights import contacts as C
from ucx_spark.io import delta_log
from ucx_spark.io.delta import (
    changed_rows,
    commit_metadata,
    last_commit,
    overwrite_table,
    read_table,
    same_columns,
    sql_literal_list,
    table_exists,
    table_path,
    table_version,
    with_dated_updates,
    without_unchanged_updates,
)
from ucx_spark.local_time import local_date
from ucx_spark.session import release_checkpoint
from ucx_spark.silver.ami_daily import ami_daily
from ucx_spark.silver.parse import require_time_zone, require_utc_session
from ucx_spark.silver.rows import SILVER_LINEAGE

TABLES = (METER_DAILY_USAGE, CX_KPIS, HOUSEHOLD_FEATURES, SURVEY_FEATURES, CONTACT_INSIGHTS, USAGE_BASELINES,
          BILL_EXPLANATIONS)
# Rows of a gold table another command owns, which a rebuild here keeps: `ucx segment` writes the
# persona KPIs of gold/cx_kpis, and a later `ucx pipeline` must not drop them (issue 21).
KEPT_ROWS = {CX_KPIS: "segment_type = 'persona'"}

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
    unchanged: tuple[str, ...] = ()  # tables no input change can reach (none, or none before their dates)
    partial: tuple[tuple[str, str], ...] = ()  # (table, what was recomputed) of tables rebuilt in part

    def summary(self) -> str:
        counts = ", ".join(f"{t} {n:,} rows" for t, n in self.rows)
        span = f"{self.as_of_dates[0]}..{self.as_of_dates[-1]}" if self.as_of_dates else "none"
        text = f"{counts or 'no table rebuilt'}; {len(self.as_of_dates)} as_of_dates ({span})"
        if self.partial:
            text += "; recomputed in part: " + ", ".join(f"{t} ({what})" for t, what in self.partial)
        if self.unchanged:
            text += f"; unchanged (inputs as when last built): {', '.join(self.unchanged)}"
        if self.missing_silver:
            text += f"; empty silver: {', '.join(self.missing_silver)}"
        return text


def empty_silver_schema(feed: str) -> T.StructType:
    """The typed contract columns of silver/<feed> (plus household_id for account feeds)."""
    feed_spec = FEEDS[feed]
    fields = [T.StructField(c.name, _KIND_TYPES.get(c.kind, T.StringType())) for c in feed_spec.columns]
    if "account_id" in feed_spec.column_names:
        fields.append(T.StructField("household_id", T.StringType()))
    if feed == "ami":
        fields += [T.StructField("meter_key", T.StringType()), T.StructField("local_date", T.DateType()),
                   T.StructField("local_hour", T.IntegerType())]
    return T.StructType(fields)


def _read_silver(
    spark: SparkSession, warehouse: str, table: str, missing: list[str], *, time_zone: str
) -> tuple[DataFrame, int | str | None]:
    """A silver table pinned at its current version (and that version), or an empty frame of its
    schema (version None). silver/ami_daily of a warehouse that has only silver/ami (built before
    the daily table existed) is computed from it (version ``silver.ami@V``)."""
    path = table_path(warehouse, "silver", table)
    if table_exists(spark, path):
        version = table_version(spark, path)
        return read_table(spark, warehouse, "silver", table, version=version), version
    ami_path = table_path(warehouse, "silver", "ami")
    if table == AMI_DAILY and table_exists(spark, ami_path):
        version = table_version(spark, ami_path)
        return (
            ami_daily(read_table(spark, warehouse, "silver", "ami", version=version), time_zone=time_zone),
            f"silver.ami@{version}",
        )
    missing.append(table)
    if table == HOUSEHOLD_MATCHES:
        schema = T.StructType([T.StructField(c, T.StringType()) for c in ("record_id", "premise_id", "match_method")])
    elif table == AMI_DAILY:
        empty_ami = spark.createDataFrame([], empty_silver_schema("ami"))
        return ami_daily(empty_ami, time_zone=time_zone), None
    else:
        schema = empty_silver_schema(table)
    return spark.createDataFrame([], schema), None


# A silver table of at most this many rows is read once per gold step, when a candidate first reads
# it, and kept as a local checkpoint (executor blocks, memory then disk) until the step ends: the
# candidates join accounts, bills, surveys... many times over, and every scan of a Delta table first
# lists its snapshot's files in a Spark job. A checkpoint, not a cache: under adaptive execution
# every read of a cached relation is a query stage (a job) of its own (docs/stack_notes.md). On the
# 12-household utility: gold 310 -> 217 Spark jobs, 38.5 -> 30.1 s (docs/performance.md).
CACHE_MAX_ROWS = 1_000_000


def _small(path: str) -> bool:
    """Whether the table's current snapshot holds at most CACHE_MAX_ROWS rows (from its log's file
    statistics; a table whose files lack them is not cached)."""
    counts = delta_log.row_count(path)
    return counts is not None and sum(counts.values()) <= CACHE_MAX_ROWS


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


def ami_span(daily_df: DataFrame) -> tuple[date, date] | None:
    """(first, last) local date of silver/ami_daily, or None when empty; one small aggregate."""
    row = daily_df.agg(F.min("local_date").alias("lo"), F.max("local_date").alias("hi")).first()
    if row is None or row["lo"] is None:
        return None
    return row["lo"], row["hi"]


def default_as_of_dates(daily_df: DataFrame, *, limit: int = 24, span: tuple[date, date] | None = None) -> list[date]:
    """Month ends within the AMI span (local dates of silver/ami_daily), the latest ``limit``."""
    span = span or ami_span(daily_df)
    if span is None:
        return []
    return month_ends_between(*span)[-limit:]


BUILT_FROM = "built_from"
TABLE_IDS = "table_ids"  # in a build record: each silver input's Delta table id (delta_log.table_id)

Gate = Callable[..., None]
# A table rebuilt in part, given the local days silver/ami_daily changed (sorted) and the
# parameters it was built with: (SQL predicate on the published rows that stay, the rows
# recomputed), or None when no published row can have changed.
Update = Callable[[list[date], dict], "tuple[str, DataFrame] | None"]


def ami_daily_changed_days(spark: SparkSession, warehouse: str, since_version: int) -> list[date] | None:
    """The local days (sorted) of silver/ami_daily rows inserted, updated or deleted after
    ``since_version``, or None when its change data feed cannot answer."""
    changed = changed_rows(spark, table_path(warehouse, "silver", AMI_DAILY), since_version=since_version,
                           deleted=True)
    if changed is None:
        return None
    return sorted(r[0] for r in changed.select("local_date").distinct().collect())  # local days: bounded


def ami_changes_since_built(
    previous: object, built_from: dict, changed_days: Callable[[int], list[date] | None], *,
    free_params: tuple[str, ...] = (), first_changed: Callable[[str, int], date | None] | None = None,
    last_day: date | None = None,
) -> tuple[bool, list[date]]:
    """Whether a table built from ``previous`` can be brought to ``built_from`` in part, and which
    local days changed: (True, days) when silver/ami_daily is the only input that moved (its other
    inputs at the same versions, its parameters equal but ``free_params``) and
    ``changed_days(version built from)`` (ami_daily_changed_days) answers; days empty when no row
    changed. (False, []): rebuild it whole. A point-in-time feature as of a day before the first
    of ``days`` cannot have changed.

    With ``first_changed`` (first_changed_day) and ``last_day``, another input that moved may be
    dated too (an account that moved out or started: a meter-day reads the account active on its
    day): every day from the first it can touch through ``last_day`` joins the changed days."""
    if not _comparable(previous, built_from, free_params):
        return False, []
    assert isinstance(previous, dict)
    days: set[date] = set()
    for table, since, now in _moved(previous, built_from):
        if not _forward(since, now):
            return False, []
        if table == AMI_DAILY:
            ami_days = changed_days(since)  # type: ignore[arg-type]
            if ami_days is None:
                return False, []
            days.update(ami_days)
            continue
        if first_changed is None or last_day is None:
            return False, []
        first = first_changed(table, since)  # type: ignore[arg-type]
        if first is None:
            return False, []
        days.update(first + timedelta(days=i) for i in range(max((last_day - first).days + 1, 0)))
    return True, sorted(days)


def _same_tables(previous: object, built_from: dict) -> bool:
    """A build record of the same input tables as ``built_from`` (their versions may differ): an
    input dropped and built again (ucx rebuild) has a new id, and its versions say nothing."""
    return isinstance(previous, dict) and set(previous) == set(built_from) \
        and previous.get(TABLE_IDS) == built_from.get(TABLE_IDS)


def inputs_record(warehouse: str, table: str) -> dict:
    """What a build of gold ``table`` from silver as it is now would record of its inputs: each
    one's latest version and the table ids (from the logs, no Spark job; ``params`` aside)."""
    paths = {t: table_path(warehouse, "silver", t) for t in silver_inputs(table)}
    return {f"silver.{t}": delta_log.latest_version(p) for t, p in paths.items()} | {
        TABLE_IDS: {t: delta_log.table_id(p) for t, p in paths.items()}}


def _comparable(previous: object, built_from: dict, free_params: tuple[str, ...] = ()) -> bool:
    """A build record of the same inputs and parameters (but ``free_params``) as ``built_from``."""
    if not _same_tables(previous, built_from):
        return False
    assert isinstance(previous, dict)
    before = previous.get("params")
    return isinstance(before, dict) and {k: v for k, v in before.items() if k not in free_params} == {
        k: v for k, v in built_from["params"].items() if k not in free_params}


def _moved(previous: dict, built_from: dict) -> Iterator[tuple[str, object, object]]:
    """(silver table, version built from, version now) of each input that moved."""
    for key, value in built_from.items():
        if key not in ("params", TABLE_IDS) and previous[key] != value:
            yield key.split(".", 1)[1], previous[key], value


def _forward(since: object, now: object) -> bool:
    """Two Delta versions, the second not older (a rebuilt or replaced table is not)."""
    return isinstance(since, int) and isinstance(now, int) and since <= now


NO_CHANGE = date.max  # first_changed_day: the input's change feed holds no row since the version


def first_changed_day(spark: SparkSession, warehouse: str, table: str, since_version: int,
                      ami_days: Callable[[int], list[date] | None], *, time_zone: str) -> date | None:
    """The first day a point-in-time feature can see a change of silver ``table`` made after
    ``since_version``: the earliest day, over its inserted, updated (both images) and deleted
    rows, of the column that places them in time for the features (``EVENT_DAY_COLUMNS``; a
    timestamp by its local date; survey_features, whose rows are as of the day before each
    response, starts a day earlier).
    ``NO_CHANGE`` when no row changed; None when it cannot say (no change data feed, a changed
    row with no date, a table of attributes without dates: rebuild whole). Accounts: new
    accounts are bounded by their start_date; an update that changed only end_date (a move-out,
    or its correction) by the earlier of its two end dates (an account is active on a day by
    comparing the day with its dates, so no earlier day reads differently); any other update, or
    a deleted account, cannot be. An update that changed nothing but silver's lineage (a row
    re-sent as it was) is no change.
    A feature as of D reads only rows dated on or before D (tests/gold/test_gold_household_features.py
    ``test_future_rows_change_nothing``), so features before that day cannot have changed."""
    from pyspark.errors import AnalysisException

    if table == AMI_DAILY:
        days = ami_days(since_version)
        return None if days is None else (days[0] if days else NO_CHANGE)
    changes = changed_rows(spark, table_path(warehouse, "silver", table), since_version=since_version,
                           deleted=True, images=True)
    if changes is None:
        return None
    # a row re-sent as it was (a CIS snapshot of every account) changes nothing a feature reads
    changes = without_unchanged_updates(changes, keys=spec("silver", table).keys, ignore=SILVER_LINEAGE)
    column = next((c for c in FEEDS[table].columns if c.name == EVENT_DAY_COLUMNS.get(table)), None) \
        if table in FEEDS else None
    # households, census, household_matches: attributes without dates (any change: rebuild whole)
    bound = F.lit(None).cast("date")
    if column is not None:
        bound = F.col(column.name) if column.kind == DATE else local_date(F.col(column.name), time_zone=time_zone)
    undated = bound.isNull()
    if table == "accounts":
        changes = with_dated_updates(changes, keys=spec("silver", table).keys, column="end_date",
                                     ignore=SILVER_LINEAGE)
        moved_out = F.col("_update_day").isNotNull()
        bound = F.when(moved_out, F.col("_update_day")).otherwise(bound)
        undated = F.when(moved_out, F.lit(False)).otherwise(undated | (F.col("_change_type") != "insert"))
    try:
        row = changes.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(undated, 1)).alias("undated"),
                          F.min(bound).alias("first")).first()
    except AnalysisException:
        return None  # the change data feed cannot answer for these versions
    if row is None or not row["n"]:
        return NO_CHANGE
    return None if row["undated"] else row["first"]


class Changes:
    """What moved in silver since a version, asked of the change data feed once per question:
    ``days`` (silver/ami_daily's changed local days, ami_daily_changed_days) and ``first_day``
    (first_changed_day)."""

    def __init__(self, spark: SparkSession, warehouse: str, time_zone: str) -> None:
        self.spark, self.warehouse, self.time_zone = spark, warehouse, time_zone
        self._days: dict[int, list[date] | None] = {}
        self._first: dict[tuple[str, int], date | None] = {}

    def days(self, version: int) -> list[date] | None:
        if version not in self._days:
            self._days[version] = ami_daily_changed_days(self.spark, self.warehouse, version)
        return self._days[version]

    def first_day(self, table: str, version: int) -> date | None:
        key = (table, version)
        if key not in self._first:
            self._first[key] = first_changed_day(self.spark, self.warehouse, table, version, self.days,
                                                 time_zone=self.time_zone)
        return self._first[key]


def settled_inputs(previous: object, built_from: dict, first_changed: Callable[[str, int], date | None]) -> object:
    """``previous`` (a table's build record) with every input that moved since only by updates
    that changed nothing (``first_changed`` says ``NO_CHANGE``: a CIS snapshot re-sending its
    accounts as they were) taken as built from its current version: such an input cannot have
    changed a row of the table. A table built ``through`` a day (its parameter: usage_baselines
    and bill_explanations read nothing dated after it) settles changes that all fall after it too."""
    if not _same_tables(previous, built_from):
        return previous
    assert isinstance(previous, dict)
    out = dict(previous)
    through = (previous.get("params") or {}).get("through")
    horizon = NO_CHANGE if through is None else date.fromisoformat(through) + timedelta(days=1)
    for table, since, now in _moved(previous, built_from):
        if not _forward(since, now):
            continue
        first = first_changed(table, since)  # type: ignore[arg-type]
        if first is not None and first >= horizon:
            out[f"silver.{table}"] = now
    return out


def changes_since_built(
    previous: object, built_from: dict, first_changed: Callable[[str, int], date | None], *,
    free_params: tuple[str, ...] = (),
) -> tuple[bool, date | None]:
    """Whether a table of point-in-time features built from ``previous`` can be brought to
    ``built_from`` in part, and from which day: (True, day) when its parameters are equal (but
    ``free_params``) and every input that moved can say the first day its changes can touch
    (``first_changed(table, version built from)``, first_changed_day); day None when nothing
    changed. (False, None): rebuild it whole."""
    if not _comparable(previous, built_from, free_params):
        return False, None
    assert isinstance(previous, dict)
    first = NO_CHANGE
    for table, since, now in _moved(previous, built_from):
        if not _forward(since, now):
            return False, None
        day = first_changed(table, since)  # type: ignore[arg-type]
        if day is None:
            return False, None
        first = min(first, day)
    return True, None if first == NO_CHANGE else first


def household_feature_inputs(
    silver: Callable[[str], DataFrame], daily_df: DataFrame | None, *, span: tuple[date, date] | None, time_zone: str
) -> dict[str, object]:
    """The keyword arguments of ``household_features`` (and ``survey_features``) from silver tables:
    the one place that says which table feeds which argument."""
    return {
        "time_zone": time_zone,
        "ami_daily_df": daily_df,
        "weather_df": silver("weather"),
        "bills_df": silver("bills"),
        "payments_df": silver("payments"),
        "collections_df": silver("collections"),
        "contacts_df": silver("contacts"),
        "outages_df": silver("outages"),
        "programs_df": silver("programs"),
        "marketing_df": silver("marketing"),
        "household_matches_df": silver(HOUSEHOLD_MATCHES),
        "households_df": silver("households"),
        "census_df": silver("census"),
        "data_start": span[0] if span else None,
    }


def features_as_of(spark: SparkSession, warehouse: str, *, time_zone: str, as_of: date | None = None,
                   keys_df: DataFrame | None = None, static: StaticFeatures | None = None) -> DataFrame:
    """household_features of the accounts active on ``as_of``, computed from the current silver
    tables with the gold step's own function (scoring at a date that is not a published as_of_date);
    with ``keys_df`` (account_id, as_of_date) instead, one row per key (``ucx stream``: the
    accounts an event touched, each at its own date). ``static``: the AMI span and the usage
    features of these keys computed already (``static_features``)."""
    if (as_of is None) == (keys_df is None):
        raise ValueError("features_as_of needs exactly one of as_of and keys_df")
    missing: list[str] = []
    frames: dict[str, DataFrame] = {}

    def silver(table: str) -> DataFrame:
        if table not in frames:
            frames[table] = _read_silver(spark, warehouse, table, missing, time_zone=time_zone)[0]
        return frames[table]

    read = silver if keys_df is None else _restricted_to(silver, keys_df)
    if static is None:  # the span of the whole utility: history_days counts from the data's first day
        span, usage_df, daily_df = ami_span(silver(AMI_DAILY)), None, read(AMI_DAILY)
    else:  # the AMI and weather inputs are not read: their usage features are given
        span, usage_df, daily_df = static.span, static.usage_df, None
    inputs = household_feature_inputs(read, daily_df, span=span, time_zone=time_zone)
    return household_features(read("accounts"), as_of_dates=[as_of] if as_of else [], surveys_df=read("surveys"),
                              keys_df=keys_df, usage_df=usage_df, **inputs)  # type: ignore[arg-type]


# the silver tables the usage features are built from: no household event changes them
STATIC_INPUTS = (AMI_DAILY, "weather", "accounts")


@dataclass(frozen=True)
class StaticFeatures:
    """What ``features_as_of`` needs beyond a key's own events, computed once: the AMI span and the
    usage features (``usage_part``) of every account at ``dates``, from the silver versions
    ``versions`` (of STATIC_INPUTS)."""

    versions: tuple[int | str | None, ...]
    span: tuple[date, date] | None
    dates: frozenset[date]
    usage_df: DataFrame


def static_versions(spark: SparkSession, warehouse: str, *, time_zone: str) -> tuple[int | str | None, ...]:
    """The current versions of STATIC_INPUTS (from the transaction logs: no Spark job)."""
    missing: list[str] = []
    return tuple(_read_silver(spark, warehouse, t, missing, time_zone=time_zone)[1] for t in STATIC_INPUTS)


def static_features(spark: SparkSession, warehouse: str, *, time_zone: str, dates: list[date]) -> StaticFeatures:
    """``StaticFeatures`` of every account at ``dates``, from the current silver tables (a lazy
    frame: the caller materialises it once and keeps it while the versions hold)."""
    missing: list[str] = []
    read = {t: _read_silver(spark, warehouse, t, missing, time_zone=time_zone) for t in STATIC_INPUTS}
    accounts_df, daily_df, weather_df = read["accounts"][0], read[AMI_DAILY][0], read["weather"][0]
    keys_df = accounts_df.select("account_id").distinct().crossJoin(
        spark.createDataFrame([(d,) for d in sorted(set(dates))], "as_of_date date"))
    usage_df = usage_part(keys_df, accounts_df, ami_daily_df=daily_df, weather_df=weather_df, time_zone=time_zone)
    return StaticFeatures(tuple(read[t][1] for t in STATIC_INPUTS), ami_span(daily_df), frozenset(dates), usage_df)


# the column by which a silver table's rows belong to the accounts of ``_restricted_to``'s keys
_ACCOUNT_SCOPE = {AMI_DAILY: "meter_id", "outages": "premise_id"}
_UNSCOPED = ("weather", "census", "households", HOUSEHOLD_MATCHES)  # shared by every account (small)


# at most this many accounts are cut by literal values (Delta skips the files whose statistics
# exclude them, and no broadcast is planned per table); more go through a broadcast semi-join
RESTRICT_LITERAL_MAX = 2000


def _restricted_to(silver: Callable[[str], DataFrame], keys_df: DataFrame) -> Callable[[str], DataFrame]:
    """``silver`` with each table cut to the rows of the keys' accounts (by account_id, their meters
    for ami_daily, their premises for outages) before any feature is computed: every feature of
    an account reads only its own rows (and the shared weather, census and third-party records),
    so the features of a few accounts cost a few accounts' rows, not the utility's.

    Up to ``RESTRICT_LITERAL_MAX`` accounts (a micro-batch of ``ucx stream``) the cut is a filter
    on the ids themselves, read once here (bounded by that limit): with a semi-join per table, each
    of the dozen tables planned its own broadcast of the same accounts, a Spark job each."""
    accounts_df = silver("accounts").join(keys_df.select("account_id").distinct(), "account_id", "left_semi")
    columns = ("account_id", *sorted(set(_ACCOUNT_SCOPE.values())))
    rows = accounts_df.select(*columns).limit(RESTRICT_LITERAL_MAX + 1).collect()
    ids: dict[str, list[Any]] | None = None
    if len(rows) <= RESTRICT_LITERAL_MAX:
        ids = {c: sorted({r[c] for r in rows if r[c] is not None}) for c in columns}
        accounts_df = silver("accounts").filter(F.col("account_id").isin(ids["account_id"]))
    cut: dict[str, DataFrame] = {}

    def read(table: str) -> DataFrame:
        if table not in cut:
            df = silver(table)
            column = _ACCOUNT_SCOPE.get(table, "account_id")
            if table == "accounts":
                df = accounts_df
            elif table not in _UNSCOPED and column in df.columns:
                if ids is not None:
                    df = df.filter(F.col(column).isin(ids[column]))
                else:
                    df = df.join(F.broadcast(accounts_df.select(column).distinct()), column, "left_semi")
            cut[table] = df
        return cut[table]

    return read


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    time_zone: str,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE,
    as_of_dates: list[date] | None = None,
    run_id: str,
    max_default_as_of_dates: int = 24,
    energy_kpis: bool = False,
    gate: Gate | None = None,
) -> GoldResult:
    """Rebuild the gold tables whose silver inputs changed; each one Delta commit.

    Each table's commit records (userMetadata ``built_from``) the versions of
    the silver tables and the parameters it was built from; a table whose
    inputs are all where they were is left as it is (``unchanged``). gold reads
    silver/ami_daily, never the interval reads (silver/ami, only when a
    warehouse has no ami_daily yet). ``energy_kpis`` adds the
    ``kwh_per_household`` KPI (not in the contract's KPI table) to cx_kpis,
    under the 15% dominance rule. ``gate(df, table, write, references=...)``,
    when given, validates each candidate and calls ``write`` only if it passes
    (a failed gate leaves the published table at its previous Delta version
    and build record); meter_daily_usage's completeness check judges the local
    days of silver/ami_daily that changed since it was last published.
    """
    require_utc_session(spark)
    require_time_zone(time_zone)
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    # small silver tables are kept as local checkpoints for the step (_GoldStep.silver); freed when it ends
    with ExitStack() as releases:
        step = _GoldStep(spark, warehouse=warehouse, time_zone=time_zone, run_id=run_id, gate=gate, releases=releases)
        step.meter_daily_usage()
        step.cx_kpis(min_households=min_households, max_household_energy_share=max_household_energy_share,
                     energy_kpis=energy_kpis)
        dates = step.feature_tables(as_of_dates=as_of_dates, max_default_as_of_dates=max_default_as_of_dates)
        step.contact_insights(min_households=min_households)
        step.why_bills_move()
        return GoldResult(
            run_id=run_id,
            tables=tuple(step.paths),
            rows=tuple(step.rows),
            as_of_dates=tuple(dates),
            missing_silver=tuple(dict.fromkeys(step.missing)),
            unchanged=tuple(step.unchanged),
            partial=tuple(step.partial),
        )


class _GoldStep:
    """One run of the gold step: the silver tables it read (each pinned at one version, the small
    ones kept as local checkpoints until ``releases`` closes) and what it published."""

    def __init__(self, spark: SparkSession, *, warehouse: str, time_zone: str, run_id: str, gate: Gate | None,
                 releases: ExitStack) -> None:
        self.spark, self.warehouse, self.time_zone, self.run_id = spark, warehouse, time_zone, run_id
        self.gate, self.releases = gate, releases
        self.missing: list[str] = []
        self.versions: dict[str, int | str | None] = {}
        self.table_ids: dict[str, str | None] = {}  # a rebuilt table restarts its versions under a new id
        self.frames: dict[str, DataFrame] = {}
        self.sources: list[DataFrame] = []
        self.paths: list[tuple[str, str]] = []
        self.rows: list[tuple[str, int]] = []
        self.unchanged: list[str] = []
        self.partial: list[tuple[str, str]] = []
        self.changes = Changes(spark, warehouse, time_zone)
        self.daily_df = self.silver(AMI_DAILY)
        self.accounts_df = self.silver("accounts")

    @cached_property
    def span(self) -> tuple[date, date] | None:
        """(first, last) local date of silver/ami_daily as this run read it (asked once)."""
        return ami_span(self.daily_df)

    def stamped(self, df: DataFrame) -> DataFrame:
        """``df`` with this run's run_id and created_at (the insight tables' columns)."""
        created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
        return df.withColumn("run_id", F.lit(self.run_id)).withColumn("created_at", created_at)

    def silver(self, table: str) -> DataFrame:
        """silver/<table> as this run reads it (the first read pins its version)."""
        if table not in self.frames:
            path = table_path(self.warehouse, "silver", table)
            self.frames[table], self.versions[table] = _read_silver(
                self.spark, self.warehouse, table, self.missing, time_zone=self.time_zone)
            self.table_ids[table] = delta_log.table_id(path)
            if isinstance(self.versions[table], int) and _small(path):
                # computed once, when first read; the read it checkpoints is kept alive until then
                # (collected earlier, its SQL metrics go, and the checkpoint's tasks log an ERROR
                # "attempted to access non-existent accumulator" for each)
                self.sources.append(self.frames[table])
                self.frames[table] = self.frames[table].localCheckpoint(eager=False)
                self.releases.callback(release_checkpoint, self.frames[table])
        return self.frames[table]

    def publish(self, table: str, build: Callable[[], DataFrame], *, params: dict[str, object],
                references: Callable[[], dict[str, DataFrame]] | None = None, update: Update | None = None,
                free_params: tuple[str, ...] = (), any_input: bool = False, dated_inputs: bool = False) -> None:
        """Build, gate and write ``table``; with ``update``, a table whose only moved input is
        silver/ami_daily is recomputed in part (ami_changes_since_built: ``update`` gets the changed
        days; ``dated_inputs``: its other moved inputs may be dated too, and every day from the
        first they can touch joins them), or, ``any_input``, whose moved inputs all say the first
        day they changed (changes_since_built: ``update`` gets [that day], or [] when nothing
        changed); in the same one commit."""
        spark, warehouse = self.spark, self.warehouse
        path = table_path(warehouse, "gold", table)
        for t in silver_inputs(table):
            self.silver(t)  # pin every input now: its version is part of what the table is built from
        built_from = {f"silver.{t}": self.versions.get(t) for t in silver_inputs(table)} | {
            "params": params, TABLE_IDS: {t: self.table_ids.get(t) for t in silver_inputs(table)}}
        previous = settled_inputs(commit_metadata(spark, path, BUILT_FROM), built_from, self.changes.first_day)
        if previous == built_from:
            self.unchanged.append(table)
            return
        if update is not None:
            if any_input:
                in_part, first = changes_since_built(previous, built_from, self.changes.first_day,
                                                     free_params=free_params)
                days = [first] if first is not None else []
            else:
                in_part, days = ami_changes_since_built(
                    previous, built_from, self.changes.days, free_params=free_params,
                    first_changed=self.changes.first_day if dated_inputs else None,
                    last_day=self.span[1] if self.span else None)
            if in_part:
                assert isinstance(previous, dict)
                change = update(days, previous["params"])
                if change is None:
                    self.unchanged.append(table)  # no published row can have changed; a later run sees the changes again
                    return
                keep, fresh_df = change
                version = table_version(spark, path)
                published_df = read_table(spark, warehouse, "gold", table, version=version)
                if same_columns(published_df, fresh_df):
                    what = (f"changes from {days[0]}" if any_input else f"{len(days)} changed days from {days[0]}") \
                        if days else "new dates only"
                    self.partial.append((table, what))
                    build = lambda: published_df.filter(F.expr(keep)).unionByName(fresh_df)  # noqa: E731
        metadata = json.dumps({"run_id": self.run_id, BUILT_FROM: built_from}, default=str)

        def write(candidate_df: DataFrame) -> None:
            with job_tag(spark, f"{table}:write"):
                self.paths.append((table, overwrite_table(candidate_df, warehouse, "gold", table,
                                                          user_metadata=metadata, keep=KEPT_ROWS.get(table))))

        with job_tag(spark, f"{table}:build"):  # the profile counts gold's jobs by table
            checked_df = assert_no_pii(build(), table=table)
            if self.gate is None:
                write(checked_df)
            else:
                self.gate(checked_df, table, write, references=references() if references else None)
        commit = last_commit(spark, path)
        self.rows.append((table, int(commit[1].get("numOutputRows", 0)) if commit else 0))

    def meter_daily_usage(self) -> None:
        """gold/meter_daily_usage, recomputed for the local days of silver/ami_daily that changed and
        the days from the first an accounts change can touch (a move-out, a new account: a meter-day
        takes the household of the account active on its day)."""
        spark, warehouse, time_zone = self.spark, self.warehouse, self.time_zone
        daily_df, accounts_df = self.daily_df, self.accounts_df

        def pending_days() -> dict[str, DataFrame]:
            """silver/ami_daily rows of the local days changed since meter_daily_usage was last published."""
            previous = commit_metadata(spark, table_path(warehouse, "gold", METER_DAILY_USAGE), BUILT_FROM) or {}
            since = previous.get(f"silver.{AMI_DAILY}")
            same_table = (previous.get(TABLE_IDS) or {}).get(AMI_DAILY) == self.table_ids.get(AMI_DAILY)
            days = None  # a rebuilt silver/ami_daily (a new table id) has every day judged
            if same_table and isinstance(since, int) and table_exists(spark, table_path(warehouse, "silver", AMI_DAILY)):
                days = self.changes.days(since)  # the same days the partial rebuild read: one change-feed query
            # the whole table (at the version gold read) gives the meters' lives; the changed days are judged
            if days is None:
                return {f"silver.{AMI_DAILY}": daily_df, f"silver.{AMI_DAILY}#changed_days": daily_df}
            return {f"silver.{AMI_DAILY}": daily_df,
                    f"silver.{AMI_DAILY}#changed_days": daily_df.filter(F.col("local_date").isin(days))}

        def usage_update(days: list[date], before: dict) -> tuple[str, DataFrame] | None:
            """The changed local days recomputed (a meter-day row depends on that day's sums and the
            account active on it); every other day kept as published."""
            if not days:
                return None
            changed = F.col("local_date").isin(days)
            return (f"local_date NOT IN ({sql_literal_list(list(days))})",
                    meter_daily_usage_from_daily(daily_df.filter(changed), accounts_df, time_zone=time_zone))

        self.publish(
            METER_DAILY_USAGE,
            lambda: meter_daily_usage_from_daily(daily_df, accounts_df, time_zone=time_zone),
            params={"time_zone": time_zone}, references=pending_days, update=usage_update, dated_inputs=True,
        )

    def cx_kpis(self, *, min_households: int, max_household_energy_share: float, energy_kpis: bool) -> None:
        """gold/cx_kpis, rebuilt when any input moved (its persona rows kept: KEPT_ROWS)."""
        silver, time_zone = self.silver, self.time_zone
        self.publish(
            CX_KPIS,
            lambda: cx_kpis(
                self.daily_df,
                self.accounts_df,
                surveys_df=silver("surveys"),
                contacts_df=silver("contacts"),
                outages_df=silver("outages"),
                programs_df=silver("programs"),
                marketing_df=silver("marketing"),
                payments_df=silver("payments"),
                bills_df=silver("bills"),
                household_matches_df=silver(HOUSEHOLD_MATCHES),
                households_df=silver("households"),
                time_zone=time_zone,
                min_households=min_households,
                max_household_energy_share=max_household_energy_share,
                daily_usage_df=(read_table(self.spark, self.warehouse, "gold", METER_DAILY_USAGE)
                                if energy_kpis else None),
            ),
            params={"time_zone": time_zone, "min_households": min_households,
                    "max_household_energy_share": max_household_energy_share, "energy_kpis": energy_kpis},
        )

    def feature_tables(self, *, as_of_dates: list[date] | None, max_default_as_of_dates: int) -> list[date]:
        """gold/household_features at the as_of_dates and gold/survey_features (the day before each
        response), each recomputed from the first day an input changed; returns the as_of_dates."""
        spark, warehouse, silver, time_zone = self.spark, self.warehouse, self.silver, self.time_zone
        accounts_df = self.accounts_df
        for t in silver_inputs(HOUSEHOLD_FEATURES):
            silver(t)
        span = self.span
        dates = (
            sorted(set(as_of_dates)) if as_of_dates is not None
            else default_as_of_dates(self.daily_df, limit=max_default_as_of_dates, span=span)
        )
        feature_inputs = household_feature_inputs(silver, self.daily_df, span=span, time_zone=time_zone)
        feature_params = {"time_zone": time_zone, "data_start": span[0].isoformat() if span else None}

        def features_at(days: list[date]) -> DataFrame:
            return household_features(accounts_df, as_of_dates=days, surveys_df=silver("surveys"),
                                      **feature_inputs)  # type: ignore[arg-type]

        def features_update(days: list[date], before: dict) -> tuple[str, DataFrame] | None:
            """Recompute the as_of_dates on or after the first changed day and the new ones; drop
            those no longer among the dates; keep the rest as published."""
            start = days[0] if days else None
            published = set(before.get("as_of_dates") or ())
            fresh = [d for d in dates if d.isoformat() not in published or (start is not None and d >= start)]
            kept = [d for d in dates if d not in fresh]
            if not fresh and len(kept) == len(published):
                return None
            keep = f"as_of_date IN ({sql_literal_list(list(kept))})" if kept else "false"
            return keep, features_at(fresh)

        def survey_update(days: list[date], before: dict) -> tuple[str, DataFrame] | None:
            """Responses whose features are as of the day before the first changed day or later (a
            response's features are as of the day before it: a response changed, new or gone on the
            first changed day has its row there)."""
            if not days:
                return None
            start = days[0] - timedelta(days=1)
            latest = read_table(spark, warehouse, "gold", SURVEY_FEATURES).agg(F.max("as_of_date")).first()
            surveys_moved = self.versions.get("surveys") != before_surveys()
            if not surveys_moved and (latest is None or latest[0] is None or latest[0] < start):
                return None  # no response after the changes
            return (f"as_of_date < {sql_literal_list([start])}",
                    survey_features(silver("surveys"), accounts_df, since=start, **feature_inputs))

        def before_surveys() -> object:
            built = commit_metadata(spark, table_path(warehouse, "gold", SURVEY_FEATURES), BUILT_FROM) or {}
            return built.get("silver.surveys")

        self.publish(
            HOUSEHOLD_FEATURES,
            lambda: features_at(dates),
            params={**feature_params, "as_of_dates": [d.isoformat() for d in dates]},
            update=features_update, free_params=("as_of_dates",), any_input=True,
        )
        self.publish(
            SURVEY_FEATURES,
            lambda: survey_features(silver("surveys"), accounts_df, **feature_inputs),
            params=feature_params, update=survey_update, any_input=True,
        )
        return dates

    def contact_insights(self, *, min_households: int) -> None:
        """gold/contact_insights (insights/contacts.py: contacts and survey comments), recomputed
        from the month that holds the week before the first changed day (a contact's repeat within
        7 days reads the next one)."""
        silver, time_zone = self.silver, self.time_zone

        def insights(since: date | None) -> DataFrame:
            contacts_df, surveys_df = silver("contacts"), silver("surveys")
            if since is not None:  # the months recomputed hold every contact their repeats can read
                contacts_df = contacts_df.filter(
                    local_date(F.col("started_at"), time_zone=time_zone) >= F.lit(since))
                surveys_df = surveys_df.filter(local_date(F.col("responded_at"), time_zone=time_zone) >= F.lit(since))
            scored_df = C.scored_texts(contacts_df, surveys_df, self.accounts_df, time_zone=time_zone)
            return self.stamped(C.contact_insights(scored_df, min_households=min_households))

        def update(days: list[date], before: dict) -> tuple[str, DataFrame] | None:
            if not days:
                return None
            start = (days[0] - timedelta(days=C.REPEAT_DAYS)).replace(day=1)
            return f"month < {sql_literal_list([start])}", insights(start)

        self.publish(CONTACT_INSIGHTS, lambda: insights(None),
                     params={"time_zone": time_zone, "min_households": min_households},
                     update=update, any_input=True)

    def why_bills_move(self) -> None:
        """gold/usage_baselines through the last complete month of silver/ami_daily: refitted when a
        month completes or an input changes a day up to it (``settled_inputs``), not on every daily
        load; gold/bill_explanations against them: every bill, rebuilt with new baselines, else
        from the first day a bill or the weather changed (a bill reads the weather of its period
        and the bill a year before it, both dated before its bill_date). Nothing without AMI reads."""
        span = self.span
        if span is None:
            return
        spark, warehouse, silver, time_zone = self.spark, self.warehouse, self.silver, self.time_zone
        through = B.baseline_through(span[1])

        def temps() -> DataFrame:
            return daily_temperatures(silver("weather"), time_zone=time_zone)

        self.publish(USAGE_BASELINES, lambda: self.stamped(B.usage_baselines(
            read_table(spark, warehouse, "gold", METER_DAILY_USAGE), self.accounts_df, temps(), through=through)),
            params={"time_zone": time_zone, "through": through.isoformat()})
        version = table_version(spark, table_path(warehouse, "gold", USAGE_BASELINES))
        if version is None:
            return  # no baseline published (its gate failed): nothing to explain bills with

        def explained(since: date | None) -> DataFrame:
            bills_df = silver("bills")
            if since is not None:  # the bills recomputed, and the bills a year before them
                bills_df = bills_df.filter(F.col("bill_date") >= F.lit(since - timedelta(days=400)))
            fits_df = read_table(spark, warehouse, "gold", USAGE_BASELINES, version=version)
            out = B.bill_explanations(bills_df, fits_df, temps())
            return self.stamped(out if since is None else out.filter(F.col("bill_date") >= F.lit(since)))

        def update(days: list[date], before: dict) -> tuple[str, DataFrame] | None:
            if not days or silver("bills").filter(F.col("bill_date") >= F.lit(days[0])).isEmpty():
                return None  # no bill issued on or after the first change: no explanation moved
            return f"bill_date < {sql_literal_list([days[0]])}", explained(days[0])

        self.publish(BILL_EXPLANATIONS, lambda: explained(None),
                     params={"time_zone": time_zone, "baselines_version": version},
                     update=update, any_input=True)
