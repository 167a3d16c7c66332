"""`ucx target` -> gold/campaign_targets, and `ucx activate`: the re-identified export.

Targets: one campaign per run; its rows in gold/campaign_targets are
replaced, other campaigns kept. Propensities come from gold/program_propensity
(`ucx saturation`) when it describes the current snapshot, else they are
computed (and not stored).

Activation re-identifies the unsuppressed targets of a campaign (household_id
recomputed from silver/accounts.account_id with the pseudonym key), writes one
CSV into a restricted folder (default ``<warehouse>/_restricted/activation``,
mode 0700; the file 0600) and appends an audit row to the Delta table
``<warehouse>/_restricted/activation_log`` (outside gold): who (actor),
what (campaign, file, rows, columns, sha256 of the file), when.

Contact policy (insights/targeting.py): marketing opt-outs per channel, the frequency cap, and the
do-not-contact list, a restricted file (``docs/contact_policy.md``) read by ``read_do_not_contact``
at targeting and read again at activation, so a household listed in between is not exported (the
export says how many were held back).
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import CAMPAIGN_TARGETS, HOUSEHOLD_SCORES, PROGRAM_PROPENSITY
from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import targeting as T
from ucx_spark.io.delta import append_table, read_optional, read_table, replace_rows_where, table_exists, table_path
from ucx_spark.pipelines.insights_common import read_snapshot
from ucx_spark.pipelines.saturation import compute_propensity
from ucx_spark.quality import publish_if_passed

RESTRICTED_DIR = "_restricted"
DNC_COLUMNS = ("account_id", "channel", "reason", "effective_from", "effective_to")
DNC_DDL = "household_id string, channel string, reason string, effective_from date, effective_to date"
ACTIVATION_LOG_DDL = (
    "exported_at timestamp, actor string, campaign string, file string, row_count long, "
    "columns array<string>, sha256 string, targets_run_id string, as_of_date date"
)


@dataclass
class TargetResult:
    run_id: str
    campaign: str
    path: str
    as_of_date: str
    households: int
    targets: int
    suppressed: dict[str, int] = field(default_factory=dict)
    top: list[tuple[int, float, str, str]] = field(default_factory=list)  # rank, benefit, nba, channel

    def summary(self) -> str:
        lines = [f"campaign {self.campaign} as of {self.as_of_date}: {self.targets:,} ranked of {self.households:,} "
                 f"households -> {self.path}"]
        if self.suppressed:
            lines.append("suppressed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.suppressed.items())))
        lines += [f"  #{r:<4} benefit ${b:,.2f}/yr  next best action {a}  via {c}" for r, b, a, c in self.top]
        return "\n".join(lines)


def read_do_not_contact(spark: SparkSession, path: str | Path | None, *, pseudonym_key: bytes | None) -> DataFrame | None:
    """The do-not-contact list at ``path`` (a CSV of ``DNC_COLUMNS``; None or a missing file: no list)
    as household_id (the pseudonym of account_id), channel, reason, effective_from, effective_to.

    Read on the driver in chunks (the list is a small share of the customers) and checked row by
    row: an unknown channel or reason, a missing account_id or a date that does not parse is a
    UcxError naming the file and the row (1 = the first record after the header).
    """
    import pandas as pd

    from ucx_spark.identity import pseudonym_py

    if path is None or not Path(path).is_file():
        return None
    if pseudonym_key is None:
        raise UcxError(f"do-not-contact list {path}: its account ids need the pseudonym key (UCX_PSEUDONYM_KEY)")
    parts: list[pd.DataFrame] = []
    try:
        chunks = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=100_000)
        for chunk in chunks:
            missing = [c for c in DNC_COLUMNS if c not in chunk.columns]
            if missing:
                raise UcxError(f"do-not-contact list {path}: missing column(s) {', '.join(missing)} "
                               f"(expected {', '.join(DNC_COLUMNS)})")
            chunk = chunk.apply(lambda col: col.str.strip())
            rows = chunk.index + 1
            checks = (
                (chunk["account_id"] == "", "no account_id"),
                (~chunk["channel"].str.lower().isin(T.DNC_CHANNELS), f"channel not one of {', '.join(T.DNC_CHANNELS)}"),
                (~chunk["reason"].str.lower().isin(T.DNC_REASONS), f"reason not one of {', '.join(T.DNC_REASONS)}"),
            )
            for bad, why in checks:
                if bad.any():
                    raise UcxError(f"do-not-contact list {path}, row {int(rows[bad.to_numpy()][0])}: {why}")
            dates = {}
            for col in ("effective_from", "effective_to"):
                parsed = pd.to_datetime(chunk[col].replace("", None), format="%Y-%m-%d", errors="coerce")
                bad = (chunk[col] != "") & parsed.isna()
                if bad.any():
                    raise UcxError(f"do-not-contact list {path}, row {int(rows[bad.to_numpy()][0])}: "
                                   f"{col} '{chunk.loc[bad, col].iloc[0]}' is not a date YYYY-MM-DD")
                dates[col] = parsed.dt.date.astype(object).where(parsed.notna(), None)
            parts.append(pd.DataFrame({
                "household_id": [pseudonym_py(a, key=pseudonym_key, namespace="account") for a in chunk["account_id"]],
                "channel": chunk["channel"].str.lower(), "reason": chunk["reason"].str.lower(), **dates,
            }))
    except (OSError, ValueError) as e:  # unreadable file, malformed CSV (pandas' parser errors are ValueErrors)
        raise UcxError(f"do-not-contact list {path}: {e}") from e
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["household_id"])
    if frame.empty:
        return spark.createDataFrame([], DNC_DDL)
    return spark.createDataFrame(frame, DNC_DDL)


def _or_empty(spark: SparkSession, df: DataFrame | None, ddl: str) -> DataFrame:
    return df if df is not None else spark.createDataFrame([], ddl)


def run(
    spark: SparkSession,
    *,
    warehouse: str,
    campaign: str,
    run_id: str,
    rules: T.SuppressionRules,
    seed: int = 42,
    liheap_annual_benefit_usd: float = 600.0,
    partitions: int = 8,
    do_not_contact: DataFrame | None = None,
    time_zone: str = "UTC",
) -> TargetResult:
    """One campaign's rows of gold/campaign_targets (``insights.targeting.campaign_targets``); the
    collections worklist's moratoria read the weather's local days in ``time_zone``."""
    if campaign not in T.CAMPAIGNS:
        raise UcxError(f"unknown campaign '{campaign}' (allowed: {', '.join(T.CAMPAIGNS)})")
    created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
    snap = read_snapshot(spark, warehouse)[0].cache()
    try:
        propensity_df = read_optional(spark, warehouse, "gold", PROGRAM_PROPENSITY)
        latest = snap.agg(F.max("as_of_date")).first()[0]
        if propensity_df is None or propensity_df.filter(F.col("as_of_date") == F.lit(latest)).limit(1).count() == 0:
            propensity_df = compute_propensity(spark, warehouse, snap, seed=seed, partitions=partitions)
        propensity_df = propensity_df.filter(F.col("as_of_date") == F.lit(latest))
        scores_df = read_optional(spark, warehouse, "gold", HOUSEHOLD_SCORES)
        benefit_df = T.with_expected_benefit(propensity_df, snap, scores_df,
                                             liheap_annual_benefit_usd=liheap_annual_benefit_usd)
        marketing = _or_empty(spark, read_optional(spark, warehouse, "silver", "marketing"),
                              "household_id string, channel string, event_type string, occurred_at timestamp")
        contacts = _or_empty(spark, read_optional(spark, warehouse, "silver", "contacts"),
                             "household_id string, channel string, started_at timestamp")
        collections = _or_empty(spark, read_optional(spark, warehouse, "silver", "collections"),
                                "household_id string, event_date date, event_type string")
        worklist: dict[str, DataFrame] = {}
        if campaign == T.COLLECTIONS:
            worklist = {"campaign_rows": T.collections_rows(snap, scores_df),
                        "moratoria_df": held_by_moratoria(spark, warehouse, snap.select("household_id", "as_of_date"),
                                                          F.col("as_of_date"), rules=rules, time_zone=time_zone,
                                                          dnc_df=do_not_contact)}
        targets_df = T.campaign_targets(
            benefit_df, campaign=campaign, channels_df=T.preferred_channels(marketing, contacts),
            contacts_df=contacts, collections_df=collections, rules=rules, run_id=run_id, created_at=created_at,
            marketing_df=marketing, dnc_df=do_not_contact, **worklist,
        )
        path = table_path(warehouse, "gold", CAMPAIGN_TARGETS)
        publish_if_passed(spark, assert_no_pii(targets_df, table=CAMPAIGN_TARGETS),
                          lambda df: replace_rows_where(df, path, predicate=f"campaign = '{campaign}'"),
                          layer="gold", table=CAMPAIGN_TARGETS, run_id=run_id, warehouse=warehouse)
    finally:
        snap.unpersist()
    written = read_table(spark, warehouse, "gold", CAMPAIGN_TARGETS).filter(F.col("campaign") == campaign)
    reasons = written.groupBy("suppression_reason").count().collect()
    counts = {r["suppression_reason"]: int(r["count"]) for r in reasons}
    top = written.filter(F.col("rank").isNotNull()).orderBy("rank").limit(5).collect()
    return TargetResult(
        run_id=run_id, campaign=campaign, path=path, as_of_date=str(latest), households=sum(counts.values()),
        targets=counts.get(None, 0), suppressed={k: v for k, v in counts.items() if k is not None},
        top=[(int(r["rank"]), float(r["expected_benefit"] or 0.0), r["next_best_action"] or "-", r["preferred_channel"])
             for r in top],
    )


def held_by_moratoria(spark: SparkSession, warehouse: str, keys_df: DataFrame, day: Column, *,
                      rules: T.SuppressionRules, time_zone: str, dnc_df: DataFrame | None) -> DataFrame:
    """household_id, moratorium (``insights.targeting.moratoria``) on ``day``, from silver/accounts
    (each household's weather station), silver/weather and the do-not-contact list."""
    accounts = read_optional(spark, warehouse, "silver", "accounts")
    weather = read_optional(spark, warehouse, "silver", "weather")
    if accounts is None or weather is None:
        raise UcxError(f"silver/accounts or silver/weather missing in {warehouse}: the collections moratoria "
                       "read each household's weather station and its readings (run `ucx pipeline`)")
    stations = accounts.select("household_id", F.col("weather_station_id").alias("station_id")) \
        .dropDuplicates(["household_id"])
    return T.moratoria(keys_df, day, stations_df=stations, extremes_df=T.daily_extremes(weather, time_zone=time_zone),
                       dnc_df=dnc_df, cold_f=rules.moratorium_cold_f, heat_f=rules.moratorium_heat_f)


# --- activation --------------------------------------------------------------------------------

@dataclass
class ActivationResult:
    campaign: str
    file: str
    rows: int
    sha256: str
    actor: str
    log_path: str
    channels: dict[str, int] = field(default_factory=dict)
    held_back: int = 0  # targets on the do-not-contact list today (listed after `ucx target` ran)
    held_by_moratoria: dict[str, int] = field(default_factory=dict)  # collections: moratoria in force today

    def summary(self) -> str:
        by = ", ".join(f"{c} {n:,}" for c, n in sorted(self.channels.items()))
        held = (f"\nheld back {self.held_back:,} target(s) the do-not-contact list holds today"
                if self.held_back else "")
        if self.held_by_moratoria:
            held += "\nheld back by collections moratoria in force today: " + ", ".join(
                f"{r} {n:,}" for r, n in sorted(self.held_by_moratoria.items()))
        return (f"exported {self.rows:,} households of campaign {self.campaign} ({by}) -> {self.file} (0600)\n"
                f"sha256 {self.sha256}; logged as {self.actor} in {self.log_path}{held}")


def _restricted_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only (0700) and return it; an existing folder is re-tightened."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path


def _new_export_file(folder: Path, stem: str) -> tuple[Path, int]:
    """A new export file, never an earlier one: two exports of a campaign in the same second (a
    retry, a second analyst) get `<stem>_2.csv`, `<stem>_3.csv`; O_EXCL so no export is overwritten."""
    for n in range(1, 1000):
        file = folder / (f"{stem}.csv" if n == 1 else f"{stem}_{n}.csv")
        try:
            return file, os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
    raise UcxError(f"{folder}: 999 exports named {stem}*.csv already exist")


def activate(
    spark: SparkSession,
    *,
    warehouse: str,
    campaign: str,
    pseudonym_key: bytes,
    out_dir: str | None = None,
    actor: str | None = None,
    do_not_contact: DataFrame | None = None,
    rules: T.SuppressionRules | None = None,
    time_zone: str = "UTC",
) -> ActivationResult:
    """Write the re-identified CSV of ``campaign``'s unsuppressed targets and log the export; targets
    the do-not-contact list holds today for their channel (or all) are held back and counted, and
    so are the collections worklist's targets under a moratorium today (``rules``' thresholds;
    the weather of today and yesterday as far as silver/weather has it)."""
    targets_path = table_path(warehouse, "gold", CAMPAIGN_TARGETS)
    if not table_exists(spark, targets_path):
        raise UcxError(f"{targets_path} does not exist: run `ucx target --campaign {campaign}` first")
    accounts_df = read_optional(spark, warehouse, "silver", "accounts")
    if accounts_df is None:
        raise UcxError(f"silver/accounts not found under {warehouse}: activation re-identifies from it")
    targets_df = read_table(spark, warehouse, "gold", CAMPAIGN_TARGETS).filter(F.col("campaign") == campaign)
    meta = targets_df.agg(
        F.count(F.when(F.col("rank").isNotNull() & F.col("suppression_reason").isNull(), 1)).alias("n"),
        F.max("run_id").alias("run_id"), F.max("as_of_date").alias("as_of_date"),
    ).first()
    if not meta["n"]:
        raise UcxError(f"campaign '{campaign}' has no targets in gold/campaign_targets "
                       f"(run `ucx target --campaign {campaign}`; every household may be suppressed)")
    held_back = 0
    if do_not_contact is not None:
        today = datetime.now(UTC).date()
        listed = T.listed_channels(do_not_contact, F.lit(today)).withColumnRenamed("channel", "_listed")
        hit = targets_df.join(listed, "household_id").filter(
            (F.col("_listed") == "all") | (F.col("_listed") == F.col("preferred_channel")))
        held = hit.select("household_id").distinct()
        held_back = held.join(targets_df.filter(F.col("suppression_reason").isNull() & F.col("rank").isNotNull()),
                              "household_id").count()
        targets_df = targets_df.join(held, "household_id", "left_anti")
    moratoria_today: dict[str, int] = {}
    if campaign == T.COLLECTIONS:
        ranked = targets_df.filter(F.col("suppression_reason").isNull() & F.col("rank").isNotNull())
        under = held_by_moratoria(spark, warehouse, ranked.select("household_id"), F.lit(datetime.now(UTC).date()),
                                  rules=rules or T.SuppressionRules(), time_zone=time_zone,
                                  dnc_df=do_not_contact).localCheckpoint()  # counted, then left out
        moratoria_today = {r["moratorium"]: int(r["count"])
                           for r in under.groupBy("moratorium").count().collect()}  # <= 2 rows
        targets_df = targets_df.join(under.select("household_id"), "household_id", "left_anti")
    export_df = T.reidentified_targets(targets_df, accounts_df, campaign=campaign, pseudonym_key=pseudonym_key)

    root = Path(warehouse).resolve()
    folder = Path(out_dir) if out_dir else root / RESTRICTED_DIR / "activation"
    if not out_dir:
        _restricted_dir(root / RESTRICTED_DIR)
    _restricted_dir(folder)
    exported_at = datetime.now(UTC).replace(microsecond=0)
    file, fd = _new_export_file(folder, f"{campaign}_{exported_at.strftime('%Y%m%dT%H%M%SZ')}")
    os.fchmod(fd, 0o600)
    digest, rows, channels = hashlib.sha256(), 0, Counter()
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(T.ACTIVATION_COLUMNS)
        # Streamed partition by partition: the export is campaign-sized, never held whole on the driver.
        for row in export_df.toLocalIterator():
            writer.writerow(["" if row[c] is None else row[c] for c in T.ACTIVATION_COLUMNS])
            rows += 1
            channels[row["preferred_channel"]] += 1
    digest.update(file.read_bytes())
    if rows == 0:
        file.unlink()
        raise UcxError(f"campaign '{campaign}': no target matched silver/accounts with this pseudonym key "
                       "(is UCX_PSEUDONYM_KEY the key the warehouse was built with?)")
    who = actor or getpass.getuser()
    log_df = spark.createDataFrame(
        [(exported_at, who, campaign, str(file), rows, list(T.ACTIVATION_COLUMNS), digest.hexdigest(),
          meta["run_id"], meta["as_of_date"])],
        ACTIVATION_LOG_DDL,
    )
    log_path = str(root / RESTRICTED_DIR / "activation_log")
    _restricted_dir(root / RESTRICTED_DIR)
    append_table(log_df, log_path)
    return ActivationResult(campaign=campaign, file=str(file), rows=rows, sha256=digest.hexdigest(), actor=who,
                            log_path=log_path, channels=dict(channels), held_back=held_back,
                            held_by_moratoria=moratoria_today)
