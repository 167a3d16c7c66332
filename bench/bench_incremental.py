"""Incremental benchmark: what one more day costs on a warehouse that already holds history.

    .venv/bin/python bench/bench_incremental.py --households 10000 --months 1 --out /tmp/ucx-inc

Generates a utility (15-minute reads), runs the gated pipeline on it (the first
run, timed), then lands one daily extract per feed for the day after the last
one (AMI: every meter's reads of the next local day, ~96 per meter; weather: the
next day's hours; the event feeds: their latest local day of events moved onto
the new day, with new ids; accounts are not re-sent) and runs the pipeline
again, timing each step of that incremental run.
Run it with ``--months 1`` and ``--months 3`` on the same size: the incremental
run should cost about the same (its cost follows the new day, not the history).
``--move-outs N`` makes the day a real CIS day: every account re-sent, N of them
closed on the new day (gold recomputes from that day, not whole).

The figures are printed with the 1-minute load average before and after; a run
started above 2.5 is marked INVALID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate import PeakRss  # noqa: E402
from profile_pipeline import MAX_VALID_LOAD, wait_for_quiet  # noqa: E402

# feed -> (id column made new, columns moved one day later)
DAILY_FEEDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "weather": (None, ("observed_at",)),
    "bills": ("bill_id", ("period_start", "period_end", "bill_date", "due_date")),
    "payments": ("payment_id", ("paid_at",)),
    "collections": ("event_id", ("event_date",)),
    "contacts": ("contact_id", ("started_at",)),
    "surveys": ("survey_id", ("responded_at",)),
    "outages": ("outage_id", ("started_at", "restored_at", "first_etr")),
    "marketing": ("event_id", ("occurred_at",)),
}


def _write_csv(df, folder: Path, name: str) -> int:  # type: ignore[no-untyped-def]
    """Write ``df`` (string columns) as one gzipped CSV landing file; returns its rows."""
    tmp = folder / f"_tmp_{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    n = df.count()
    df.coalesce(1).write.option("header", "true").option("compression", "gzip").option("emptyValue", "").csv(str(tmp))
    part = next(tmp.glob("part-*.csv.gz"))
    part.rename(folder / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return n


def land_next_day(spark, warehouse: str, landing: str, stamp: str, *, ami_only: bool = False,  # type: ignore[no-untyped-def]
                  time_zone: str = "America/Chicago", resend_accounts: bool = False,
                  move_outs: int = 0) -> dict[str, int]:
    """One extract per feed for the local day after the last AMI day (``ami_only``: the AMI extract
    alone, as a head-end's drop between the daily CIS extracts; ``resend_accounts``: the extract
    also carries every account as it is, as a CIS that sends a daily snapshot does; ``move_outs``:
    that snapshot closes so many open accounts on the new day, as every real day has move-outs);
    returns rows per feed."""
    from pyspark.sql import functions as F

    from ucx_spark.contract import FEEDS, TIMESTAMP
    from ucx_spark.io.delta import read_table

    def raw(df, feed: str):  # type: ignore[no-untyped-def]
        cols = []
        for c in FEEDS[feed].columns:
            if c.name not in df.columns:
                continue
            if c.kind == TIMESTAMP:
                cols.append(F.date_format(c.name, "yyyy-MM-dd'T'HH:mm:ss'Z'").alias(c.name))
            else:
                cols.append(F.col(c.name).cast("string").alias(c.name))
        return df.select(*cols)

    out: dict[str, int] = {}
    ami = read_table(spark, warehouse, "silver", "ami")
    last = ami.agg(F.max("local_date")).first()[0]
    day = ami.filter(F.col("local_date") == last).select(
        "meter_id", (F.col("interval_start") + F.expr("INTERVAL 1 DAY")).alias("interval_start"),
        "interval_minutes", "kwh", "quality",
    )
    out["ami"] = _write_csv(raw(day, "ami"), Path(landing, "ami"), f"ami_{stamp}_daily.csv.gz")
    for feed, (id_col, moved) in ({} if ami_only else DAILY_FEEDS).items():
        df = read_table(spark, warehouse, "silver", feed)
        kinds = {x.name: x.kind for x in FEEDS[feed].columns}
        anchor = moved[0]
        day_of = F.col(anchor) if kinds[anchor] != TIMESTAMP else F.to_date(F.from_utc_timestamp(anchor, time_zone))
        latest = df.agg(F.max(day_of)).first()[0]  # local day, as the AMI day is
        rows = df.filter(day_of == latest)
        # the feed's latest day of events moved to the new day (last AMI day + 1): a daily extract
        # carries that day's events, also for a sparse feed whose latest event is weeks old
        days = (last - latest).days + 1
        shift = {c: (F.date_add(c, days) if kinds[c] != TIMESTAMP else F.col(c) + F.expr(f"INTERVAL {days} DAYS"))
                 for c in moved}
        rows = rows.withColumns(shift)
        if id_col:
            rows = rows.withColumn(id_col, F.concat(F.col(id_col), F.lit(f"-{stamp}")))
        out[feed] = _write_csv(raw(rows, feed), Path(landing, feed), f"{feed}_{stamp}_daily.csv.gz")
    if (resend_accounts or move_outs) and not ami_only:
        accounts = read_table(spark, warehouse, "silver", "accounts")
        if move_outs:  # the first open accounts by id close on the new day (end_date: a move-out)
            closing = (accounts.filter(F.col("end_date").isNull()).select("account_id").orderBy("account_id")
                       .limit(move_outs).withColumn("_closes", F.lit(True)))
            accounts = (accounts.join(closing, "account_id", "left")
                        .withColumn("end_date", F.when(F.col("_closes"), F.date_add(F.lit(last), 1))
                                    .otherwise(F.col("end_date"))).drop("_closes"))
        out["accounts"] = _write_csv(raw(accounts, "accounts"), Path(landing, "accounts"), f"accounts_{stamp}_daily.csv.gz")
    return out


def main(argv: list[str] | None = None) -> None:
    from ucx_spark.config import load_config
    from ucx_spark.generate import generate_utility
    from ucx_spark.pipelines import medallion
    from ucx_spark.session import build_spark

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--out", default="/tmp/ucx-bench-incremental")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--reuse", action="store_true", help="reuse OUT's landing zone and warehouse of a first run")
    ap.add_argument("--ami-only", action="store_true",
                    help="the next day's AMI extract alone (the other feeds' daily extracts not yet landed)")
    ap.add_argument("--resend-accounts", action="store_true",
                    help="the daily extract also re-sends every account as it is (a CIS daily snapshot)")
    ap.add_argument("--move-outs", type=int, default=0, metavar="N",
                    help="the daily extract re-sends every account and closes N open ones on the new day")
    ap.add_argument("--landing", help="copy this landing zone (e.g. from `ucx generate`) instead of generating one "
                                      "in this process (whose memory would then count in the first run's RSS)")
    args = ap.parse_args(argv)

    out = Path(args.out).resolve()
    landing, wh = str(out / "landing"), str(out / "wh")
    base = load_config(env="local")
    spark_cfg = replace(base.spark, master=args.master, driver_memory=args.driver_memory, log_level="ERROR",
                        metastore="none")
    cfg = replace(base, spark=spark_cfg).with_paths(landing=landing, warehouse=wh)
    if not args.reuse:
        shutil.rmtree(out, ignore_errors=True)
    spark = build_spark(spark_cfg, warehouse=wh, time_zone=cfg.utility.time_zone)
    key = b"bench-incremental"
    report: dict[str, object] = {"households": args.households, "months": args.months}
    if not args.reuse:
        if args.landing:
            shutil.copytree(args.landing, landing)
            manifest = json.loads((Path(landing) / "_manifest.json").read_text())
        else:
            t = time.perf_counter()
            manifest = generate_utility(spark, landing, households=args.households, months=args.months,
                                        interval_minutes=15, seed=5)
            report["generate_s"] = round(time.perf_counter() - t, 1)
        report["landed_rows"] = sum(int(f["landed_rows"]) for f in manifest["feeds"].values())
        load = wait_for_quiet()
        t = time.perf_counter()
        with PeakRss() as mem:
            first = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id="first")
        report["first_run"] = {"seconds": round(time.perf_counter() - t, 1), "steps": first.timings,
                               "peak_rss_gib": round(mem.peak / 2**30, 2), "load_before": load[0],
                               "load_after": os.getloadavg()[0]}
        print(f"first run: {report['first_run']}")
    added = land_next_day(spark, wh, landing, "20260102T060000Z", ami_only=args.ami_only, time_zone=cfg.utility.time_zone,
                          resend_accounts=args.resend_accounts, move_outs=args.move_outs)
    report["next_day_rows"] = added
    print(f"next day landed: {added}")
    load = wait_for_quiet()
    t = time.perf_counter()
    with PeakRss() as mem:
        inc = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id="incremental")
    seconds = time.perf_counter() - t
    report["incremental_run"] = {"seconds": round(seconds, 1), "steps": inc.timings,
                                 "peak_rss_gib": round(mem.peak / 2**30, 2), "load_before": load[0],
                                 "load_after": os.getloadavg()[0],
                                 "valid": load[0] <= MAX_VALID_LOAD}
    gold_step = inc.steps.get("gold")
    if gold_step is not None:
        print(f"gold: {gold_step.summary()}")
    print(f"incremental run: {seconds:.1f}s " + ", ".join(f"{k} {v:.1f}s" for k, v in inc.timings.items())
          + f"; load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}"
          + ("" if load[0] <= MAX_VALID_LOAD else "  ** INVALID: load above 2.5 before the run **"))
    (out / f"incremental-{args.households}x{args.months}.json").write_text(json.dumps(report, indent=2, default=str))
    spark.stop()


if __name__ == "__main__":
    main()
