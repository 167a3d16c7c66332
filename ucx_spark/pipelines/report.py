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

from ucx_spark.insights import maturity
from ucx_spark.insights import report as rpt
from ucx_spark.io.delta import read_table, table_exists, table_path, table_version


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
        return text + f"; maturity: mostly {self.maturity_level}"


def _read(spark: SparkSession, warehouse: str, name: str, versions: dict[str, int]) -> DataFrame | None:
    layer, table = name.split("/")
    path = table_path(warehouse, layer, table)
    if not table_exists(spark, path):
        return None
    version = table_version(spark, path)
    if version is not None:
        versions[name] = version
    return read_table(spark, warehouse, layer, table, version=version)


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
    versions: dict[str, int] = {}
    tables = {name: _read(spark, warehouse, name, versions) for name in maturity.INVENTORY_TABLES}
    inp = rpt.ReportInputs(
        utility_name=utility_name, generated_at=generated_at or datetime.now(UTC).replace(microsecond=0),
        min_households=min_households,
    )
    missing: dict[str, str] = {}
    if (kpis := tables["gold/cx_kpis"]) is not None:
        inp.kpis = rpt.collect_kpis(kpis)
    scores = tables["gold/household_scores"]
    if scores is not None:
        scores = scores.cache()
        bins, levels, summary = rpt.collect_predicted_csat(scores, min_households=min_households,
                                                           top2box_threshold=top2box_threshold)
        if summary["households"]:
            inp.csat.predicted_bins, inp.csat.predicted_levels, inp.csat.predicted_summary = bins, levels, summary
    if (surveys := tables["silver/surveys"]) is not None:
        inp.csat.surveyed_levels, inp.csat.surveyed_summary = rpt.collect_surveyed_csat(surveys, min_households=min_households)
    if (drivers := tables["gold/model_drivers"]) is not None:
        inp.drivers, inp.drivers_source = rpt.collect_model_drivers(drivers), "gold/model_drivers (segment all)"
    elif scores is not None:
        inp.drivers = rpt.collect_drivers_from_scores(scores, min_households=min_households)
        inp.drivers_source = ("gold/model_drivers not yet computed (run `ucx drivers`); approximated from the per-household "
                              "top drivers in gold/household_scores")
    if (whatif := tables["gold/whatif_results"]) is not None:
        inp.whatif = rpt.collect_whatif(whatif)
    if tables["gold/segment_profiles"] is not None or tables["gold/segments"] is not None:
        inp.segments = rpt.collect_segment_profiles(tables["gold/segment_profiles"], tables["gold/segments"])
    if (saturation := tables["gold/program_saturation"]) is not None:
        inp.saturation = rpt.collect_saturation(saturation)
    if scores is not None:
        inp.as_of_date = scores.agg(F.max("as_of_date")).first()[0]
    elif tables["gold/household_features"] is not None:
        inp.as_of_date = tables["gold/household_features"].agg(F.max("as_of_date")).first()[0]
    elif inp.kpis is not None and len(inp.kpis):
        inp.as_of_date = (inp.kpis["month"].max() + _month_end()).date()
    inp.table_versions = versions
    inp.missing = missing
    inventory = maturity.build_inventory(spark, warehouse, min_households=min_households, tracking_uri=tracking_uri)
    inp.maturity = maturity.assess(inventory)
    if scores is not None:
        scores.unpersist()
    return inp


def _month_end():
    import pandas as pd

    return pd.offsets.MonthEnd(0)


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
        "saturation": inp.saturation is not None,
    }
    tables = {"KPI trends": "gold/cx_kpis", "CSAT": "gold/household_scores", "drivers": "gold/model_drivers",
              "what-if": "gold/whatif_results", "segments": "gold/segment_profiles", "saturation": "gold/program_saturation"}
    missing = [tables[k] for k, ok in present.items() if not ok]
    if inp.drivers is not None and "gold/model_drivers" not in inp.table_versions:
        missing.append("gold/model_drivers")
    return ReportResult(str(path), [k for k, ok in present.items() if ok], missing, maturity.overall_level(inp.maturity),
                        len(text.encode("utf-8")))
