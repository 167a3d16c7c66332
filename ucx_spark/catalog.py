"""Every table of the warehouse, declared once (issue 23: "a table catalog").

Each ``TableSpec`` says where a table lives (``<warehouse>/<layer>/<name>``,
registered as ``<layer>.<name>``), its key, its partitioning and Delta table
properties, the step or command that writes it, the tables it is built from,
where its schema is defined, and whether it is restricted (it may hold
personal data: bronze, silver and quarantine are owner-only folders).

The pipelines read their layout from here: silver's partitioning and table
properties, gold's inputs (``built_from``, recorded on every gold commit and
compared on the next run), bronze's partitions, the audit table's key. The
table inventory in ``docs/layers.md`` is generated from this module
(``python -m ucx_spark.catalog --write docs/layers.md``) and a test fails when
they differ; another checks every key against its table's GX uniqueness
expectation.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ucx_spark.contract import FEED_ORDER, FEEDS

LAYERS = ("bronze", "silver", "gold", "quarantine")
# Layers that hold landed identifiers (names, addresses, account and meter numbers, free text):
# their folders are the owner's alone; gold (pseudonymous, for BI) keeps the default mode.
RESTRICTED_LAYERS = ("bronze", "silver", "quarantine")

# names of the tables beside the feeds' (one definition each)
QUARANTINED_FILES = "_files"  # quarantine/_files
PROCESSED_FILES = "_processed_files"  # silver/_processed_files
SUPERSEDED = "_superseded"  # silver/_superseded
AMI_DAILY = "ami_daily"  # silver/ami_daily
HOUSEHOLD_MATCHES = "household_matches"  # silver/household_matches
METER_DAILY_USAGE = "meter_daily_usage"  # gold/meter_daily_usage
HOUSEHOLD_FEATURES = "household_features"  # gold/household_features
SURVEY_FEATURES = "survey_features"  # gold/survey_features
CX_KPIS = "cx_kpis"  # gold/cx_kpis
QUALITY_RESULTS = "quality_results"  # gold/quality_results
PIPELINE_RUNS = "pipeline_runs"  # gold/pipeline_runs
HOUSEHOLD_SCORES = "household_scores"  # gold/household_scores
MODEL_DRIVERS = "model_drivers"  # gold/model_drivers
WHATIF_RESULTS = "whatif_results"  # gold/whatif_results
SEGMENTS = "segments"  # gold/segments
SEGMENT_PROFILES = "segment_profiles"  # gold/segment_profiles
PROGRAM_SATURATION = "program_saturation"  # gold/program_saturation
PROGRAM_PROPENSITY = "program_propensity"  # gold/program_propensity
CAMPAIGN_TARGETS = "campaign_targets"  # gold/campaign_targets
CONTACT_INSIGHTS = "contact_insights"  # gold/contact_insights
USAGE_BASELINES = "usage_baselines"  # gold/usage_baselines
BILL_EXPLANATIONS = "bill_explanations"  # gold/bill_explanations
EQUITY_AUDIT = "equity_audit"  # gold/equity_audit
STREAM_EVENTS = "_stream_events"  # quarantine/_stream_events
AMI_PARTITION = "local_month"
# One partition per landing file (its rejection reason, if any, beside it): the files a table
# holds are read from its partition values, and a file's rows from its partition alone.
BRONZE_PARTITIONS = ("_source_file", "_file_rejected")

# Raw strings are never searched by value: no per-column statistics (they cost more than the
# write itself); the row counts Delta keeps per file remain.
_BRONZE_PROPERTIES = (("delta.dataSkippingNumIndexedCols", "0"),)
# Statistics only on the columns reads filter by (each indexed column costs time on every write);
# silver/ami_daily keeps a change data feed: gold judges the days changed since it last published.
_AMI_PROPERTIES = (("delta.dataSkippingStatsColumns", "meter_id,interval_start,local_date,_source_file,_run_id"),)
# The other feeds keep a change data feed: gold's point-in-time features recompute only from the
# first day a changed row is dated (pipelines/gold.first_changed_day). silver/ami is read by nobody
# downstream but silver/ami_daily, which has its own.
_FEED_PROPERTIES = (("delta.enableChangeDataFeed", "true"),)
_AMI_DAILY_PROPERTIES = (
    ("delta.enableChangeDataFeed", "true"),
    ("delta.dataSkippingStatsColumns", "meter_id,local_date,_run_id"),
)


@dataclass(frozen=True)
class TableSpec:
    layer: str
    name: str
    grain: str  # what one row is
    writer: str  # the step (ucx pipeline: bronze, silver, gold, gates, accounting) or command that writes it
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()  # Delta table properties set when it is created
    built_from: tuple[str, ...] = ()  # "layer/name" of the tables it is computed from
    schema: str = ""  # where its columns are defined
    also_written_by: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def restricted(self) -> bool:
        return self.layer in RESTRICTED_LAYERS

    @property
    def table_properties(self) -> dict[str, str]:
        return dict(self.properties)


def _feed_tables() -> list[TableSpec]:
    out: list[TableSpec] = []
    for feed in FEED_ORDER:
        f = FEEDS[feed]
        out.append(TableSpec(
            "bronze", feed, "landed row (every one, raw strings)", "pipeline: bronze",
            keys=("_source_file", "_row_number"), partition_by=BRONZE_PARTITIONS, properties=_BRONZE_PROPERTIES,
            schema="contract.md section 1 + ucx_spark.bronze (lineage columns)"))
        out.append(TableSpec(
            "silver", feed, "current row per key of the feed", "pipeline: silver",
            keys=tuple(f.key), partition_by=(AMI_PARTITION,) if feed == "ami" else (),
            properties=_AMI_PROPERTIES if feed == "ami" else _FEED_PROPERTIES, built_from=(f"bronze/{feed}",),
            schema="contract.md section 1 (typed) + ucx_spark.silver.rows.typed_rows"))
        out.append(TableSpec(
            "quarantine", feed, "bad row (raw values, rule, detail)", "pipeline: silver",
            keys=("_source_file", "_row_number"), built_from=(f"bronze/{feed}",),
            schema="ucx_spark.silver.rows.quarantine_rows"))
    return out


# The silver tables every point-in-time household feature is computed from.
_FEATURE_INPUTS = tuple(
    f"silver/{t}" for t in (AMI_DAILY, "accounts", "weather", "bills", "payments", "collections", "contacts",
                            "outages", "programs", "marketing", HOUSEHOLD_MATCHES, "households", "census", "surveys")
)

_OTHER_TABLES = [
    TableSpec("quarantine", QUARANTINED_FILES, "rejected landing file", "pipeline: bronze",
              keys=("feed", "_source_file"), schema="ucx_spark.pipelines.bronze.FILES_SCHEMA"),
    TableSpec("silver", AMI_DAILY, "meter x local day (sums and counts of current reads)", "pipeline: silver",
              keys=("meter_id", "local_date"), partition_by=(AMI_PARTITION,), properties=_AMI_DAILY_PROPERTIES,
              built_from=("silver/ami",), schema="ucx_spark.silver.ami_daily"),
    TableSpec("silver", HOUSEHOLD_MATCHES, "third-party household record matched to a premise", "pipeline: silver",
              keys=("record_id",), built_from=("silver/households", "silver/accounts"),
              schema="ucx_spark.silver.addresses.match_households"),
    TableSpec("silver", PROCESSED_FILES, "bronze file processed into silver", "pipeline: silver",
              keys=("feed", "_source_file"), schema="ucx_spark.pipelines.silver._log_processed"),
    TableSpec("silver", SUPERSEDED, "landed row beaten by a later copy of its key", "pipeline: silver",
              keys=("feed", "_source_file", "_row_number"), partition_by=("feed",),
              schema="ucx_spark.silver.rows.superseded_in_batch"),
    TableSpec("gold", METER_DAILY_USAGE, "meter x local day", "pipeline: gold",
              keys=("meter_key", "local_date"), built_from=(f"silver/{AMI_DAILY}", "silver/accounts"),
              schema="contract.md section 4 + ucx_spark.gold.meter_daily_usage"),
    TableSpec("gold", HOUSEHOLD_FEATURES, "household x as_of_date (month ends, last complete day)",
              "pipeline: gold", keys=("household_id", "as_of_date"), built_from=_FEATURE_INPUTS,
              schema="ucx_spark.gold.household_features"),
    TableSpec("gold", SURVEY_FEATURES, "survey response (features as of the day before it)", "pipeline: gold",
              keys=("household_id", "response_key"), built_from=_FEATURE_INPUTS,
              schema="ucx_spark.gold.household_features.survey_features"),
    TableSpec("gold", CX_KPIS, "month x segment x KPI", "pipeline: gold", also_written_by=("ucx segment",),
              keys=("month", "segment_type", "segment_value", "kpi"),
              built_from=tuple(f"silver/{t}" for t in (AMI_DAILY, "accounts", "surveys", "contacts", "outages",
                                                       "programs", "marketing", "payments", "bills",
                                                       HOUSEHOLD_MATCHES, "households")),
              schema="contract.md section 4 + ucx_spark.gold.cx_kpis"),
    TableSpec("gold", QUALITY_RESULTS, "expectation x table x run", "pipeline: gates",
              also_written_by=("ucx quality", "ucx score"), keys=("run_id", "layer", "table", "expectation_id"),
              schema="ucx_spark.quality.audit.AUDIT_SCHEMA"),
    TableSpec("gold", PIPELINE_RUNS, "run x feed (landed = current + superseded + quarantined)",
              "pipeline: accounting", keys=("run_id", "feed"), schema="ucx_spark.pipelines.medallion"),
    TableSpec("gold", HOUSEHOLD_SCORES, "household x model (its latest score)", "ucx score",
              also_written_by=("ucx stream",), keys=("household_id", "model_name"),
              built_from=(f"gold/{HOUSEHOLD_FEATURES}",), schema="contract.md section 4 + ucx_spark.models.score"),
    TableSpec("quarantine", STREAM_EVENTS, "silver change event a stream micro-batch refused (rule)", "ucx stream",
              keys=("query_id", "batch_id", "source", "commit_version"), schema="ucx_spark.pipelines.stream"),
    TableSpec("gold", MODEL_DRIVERS, "model x segment x feature (replaced per run)", "ucx drivers",
              keys=("model_name", "segment_type", "segment_value", "feature"),
              built_from=(f"gold/{HOUSEHOLD_FEATURES}",), schema="ucx_spark.pipelines.drivers"),
    TableSpec("gold", WHATIF_RESULTS, "what-if run x segment x metric", "ucx whatif",
              keys=("run_id", "segment_type", "segment_value", "metric"),
              built_from=(f"gold/{HOUSEHOLD_FEATURES}", "silver/collections"), schema="ucx_spark.pipelines.whatif"),
    TableSpec("gold", SEGMENTS, "household x segmentation", "ucx segment",
              keys=("household_id", "segmentation"), built_from=(f"gold/{HOUSEHOLD_FEATURES}",),
              schema="ucx_spark.pipelines.segments"),
    TableSpec("gold", SEGMENT_PROFILES, "segmentation x segment", "ucx segment",
              keys=("segmentation", "segment_id"), built_from=(f"gold/{SEGMENTS}", f"gold/{HOUSEHOLD_FEATURES}"),
              schema="ucx_spark.pipelines.segments"),
    TableSpec("gold", PROGRAM_SATURATION, "program", "ucx saturation", keys=("program",),
              built_from=(f"gold/{HOUSEHOLD_FEATURES}", "silver/programs"), schema="ucx_spark.pipelines.saturation"),
    TableSpec("gold", PROGRAM_PROPENSITY, "household x program", "ucx saturation",
              keys=("household_id", "program"), built_from=(f"gold/{HOUSEHOLD_FEATURES}", "silver/programs"),
              schema="ucx_spark.pipelines.saturation"),
    TableSpec("gold", CAMPAIGN_TARGETS, "campaign x household", "ucx target",
              keys=("campaign", "household_id"), built_from=(f"gold/{HOUSEHOLD_FEATURES}", f"gold/{HOUSEHOLD_SCORES}"),
              schema="ucx_spark.pipelines.targeting"),
    TableSpec("gold", CONTACT_INSIGHTS, "local month x source (contact, survey_comment) x topic x segment",
              "pipeline: gold", keys=("month", "source", "topic", "segment"),
              built_from=("silver/contacts", "silver/surveys", "silver/accounts"),
              schema="ucx_spark.insights.contacts", also_written_by=("ucx contacts",)),
    TableSpec("gold", USAGE_BASELINES, "household x meter (the 365 days up to the last complete month)", "pipeline: gold",
              keys=("household_id", "meter_key"),
              built_from=(f"silver/{AMI_DAILY}", f"gold/{METER_DAILY_USAGE}", "silver/accounts", "silver/weather"),
              schema="ucx_spark.insights.baselines", also_written_by=("ucx baselines",)),
    TableSpec("gold", BILL_EXPLANATIONS, "household x bill period", "pipeline: gold",
              keys=("household_id", "period_start", "period_end"),
              built_from=(f"gold/{USAGE_BASELINES}", "silver/bills", "silver/weather"),
              schema="ucx_spark.insights.baselines", also_written_by=("ucx baselines",)),
    TableSpec("gold", EQUITY_AUDIT, "period x dimension x group x metric", "ucx equity",
              keys=("period", "dimension", "group_value", "metric"),
              built_from=(f"gold/{HOUSEHOLD_FEATURES}", f"gold/{HOUSEHOLD_SCORES}", "silver/accounts",
                          "silver/collections", "silver/programs", "silver/marketing", "silver/outages"),
              schema="ucx_spark.insights.equity"),
]

TABLES: dict[str, TableSpec] = {t.ref: t for t in [*_feed_tables(), *_OTHER_TABLES]}


def spec(layer: str, name: str) -> TableSpec:
    """The declared table ``layer/name``; KeyError naming it when it is not declared."""
    try:
        return TABLES[f"{layer}/{name}"]
    except KeyError:
        raise KeyError(f"{layer}/{name} is not a table of the catalog (ucx_spark/catalog.py)") from None


def tables(layer: str | None = None) -> list[TableSpec]:
    return [t for t in TABLES.values() if layer is None or t.layer == layer]


def silver_inputs(gold_table: str) -> tuple[str, ...]:
    """The silver tables (names) a gold table of the pipeline is built from."""
    return tuple(ref.split("/", 1)[1] for ref in spec("gold", gold_table).built_from if ref.startswith("silver/"))


BEGIN = "<!-- catalog:begin (generated by `python -m ucx_spark.catalog --write docs/layers.md`; do not edit) -->"
END = "<!-- catalog:end -->"


def markdown() -> str:
    """The table inventory of docs/layers.md."""
    lines = [
        "| table | one row per | key | partitioned by | written by | built from | restricted |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in sorted(TABLES.values(), key=lambda t: (LAYERS.index(t.layer), t.name.startswith("_"), t.name)):
        writers = ", ".join((t.writer, *t.also_written_by))
        built = ", ".join(f"`{b}`" for b in t.built_from) if len(t.built_from) <= 3 else (
            f"{len(t.built_from)} silver tables" if all(b.startswith("silver/") for b in t.built_from)
            else ", ".join(f"`{b}`" for b in t.built_from))
        lines.append(
            f"| `{t.ref}` | {t.grain} | {', '.join(t.keys)} | {', '.join(t.partition_by) or '-'} | {writers} | "
            f"{built or ('landing zone' if t.layer == 'bronze' else '-')} | {'yes' if t.restricted else 'no'} |"
        )
    return "\n".join(lines)


def render_into(text: str) -> str:
    """``text`` with the part between BEGIN and END replaced by the current inventory."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no generated section ({BEGIN} ... {END}) in the text")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ucx_spark.catalog", description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="FILE", help="rewrite FILE's generated section (docs/layers.md)")
    args = ap.parse_args(argv)
    if not args.write:
        print(markdown())
        return 0
    path = Path(args.write)
    path.write_text(render_into(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
