"""`ucx report`: gold (and silver/surveys) -> one self-contained HTML page.

Reads only what exists: a missing table turns its section into a "not yet
computed" note, so the report works on a warehouse holding only the
pipeline's gold tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import (
    BILL_EXPLANATIONS,
    CONTACT_INSIGHTS,
    CX_KPIS,
    EQUITY_AUDIT,
    HOUSEHOLD_FEATURES,
    HOUSEHOLD_SCORES,
    MODEL_DRIVERS,
    PROGRAM_SATURATION,
    QUALITY_RESULTS,
    SEGMENT_PROFILES,
    SEGMENTS,
    USAGE_BASELINES,
    WHATIF_RESULTS,
)
from ucx_spark.insights import maturity
from ucx_spark.insights import report as rpt
from ucx_spark.io.delta import read_table, table_path, table_version
from ucx_spark.quality.audit import data_docs_index


@dataclass
class ReportResult:
    path: str
    sections: list[str]  # sections rendered from data
    missing: list[str]  # tables whose sections show a "not yet computed" note
    maturity_level: str
    bytes: int

    def summary(self) -> str:
        text = f"report written to {self.path} ({self.bytes / 1024:,.0f} KiB): {', '.join(self.sections) or 'no data sections'}"
        if self.missing:
            text += f"; not yet computed: {', '.join(self.missing)}"
        return text + f"; maturity: most common level {self.maturity_level}"


def _log_version(path: str) -> int | None:
    """Latest committed version of a local Delta table: the highest ``_delta_log/<version>.json``.

    A directory listing instead of ``DeltaTable.history`` (a Spark job per table). The latest
    commit file is never removed by log clean-up, so this is exact; None when there is none.
    """
    log = Path(path, "_delta_log")
    versions = [int(f.stem) for f in log.glob("*.json") if f.stem.isdigit()] if log.is_dir() else []
    return max(versions) if versions else None


def build_inputs(
    spark: SparkSession,
    *,
    warehouse: str,
    utility_name: str,
    min_households: int,
    top2box_threshold: float,
    tracking_uri: str | None = None,
    generated_at: datetime | None = None,
) -> rpt.ReportInputs:
    """Read what exists and hand the aggregates to the renderer."""
    found = maturity.read_inventory_tables(spark, warehouse)
    versions: dict[str, int] = {}
    tables: dict[str, DataFrame | None] = {}
    for name in maturity.INVENTORY_TABLES:
        layer, table = name.split("/")
        version = _log_version(table_path(warehouse, layer, table)) if name in found else None
        if version is None and name in found:
            version = table_version(spark, table_path(warehouse, layer, table))  # not a local path
        if version is not None:
            versions[name] = version
            found[name] = read_table(spark, warehouse, layer, table, version=version)  # one consistent snapshot
        tables[name] = found.get(name)
    inp = rpt.ReportInputs(
        utility_name=utility_name, generated_at=generated_at or datetime.now(UTC).replace(microsecond=0),
        min_households=min_households, table_versions=versions,
    )
    if (kpis := tables[f"gold/{CX_KPIS}"]) is not None:
        inp.kpis = rpt.collect_kpis(kpis)
    scores = tables[f"gold/{HOUSEHOLD_SCORES}"]
    if scores is not None:
        bins, levels, summary = rpt.collect_predicted_csat(scores, min_households=min_households,
                                                           top2box_threshold=top2box_threshold)
        if summary["households"]:
            inp.csat.predicted_bins, inp.csat.predicted_levels, inp.csat.predicted_summary = bins, levels, summary
            inp.as_of_date = summary["as_of_date"]
    if (surveys := tables["silver/surveys"]) is not None:
        inp.csat.surveyed_levels, inp.csat.surveyed_summary = rpt.collect_surveyed_csat(surveys, min_households=min_households)
    inp.csat.nps = rpt.collect_nps(scores, inp.kpis, min_households=min_households)
    if (drivers := tables[f"gold/{MODEL_DRIVERS}"]) is not None:
        inp.drivers, inp.drivers_source = rpt.collect_model_drivers(drivers), "gold/model_drivers (segment all)"
    elif scores is not None:
        inp.drivers = rpt.collect_drivers_from_scores(scores, min_households=min_households)
        inp.drivers_source = (f"gold/model_drivers not yet computed "
                              f"(run `{rpt.HOW_TO_COMPUTE[f'gold/{MODEL_DRIVERS}']}`); "
                              "approximated from the per-household top drivers in gold/household_scores")
    if (whatif := tables[f"gold/{WHATIF_RESULTS}"]) is not None:
        inp.whatif = rpt.collect_whatif(whatif)
    if tables[f"gold/{SEGMENT_PROFILES}"] is not None or tables[f"gold/{SEGMENTS}"] is not None:
        inp.segments = rpt.collect_segment_profiles(tables[f"gold/{SEGMENT_PROFILES}"], tables[f"gold/{SEGMENTS}"])
    if (saturation := tables[f"gold/{PROGRAM_SATURATION}"]) is not None:
        inp.saturation = rpt.collect_saturation(saturation)
    if (contacts := tables[f"gold/{CONTACT_INSIGHTS}"]) is not None:
        inp.contacts = rpt.collect_contacts(contacts)
    if (usage_baselines := tables[f"gold/{USAGE_BASELINES}"]) is not None:
        inp.baselines = rpt.collect_baselines(usage_baselines, min_households=min_households)
    if (explanations := tables[f"gold/{BILL_EXPLANATIONS}"]) is not None:
        inp.bill_changes = rpt.collect_bill_changes(explanations, min_households=min_households)
    if (audit := tables[f"gold/{EQUITY_AUDIT}"]) is not None:
        inp.equity, inp.equity_flagged_months = rpt.collect_equity(audit)
    if inp.as_of_date is None and tables[f"gold/{HOUSEHOLD_FEATURES}"] is not None:
        inp.as_of_date = tables[f"gold/{HOUSEHOLD_FEATURES}"].agg(F.max("as_of_date")).first()[0]
    if (quality := tables[f"gold/{QUALITY_RESULTS}"]) is not None:
        inp.quality, inp.quality_failed, inp.quality_run = rpt.collect_quality(quality)
        index = data_docs_index(warehouse)
        inp.data_docs = str(index) if index.is_file() else None
    inventory = maturity.build_inventory(found, min_households=min_households, tracking_uri=tracking_uri)
    inp.maturity = maturity.assess(inventory)
    return inp


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    out: str | Path,
    utility_name: str,
    min_households: int,
    top2box_threshold: float,
    tracking_uri: str | None = None,
) -> ReportResult:
    """Write the report to ``out`` (parents created); returns where it went and what it holds."""
    inp = build_inputs(spark, warehouse=warehouse, utility_name=utility_name, min_households=min_households,
                       top2box_threshold=top2box_threshold, tracking_uri=tracking_uri)
    text = rpt.render_html(inp)
    path = Path(out).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # readers never see half a report
    present = {
        "KPI trends": inp.kpis is not None, "CSAT": inp.csat.predicted_bins is not None or inp.csat.surveyed_levels is not None,
        "drivers": inp.drivers is not None, "what-if": inp.whatif is not None, "segments": inp.segments is not None,
        "saturation": inp.saturation is not None, "contacts": inp.contacts is not None,
        "bills": inp.baselines is not None, "equity": inp.equity is not None,
    }
    tables = {"KPI trends": f"gold/{CX_KPIS}", "CSAT": f"gold/{HOUSEHOLD_SCORES}", "drivers": f"gold/{MODEL_DRIVERS}",
              "what-if": f"gold/{WHATIF_RESULTS}", "segments": f"gold/{SEGMENT_PROFILES}",
              "saturation": f"gold/{PROGRAM_SATURATION}", "contacts": f"gold/{CONTACT_INSIGHTS}",
              "bills": f"gold/{USAGE_BASELINES}", "equity": f"gold/{EQUITY_AUDIT}"}
    missing = [tables[k] for k, ok in present.items() if not ok]
    if inp.drivers is not None and f"gold/{MODEL_DRIVERS}" not in inp.table_versions:
        missing.append(f"gold/{MODEL_DRIVERS}")
    return ReportResult(str(path), [k for k, ok in present.items() if ok], missing, maturity.overall_level(inp.maturity),
                        len(text.encode("utf-8")))
