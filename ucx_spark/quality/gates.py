"""Quality gates: run a table's suite with GX Core 1.x on a Spark DataFrame.

``validate`` runs the GX expectations of ``expectations/<layer>.<table>.yaml``
through a Checkpoint (result format SUMMARY without unexpected-value samples,
so no row leaves Spark), then the UCX checks computed with Spark (referential
integrity, AMI completeness, freshness, row-count drift), and returns one
record per expectation. On tables of ``Thresholds.spark_row_rules_min_rows``
rows or more (AMI), the row-level expectations (not null, null, in set,
between, regex; ``rows.ROW_LEVEL_TYPES``) are computed by Spark in one
aggregation with GX's semantics (domain, nulls, ``mostly``, observed values)
instead of one GX metric pass each; GX still runs the others (uniqueness,
row count), and Data Docs show the expectations GX ran. A critical failure fails the gate; warnings are
recorded and shown. ``publish_if_passed`` validates a candidate and calls the
writer only when the gate passed, so a failed gold gate leaves the published
Delta table at its previous version.

GX context: file mode under ``<warehouse>/_quality/gx`` with the Data Docs
site at ``<warehouse>/_quality/data_docs`` (``index.html``); ephemeral when
no warehouse is given. The first checkpoint run of a process costs several
seconds; the context is cached per warehouse.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.errors import ConfigError
from ucx_spark.io.delta import read_table, table_exists, table_path
from ucx_spark.quality.audit import data_docs_index, previous_row_count, record_results
from ucx_spark.quality.batch import TableBatch, read_batch, to_pandas
from ucx_spark.quality.checks import Acceptance, run_check
from ucx_spark.quality.records import GateResult, QualityRecord
from ucx_spark.quality.rows import is_row_level
from ucx_spark.quality.suites import (
    AMI_COMPLETENESS,
    DEFAULT_SUITE_DIR,
    ROW_COUNT_DRIFT,
    ExpectationSpec,
    Suite,
    load_suite,
    resolve_params,
    suite_path,
)

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

    from ucx_spark.config import QualityConfig

GX_DATASOURCE = "ucx_spark"
GX_PANDAS_DATASOURCE = "ucx_spark_pandas"
ROW_CONDITION_PREFIX = "__row_condition_"
DOCS_SITE = "ucx_data_docs"
BATCH_DEFINITION = "whole_dataframe"
# SUMMARY gives observed values and unexpected counts; partial_unexpected_count=0 keeps
# failing values (keys, possibly identifiers) out of the driver, the results and Data Docs.
SUMMARY_NO_VALUES: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}

_CONTEXTS: dict[str, AbstractDataContext] = {}


@dataclass(frozen=True)
class Thresholds:
    """Typed thresholds the suites refer to as ``$name``."""

    ami_completeness_min: float = 0.9
    # a local day is judged on the fleet only when at least this many meters are expected that day
    ami_min_meters_per_day: int = 10
    freshness_max_age_hours: float = 48.0
    row_count_drift_max: float = 0.5
    # not a suite parameter: from this many rows, row-level expectations run as one Spark aggregation
    spark_row_rules_min_rows: int = 1_000_000
    # not a suite parameter: a batch of at most this many rows is validated by GX's pandas engine
    # (handed over once, bounded) instead of its Spark engine's several jobs per table
    pandas_max_rows: int = 200_000
    # not a suite parameter: local days published although incomplete, by whom and why
    accept_incomplete: Acceptance | None = None

    @classmethod
    def from_config(cls, quality: QualityConfig, *, accepted_by: str | None = None) -> Thresholds:
        """The thresholds of ``quality``; its accept_incomplete_days (if any) are recorded as
        accepted by ``accepted_by`` (default: the operating-system user)."""
        accepted = None
        if quality.accept_incomplete_days:
            accepted = Acceptance(
                days=tuple(date.fromisoformat(d) for d in quality.accept_incomplete_days),
                reason=quality.accept_incomplete_reason,
                by=accepted_by or operator_name(),
            )
        return cls(
            ami_completeness_min=quality.ami_completeness_min,
            ami_min_meters_per_day=quality.ami_min_meters_per_day,
            accept_incomplete=accepted,
            spark_row_rules_min_rows=quality.spark_row_rules_min_rows,
            pandas_max_rows=quality.pandas_max_rows,
        )

    def params(self) -> dict[str, float]:
        return {
            "ami_completeness_min": self.ami_completeness_min,
            "ami_min_meters_per_day": self.ami_min_meters_per_day,
            "freshness_max_age_hours": self.freshness_max_age_hours,
            "row_count_drift_max": self.row_count_drift_max,
        }


def operator_name() -> str:
    """Who runs this process, for the audit table: ``UCX_OPERATOR`` or the OS user, and the host."""
    import getpass
    import socket

    try:
        user = os.environ.get("UCX_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# --- GX context --------------------------------------------------------------------------------


def quality_context(warehouse: str | Path | None = None) -> AbstractDataContext:
    """The GX context: file mode under ``<warehouse>/_quality/gx`` (Data Docs beside it), or
    ephemeral without a warehouse. Cached per warehouse for the life of the process."""
    key = str(Path(warehouse).resolve()) if warehouse is not None else ""
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    if len(_CONTEXTS) >= 2:  # one process, one or two warehouses at a time: keep the newest only
        release_contexts()
    # GX reads this when imported; anonymous usage statistics have no place in a pipeline.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if warehouse is None:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    else:
        root = Path(key) / "_quality"
        root.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(root))
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
        # One site, relative to the context root (<warehouse>/_quality/gx): the warehouse can move.
        sites = dict(context.get_config().data_docs_sites or {})
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "../data_docs/"},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        for name in sites:
            if name != DOCS_SITE:
                context.delete_data_docs_site(name)
        if sites.get(DOCS_SITE) != site:
            if DOCS_SITE in sites:
                context.delete_data_docs_site(DOCS_SITE)
            context.add_data_docs_site(DOCS_SITE, site)  # type: ignore[arg-type]
    _CONTEXTS[key] = context
    return context


def release_contexts() -> None:
    """Forget the cached GX contexts, checkpoints and reference key sets (a long-lived process that
    moves between warehouses, e.g. a test session; each context keeps what it last validated)."""
    _CONTEXTS.clear()
    _CHECKPOINTS.clear()
    _KEY_SETS.clear()


def _has_docs_site(context: AbstractDataContext) -> bool:
    return DOCS_SITE in (context.get_config().data_docs_sites or {})


def _gx_expectation(spec: ExpectationSpec, suite_name: str) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import PassThroughCondition

    class_name = "".join(part.capitalize() for part in spec.type.split("_"))
    cls = getattr(gxe, class_name, None)
    if cls is None:
        raise ConfigError(f"suite {suite_name}, expectation {spec.id}: GX has no expectation {spec.type}")
    kwargs = dict(spec.kwargs)
    if kwargs.get("row_condition"):
        kwargs["row_condition"] = PassThroughCondition(pass_through_filter=str(kwargs["row_condition"]))
    try:
        return cls(**kwargs, severity=spec.severity, meta={"ucx_id": spec.id})
    except Exception as exc:  # pydantic validation errors: name the suite entry
        raise ConfigError(f"suite {suite_name}, expectation {spec.id} ({spec.type}): {exc}") from None


_CHECKPOINTS: dict[tuple[int, str, str, tuple[str, ...], bool, str], Any] = {}
_LAST_BUILT: dict[tuple[int, str], tuple[int, str, str, tuple[str, ...], bool, str]] = {}  # (context, suite) -> key


def _checkpoint(context: AbstractDataContext, suite: Suite, specs: list[ExpectationSpec], *, data_docs: bool,
                result_format: str | dict[str, Any], engine: str = "spark") -> Any:
    """The GX checkpoint of ``suite`` restricted to ``specs`` on the ``engine`` ("spark" or "pandas")
    datasource; built once per context and process (building writes the suite, the validation
    definition and the checkpoint to the context's stores)."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    key = (id(context), engine, suite.name, tuple(s.id for s in specs), data_docs, repr(result_format))
    # GX keeps one suite (and one checkpoint) per name: a checkpoint of the same suite built for
    # another engine or set of expectations (a large batch on Spark without its row rules, a small
    # one on pandas) rewrites it, and the one built before would then refuse to run ("has changed
    # since it has last been saved": a process that ran the pipeline twice met it). A cached
    # checkpoint is used only while it is the last one built under its name; else built again.
    if key in _CHECKPOINTS and _LAST_BUILT.get((id(context), suite.name)) == key:
        return _CHECKPOINTS[key]
    if engine == "pandas":
        source = (
            context.data_sources.get(GX_PANDAS_DATASOURCE) if GX_PANDAS_DATASOURCE in context.data_sources.all()
            else context.data_sources.add_pandas(name=GX_PANDAS_DATASOURCE)
        )
    else:
        source = context.data_sources.get(GX_DATASOURCE) if GX_DATASOURCE in context.data_sources.all() else None
        if source is None or getattr(source, "persist", True):
            # persist=False: GX would otherwise cache every validated DataFrame and never release it;
            # validate() decides what is cached (and unpersists it).
            source = context.data_sources.add_or_update_spark(name=GX_DATASOURCE, persist=False)
    if suite.name in source.get_asset_names():
        asset = source.get_asset(suite.name)
    else:
        asset = source.add_dataframe_asset(name=suite.name)
    if any(b.name == BATCH_DEFINITION for b in asset.batch_definitions):
        batch = asset.get_batch_definition(BATCH_DEFINITION)
    else:
        batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    gx_suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=suite.name, expectations=[_gx_expectation(s, suite.name) for s in specs])
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    actions = [UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])] if data_docs else []
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=suite.name, validation_definitions=[definition], actions=actions,
                      result_format=result_format)
    )
    _CHECKPOINTS[key] = checkpoint
    _LAST_BUILT[(id(context), suite.name)] = key
    return checkpoint


def _observed(result: dict[str, Any]) -> tuple[str | None, int | None]:
    if "observed_value" in result:
        return str(result["observed_value"]), None
    if "unexpected_count" in result:
        unexpected = int(result["unexpected_count"] or 0)
        total = result.get("element_count")
        pct = result.get("unexpected_percent")
        text = f"{unexpected} of {total} rows unexpected"
        if pct is not None:
            text += f" ({float(pct):.2f}%)"
        return text, unexpected
    return None, None


def _exception_text(info: Any) -> str | None:
    """GX reports failures to compute a metric in exception_info (flat, or keyed by metric)."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _run_gx(
    context: AbstractDataContext, df: Any, suite: Suite, specs: list[ExpectationSpec], *, run_id: str,
    data_docs: bool, result_format: str | dict[str, Any], engine: str = "spark",
) -> dict[str, tuple[bool, str | None, int | None]]:
    from great_expectations.core.run_identifier import RunIdentifier

    checkpoint = _checkpoint(context, suite, specs, data_docs=data_docs and _has_docs_site(context),
                             result_format=result_format, engine=engine)
    result = checkpoint.run(batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_id))
    outcomes: dict[str, tuple[bool, str | None, int | None]] = {}
    for suite_result in result.run_results.values():
        for r in suite_result.results:
            spec_id = str((r.expectation_config.meta or {}).get("ucx_id"))
            error = _exception_text(r.exception_info)
            if error is not None:
                outcomes[spec_id] = (False, f"error: {error}"[:1000], None)
                continue
            observed, unexpected = _observed(dict(r.result or {}))
            outcomes[spec_id] = (bool(r.success), observed, unexpected)
    return outcomes


# Row-level expectations whose nulls GX leaves out of the judgement (filter_column_isnull);
# not_be_null / be_null judge every row of their domain.
_NULLS_SKIPPED = (
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
)


def _spark_row_rules(
    df: DataFrame, specs: list[ExpectationSpec]
) -> dict[str, tuple[bool, str | None, int | None]]:
    """Row-level expectations (``rows.ROW_LEVEL_TYPES``) computed in ONE Spark aggregation.

    Same verdicts and observed values as GX's map expectations: the domain is
    the rows where ``row_condition`` holds; in-set, between and regex
    expectations leave nulls out (success = (non-null - unexpected) /
    non-null >= mostly, vacuously true without non-null rows, percent of
    non-null rows), not-null and null expectations judge every domain row
    (percent of the domain). GX would compute each of them in its own metric
    passes over the table; here every count comes from the same scan.
    """
    from ucx_spark.quality.rows import row_condition

    aggs = []
    for i, spec in enumerate(specs):
        kw = spec.kwargs
        where = kw.get("row_condition")
        domain = F.coalesce(F.expr(str(where)), F.lit(False)) if where else F.lit(True)
        plain = ExpectationSpec(spec.id, spec.type, spec.severity, {k: v for k, v in kw.items() if k != "row_condition"})
        col = F.col(f"`{kw['column']}`")
        aggs += [
            F.count(F.when(domain, 1)).alias(f"t{i}"),
            F.count(F.when(domain & col.isNull(), 1)).alias(f"n{i}"),
            F.count(F.when(domain & ~row_condition(plain), 1)).alias(f"u{i}"),
        ]
    row = df.agg(*aggs).first()
    assert row is not None
    out: dict[str, tuple[bool, str | None, int | None]] = {}
    for i, spec in enumerate(specs):
        total, nulls, unexpected = int(row[f"t{i}"]), int(row[f"n{i}"]), int(row[f"u{i}"])
        mostly = float(spec.kwargs.get("mostly", 1.0))
        considered = total - nulls if spec.type in _NULLS_SKIPPED else total
        success = True if total == 0 or considered == 0 else (considered - unexpected) / considered >= mostly
        text = f"{unexpected} of {total} rows unexpected"
        if total > 0 and considered > 0:
            text += f" ({float(unexpected / considered * 100):.2f}%)"
        out[spec.id] = (success, text, unexpected)
    return out


# --- Gates -------------------------------------------------------------------------------------


def _reference_lookup(
    spark: SparkSession, warehouse: str | Path | None, references: Mapping[str, DataFrame] | None
) -> Callable[[str], DataFrame]:
    def lookup(name: str) -> DataFrame:
        """``layer.table``, or ``layer.table#part`` (a subset a caller may pass, e.g. the changed
        days; without it, the whole table)."""
        base = name.partition("#")[0]
        for key in (name, base):
            if references and key in references:
                return references[key]
        layer, _, table = base.partition(".")
        if warehouse is None or not table_exists(spark, table_path(warehouse, layer, table)):
            raise LookupError(f"reference table {name} not found (no warehouse table, not passed in references)")
        return read_table(spark, warehouse, layer, table)

    return lookup


_KEY_SETS: dict[tuple[str, str, str, int | None], frozenset[Any] | None] = {}


def _key_sets(
    spark: SparkSession, lookup: Callable[[str], DataFrame], warehouse: str | Path | None,
    references: Mapping[str, DataFrame] | None, max_rows: int,
) -> Callable[[str, str], frozenset[Any] | None]:
    """Reference key sets for the pandas referential-integrity check: a warehouse table's distinct
    keys collected once per table version (at most ``max_rows`` of them, else None: Spark joins),
    shared by every suite of the run that references it. Tables passed in ``references`` are not
    cached (they are not versioned)."""
    from ucx_spark.io import delta_log

    def keys(name: str, column: str) -> frozenset[Any] | None:
        version = None
        layer, _, table_name = name.partition(".")
        if warehouse is not None and not (references and name in references):
            version = delta_log.latest_version(table_path(warehouse, layer, table_name))
        cache_key = (str(warehouse), name, column, version)
        if version is not None and cache_key in _KEY_SETS:
            return _KEY_SETS[cache_key]
        values = None
        if version is not None:  # a small warehouse table: its files read directly (quality.batch)
            table = delta_log.read_arrow(table_path(warehouse, layer, table_name), columns=[column], types={},
                                         max_rows=max_rows)
            values = None if table is None else to_pandas(table)[column].drop_duplicates()
        if values is None:
            values = lookup(name).select(column).distinct().limit(max_rows + 1).toPandas()[column]
        found = frozenset(values.dropna()) if len(values) <= max_rows else None
        if version is not None:
            if len(_KEY_SETS) > 256:
                _KEY_SETS.clear()
            _KEY_SETS[cache_key] = found
        return found

    return keys


AMI_COMPLETENESS_COLUMNS = (
    "meter_id", "local_date", "interval_minutes", "present_intervals", "day_start", "day_end",
    "first_interval_start", "last_interval_end",
)
_IDENTIFIER = re.compile(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)")


def referenced_columns(specs: list[ExpectationSpec], columns: list[str]) -> list[str]:
    """The columns of ``columns`` (in their order) that some expectation or UCX check reads.

    Named in kwargs (``column``, ``column_list``), used by a ``row_condition``
    (any identifier of the predicate that is a column) or implied by a check
    (AMI completeness on the table itself reads the columns of ``AMI_COMPLETENESS_COLUMNS``).
    """
    wanted: set[str] = set()
    for spec in specs:
        kw = spec.kwargs
        if "column" in kw:
            wanted.add(str(kw["column"]))
        wanted.update(str(kw[k]) for k in ("column_A", "column_B") if k in kw)
        wanted.update(str(c) for c in kw.get("column_list") or ())
        if kw.get("row_condition"):
            wanted.update(a or b for a, b in _IDENTIFIER.findall(str(kw["row_condition"])))
        if spec.type == AMI_COMPLETENESS and not kw.get("ref_table"):
            wanted.update(AMI_COMPLETENESS_COLUMNS)
    lower = {w.lower() for w in wanted}
    return [c for c in columns if c in wanted or c.lower() in lower]


def _conditions(specs: list[ExpectationSpec]) -> list[str]:
    return list(dict.fromkeys(str(s.kwargs["row_condition"]) for s in specs if s.kwargs.get("row_condition")))


def _small_batch(
    df: DataFrame, specs: list[ExpectationSpec], max_rows: int, source: TableBatch | None = None
) -> Any | None:
    """The batch as a pandas frame when it has at most ``max_rows`` rows (else None), with each
    row condition of ``specs`` evaluated as a boolean column ``__row_condition_<i>``.

    ``source`` (where the batch lies in its Delta table) lets a batch the log
    shows to be small be read from its files without Spark (``quality.batch``);
    otherwise one Spark job reads at most ``max_rows + 1`` rows and evaluates
    the conditions. A condition Spark cannot resolve (a missing column) leaves
    the batch to the Spark engine, which reports it as the expectation's error.
    """
    if max_rows <= 0:
        return None
    conditions = _conditions(specs)
    if source is not None:
        pdf = read_batch(df, source, conditions, max_rows, ROW_CONDITION_PREFIX)
        if pdf is not None:
            return pdf
    try:
        probe_df = df.select(
            *[F.col(f"`{c}`") for c in df.columns],
            *[F.coalesce(F.expr(c), F.lit(False)).alias(f"{ROW_CONDITION_PREFIX}{i}") for i, c in enumerate(conditions)],
        )
        pdf = probe_df.limit(max_rows + 1).toPandas()
    except AnalysisException:
        return None
    return pdf if len(pdf) <= max_rows else None


def prepare(
    warehouse: str | Path | None,
    suites: list[tuple[str, str]],
    *,
    suite_dir: str | Path = DEFAULT_SUITE_DIR,
    thresholds: Thresholds = Thresholds(),  # noqa: B008 (frozen, immutable default)
) -> None:
    """Import GX, open the warehouse's context and build the checkpoints ``validate`` runs a small
    batch of each (layer, table) suite through (the pandas engine), so the first validations pay
    none of it: ~7 s on a fresh process (GX's import 4.5 s, its context, ~0.2 s per checkpoint).
    Touches no Spark and no data; a suite that does not load is left for ``validate`` to report."""
    context = quality_context(warehouse)
    params: dict[str, Any] = thresholds.params()
    for layer, table in suites:
        if not suite_path(suite_dir, layer, table).is_file():
            continue
        try:
            suite = load_suite(suite_dir, layer, table)
        except ConfigError:
            continue
        gx_specs = [s for s in (resolve_params(s, params) for s in suite.expectations) if not s.is_custom]
        if gx_specs:
            _checkpoint(context, suite, _pandas_specs(gx_specs), data_docs=False, result_format=SUMMARY_NO_VALUES,
                        engine="pandas")


def _pandas_specs(specs: list[ExpectationSpec]) -> list[ExpectationSpec]:
    """``specs`` with each SQL row condition replaced by its precomputed boolean column (pandas'
    query syntax is not SQL); the verdicts keep the ids of the suite's expectations."""
    index = {c: i for i, c in enumerate(_conditions(specs))}
    out = []
    for spec in specs:
        cond = spec.kwargs.get("row_condition")
        if cond:
            kwargs = {**spec.kwargs, "row_condition": f"`{ROW_CONDITION_PREFIX}{index[str(cond)]}`"}
            spec = ExpectationSpec(spec.id, spec.type, spec.severity, kwargs)
        out.append(spec)
    return out


def validate(
    spark: SparkSession,
    df: DataFrame,
    *,
    layer: str,
    table: str,
    run_id: str,
    suite_dir: str | Path = DEFAULT_SUITE_DIR,
    context: AbstractDataContext | None = None,
    warehouse: str | Path | None = None,
    thresholds: Thresholds = Thresholds(),  # noqa: B008 (frozen, immutable default)
    references: Mapping[str, DataFrame] | None = None,
    now: datetime | None = None,
    result_format: str | dict[str, Any] = "SUMMARY",
    data_docs: bool = True,
    cache: bool = True,
    source: TableBatch | None = None,
) -> GateResult:
    """Validate ``df`` against ``<suite_dir>/<layer>.<table>.yaml``; write nothing but GX's own files.

    ``warehouse`` gives the GX file context and Data Docs (unless ``context`` is
    passed), the tables referenced by referential-integrity and completeness
    checks (``references`` {"silver.accounts": df} overrides), and the previous
    run's row count from ``gold/quality_results``. ``result_format`` SUMMARY
    (default; failing values are never collected) or BOOLEAN_ONLY (no observed
    values, a little faster). ``cache`` persists ``df`` for the duration (GX
    makes several passes over it) when it has fewer than
    ``thresholds.spark_row_rules_min_rows`` rows. ``source``: where ``df``'s rows lie in their
    Delta table, so a small batch is read from its files (``quality.batch``), not through Spark.
    """
    suite = load_suite(suite_dir, layer, table)
    params: dict[str, Any] = thresholds.params()
    specs = [resolve_params(s, params) for s in suite.expectations]
    context = context if context is not None else quality_context(warehouse)
    if result_format == "SUMMARY":
        result_format = SUMMARY_NO_VALUES
    now = now or datetime.now(UTC)
    # Only the columns the suite reads: a narrower cache and narrower GX passes, same verdicts.
    keep = referenced_columns(specs, df.columns)
    if keep and len(keep) < len(df.columns):
        df = df.select(*[F.col(f"`{c}`") for c in keep])
    gx_specs = [s for s in specs if not s.is_custom]
    outcomes: dict[str, tuple[bool, str | None, int | None]] = {}
    small = _small_batch(df, gx_specs, thresholds.pandas_max_rows, source) if gx_specs else None
    persisted = False
    if small is not None:
        # A small batch: handed to pandas once (bounded by pandas_max_rows) and validated there by
        # GX's pandas engine, which answers the suite in milliseconds where its Spark engine runs
        # several Spark jobs per table. Row conditions were evaluated by Spark as columns.
        row_count = len(small)
        outcomes.update(
            _run_gx(context, small, suite, _pandas_specs(gx_specs), run_id=run_id, data_docs=data_docs,
                    result_format=result_format, engine="pandas")
        )
    else:
        row_count = df.count()
        # GX makes a dozen passes over a table with many row-level expectations: cache it, unless it
        # is large, where those expectations run as one Spark aggregation and a cache would cost
        # more (a full extra pass and its memory) than the few remaining rescans of the columns read.
        persisted = cache and not df.is_cached and row_count < thresholds.spark_row_rules_min_rows
        if persisted:
            df = df.persist()
    try:
        if small is None and row_count >= thresholds.spark_row_rules_min_rows:
            spark_specs = [
                s for s in gx_specs if is_row_level(s) and str(s.kwargs.get("column")) in df.columns
            ]
            if spark_specs:
                try:
                    outcomes = _spark_row_rules(df, spark_specs)
                except AnalysisException:  # e.g. a row_condition naming a missing column: GX reports it
                    outcomes = {}
                gx_specs = [s for s in gx_specs if s.id not in outcomes]
        if small is None and gx_specs:
            outcomes.update(
                _run_gx(context, df, suite, gx_specs, run_id=run_id, data_docs=data_docs, result_format=result_format)
            )
        lookup = _reference_lookup(spark, warehouse, references)
        needs_previous = any(s.type == ROW_COUNT_DRIFT for s in specs)
        previous = (
            previous_row_count(spark, warehouse, layer=layer, table=table, run_id=run_id) if needs_previous else None
        )
        for spec in specs:
            if not spec.is_custom:
                continue
            try:
                check = run_check(spec, df, row_count=row_count, reference=lookup, previous=previous, now=now,
                                  accepted=thresholds.accept_incomplete, small=small,
                                  reference_keys=_key_sets(spark, lookup, warehouse, references,
                                                           thresholds.pandas_max_rows))
                outcomes[spec.id] = (check.success, check.observed_value, check.unexpected_count)
            except LookupError as exc:
                outcomes[spec.id] = (False, f"error: {exc}", None)
    finally:
        if persisted:
            df.unpersist()
    checked_at = datetime.now(UTC)
    records = tuple(
        QualityRecord(
            run_id=run_id, layer=layer, table=table, suite=suite.name, expectation_id=s.id,
            expectation_type=s.type, column=s.column, severity=s.severity,
            success=outcomes.get(s.id, (False, "error: no result from GX", None))[0],
            observed_value=outcomes.get(s.id, (False, "error: no result from GX", None))[1],
            unexpected_count=outcomes.get(s.id, (False, None, None))[2],
            row_count=row_count, checked_at=checked_at,
        )
        for s in specs
    )
    docs = data_docs_index(warehouse) if warehouse is not None and data_docs else None
    if docs is not None and docs.is_file():
        from ucx_spark.quality import docs_offline

        # GX rendered this validation's page and the index again with their CDN addresses: point them
        # back at the local copies, or a gate run after `ucx pipeline` (an insight command's) leaves
        # Data Docs that do not open offline
        docs_offline.localise(docs.parent)
    return GateResult(run_id, layer, table, suite.name, row_count, records, docs)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def publish_if_passed(
    spark: SparkSession,
    candidate_df: DataFrame,
    write: Callable[[DataFrame], object],
    *,
    layer: str,
    table: str,
    run_id: str,
    warehouse: str | Path,
    suite_dir: str | Path = DEFAULT_SUITE_DIR,
    context: AbstractDataContext | None = None,
    thresholds: Thresholds = Thresholds(),  # noqa: B008
    references: Mapping[str, DataFrame] | None = None,
    now: datetime | None = None,
    echo: Callable[[str], None] = _stderr,
    data_docs: bool = True,
    record: Callable[[GateResult], object] | None = None,
) -> GateResult:
    """Validate the candidate, record the results in ``gold/quality_results``, show failures,
    and call ``write(candidate_df)`` only if no critical expectation failed.

    ``data_docs=False`` leaves the Data Docs site to the caller (the medallion
    renders it once at the end of a run instead of once per table); ``record``, when given,
    takes the result instead of ``gold/quality_results`` (the medallion's gold step records all
    its gates' results in one commit, ``pipelines.gates.Gates.record_pending``).

    On a critical failure raises DataError (naming table, expectation and
    observed value) before writing: the published table keeps its Delta
    version. The candidate is cached across validation and write.
    """
    persisted = not candidate_df.is_cached
    cached_df = candidate_df.persist() if persisted else candidate_df
    try:
        result = validate(
            spark, cached_df, layer=layer, table=table, run_id=run_id, suite_dir=suite_dir, context=context,
            warehouse=warehouse, thresholds=thresholds, references=references, now=now, cache=False,
            data_docs=data_docs,
        )
        if record is None:
            record_results(spark, warehouse, result)
        else:
            record(result)
        if result.critical_failures or result.warnings:
            echo(result.report())
        result.raise_for_critical()
        write(cached_df)
        return result
    finally:
        if persisted:
            cached_df.unpersist()
