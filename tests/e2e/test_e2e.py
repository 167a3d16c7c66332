"""End to end on a small generated utility: landing -> bronze -> silver -> gold with gates.

The generator's manifest says, per feed, how many rows must land, end current,
be superseded and be quarantined under each rule; the pipeline must agree
exactly, and a rerun must be a no-op. Then a correction extract arrives after
gold was built, and the next run must carry it into silver and gold.
"""

from __future__ import annotations

import csv
import gzip
import json
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from ucx_spark import catalog
from ucx_spark.config import Config
from ucx_spark.contract import FEED_ORDER, PROGRAMS
from ucx_spark.generate import generate_utility
from ucx_spark.gold.privacy import forbidden_columns_in
from ucx_spark.identity import pseudonym_py
from ucx_spark.io import delta_log
from ucx_spark.io.delta import read_table, replace_rows_where, table_path, table_version
from ucx_spark.pipelines import medallion
from ucx_spark.quality import data_docs_index

pytestmark = pytest.mark.e2e

KEY = b"e2e-pseudonym-key"
AS_OF = [date(2025, 11, 30), date(2025, 12, 31)]
# contract.md section 4, written out here rather than imported from the code under test
KPI_NAMES = (
    "csat_top2box", "nps", "ces", "fcr", "aht_seconds", "saidi_minutes", "caidi_minutes", "etr_accuracy",
    *(f"enrollment_rate:{p}" for p in PROGRAMS), "email_open_rate", "collection_rate",
)


@pytest.fixture(scope="module")
def utility(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    landing, warehouse = root / "landing", root / "warehouse"
    manifest = generate_utility(spark, str(landing), households=24, months=13, interval_minutes=60, seed=11)
    cfg = Config().with_paths(landing=str(landing), warehouse=str(warehouse))
    result = medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="e2e-1", as_of_dates=AS_OF)
    return cfg, manifest, result


def test_every_landed_row_is_accounted_for_as_the_manifest_says(spark, utility):
    cfg, manifest, result = utility
    runs = read_table(spark, cfg.paths.warehouse, "gold", "pipeline_runs").where("run_id = 'e2e-1'")
    got = {r["feed"]: r for r in runs.collect()}  # 13 rows
    assert set(got) == set(FEED_ORDER)
    for feed in FEED_ORDER:
        expected = manifest["feeds"][feed]
        row = got[feed]
        assert row["balanced"], feed
        assert row["landed"] == row["current"] + row["superseded"] + row["quarantined"], feed
        assert (feed, row["landed"], row["current"], row["superseded"], row["quarantined"]) == (
            feed,
            expected["landed_rows"],
            expected["expected_current"],
            expected["expected_superseded"],
            sum(expected["expected_quarantined"].values()),
        )
    # `ucx pipeline --json` (a scheduler's view of the same run): the result dataclass rendered
    import json

    from ucx_spark.commands import render_json

    data = json.loads(render_json(result))
    assert data["run_id"] == "e2e-1" and {"bronze", "silver", "gold"} <= set(data["steps"])
    assert {r["feed"]: (r["landed"], r["current"]) for r in data["accounting"]} == {
        feed: (got[feed]["landed"], got[feed]["current"]) for feed in FEED_ORDER}


def test_manifest_defects_land_in_quarantine_with_the_right_rule(spark, utility):
    cfg, manifest, _ = utility
    for feed in FEED_ORDER:
        q = read_table(spark, cfg.paths.warehouse, "quarantine", feed)
        got = {r["rule"]: r["n"] for r in q.groupBy("rule").agg(F.count("*").alias("n")).collect()}
        assert got == {k: v for k, v in manifest["feeds"][feed]["expected_quarantined"].items() if v}, feed


def test_rejected_files_are_recorded_with_their_reason(spark, utility):
    cfg, manifest, _ = utility
    files = read_table(spark, cfg.paths.warehouse, "quarantine", "_files")
    got = {(r["feed"], r["file"]): r["reason"] for r in files.collect()}
    for rejected in manifest["rejected_files"]:
        reason = got[(rejected["feed"], rejected["file"])]
        assert reason.startswith(rejected["reason"]), (rejected, reason)
    assert len(got) == len(manifest["rejected_files"])


def test_gold_has_no_pii_and_kpis_cover_every_month(spark, utility):
    cfg, manifest, _ = utility
    for table in ("meter_daily_usage", "cx_kpis", "household_features", "pipeline_runs"):
        df = read_table(spark, cfg.paths.warehouse, "gold", table)
        assert forbidden_columns_in(df.schema) == [], table
    kpis = read_table(spark, cfg.paths.warehouse, "gold", "cx_kpis").where("segment_type = 'all'")
    months = sorted(r[0] for r in kpis.select("month").distinct().collect())
    # AMI runs over 13 local months ending 2025-12 (the generator's end_date).
    assert months[0] == date(2024, 12, 1) and months[-1] == date(2025, 12, 1) and len(months) == 13
    pairs = {(r["month"], r["kpi"]) for r in kpis.select("month", "kpi").collect()}
    assert pairs == {(m, k) for m in months for k in KPI_NAMES}
    features = read_table(spark, cfg.paths.warehouse, "gold", "household_features")
    assert sorted(r[0] for r in features.select("as_of_date").distinct().collect()) == AS_OF


def test_household_ids_are_the_contract_pseudonyms(spark, utility):
    cfg, _, _ = utility
    accounts = Path(cfg.paths.landing, "accounts")
    account_ids = set()
    for path in sorted(accounts.glob("accounts_*.csv*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            account_ids |= {row["account_id"] for row in csv.DictReader(fh) if row.get("account_id")}
    expected = {pseudonym_py(a, key=KEY, namespace="account") for a in account_ids}
    usage = read_table(spark, cfg.paths.warehouse, "gold", "meter_daily_usage")
    got = {r[0] for r in usage.select("household_id").where("household_id is not null").distinct().collect()}
    assert got and got <= expected
    # and exactly the households whose account was active on a day its meter has readings
    accounts = read_table(spark, cfg.paths.warehouse, "silver", "accounts")
    days = read_table(spark, cfg.paths.warehouse, "silver", "ami_daily").select("meter_id", "local_date").distinct()
    active = days.join(accounts, "meter_id").where(
        (F.col("local_date") >= F.col("start_date"))
        & (F.col("end_date").isNull() | (F.col("local_date") <= F.col("end_date"))))
    assert got == {r[0] for r in active.select("household_id").distinct().collect()}


def test_contact_topics_read_from_transcripts_agree_with_why_the_contacts_happened(spark, utility):
    """Issue 21: `ucx contacts` on the generated utility: the topic read from each transcript names
    the generator's cause of the contact (outage, bill, notice, move, enrolment) for >= 80% of the
    contacts with a transcript, more often than the agents' reason codes do (a complaint code names
    no subject); the gated table holds no identifier and every cell's household count."""
    from ucx_spark.catalog import CONTACT_INSIGHTS
    from ucx_spark.pipelines import contacts

    cfg, _, _ = utility
    tz = cfg.utility.time_zone
    built = read_table(spark, cfg.paths.warehouse, "gold", CONTACT_INSIGHTS).drop("run_id", "created_at")  # by ucx pipeline
    result = contacts.run(spark, warehouse=cfg.paths.warehouse, run_id="e2e-contacts", time_zone=tz,
                          min_households=cfg.privacy.min_households)
    assert_df_equality(read_table(spark, cfg.paths.warehouse, "gold", CONTACT_INSIGHTS).drop("run_id", "created_at"),
                       built, ignore_row_order=True, ignore_nullable=True)  # the command rebuilds the same table
    agreement = contacts.topic_agreement(spark, cfg.paths.warehouse, cfg.paths.landing, time_zone=tz)
    print(f"contacts: {agreement}")
    assert agreement.contacts == result.transcripts > 0
    assert agreement.topic_agreement >= 0.8
    assert agreement.topic_agreement > agreement.reason_agreement
    table = read_table(spark, cfg.paths.warehouse, "gold", CONTACT_INSIGHTS)
    assert not {"contact_id", "account_id", "transcript"} & set(table.columns)
    volume = {r["source"]: r["v"] for r in table.filter("segment = 'all'").groupBy("source").agg(
        F.sum("volume").alias("v")).collect()}
    assert volume["contact"] == result.contacts == read_table(spark, cfg.paths.warehouse, "silver", "contacts").count()
    # survey comments: every comment counted once; the unhappy write about outages, the content about nothing
    surveys = read_table(spark, cfg.paths.warehouse, "silver", "surveys")
    assert volume["survey_comment"] == surveys.filter(F.length(F.trim("comment")) > 0).count() > 0
    by_topic = {t: csat for t, _, _, csat in result.comments}
    assert set(by_topic) <= {"outage", "billing", "other"}  # the generator's three sentences, read as their subjects
    if {"outage", "other"} <= set(by_topic):
        assert by_topic["outage"] < by_topic["other"]


def test_baselines_recover_the_planted_weather_response_and_explain_each_bill(spark, utility, capsys):
    """Issue 21, why bills move: `ucx baselines` on the generated utility fits every household's
    CalTRACK daily model; on the households with a full year and no solar, EV or vacancy, the
    heating and cooling slopes recover the generator's planted ones (kWh per degree-day of a day
    wholly beyond its base: 24 x the hourly slope) within 25% for most of them (the daily model
    sees daily mean temperatures, the generator drew hourly degree-hours: the diurnal swing blurs
    the balance point); every bill with a bill a year earlier is split into parts that sum to its
    change, and `ucx explain-bill` says it."""
    from ucx_spark.catalog import BILL_EXPLANATIONS, USAGE_BASELINES
    from ucx_spark.commands import ExplainBillParams, execute
    from ucx_spark.insights.baselines import baseline_through
    from ucx_spark.pipelines import baselines

    cfg, _, _ = utility
    wh = cfg.paths.warehouse
    # ucx pipeline built both tables (the baselines through the last complete month of AMI); the command
    # rebuilds the same
    through = baseline_through(read_table(spark, wh, "silver", "ami_daily").agg(F.max("local_date")).first()[0])
    built = {t: read_table(spark, wh, "gold", t).drop("run_id", "created_at") for t in (USAGE_BASELINES, BILL_EXPLANATIONS)}
    result = baselines.run(spark, warehouse=wh, run_id="e2e-baselines", time_zone=cfg.utility.time_zone)
    for table, df in built.items():
        assert_approx_df_equality(read_table(spark, wh, "gold", table).drop("run_id", "created_at"), df, 1e-9,
                                  ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)
    recovery = baselines.slope_recovery(spark, wh, cfg.paths.landing, key=KEY)
    fits = read_table(spark, wh, "gold", USAGE_BASELINES)
    assert fits.count() == result.households == fits.select("household_id", "meter_key").distinct().count()
    assert fits.filter(F.col("period_end") > F.lit(through)).count() == 0
    assert recovery.heating_households >= 8 and recovery.cooling_households >= 8
    assert recovery.heating_median_error <= 0.25 and recovery.cooling_median_error <= 0.25
    assert recovery.heating_within >= 0.7 and recovery.cooling_within >= 0.7
    bills = read_table(spark, cfg.paths.warehouse, "gold", BILL_EXPLANATIONS)
    assert not {"account_id", "bill_id"} & set(bills.columns)
    assert bills.count() == read_table(spark, wh, "silver", "bills").count()
    split = bills.filter(F.col("rate_usd").isNotNull())
    assert split.count() == result.bills_explained > 0
    parts = F.coalesce("weather_usd", F.lit(0.0)) + F.col("days_usd") + F.col("rate_usd") + F.col("behaviour_usd")
    assert split.filter(F.abs(parts - F.col("change_usd")) > 1e-6).count() == 0
    household = split.orderBy(F.desc("period_start"), "household_id").first()["household_id"]
    capsys.readouterr()
    execute("explain-bill", ExplainBillParams(household_id=household, bills=2), cfg)
    said = capsys.readouterr().out
    with capsys.disabled():
        print(f"baselines: {result.summary()}\n{recovery}\n{said}")
    assert f"household {household}:" in said and "than the same period a year earlier" in said and "Why: weather" in said


def test_equity_audit_counts_every_notice_once_per_dimension_and_hides_small_groups(spark, utility):
    """Issue 21, who is treated unfairly: `ucx equity` on the generated utility; over the audit
    window every dimension's utility-wide disconnect-notice count is the silver count of notices of
    households active that month (counted here from silver, not from the audit's own code), groups
    below the privacy threshold publish no rate, and no identifier reaches the table."""
    from ucx_spark.catalog import EQUITY_AUDIT
    from ucx_spark.pipelines import equity

    cfg, _, _ = utility
    result = equity.run(spark, warehouse=cfg.paths.warehouse, run_id="e2e-equity", time_zone=cfg.utility.time_zone,
                        min_households=5, replicates=50)
    print(f"equity: {result.summary()}")
    audit = read_table(spark, cfg.paths.warehouse, "gold", EQUITY_AUDIT)
    assert not {"account_id", "premise_id", "household_id"} & set(audit.columns)
    assert audit.count() == result.rows == audit.select("period", "dimension", "group_value", "metric").distinct().count()
    assert {r[0] for r in audit.select("dimension").distinct().collect()} == {"income_band", "zip", "poverty_band"}
    months = [date.fromisoformat(m + "-01") for m in result.months]
    assert len(months) == 12
    accounts = read_table(spark, cfg.paths.warehouse, "silver", "accounts")
    notices = (read_table(spark, cfg.paths.warehouse, "silver", "collections")
               .filter(F.col("event_type") == "disconnect_notice")
               .withColumn("month", F.trunc("event_date", "month")).filter(F.col("month").isin(months))
               .join(accounts.select("household_id", "start_date", "end_date"), "household_id")
               .filter((F.col("start_date") <= F.last_day("month"))
                       & (F.col("end_date").isNull() | (F.col("end_date") >= F.col("month"))))
               .select("event_id").distinct().count())
    totals = (audit.filter("period = 'window' AND metric = 'disconnect_notices_per_1000'")
              .groupBy("dimension").agg(F.sum(F.coalesce("numerator", F.lit(0.0))).alias("s"),
                                        F.first("overall").alias("overall"), F.sum("denominator").alias("d")))
    for row in totals.collect():  # three dimensions
        assert row["overall"] * row["d"] == pytest.approx(1000.0 * notices), row["dimension"]
    small = audit.filter("n < 5")
    assert small.filter(F.col("value").isNotNull() | F.col("ratio").isNotNull() | F.col("numerator").isNotNull()
                        | F.col("flagged")).count() == 0


def test_every_table_the_pipeline_wrote_is_declared_in_the_catalog(spark, utility):
    cfg, _, _ = utility
    warehouse = Path(cfg.paths.warehouse)
    written = {f"{p.parent.parent.name}/{p.parent.name}" for p in warehouse.glob("*/*/_delta_log")}
    assert {"bronze/ami", "silver/ami_daily", "quarantine/_files", "gold/cx_kpis", "gold/quality_results"} <= written
    assert written - set(catalog.TABLES) == set()


@pytest.mark.slow
def test_the_three_step_jobs_give_the_whole_run_gold_with_each_steps_gates_and_accounting(spark, utility, tmp_path):
    """jobs/bronze.py, silver.py and gold.py run the medallion's steps one by one (issue 23): each
    with its own gates, silver with the row accounting, and gold the same as one whole run."""
    import shutil

    cfg, _, _ = utility
    landing, wh = tmp_path / "landing", tmp_path / "warehouse"
    shutil.copytree(cfg.paths.landing, landing)
    copy = cfg.with_paths(landing=str(landing), warehouse=str(wh))
    results = {}

    def run(step: str) -> None:
        results[step] = medallion.run(spark, cfg=copy, pseudonym_key=KEY if step == "silver" else None,
                                      run_id=f"e2e-step-{step}", as_of_dates=AS_OF, steps=(step,))

    run("bronze")
    assert set(results["bronze"].steps) == {"bronze", "quality"} and "gates_bronze" in results["bronze"].timings
    # the bronze job wrote bronze only (silver's folder exists, empty: every run makes the owner-only layers)
    # (gold holds only the gates' own records so far: quality_results, pipeline_runs)
    data_tables = ("meter_daily_usage", "cx_kpis", "household_features", "survey_features")
    assert not any((wh / "silver").iterdir()) and not any((wh / "gold" / t).exists() for t in data_tables)
    run("silver")
    assert any((wh / "silver").iterdir()) and not any((wh / "gold" / t).exists() for t in data_tables)
    run("gold")
    assert set(results["silver"].steps) == {"silver", "quality"} and "gates_silver" in results["silver"].timings
    assert {r["feed"] for r in results["silver"].accounting} == set(FEED_ORDER)
    assert all(r["landed"] == r["current"] + r["superseded"] + r["quarantined"] for r in results["silver"].accounting)
    assert set(results["gold"].steps) == {"gold", "quality"} and "gates_gold" in results["gold"].timings
    for table in ("meter_daily_usage", "cx_kpis", "household_features"):
        whole, stepped = (read_table(spark, w, "gold", table) for w in (cfg.paths.warehouse, str(wh)))
        columns = sorted(c for c in whole.columns if not c.startswith("_"))
        # doubles to 1e-9: a sum of doubles depends on the order Spark adds them, which two runs'
        # plans may differ in (money is rounded to cents, so it matches exactly)
        assert_approx_df_equality(whole.select(*columns), stepped.select(*columns), 1e-9, ignore_row_order=True,
                                  ignore_nullable=True)
    from ucx_spark.errors import ConfigError

    with pytest.raises(ConfigError, match="pseudonym key"):
        medallion.run(spark, cfg=copy, pseudonym_key=None, run_id="e2e-step-nokey", steps=("silver",))
    with pytest.raises(ConfigError, match="expected some of"):
        medallion.run(spark, cfg=copy, pseudonym_key=KEY, run_id="e2e-step-typo", steps=("sliver",))


def test_quality_results_and_data_docs_exist(spark, utility):
    cfg, _, _ = utility
    results = read_table(spark, cfg.paths.warehouse, "gold", "quality_results").where("run_id = 'e2e-1'")
    tables = {(r["layer"], r["table"]) for r in results.select("layer", "table").distinct().collect()}
    assert {("bronze", "ami"), ("silver", "ami"), ("gold", "meter_daily_usage"), ("gold", "cx_kpis")} <= tables
    assert results.where("severity = 'critical' and not success").count() == 0
    assert data_docs_index(cfg.paths.warehouse).is_file()


def test_data_docs_open_without_internet(spark, utility, tmp_path):
    """GX renders its pages with CDN scripts; the gate step points them at local copies
    (quality/docs_offline.py), so the index's validation table fills in a browser offline."""
    import re
    import shutil
    import subprocess

    cfg, _, _ = utility
    index = data_docs_index(cfg.paths.warehouse)
    site = index.parent
    pages = list(site.rglob("*.html"))
    external = {m for p in pages for m in re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"',
                                                      p.read_text(encoding="utf-8"))}
    assert not external, sorted(external)[:5]
    assert (site / "static" / "vendor" / "bootstrap-table" / "dist" / "bootstrap-table.min.js").is_file()
    validations = [p for p in pages if "/validations/" in p.as_posix()]
    assert len(validations) >= 10
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is required (make setup / .ci/run install it)"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files", "--virtual-time-budget=8000",
         "--dump-dom", index.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    shown = re.search(r"Showing 1 to (\d+) of (\d+) rows", proc.stdout)
    assert shown, f"the validation table did not render (exit {proc.returncode}): {proc.stderr[-1500:]}"
    assert int(shown.group(2)) == len(validations) and int(shown.group(1)) == min(10, len(validations))
    assert 'data-index="0"' in proc.stdout


def _landed_identifiers(landing: Path) -> set[str]:
    """Names, addresses, emails, phones and account/customer/premise/meter numbers of the landed
    accounts (the direct identifiers of contract section 3)."""
    found: set[str] = set()
    for path in (landing / "accounts").glob("accounts_*.csv*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
            for row in csv.DictReader(fh):
                for column in ("account_id", "customer_id", "premise_id", "meter_id", "customer_name",
                               "service_address", "email", "phone"):
                    value = (row.get(column) or "").strip()
                    if len(value) >= 6:  # short fragments would match by chance
                        found.add(value)
    return found


def test_neither_the_key_nor_a_landed_identifier_leaves_the_restricted_layers(spark, utility):
    """Every file of the warehouse outside bronze, silver, quarantine and _restricted (Data Docs,
    GX stores, logs, the audit tables) and every string cell of every gold table is free of the
    pseudonym key and of the landed direct identifiers."""
    cfg, _, _ = utility
    warehouse = Path(cfg.paths.warehouse)
    identifiers = _landed_identifiers(Path(cfg.paths.landing))
    assert len(identifiers) > 50
    needles = [KEY, *(i.encode("utf-8") for i in identifiers)]
    restricted = {"bronze", "silver", "quarantine", "_restricted"}
    scanned = 0
    for path in warehouse.rglob("*"):
        rel = path.relative_to(warehouse)
        if not path.is_file() or rel.parts[0] in restricted or path.suffix == ".parquet":
            continue
        data = path.read_bytes()
        scanned += 1
        hits = [n for n in needles if n in data]
        assert not hits, f"{rel} holds {hits[:3]}"
    assert scanned > 20  # Data Docs, GX stores, Delta logs of gold
    assert KEY not in b"".join(p.read_bytes() for p in warehouse.rglob("*.json") if p.is_file())
    for table in ("meter_daily_usage", "cx_kpis", "household_features", "survey_features", "quality_results",
                  "pipeline_runs"):
        df = read_table(spark, cfg.paths.warehouse, "gold", table)
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        if not strings:
            continue
        values = {v for row in df.select(*strings).distinct().collect() for v in row if v}  # small test tables
        leaked = {v for v in values if any(i in v for i in identifiers)}
        assert not leaked, f"gold/{table}: {sorted(leaked)[:3]}"


def test_rerun_without_new_files_changes_nothing_then_a_correction_flows_to_gold(spark, utility):
    cfg, _, _ = utility
    wh = cfg.paths.warehouse
    tracked = [("bronze", f) for f in FEED_ORDER] + [("silver", f) for f in FEED_ORDER]
    before = {t: table_version(spark, table_path(wh, *t)) for t in tracked}
    silver_before = read_table(spark, wh, "silver", "ami")
    silver_before_pinned = read_table(spark, wh, "silver", "ami", version=before[("silver", "ami")])
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="e2e-2", as_of_dates=AS_OF, gates=False)
    assert {t: table_version(spark, table_path(wh, *t)) for t in tracked} == before
    assert_df_equality(silver_before_pinned, read_table(spark, wh, "silver", "ami"), ignore_row_order=True)

    # A later AMI extract corrects one interval of one meter on 2025-07-15 (local).
    target = (
        silver_before.where("local_date = '2025-07-15' and quality = 'A'")
        .orderBy("meter_id", "interval_start").select("meter_id", "interval_start", "interval_minutes", "kwh").first()
    )
    old_day = (
        read_table(spark, wh, "gold", "meter_daily_usage")
        .where(F.col("local_date") == date(2025, 7, 15))
        .join(read_table(spark, wh, "silver", "accounts").select("meter_key", "meter_id").distinct(), "meter_key")
        .where(F.col("meter_id") == target["meter_id"]).first()
    )
    new_kwh = round(float(target["kwh"]) + 5.0, 3)
    stamp = target["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ")
    correction = Path(cfg.paths.landing, "ami", "ami_20260201T060000Z_fix.csv")
    correction.write_text(
        "meter_id,interval_start,interval_minutes,kwh,quality\n"
        f"{target['meter_id']},{stamp},{target['interval_minutes']},{new_kwh},A\n",
        encoding="utf-8",
    )
    # `ucx segment` owns the persona rows of gold/cx_kpis: the rebuild the correction causes keeps them
    kpis_path = table_path(wh, "gold", "cx_kpis")
    kpis_schema = read_table(spark, wh, "gold", "cx_kpis").schema
    persona_df = spark.createDataFrame([(date(2025, 7, 1), "persona", "persona_01", "csat_top2box", 0.5, 40)],
                                       kpis_schema)
    replace_rows_where(persona_df, kpis_path, predicate="segment_type = 'persona'")
    medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="e2e-3", as_of_dates=AS_OF, gates=False)
    latest = delta_log.commit_info(kpis_path, delta_log.latest_version(kpis_path)) or {}
    assert json.loads(latest["userMetadata"])["run_id"] == "e2e-3"  # rebuilt by this run
    assert_df_equality(read_table(spark, wh, "gold", "cx_kpis").filter("segment_type = 'persona'"), persona_df,
                       ignore_nullable=True)
    DeltaTable.forPath(spark, kpis_path).delete("segment_type = 'persona'")  # the later tests' gold is the reference's
    fixed = read_table(spark, wh, "silver", "ami").where(
        (F.col("meter_id") == target["meter_id"]) & (F.col("interval_start") == target["interval_start"])
    ).collect()
    assert [(r["kwh"], r["_source_file"]) for r in fixed] == [(new_kwh, correction.name)]
    new_day = (
        read_table(spark, wh, "gold", "meter_daily_usage")
        .where((F.col("local_date") == date(2025, 7, 15)) & (F.col("meter_key") == old_day["meter_key"]))
        .first()
    )
    assert new_day["kwh"] == pytest.approx(old_day["kwh"] + 5.0, abs=1e-6)
    runs = read_table(spark, wh, "gold", "pipeline_runs").where("run_id = 'e2e-3' and feed = 'ami'").first()
    assert runs["balanced"] and runs["superseded"] == json.loads(
        Path(cfg.paths.landing, "_manifest.json").read_text()
    )["feeds"]["ami"]["expected_superseded"] + 1


@pytest.mark.slow
def test_a_damaged_table_stops_the_run_and_is_rebuilt(spark, utility, tmp_path):
    """A commit that is not JSON (silver/bills) and a deleted data file (silver/payments): the
    run stops before it changes anything, naming both and the recovery; `ucx rebuild` sets them
    aside and the next run builds them again from bronze, row for row."""
    import shutil

    from ucx_spark.errors import DataError
    from ucx_spark.io import delta_log
    from ucx_spark.pipelines import rebuild

    cfg, _, _ = utility
    landing, wh = tmp_path / "landing", tmp_path / "warehouse"
    shutil.copytree(cfg.paths.landing, landing)
    shutil.copytree(cfg.paths.warehouse, wh, ignore=shutil.ignore_patterns("_locks"))
    copy = cfg.with_paths(landing=str(landing), warehouse=str(wh))
    assert rebuild.damaged_tables(wh) == []
    columns = {t: [c for c in read_table(spark, str(wh), "silver", t).columns if not c.startswith("_")]
               for t in ("bills", "payments")}
    before = {t: read_table(spark, str(wh), "silver", t).select(*columns[t]).localCheckpoint() for t in columns}
    bills, payments = wh / "silver" / "bills", wh / "silver" / "payments"
    latest = delta_log.latest_version(bills)
    with (bills / "_delta_log" / f"{latest:020d}.json").open("a", encoding="utf-8") as fh:
        fh.write('{"add": {"path": "part-0000\n')  # a torn write
    # a later commit (one payment row again: the rebuild from bronze leaves it out), whose file is lost
    earlier = set(delta_log.live_files(payments))
    read_table(spark, str(wh), "silver", "payments").limit(1).write.format("delta").mode("append").save(str(payments))
    added = delta_log.latest_version(payments)
    victim = sorted(set(delta_log.live_files(payments)) - earlier)[0]
    (payments / victim).unlink()
    versions = {p.name: delta_log.latest_version(p) for p in (wh / "gold").iterdir()}

    with pytest.raises(DataError) as err:
        medallion.run(spark, cfg=copy, pseudonym_key=KEY, run_id="e2e-damaged", as_of_dates=AS_OF)
    text = str(err.value)
    assert "silver/bills is damaged: commit" in text and "not valid JSON" in text
    assert f"silver/payments is damaged: data file {victim}" in text
    assert added > 0 and f"RESTORE TABLE delta.`{payments}` TO VERSION AS OF {added - 1}" in text, text
    assert "ucx rebuild --table silver/bills --table silver/payments" in text
    assert {p.name: delta_log.latest_version(p) for p in (wh / "gold").iterdir()} == versions  # nothing changed

    for table in ("silver/bills", "silver/payments"):
        result = rebuild.run(spark, warehouse=str(wh), table=table, run_id="e2e-rebuild")
        assert Path(result.moved_to).is_dir() and result.reprocess_feeds == (table.split("/")[1],)
    assert oct((wh / "_damaged").stat().st_mode & 0o777) == "0o700"
    # readers while gold is published again (issue 24): delta-rs, Spark as `ucx score` reads, and a BI
    # query over JDBC to `ucx serve-sql`'s Thrift server (its own JVM, as a BI tool would meet it)
    from ucx_spark.cluster import free_port
    from ucx_spark.serve import ThriftServer

    with ThriftServer(wh, port=free_port(), master="local[1]", driver_memory="1g", log_dir=tmp_path,
                      conf={"spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1"}) as server, \
            _readers(spark, wh / "gold", jdbc_port=server.port) as seen:
        medallion.run(spark, cfg=copy, pseudonym_key=KEY, run_id="e2e-rebuilt", as_of_dates=AS_OF)
    assert not seen["errors"], seen["errors"][:3]
    assert seen["reads"] >= 10 and any(len(v) > 1 for v in seen["versions"].values()), seen
    assert seen["by"]["jdbc"] >= 3 and seen["by"]["spark"] >= 3, seen["by"]
    assert any(len(v) > 1 for k, v in seen["versions"].items() if k.startswith("jdbc ")), seen["versions"]
    # each gold table is published by one commit: no version between the old table and the new one
    published = {t: delta_log.latest_version(wh / "gold" / t) - versions[t]
                 for t in ("meter_daily_usage", "household_features", "survey_features", "cx_kpis")}
    assert all(n <= 1 for n in published.values()) and published["household_features"] == 1, published
    assert rebuild.damaged_tables(wh) == []
    for t, expected in before.items():
        assert_df_equality(read_table(spark, str(wh), "silver", t).select(*columns[t]), expected,
                           ignore_row_order=True, ignore_nullable=True)
    runs = read_table(spark, str(wh), "gold", "pipeline_runs").where("run_id = 'e2e-rebuilt'")
    assert runs.count() == len(FEED_ORDER) and runs.where("not balanced").count() == 0


@contextmanager
def _readers(spark, gold: Path, *, jdbc_port: int | None = None):
    """While the block runs, read gold tables over and over: with delta-rs (another engine, as a
    BI extract would), with Spark at a pinned version and at the latest one (as `ucx score` and
    `ucx whatif` read household_features), and, given a port, with SQL over JDBC (PyHive, the
    HiveServer2 protocol BI tools speak). Each read must see one whole Delta version: its row
    count is the sum of that version's files' numRecords in the log, never an error or a mix.
    A reader that cannot name its version (the latest, JDBC) must match one of the versions
    committed between just before and just after its read. Yields {"reads", "errors",
    "versions": reader+table -> versions seen, "by": reads per reader}."""
    import threading

    from deltalake import DeltaTable

    from ucx_spark.io import delta_log

    seen: dict = {"reads": 0, "errors": [], "versions": {}, "by": {"delta-rs": 0, "spark": 0, "jdbc": 0}}
    stop = threading.Event()
    lock = threading.Lock()

    def expected(path: Path, version: int) -> int | None:
        files = delta_log.live_files(path, version=version)
        if files is None or any(f.num_records is None for f in files.values()):
            return None
        return sum(f.num_records for f in files.values())

    def check(reader: str, path: Path, first: int, last: int, rows: int) -> None:
        """``rows`` read between versions ``first`` and ``last`` (equal when pinned)."""
        wants = {v: expected(path, v) for v in range(first, last + 1)}
        matched = [v for v, want in wants.items() if want is None or want == rows]
        with lock:
            if not matched:
                seen["errors"].append(f"{reader} {path.name} v{first}..v{last}: {rows} rows, the log says "
                                      f"{sorted(set(wants.values()))}")
            seen["versions"].setdefault(f"{reader} {path.name}" if reader != "delta-rs" else path.name,
                                        set()).update(matched[-1:])
            seen["reads"] += 1
            seen["by"][reader] += 1

    def failed(reader: str, name: str, exc: Exception) -> None:
        with lock:
            seen["errors"].append(f"{reader} {name}: {type(exc).__name__}: {exc}")

    def delta_rs() -> None:
        for path in sorted(p for p in gold.iterdir() if (p / "_delta_log").is_dir()):
            try:
                table = DeltaTable(str(path))
                version = table.version()
                check("delta-rs", path, version, version, table.to_pyarrow_table().num_rows)
            except Exception as exc:  # noqa: BLE001 - every failure of a reader is a finding
                failed("delta-rs", path.name, exc)

    def spark_reader() -> None:
        kpis, features = gold / "cx_kpis", gold / "household_features"
        try:
            version = delta_log.latest_version(kpis)
            rows = spark.read.format("delta").option("versionAsOf", version).load(str(kpis)).count()
            check("spark", kpis, version, version, rows)
            first = delta_log.latest_version(features)
            rows = read_table(spark, str(gold.parent), "gold", "household_features").count()
            check("spark", features, first, delta_log.latest_version(features), rows)
        except Exception as exc:  # noqa: BLE001
            failed("spark", "cx_kpis/household_features", exc)

    def jdbc_reader():
        from pyhive import hive

        conn = None

        def one_pass() -> None:
            nonlocal conn
            try:
                conn = conn or hive.connect(host="127.0.0.1", port=jdbc_port, username="bi", database="gold")
                cursor = conn.cursor()
                for name in ("cx_kpis", "meter_daily_usage", "household_features"):
                    path = gold / name
                    first = delta_log.latest_version(path)
                    cursor.execute(f"select count(*) from gold.{name}")
                    rows = cursor.fetchall()[0][0]
                    check("jdbc", path, first, delta_log.latest_version(path), rows)
            except Exception as exc:  # noqa: BLE001
                failed("jdbc", "gold", exc)
                conn = None  # connect again: one dropped connection is one finding, not every later read
        return one_pass

    def loop(one_pass, ready: threading.Event, pause: float) -> None:
        """Passes until the block ends, and one more after it: every reader reads once before the
        block starts (the caller waits for ``ready``) and once after it, whatever its speed, so
        each sees the versions before and after a publish as well as those during it."""
        while True:
            last = stop.is_set()
            one_pass()
            ready.set()
            if last:
                return
            stop.wait(pause)

    readers = [(delta_rs, 0.2), (spark_reader, 2.0)] + ([(jdbc_reader(), 1.0)] if jdbc_port is not None else [])
    ready = [threading.Event() for _ in readers]
    threads = [threading.Thread(target=loop, args=(r, e, pause), daemon=True) for (r, pause), e in zip(readers, ready, strict=True)]
    for t in threads:
        t.start()
    for e in ready:
        e.wait(timeout=180)
    try:
        yield seen
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)


@pytest.mark.slow
def test_rekey_rotates_every_pseudonym(spark, utility, tmp_path):
    """`ucx rekey` (issue 24): every household_id and meter_key of silver, gold and _restricted is
    re-derived with the new key, none of the old ones is left in a table's current version, the
    old-to-new mapping is gone afterwards, and the wrong current key changes nothing."""
    import shutil

    from ucx_spark.errors import UcxError
    from ucx_spark.pipelines import rekey

    cfg, _, _ = utility
    wh = tmp_path / "warehouse"
    shutil.copytree(cfg.paths.warehouse, wh, ignore=shutil.ignore_patterns("_locks"))
    new_key = b"e2e-rotated-key"
    accounts = read_table(spark, str(wh), "silver", "accounts").select("account_id", "meter_id").collect()
    old_ids = {pseudonym_py(r["account_id"], key=KEY, namespace="account") for r in accounts}
    new_ids = {pseudonym_py(r["account_id"], key=new_key, namespace="account") for r in accounts}
    old_meters = {pseudonym_py(r["meter_id"], key=KEY, namespace="meter") for r in accounts if r["meter_id"]}
    usage_rows = read_table(spark, str(wh), "gold", "meter_daily_usage").count()

    with pytest.raises(UcxError, match="not the key"):
        rekey.run(spark, warehouse=str(wh), old_key=b"some-other-key", new_key=new_key, run_id="rk-0")
    result = rekey.run(spark, warehouse=str(wh), old_key=KEY, new_key=new_key, run_id="rk-1")
    assert {"silver/accounts", "silver/ami", "gold/meter_daily_usage", "gold/household_features"} <= set(result.tables)
    assert result.mapped["household_id"] >= len(new_ids)
    assert not (wh / "_restricted" / "rekey_map").exists()

    for name in result.tables:
        layer, table = name.split("/")
        df = read_table(spark, str(wh), layer, table)
        if "household_id" in df.columns:
            got = {r[0] for r in df.select("household_id").where("household_id is not null").distinct().collect()}
            assert not got & old_ids, name
            assert got <= new_ids | {None}, (name, sorted(got - new_ids)[:3])
        if "meter_key" in df.columns:
            keys = {r[0] for r in df.select("meter_key").distinct().collect()}
            assert not keys & old_meters, name
    assert read_table(spark, str(wh), "gold", "meter_daily_usage").count() == usage_rows
    # resumable: running it again with the same two keys changes no pseudonym
    again = rekey.run(spark, warehouse=str(wh), old_key=KEY, new_key=new_key, run_id="rk-2")
    assert again.tables == result.tables


def _correction(landing: Path, name: str, spark, wh: Path) -> None:
    """A later AMI extract re-sending one interval of one meter with 1 kWh more."""
    row = (read_table(spark, str(wh), "silver", "ami").where("quality = 'A'")
           .orderBy("meter_id", "interval_start").select("meter_id", "interval_start", "interval_minutes", "kwh").first())
    stamp = row["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ")
    (landing / "ami" / name).write_text(
        "meter_id,interval_start,interval_minutes,kwh,quality\n"
        f"{row['meter_id']},{stamp},{row['interval_minutes']},{round(float(row['kwh']) + 1.0, 3)},A\n",
        encoding="utf-8",
    )


@pytest.mark.slow
def test_a_full_disk_mid_run_is_named_and_the_next_run_completes(spark, utility, tmp_path):
    """Disk full in the middle of a run (issue 24): a small tmpfs holds a copy of the warehouse and
    landing zone, filled to its last few KB; the run stops with one clear error naming the
    warehouse and the fault, every table is at a committed version, and after space is freed the
    next run ends with the same tables as an uninterrupted run. Where the machine cannot mount a
    tmpfs, the fault is injected at silver's MERGE instead (the same error the JVM raises)."""
    import os
    import shutil
    import subprocess

    from ucx_spark.errors import DataError
    from ucx_spark.pipelines import rebuild

    cfg, _, _ = utility
    ref = tmp_path / "reference"
    shutil.copytree(cfg.paths.landing, ref / "landing")
    shutil.copytree(cfg.paths.warehouse, ref / "warehouse", ignore=shutil.ignore_patterns("_locks"))
    name = "ami_20260301T060000Z_fix.csv"
    _correction(ref / "landing", name, spark, ref / "warehouse")
    ref_cfg = cfg.with_paths(landing=str(ref / "landing"), warehouse=str(ref / "warehouse"))
    medallion.run(spark, cfg=ref_cfg, pseudonym_key=KEY, run_id="e2e-disk", as_of_dates=AS_OF, gates=False)

    mount = tmp_path / "small"
    mount.mkdir()
    size_mb = int(sum(f.stat().st_size for f in Path(cfg.paths.warehouse).rglob("*") if f.is_file()) / 2**20
                  + sum(f.stat().st_size for f in Path(cfg.paths.landing).rglob("*") if f.is_file()) / 2**20) + 16
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)],
                             capture_output=True, check=False).returncode == 0
    try:
        shutil.copytree(cfg.paths.landing, mount / "landing")
        shutil.copytree(cfg.paths.warehouse, mount / "warehouse", ignore=shutil.ignore_patterns("_locks"))
        shutil.copy(ref / "landing" / "ami" / name, mount / "landing" / "ami" / name)
        small = cfg.with_paths(landing=str(mount / "landing"), warehouse=str(mount / "warehouse"))
        filler = mount / "filler"
        if mounted:
            free = shutil.disk_usage(mount).free
            with open(filler, "wb") as fh:
                os.posix_fallocate(fh.fileno(), 0, max(free - (96 << 10), 0))  # leave 96 KiB
            ctx = pytest.raises(DataError)
        else:
            from ucx_spark.pipelines import silver as silver_step

            def full(*_a, **_k):
                raise RuntimeError("py4j.protocol.Py4JJavaError: java.io.IOException: No space left on device")

            ctx = pytest.MonkeyPatch.context()
            patcher = ctx.__enter__()
            patcher.setattr(silver_step, "merge_if_later", full)
            patcher.setattr(silver_step, "append_table", full)
            ctx = pytest.raises(DataError)
        with ctx as err:
            medallion.run(spark, cfg=small, pseudonym_key=KEY, run_id="e2e-full", as_of_dates=AS_OF, gates=False)
        if not mounted:
            patcher.undo()
        text = str(err.value)
        assert str(mount / "warehouse") in text and "No space left on device" in text and "rerun" in text
        assert rebuild.damaged_tables(mount / "warehouse") == []  # nothing half-committed
        filler.unlink(missing_ok=True)  # space is freed
        medallion.run(spark, cfg=small, pseudonym_key=KEY, run_id="e2e-disk", as_of_dates=AS_OF, gates=False)
        for layer, table in (("silver", "ami"), ("silver", "ami_daily"), ("gold", "meter_daily_usage"), ("gold", "cx_kpis")):
            got = read_table(spark, str(mount / "warehouse"), layer, table)
            want = read_table(spark, str(ref / "warehouse"), layer, table)
            keep = [c for c in want.columns if c not in ("_run_id", "run_id", "created_at", "_ingested_at", "processed_at")]
            assert_df_equality(got.select(*keep), want.select(*keep), ignore_row_order=True, ignore_nullable=True)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)
