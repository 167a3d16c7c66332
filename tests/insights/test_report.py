"""The CX report (ucx_spark/insights/report.py) and the maturity self-assessment.

Unit tests score tiny inventories; the integration test writes the report for
a copy of the shared ``insights_wh`` warehouse (plus small gold tables of the
other insights, written here), checks its numbers against Spark aggregations
and renders it in headless Chromium (Debian package ``chromium``; CI and
``make setup`` install it, so a missing browser fails the test).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from ucx_spark.insights import maturity
from ucx_spark.insights.report import ReportInputs, render_html
from ucx_spark.io.delta import overwrite_table, read_table

MIN_HH = 15
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
SHOT_W, SHOT_H = 1280, 2400


# --------------------------------------------------------------------------- maturity (no Spark)


def _beginner() -> dict:
    return {
        "tables": {"silver/accounts": 10, "gold/meter_daily_usage": 300, "silver/surveys": 5,
                   "gold/household_scores": 30, "gold/whatif_results": 8, "silver/marketing": 40,
                   "silver/outages": 3, "gold/quality_results": 50, "gold/cx_kpis": 100},
        "columns": {"gold/household_scores": ["household_id", "model_name", "score", "top_drivers"],
                    "gold/cx_kpis": ["month", "segment_type", "segment_value", "kpi", "value"]},
        "ami_months": 3, "survey_responses": 5, "survey_measures": ["csat"],
        "kpi_months": {"enrollment_rate:liheap": 3}, "kpi_segment_types": ["zip"],
        "champions": {"csat": "1", "ev_adoption": "1"}, "quality_layers": ["silver"], "quality_runs": 1,
        "whatif_scenarios": 1, "min_households": 10,
    }


def _medium() -> dict:
    inv = _beginner()
    inv["tables"].update({"gold/household_features": 40, "gold/model_drivers": 60, "gold/segments": 40,
                          "gold/program_saturation": 2, "gold/campaign_targets": 20, "silver/surveys": 100})
    inv["columns"].update({
        "gold/household_features": ["household_id", "as_of_date"] + [f"f{i}" for i in range(12)],
        "gold/meter_daily_usage": ["household_id", "local_date", "kwh", "kwh_on_peak", "peak_kw"],
        "gold/cx_kpis": ["month", "segment_type", "segment_value", "kpi", "value", "n"],
        "gold/whatif_results": ["scenario", "metric", "delta", "delta_ci_low", "delta_ci_high"],
    })
    inv.update(ami_months=12, survey_responses=100, survey_measures=["csat", "nps"],
               kpi_months={"csat_top2box": 3, "nps": 3, "enrollment_rate:liheap": 3, "etr_accuracy": 3},
               feature_as_of_dates=1, champions={"csat": "2", "ev_adoption": "1", "payment_risk": "1"},
               scored_share={"csat": 0.5, "ev_adoption": 1.0, "payment_risk": 0.97},
               quality_layers=["bronze", "gold", "silver"], driver_segment_types=["all"], whatif_scenarios=2,
               whatif_segment_types=["all"], segmentations=["persona"], saturation_programs=2, target_campaigns=1,
               min_households=15)
    return inv


def _advanced() -> dict:
    inv = _medium()
    inv["tables"].update({"gold/segment_profiles": 9, "gold/pipeline_runs": 26})
    inv["columns"].update({
        "gold/household_features": inv["columns"]["gold/household_features"] + ["income_band", "tenure"],
        "gold/household_features_extra": [],
        "gold/model_drivers": ["model_name", "feature", "mean_abs_shap", "n", "is_suppressed"],
        "gold/whatif_results": ["scenario", "metric", "delta", "delta_ci_low", "delta_ci_high", "n", "is_suppressed"],
        "gold/segment_profiles": ["segmentation", "segment_id", "n"],
        "gold/campaign_targets": ["household_id", "campaign", "channel", "rank"],
    })
    inv["columns"]["gold/household_features"] += ["night_minus_evening_kw_90d", "export_kwh_365d"]
    inv.update(kpi_months={"csat_top2box": 13, "nps": 13, "ces": 13, "enrollment_rate:liheap": 13, "etr_accuracy": 13,
                           "saidi_minutes": 13, "caidi_minutes": 13},
               feature_as_of_dates=3, scored_share={"csat": 0.99, "ev_adoption": 0.99, "payment_risk": 0.99},
               quality_runs=4, driver_segment_types=["all", "income_band"], whatif_scenarios=4,
               whatif_segment_types=["all", "customer_class"], segmentations=["payment_risk", "persona"],
               saturation_programs=5, target_campaigns=3)
    return inv


@pytest.mark.parametrize(("make", "level"), [(dict, 0), (_beginner, 1), (_medium, 2), (_advanced, 3)])
def test_maturity_every_level_is_reachable(make, level) -> None:
    caps = maturity.assess(make())
    assert len(caps) == len(maturity.CAPABILITIES) == 13
    assert {c.name: c.level_name for c in caps} == {c.name: maturity.LEVELS[level] for c in caps}
    assert maturity.overall_level(caps) == maturity.LEVELS[level]
    for cap in caps:
        assert cap.evidence and all(isinstance(e, str) and e for e in cap.evidence), cap
        assert cap.next_step
        assert (cap.next_step == "highest level reached") == (level == 3)


def test_maturity_evidence_names_what_was_found() -> None:
    inv = _medium()
    caps = {c.name: c for c in maturity.assess(inv)}
    ami = caps["AMI analytics (load shape, EV/solar detection)"]
    assert "12 month(s) of AMI" in ami.evidence
    assert "load-shape columns: kwh_on_peak, peak_kw" in ami.evidence
    assert ami.next_step.startswith("derive EV")
    assert "households scored: 50%" in caps["Predicted CSAT for every household"].evidence
    assert "gold/model_drivers: 60 rows" in caps["Drivers / explainability"].evidence
    # A direct identifier in a gold schema drops privacy to "Not yet", whatever else is there.
    inv["forbidden_gold_columns"] = ["account_id"]
    privacy = {c.name: c for c in maturity.assess(inv)}["Privacy controls"]
    assert privacy.level == 0 and "direct identifiers in gold: account_id" in privacy.evidence


def test_maturity_levels_are_cumulative() -> None:
    inv = _advanced()
    del inv["tables"]["gold/whatif_results"]  # Advanced evidence without the table itself is not a level
    whatif = {c.name: c for c in maturity.assess(inv)}["What-if simulation"]
    assert whatif.level == 0 and "gold/whatif_results: absent" in whatif.evidence


def test_render_without_any_table_says_what_to_run() -> None:
    inp = ReportInputs(utility_name="Tiny <Co>", generated_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), min_households=MIN_HH,
                       maturity=maturity.assess({}))
    text = render_html(inp)
    assert "Tiny &lt;Co&gt;: customer experience report" in text
    for table, command in (("gold/cx_kpis", "ucx pipeline"), ("gold/household_scores", "ucx train"),
                           ("gold/whatif_results", "ucx whatif"), ("gold/segment_profiles", "ucx segment"),
                           ("gold/program_saturation", "ucx saturation"), ("gold/model_drivers", "ucx drivers")):
        assert re.search(rf"Not yet computed: <code>{re.escape(table)}</code>.*?run <code>{re.escape(command)}", text), table
    _assert_offline(text)


def test_quality_section_shows_the_latest_gate_run(spark) -> None:
    from ucx_spark.insights import report as rpt
    from ucx_spark.quality.audit import AUDIT_SCHEMA

    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    rows = [
        ("r1", "silver", "bills", "s", "e1", "expect_x", "amount", "critical", False, "3 bad", 3, 10, t1),  # older run
        ("r2", "bronze", "ami", "s", "e1", "expect_column_values_to_not_be_null", "meter_id", "critical", True, None, 0, 100, t2),
        ("r2", "bronze", "ami", "s", "e2", "expect_column_values_to_be_between", "kwh", "warning", False, "2 of 100", 2, 100, t2),
        ("r2", "silver", "bills", "s", "e1", "expect_x", "amount", "critical", True, None, 0, 10, t2),
    ]
    per_table, failed, run = rpt.collect_quality(spark.createDataFrame(rows, AUDIT_SCHEMA))
    assert run["run_id"] == "r2"
    assert per_table.to_dict("records") == [
        {"layer": "bronze", "table": "ami", "expectations": 2, "not_met": 1, "critical_not_met": 0, "rows_checked": 100},
        {"layer": "silver", "table": "bills", "expectations": 1, "not_met": 0, "critical_not_met": 0, "rows_checked": 10},
    ]
    assert failed[["table", "expectation_type", "observed_value"]].values.tolist() == [
        ["ami", "expect_column_values_to_be_between", "2 of 100"]]
    inp = ReportInputs(utility_name="x", generated_at=t2, min_households=MIN_HH, quality=per_table,
                       quality_failed=failed, quality_run=run, data_docs="/w/_quality/data_docs/index.html")
    text = render_html(inp)
    section = _section(text, "quality")
    assert "2 tables, 3 expectations, 1 not met (0 critical)" in section
    assert "<td>ami</td><td>100</td><td>2</td><td>1</td><td>0</td>" in section
    assert "2 of 100" in section and "/w/_quality/data_docs/index.html" in section
    _assert_offline(text)
    assert "the gates of <code>ucx pipeline</code> write them" in _section(render_html(ReportInputs(utility_name="x", generated_at=t2,
                                                                             min_households=MIN_HH)), "quality")


# --------------------------------------------------------------------------- integration


def _assert_offline(text: str) -> None:
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?!data:|#)[a-z]+:""", text, flags=re.I)
    assert not re.search(r"<script|<link|@import|url\(|<iframe", text, flags=re.I)


def _copy_insights_wh(source: Path, target: Path) -> None:
    """The fixture's own tables only (other tests may add gold tables to the shared warehouse)."""
    for layer in ("silver",):
        shutil.copytree(source / layer, target / layer)
    for table in ("household_features", "household_scores"):
        shutil.copytree(source / "gold" / table, target / "gold" / table)


def _write_cx_kpis(spark, wh: Path) -> None:
    """A small gold/cx_kpis: survey KPIs aggregated from silver/surveys as the pipeline would, a suppressed cell."""
    surveys = read_table(spark, wh, "silver", "surveys")
    month = F.trunc(F.to_date("responded_at"), "month").alias("month")
    kpis = (
        surveys.where(F.col("responded_at") >= "2023-01-01").groupBy(month)
        .agg(F.avg((F.col("csat") >= 4).cast("double")).alias("csat_top2box"),
             (100 * (F.avg((F.col("nps") >= 9).cast("double")) - F.avg((F.col("nps") <= 6).cast("double")))).alias("nps"),
             F.avg("ces").alias("ces"), F.countDistinct("household_id").alias("n"))
    )
    long = kpis.select("month", "n", F.explode(F.map_from_arrays(
        F.array(*[F.lit(k) for k in ("csat_top2box", "nps", "ces")]), F.array("csat_top2box", "nps", "ces"))).alias("kpi", "value"))
    long = long.withColumn("value", F.when(F.col("n") >= MIN_HH, F.col("value")))
    extra = spark.createDataFrame(
        [(date(2023, m, 1), "enrollment_rate:liheap", 0.05 + 0.005 * m, 450) for m in range(1, 13)]
        + [(date(2023, m, 1), "aht_seconds", None if m == 12 else 300.0 + m, 4 if m == 12 else 40) for m in range(1, 13)],
        "month date, kpi string, value double, n long",
    )
    rows = long.select("month", "kpi", "value", F.col("n").cast("long")).unionByName(extra)
    all_df = rows.select("month", F.lit("all").alias("segment_type"), F.lit("all").alias("segment_value"), "kpi", "value", "n")
    seg_df = all_df.withColumn("segment_type", F.lit("customer_class")).withColumn("segment_value", F.lit("RES"))
    overwrite_table(all_df.unionByName(seg_df), wh, "gold", "cx_kpis")


def _write_insight_tables(spark, wh: Path) -> None:
    """Small gold tables of the other insights, in the columns agreed for issue 6."""
    now = datetime(2024, 1, 10, 12, 0)
    old = datetime(2023, 12, 1, 12, 0)
    drivers = []
    for model, feats in (("csat", ["bill_shock_ratio", "energy_burden", "arrears_usd", "fcr_share_365d"]),
                         ("payment_risk", ["energy_burden", "arrears_usd", "payment_share_autopay_365d"]),
                         ("ev_adoption", ["income_midpoint_usd", "night_minus_evening_kw_90d", "export_kwh_365d"])):
        for rank, feat in enumerate(feats, start=1):
            for seg_type, seg_value in (("all", "all"), ("customer_class", "RES")):
                drivers.append((model, "1", date(2023, 6, 30), seg_type, seg_value, feat, 0.5 / rank, 0.3 / rank * (-1) ** rank,
                                "+" if rank % 2 == 0 else "-", rank, 495, False, "drv-2", now))
        drivers.append((model, "1", date(2023, 6, 30), "all", "all", "stale_feature_zzz", 9.0, 9.0, "+", 1, 495, False,
                        "drv-1", old))
    ddl = ("model_name string, model_version string, as_of_date date, segment_type string, segment_value string, "
           "feature string, mean_abs_shap double, mean_shap double, direction string, rank int, n long, "
           "is_suppressed boolean, run_id string, computed_at timestamp")
    # The stale_feature_zzz rows are an older computation (computed_at) of the same as_of_date.
    overwrite_table(spark.createDataFrame(drivers, ddl), wh, "gold", "model_drivers")

    whatif = []
    scenarios = {"bill_credit_50": (0.12, 0.08, 0.16), "autopay_push": (0.03, -0.01, 0.07), "liheap_outreach": (0.05, 0.02, 0.08)}
    for run, created, scale in (("wi-1", old, 77.77), ("wi-2", now, 1.0)):
        for scenario, (d, lo, hi) in scenarios.items():
            for metric, base in (("mean_csat", 3.9), ("csat_top2box_share", 0.62), ("mean_payment_risk", 0.18),
                                 ("expected_arrears_usd", 41000.0)):
                sign = -1 if metric in ("mean_payment_risk", "expected_arrears_usd") else 1
                k = base / 4 if metric == "expected_arrears_usd" else 1.0
                ci = sorted((sign * lo * k * scale, sign * hi * k * scale))
                whatif.append((run, scenario, "{}", {"csat": "1"}, date(2023, 6, 30), "all", "all", metric, base,
                               base + sign * d * k * scale, sign * d * k * scale, *ci, 495, 300, False, created))
            whatif.append((run, scenario, "{}", {"csat": "1"}, date(2023, 6, 30), "income_band", "lt25k", "mean_csat", None,
                           None, None, None, None, 9, 9, True, created))
    ddl = ("run_id string, scenario string, scenario_spec string, model_versions map<string,string>, as_of_date date, "
           "segment_type string, segment_value string, metric string, baseline double, scenario_value double, delta double, "
           "delta_ci_low double, delta_ci_high double, n long, n_touched long, is_suppressed boolean, created_at timestamp")
    overwrite_table(spark.createDataFrame(whatif, ddl), wh, "gold", "whatif_results")

    # gold/segment_profiles and gold/program_saturation in the columns of insights/segments.py and saturation.py
    profiles = [("persona", "0", "Comfortable owners", "low burden, affluent", 160, None, 0.021, 98000.0),
                ("persona", "1", "Stretched renters", "high burden", 110, None, 0.071, 31000.0),
                ("persona", "2", "Solar early adopters", None, 40, None, 0.018, 120000.0),
                ("persona", "3", "Busy commercial", None, 50, None, 0.011, 150000.0),
                ("persona", "4", "Assisted households", None, 127, None, 0.055, 22000.0),
                ("persona", "5", "Tiny Persona", None, 8, None, None, None),
                ("objective:csat", "0", "Low burden", "energy_burden < 0.04", 300, 4.0, 0.02, 80000.0),
                ("objective:csat", "1", "High burden", "energy_burden >= 0.04", 195, 3.3, 0.07, 30000.0)]
    profiles_df = spark.createDataFrame(
        profiles, "segmentation string, segment_id string, segment_name string, definition string, n long, "
        "outcome_mean double, mean_energy_burden double, mean_income_midpoint_usd double",
    ).withColumn("as_of_date", F.lit(date(2023, 6, 30))).withColumn("is_suppressed", F.col("n") < MIN_HH)
    overwrite_table(profiles_df, wh, "gold", "segment_profiles")
    saturation = [("liheap", 495, 120, 40, 0.081, 30.0, 0.12, 0.125), ("autopay", 495, 495, 150, 0.303, 60.0, 0.38, 0.41),
                  ("ev_rate", 495, 400, 60, 0.121, 45.0, 0.15, 0.212), ("solar", 495, 10, 5, None, None, None, None)]
    saturation_df = spark.createDataFrame(
        saturation, "program string, active_households long, eligible_households long, enrolled_households long, "
        "enrollment_rate double, modelled_potential double, reachable_new_12m double, reachable_rate_12m double",
    ).withColumn("n", F.col("eligible_households")).withColumn("is_suppressed", F.col("n") < MIN_HH)
    overwrite_table(saturation_df, wh, "gold", "program_saturation")
    # gold/contact_insights in the columns of insights/contacts.py: two months, a suppressed cell
    contacts = []
    for month in (date(2023, 5, 1), date(2023, 6, 1)):
        for topic, n, households, mood in (("billing", 40, 30, -0.21), ("outage", 25, 22, -0.35), ("other", 3, 3, 0.4)):
            for segment in ("all", "RES"):
                hidden = households < MIN_HH
                rates = (None,) * 7 if hidden else (mood, 0.4, 0.2, 0.7, 0.1, 0.8, None)
                contacts.append((month, "contact", topic, segment, n, households, *rates, households, hidden,
                                 "ci-1", now))
    # survey comments: a published outage cell (the unhappy write about outages) and a suppressed one
    contacts.append((date(2023, 6, 1), "survey_comment", "outage", "all", 31, 30, -0.52, 0.9, 0.3, None, None, None,
                     1.87, 30, False, "ci-1", now))
    contacts.append((date(2023, 6, 1), "survey_comment", "other", "all", 4, 4, None, None, None, None, None, None,
                     None, 4, True, "ci-1", now))
    contacts_df = spark.createDataFrame(contacts, (
        "month date, source string, topic string, segment string, volume long, households long, "
        "mean_sentiment double, negative_share double, complaint_share double, fcr_rate double, "
        "repeat_7d_rate double, reason_agreement double, mean_csat double, n long, is_suppressed boolean, "
        "run_id string, created_at timestamp"))
    overwrite_table(contacts_df, wh, "gold", "contact_insights")
    # gold/usage_baselines and gold/bill_explanations (insights/baselines.py): a model type of too few
    # households, and a month of too few households with a bill a year earlier
    fits = ([(f"hb-{i}", "hdd_cdd", True, 9000.0 + 100 * i, 0.1) for i in range(20)]
            + [(f"hc-{i}", "cdd_only", i < 2, 5000.0, 0.2) for i in range(3)])
    overwrite_table(spark.createDataFrame(fits, "household_id string, model_type string, data_sufficient boolean, "
                                                "nac_kwh double, cvrmse double"), wh, "gold", "usage_baselines")
    bills = ([(f"hb-{i}", date(2023, 5, 1), 10.0, 6.0, 0.0, 1.0, 3.0) for i in range(20)]
             + [(f"hb-{i}", date(2023, 6, 1), 50.0, 40.0, 5.0, 1.0, 4.0) for i in range(3)]
             + [(f"hb-{i}", date(2023, 6, 1), None, None, None, None, None) for i in range(3, 20)])
    overwrite_table(spark.createDataFrame(bills, "household_id string, period_start date, change_usd double, "
                                                 "weather_usd double, days_usd double, rate_usd double, "
                                                 "behaviour_usd double"), wh, "gold", "bill_explanations")
    # gold/equity_audit (insights/equity.py): a flagged band, an ordinary one, a suppressed one, a flagged
    # ZIP and an unflagged one (left out of the report), a flagged single month
    audit = [
        ("window", "income_band", "lt25k", "disconnect_notices_per_1000", 40, 3000.0, 480.0, 75.0, 30.0, 2.5, 1.6, 3.4, True, False),
        ("window", "income_band", "150k_plus", "disconnect_notices_per_1000", 35, 250.0, 420.0, 7.14, 30.0, 0.24, 0.0, 0.6, False, False),
        ("window", "income_band", "unknown", "disconnect_notices_per_1000", 4, None, 48.0, None, 30.0, None, None, None, False, True),
        ("window", "zip", "75001", "outage_minutes_per_household", 30, 9000.0, 360.0, 25.0, 10.0, 2.5, 1.3, 4.0, True, False),
        ("window", "zip", "75002", "outage_minutes_per_household", 30, 3600.0, 360.0, 10.0, 10.0, 1.0, 0.6, 1.5, False, False),
        ("2023-06", "income_band", "lt25k", "disconnections_per_1000", 40, 200.0, 40.0, 5.0, 2.0, 2.5, 1.2, 3.9, True, False),
    ]
    overwrite_table(spark.createDataFrame(audit, (
        "period string, dimension string, group_value string, metric string, n long, numerator double, "
        "denominator double, value double, overall double, ratio double, ci_low double, ci_high double, "
        "flagged boolean, is_suppressed boolean")), wh, "gold", "equity_audit")


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<section id="{anchor}">')
    return text[start:text.index("</section>", start)]


def _without_images(text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,", text)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is required (Debian package `chromium`; `make setup` as root or .ci/run installs it)"
    return exe


def _screenshot(html_path: Path, png_path: Path) -> None:
    profile = tempfile.mkdtemp(prefix="ucx-chromium-")
    try:
        cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png_path}",
               f"--window-size={SHOT_W},{SHOT_H}", html_path.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert png_path.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _png_stats(png_path: Path) -> tuple[tuple[int, int], int, float]:
    """(size, distinct colours, share of non-white pixels) of a PNG, decoded with Pillow (a matplotlib dependency)."""
    from PIL import Image

    with Image.open(png_path) as img:
        rgb = img.convert("RGB")
        size = rgb.size
        small = rgb.resize((size[0] // 4, size[1] // 4))
        colours = len(set(small.getdata()))
        pixels = list(small.getdata())
    non_white = sum(1 for p in pixels if min(p) < 235) / len(pixels)
    return size, colours, non_white


@pytest.fixture(scope="module")
def report_wh(spark, insights_wh, tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("report-wh")
    _copy_insights_wh(insights_wh.warehouse, wh)
    _write_cx_kpis(spark, wh)
    return wh


def _build(spark, wh: Path, out: Path, tracking_uri: str):
    from ucx_spark.pipelines import report

    return report.run(spark, warehouse=str(wh), out=out, utility_name="Insights Test Power", min_households=MIN_HH,
                      top2box_threshold=3.5, tracking_uri=tracking_uri)


def test_report_on_pipeline_gold_only(spark, insights_wh, report_wh, tmp_path) -> None:
    """Only the pipeline's gold tables and the scores: insight sections say what to run; drivers fall back."""
    t0 = time.monotonic()
    result = _build(spark, report_wh, tmp_path / "report.html", insights_wh.tracking_uri)
    text = Path(result.path).read_text(encoding="utf-8")
    _assert_offline(text)
    for table, command in (("gold/whatif_results", "ucx whatif"), ("gold/segment_profiles", "ucx segment"),
                           ("gold/program_saturation", "ucx saturation"), ("gold/contact_insights", "ucx pipeline"),
                           ("gold/usage_baselines", "ucx pipeline"), ("gold/equity_audit", "ucx equity")):
        assert f"Not yet computed: <code>{table}</code>" in text and f"run <code>{command}</code>" in text
    assert "approximated from the per-household top drivers" in _section(text, "drivers")
    assert set(result.missing) == {"gold/whatif_results", "gold/segment_profiles", "gold/program_saturation",
                                   "gold/model_drivers", "gold/contact_insights", "gold/usage_baselines",
                                   "gold/equity_audit"}
    # The fallback drivers match an aggregation of top_drivers done here.
    scores = read_table(spark, report_wh, "gold", "household_scores").where(F.col("model_name") == "csat")
    top = (scores.select(F.explode("top_drivers").alias("d")).groupBy("d.feature")
           .agg(F.sum(F.abs("d.contribution")).alias("s")).orderBy(F.desc("s")).first()[0])
    assert re.search(rf"<td>csat</td><td>[^<]*</td><td>1</td><td>{re.escape(top)}</td>", _section(text, "drivers"))
    print(f"report on pipeline-only gold: {time.monotonic() - t0:.1f}s")


def test_report_full_renders_in_chromium(spark, insights_wh, report_wh, tmp_path) -> None:
    t0 = time.monotonic()
    _write_insight_tables(spark, report_wh)
    out = tmp_path / "cx" / "report.html"
    result = _build(spark, report_wh, out, insights_wh.tracking_uri)
    t_build = time.monotonic() - t0
    assert result.path == str(out.resolve()) and result.missing == []
    text = out.read_text(encoding="utf-8")
    _assert_offline(text)
    assert "Insights Test Power: customer experience report" in text
    assert "As of <b>2023-06-30</b>" in text
    for anchor in ("kpis", "csat", "drivers", "whatif", "segments", "saturation", "contacts", "bills", "equity",
                   "maturity"):
        assert f'<section id="{anchor}">' in text
    assert "Not yet computed" not in text
    assert text.count('src="data:image/png;base64,') == 9
    said = _section(text, "contacts")
    assert "Latest month: <b>2023-06-01</b>" in said
    assert "<td>billing</td><td>40</td><td>30</td><td>-0.21" in said  # published cell
    assert re.search(r"<td>other</td><td>3</td><td>3</td>(<td><span class=\"suppressed\">suppressed</span></td>){6}",
                     said)
    # survey comments: their own table, the published cell's CSAT, the small cell's counts only
    assert "<h3>Survey comments</h3>" in said
    assert "<td>2023-06-01</td><td>outage</td><td>31</td><td>30</td><td>-0.52</td><td>90.0%</td><td>1.87</td>" in said
    assert re.search(r"<td>2023-06-01</td><td>other</td><td>4</td><td>4</td>"
                     r"(<td><span class=\"suppressed\">suppressed</span></td>){3}", said)

    bills = _section(text, "bills")
    # the model mix (a type of 3 households keeps its counts only), the months with their parts
    assert "<td>hdd_cdd</td><td>20</td><td>20</td><td>9,900</td><td>0.10</td>" in bills
    assert "<td>cdd_only</td><td>3</td><td>2</td><td>—</td><td>—</td>" in bills
    assert "<td>2023-05</td><td>20</td><td>10.00</td><td>6.00</td><td>0.00</td><td>1.00</td><td>3.00</td>" in bills
    assert re.search(r"<td>2023-06</td><td>3</td>(<td><span class=\"suppressed\">suppressed</span></td>){5}", bills)

    fair = _section(text, "equity")
    assert "Flagged over the window: <b>2</b>; in single months: <b>1</b>." in fair
    assert ("<td>disconnect notices / 1,000 / month</td><td>income_band</td><td>lt25k</td><td>40</td><td>75.00</td>"
            "<td>30.00</td><td>2.50</td><td>[1.60, 3.40]</td><td>flagged</td>") in fair
    assert re.search(r"<td>unknown</td><td>4</td><td><span class=\"suppressed\">suppressed</span></td><td>30.00</td>"
                     r"<td><span class=\"suppressed\">suppressed</span></td><td>—</td>", fair)
    assert "<td>75001</td>" in fair and "<td>75002</td>" not in fair

    # Header lists the Delta versions read.
    assert re.search(r"<td>gold/household_scores</td><td>\d+</td>", text)

    # KPIs: the latest month's survey KPI equals the Spark aggregation; the planted small cell is suppressed.
    surveys = read_table(spark, report_wh, "silver", "surveys")
    last_month = surveys.agg(F.max(F.trunc(F.to_date("responded_at"), "month"))).first()[0]
    top2 = surveys.where(F.trunc(F.to_date("responded_at"), "month") == F.lit(last_month)).agg(
        F.avg((F.col("csat") >= 4).cast("double"))).first()[0]
    kpi = _section(text, "kpis")
    assert f"Latest month: {last_month:%Y-%m}" in kpi
    assert f"<td>csat_top2box</td><td>{top2:.1%}</td>" in kpi
    assert re.search(r'<td>aht_seconds</td><td><span class="suppressed">suppressed</span></td><td>4</td>', kpi)

    # CSAT: predicted mean and surveyed responses match Spark.
    scores = read_table(spark, report_wh, "gold", "household_scores").where(F.col("model_name") == "csat")
    latest = scores.agg(F.max("as_of_date")).first()[0]
    pred = scores.where(F.col("as_of_date") == latest).agg(
        F.countDistinct("household_id"), F.avg(F.least(F.greatest("score", F.lit(1.0)), F.lit(5.0)))).first()
    last_at = surveys.agg(F.max("responded_at")).first()[0]
    responses = surveys.where((F.col("csat").between(1, 5))
                              & (F.col("responded_at") > F.lit(last_at) - F.expr("INTERVAL 365 DAYS"))).count()
    csat = _section(text, "csat")
    assert f"<td>{pred[0]:,}</td><td>—</td><td>{pred[1]:,.2f}</td>" in csat
    assert f"<td>{responses:,}</td>" in csat

    # Drivers: the latest computation only; what-if: the latest run only.
    drivers = _section(text, "drivers")
    assert "energy_burden" in drivers and "stale_feature_zzz" not in drivers
    whatif = _section(text, "whatif")
    assert "<td>bill_credit_50</td><td>mean_csat</td><td>3.90</td><td>4.02</td><td>0.12</td><td>[0.08, 0.16]</td>" in whatif
    assert "77.77" not in whatif and "9.33" not in whatif
    # Segments: the small persona is suppressed, never plotted with its values.
    segments = _section(text, "segments")
    assert "Stretched renters" in segments and "mean_energy_burden" in segments and "energy_burden &lt; 0.04" in segments
    assert re.search(r"<td>Tiny Persona</td><td></td><td>8</td><td><span class=\"suppressed\">", segments)
    # Saturation: rates as written, potential derived from the counts, the small program suppressed.
    saturation = _section(text, "saturation")
    assert "<td>autopay</td><td>495</td><td>495</td><td>150</td><td>0.30</td><td>60.00</td><td>0.42</td>" in saturation
    assert re.search(r'<td>solar</td><td>10</td><td><span class="suppressed">', saturation)
    maturity_html = _section(text, "maturity")
    assert maturity_html.count('<span class="level') == 13 and "Predicted CSAT for every household" in maturity_html

    # Privacy: no household id (nor account id) of the data anywhere in the text.
    plain = _without_images(text)
    ids = {r[0] for r in read_table(spark, report_wh, "silver", "accounts").select("household_id").collect()}
    accounts = {r[0] for r in read_table(spark, report_wh, "silver", "accounts").select("account_id").collect()}
    assert ids and not [i for i in ids | accounts if i in plain]

    # Headless Chromium renders it: a full-size, non-blank screenshot.
    t1 = time.monotonic()
    png = tmp_path / "report.png"
    _screenshot(out, png)
    size, colours, non_white = _png_stats(png)
    assert size == (SHOT_W, SHOT_H)
    assert colours >= 50, colours
    assert non_white >= 0.05, non_white
    print(f"report build {t_build:.1f}s, screenshot {time.monotonic() - t1:.1f}s, {colours} colours, "
          f"{non_white:.1%} non-white")


def test_report_on_an_empty_warehouse_only_says_what_to_run(spark, tmp_path) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    result = _build(spark, wh, tmp_path / "empty.html", None)
    text = Path(result.path).read_text(encoding="utf-8")
    _assert_offline(text)
    assert result.sections == [] and "gold/cx_kpis" in result.missing
    assert text.count("Not yet computed") == 10 and "As of <b>unknown" in text
    assert text.count('<span class="level l0">Not yet</span>') == 13


def test_cli_report_without_a_warehouse_is_a_user_error(tmp_path, capsys) -> None:
    from ucx_spark.cli import main

    assert main(["report", "--warehouse", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
