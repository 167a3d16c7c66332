"""Benchmark of the medallion: rows/s landing -> silver and silver -> gold, gates on and off,
and DuckDB computing the same meter_daily_usage from the same files.

    .venv/bin/python bench/bench_pipeline.py --households 10000 --months 1 --out /tmp/ucx-bench-pipe

Generates a utility (15-minute AMI) unless --landing points at an existing one,
then runs the pipeline twice into fresh warehouses: once with the Great
Expectations gates, once without; prints per-step seconds, AMI rows/s and the
gates' share of the pipeline time, then the DuckDB time for meter_daily_usage
over the same AMI and accounts files (one local SQL query, 2 threads) and the
Spark/DuckDB ratio. Peak memory is the RSS of this process tree (driver JVM).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate import PeakRss  # noqa: E402

from ucx_spark.config import Config, SparkConfig  # noqa: E402
from ucx_spark.session import build_spark  # noqa: E402


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def run_pipeline(spark, cfg: Config, *, gates: bool, run_id: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from ucx_spark.contract import FEED_ORDER
    from ucx_spark.pipelines import bronze, gold, medallion, silver
    from ucx_spark.pipelines.gates import Gates
    from ucx_spark.quality import Thresholds

    wh, tz = cfg.paths.warehouse, cfg.utility.time_zone
    checks = Gates(spark, wh, run_id, Thresholds(ami_completeness_min=cfg.quality.ami_completeness_min))
    times: dict[str, float] = {}
    _, times["bronze"] = _timed(bronze.run, spark, landing=cfg.paths.landing, warehouse=wh, run_id=run_id)
    if gates:
        _, times["gates_bronze"] = _timed(checks.check_tables, "bronze", FEED_ORDER)
    _, times["silver"] = _timed(silver.run, spark, warehouse=wh, run_id=run_id, time_zone=tz, pseudonym_key=b"bench")
    if gates:
        _, times["gates_silver"] = _timed(checks.check_tables, "silver", (*FEED_ORDER, "ami_daily_completeness"))
    _, times["accounting"] = _timed(medallion.record_accounting, spark, warehouse=wh, run_id=run_id)
    t = time.perf_counter()
    gold.run(spark, warehouse=wh, time_zone=tz, run_id=run_id, gate=checks.publish if gates else None,
             max_default_as_of_dates=1)
    times["gold"] = time.perf_counter() - t
    if gates:
        _, times["gates_docs"] = _timed(checks.build_docs)
    return times


DUCKDB_SQL = """
with ami as (
  select meter_id, cast(interval_start as timestamptz) as ts, cast(interval_minutes as int) as im,
         try_cast(kwh as double) as kwh, quality
  from read_csv('{ami}', header=true, all_varchar=true)
  where meter_id is not null
), acc as (
  select account_id, meter_id, cast(start_date as date) sd, try_cast(end_date as date) ed
  from read_csv('{accounts}', header=true, all_varchar=true)
), loc as (
  select meter_id, timezone('{tz}', ts) as lt, im, kwh, quality from ami
), daily as (
  select meter_id, cast(lt as date) as local_date,
         sum(kwh) as kwh,
         sum(case when hour(lt) between 16 and 20 then kwh end) as kwh_on_peak,
         max(kwh * 60 / im) as peak_kw,
         count(*) filter (where quality = 'A') as intervals_actual,
         count(*) filter (where quality = 'E') as intervals_estimated,
         count(*) filter (where quality = 'M') as intervals_missing
  from loc group by all
)
select d.*, (select a.account_id from acc a where a.meter_id = d.meter_id and a.sd <= d.local_date
             and (a.ed is null or a.ed >= d.local_date) order by a.sd desc, a.account_id desc limit 1) as account_id
from daily d
"""


def duckdb_daily_usage(landing: str, tz: str) -> tuple[int, float]:
    import duckdb

    ami = sorted(str(p) for p in Path(landing, "ami").glob("ami_*part-*.csv.gz"))
    accounts = sorted(str(p) for p in Path(landing, "accounts").glob("accounts_*.csv*"))
    con = duckdb.connect()
    con.execute("set threads = 2")
    sql = DUCKDB_SQL.format(ami="', '".join(ami), accounts="', '".join(accounts), tz=tz).replace(
        "read_csv('", "read_csv(['"
    ).replace("', header", "'], header")
    t = time.perf_counter()
    n = con.execute(f"select count(*) from ({sql})").fetchone()[0]
    return int(n), time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--out", default="/tmp/ucx-bench-pipeline")
    ap.add_argument("--landing", help="use this landing zone instead of generating one")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--skip-gates-off", action="store_true")
    args = ap.parse_args(argv)

    out = Path(args.out)
    landing = args.landing or str(out / "landing")
    spark_cfg = SparkConfig(master=args.master, shuffle_partitions=8, driver_memory=args.driver_memory, log_level="ERROR")
    cfg = replace(Config(), spark=spark_cfg).with_paths(landing=landing)
    spark = build_spark(spark_cfg, warehouse=str(out / "wh"), time_zone=cfg.utility.time_zone)
    if not args.landing:
        from ucx_spark.generate import generate_utility

        _, gen_s = _timed(generate_utility, spark, landing, households=args.households, months=args.months,
                          interval_minutes=15, seed=5)
        print(f"generated {args.households} households x {args.months} months in {gen_s:.1f}s")
    manifest = json.loads(Path(landing, "_manifest.json").read_text())
    ami_rows = manifest["feeds"]["ami"]["landed_rows"]
    total_rows = sum(f["landed_rows"] for f in manifest["feeds"].values())
    print(f"landed rows: {total_rows:,} (AMI {ami_rows:,})")

    results = {}
    for gates in ([True] if args.skip_gates_off else [True, False]):
        wh = out / ("wh_gates" if gates else "wh_nogates")
        shutil.rmtree(wh, ignore_errors=True)
        run_cfg = cfg.with_paths(warehouse=str(wh))
        with PeakRss() as mem:
            times = run_pipeline(spark, run_cfg, gates=gates, run_id="bench")
        results[gates] = (times, mem.peak)
        to_silver = times["bronze"] + times["silver"]
        print(f"\ngates {'on' if gates else 'off'}: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
        print(f"  landing -> silver: {to_silver:.1f}s = {total_rows / to_silver:,.0f} rows/s (AMI {ami_rows / to_silver:,.0f}/s)")
        print(f"  silver -> gold:    {times['gold']:.1f}s = {ami_rows / times['gold']:,.0f} AMI rows/s")
        print(f"  total {sum(times.values()):.1f}s, peak RSS {mem.peak / 2**30:.2f} GiB")
    if True in results and False in results:
        on, off = sum(results[True][0].values()), sum(results[False][0].values())
        print(f"\ngates cost: {on - off:.1f}s = {(on - off) / off:.0%} of the ungated pipeline ({off:.1f}s)")

    n, duck_s = duckdb_daily_usage(landing, cfg.utility.time_zone)
    spark_daily = results[False][0]["gold"] if False in results else results[True][0]["gold"]
    print(f"\nDuckDB meter_daily_usage from the landing files: {n:,} meter-days in {duck_s:.1f}s")
    print(f"Spark landing -> gold (gates off) vs DuckDB daily usage alone: "
          f"{sum((results.get(False) or results[True])[0].values()):.1f}s vs {duck_s:.1f}s "
          f"(ratio {sum((results.get(False) or results[True])[0].values()) / duck_s:.1f}x); "
          f"Spark silver -> gold alone {spark_daily:.1f}s")
    spark.stop()


if __name__ == "__main__":
    main()
