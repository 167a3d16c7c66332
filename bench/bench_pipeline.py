"""Benchmark of the medallion: rows/s landing -> silver and silver -> gold, gates on and off,
and DuckDB computing the same meter_daily_usage from the same files.

    .venv/bin/python bench/bench_pipeline.py --households 10000 --months 1 --out /tmp/ucx-bench-pipe

Generates a utility (15-minute AMI) unless --landing points at an existing one,
then runs the real pipeline (``medallion.run``, as ``ucx pipeline`` does) twice
into fresh warehouses: once with the Great Expectations gates, once without;
prints per-step seconds (``MedallionResult.timings``), rows/s and the gates'
share of the pipeline time, then the DuckDB time for meter_daily_usage over the
same AMI and accounts files (one local SQL query, 2 threads) and the
Spark/DuckDB ratio. Peak memory is the RSS of this process tree (driver JVM).

``--gates on`` / ``--gates off`` run one side only and save its timings in
OUT/timings_gates_<side>.json; ``--compare-saved`` then prints the comparison
and times DuckDB (for a busy machine where one run at a time is all that fits).
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

from ucx_spark.catalog import METER_DAILY_USAGE  # noqa: E402
from ucx_spark.config import Config, SparkConfig, load_config  # noqa: E402
from ucx_spark.session import build_spark  # noqa: E402


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def run_pipeline(spark, cfg: Config, *, gates: bool, run_id: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The real medallion (``medallion.run``, as ``ucx pipeline`` runs it); its per-step seconds."""
    from ucx_spark.pipelines import medallion

    result = medallion.run(spark, cfg=cfg, pseudonym_key=b"bench", run_id=run_id, gates=gates)
    return dict(result.timings)


DUCKDB_SQL = """
with ami as (
  select meter_id, try_cast(interval_start as timestamptz) as ts, try_cast(interval_minutes as int) as im,
         try_cast(kwh as double) as kwh, quality
  from read_csv('{ami}', header=true, all_varchar=true, delim=',', quote='"', union_by_name=true, ignore_errors=true)
  where meter_id is not null
), acc as (
  -- the generator plants defects such as start_date 2024-02-30: rows that do not parse are
  -- dropped, as the pipeline quarantines them
  select account_id, meter_id, try_cast(start_date as date) sd, try_cast(end_date as date) ed
  from read_csv('{accounts}', header=true, all_varchar=true, delim=',', quote='"', union_by_name=true, ignore_errors=true)
  where try_cast(start_date as date) is not null
), loc as (
  select meter_id, timezone('{tz}', ts) as lt, im, kwh, quality from ami where ts is not null and im > 0
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
    ap.add_argument("--gates", choices=("both", "on", "off"), default="both",
                    help="run only the gated or ungated pipeline (e.g. two processes side by side on a busy "
                         "machine); each run saves its timings in OUT/timings_gates_<on|off>.json")
    ap.add_argument("--compare-saved", action="store_true",
                    help="run nothing: compare the saved timings of both runs, then time DuckDB")
    args = ap.parse_args(argv)

    out = Path(args.out)
    landing = args.landing or str(out / "landing")
    # the local profile's extra Spark settings (e.g. Delta snapshot partitions), no metastore
    spark_cfg = SparkConfig(master=args.master, shuffle_partitions=8, driver_memory=args.driver_memory, log_level="ERROR",
                            extra=dict(load_config(env="local").spark.extra))
    # conf/base.yaml and UCX_* variables (e.g. UCX_QUALITY__SPARK_ROW_RULES_MIN_ROWS), the bench's own Spark settings
    cfg = replace(load_config(env="test"), spark=spark_cfg).with_paths(landing=landing)
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

    results: dict[bool, tuple[dict[str, float], int]] = {}
    todo = {"both": [True, False], "on": [True], "off": [False]}[args.gates]
    if args.skip_gates_off:
        todo = [True]
    for gates in ([] if args.compare_saved else todo):
        wh = out / ("wh_gates" if gates else "wh_nogates")
        shutil.rmtree(wh, ignore_errors=True)
        run_cfg = cfg.with_paths(warehouse=str(wh))
        load_before = os.getloadavg()[0]
        with PeakRss() as mem:
            times = run_pipeline(spark, run_cfg, gates=gates, run_id="bench")
        results[gates] = (times, mem.peak)
        saved = {"timings": times, "peak_rss": mem.peak, "load_before": load_before, "load_after": os.getloadavg()[0]}
        (out / f"timings_gates_{'on' if gates else 'off'}.json").write_text(json.dumps(saved, indent=2))
        steps = {k: v for k, v in times.items() if k != "gates_gold"}  # gates_gold is inside gold
        total = sum(steps.values())
        to_silver = times["bronze"] + times["silver"]
        print(f"\ngates {'on' if gates else 'off'}: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
        if gates:
            print("  (gates_gold = gold publish time outside the writes: validation plus building the cached candidate;"
                  " it is part of gold)")
        print(f"  landing -> silver (bronze + silver steps): {to_silver:.1f}s = {total_rows / to_silver:,.0f} rows/s "
              f"(AMI {ami_rows / to_silver:,.0f}/s)")
        if gates:
            gated = to_silver + times["gates_bronze"] + times["gates_silver"]
            print(f"  landing -> silver with its gates: {gated:.1f}s = {total_rows / gated:,.0f} rows/s")
        print(f"  silver -> gold (gold step): {times['gold']:.1f}s = {ami_rows / times['gold']:,.0f} AMI rows/s")
        print(f"  total {total:.1f}s, peak RSS {mem.peak / 2**30:.2f} GiB (driver + JVM + workers), "
              f"load average 1 min {load_before:.1f} before / {os.getloadavg()[0]:.1f} after")
    if args.gates != "both" and not args.compare_saved:
        print("\n(one side only: compare with --compare-saved once both sides have run; DuckDB is timed there)")
        spark.stop()
        return
    if args.compare_saved:
        for gates in (True, False):
            saved_path = out / f"timings_gates_{'on' if gates else 'off'}.json"
            if gates not in results and saved_path.is_file():
                saved = json.loads(saved_path.read_text())
                results[gates] = (saved["timings"], saved["peak_rss"])
                print(f"\ngates {'on' if gates else 'off'} (saved by a separate run, load average "
                      f"{saved['load_before']:.1f} before / {saved['load_after']:.1f} after): "
                      + ", ".join(f"{k} {v:.1f}s" for k, v in saved["timings"].items()))
    if not results:
        raise SystemExit("no timings: run the pipeline first")
    if True in results and False in results:
        on = sum(v for k, v in results[True][0].items() if k != "gates_gold")
        off = sum(v for k, v in results[False][0].items() if k != "gates_gold")
        gate_steps = sum(results[True][0].get(k, 0.0) for k in ("gates_bronze", "gates_silver", "gates_docs"))
        print(f"\npipeline gates on {on:.1f}s, off {off:.1f}s: gates cost {on - off:.1f}s = "
              f"{(on - off) / off:.0%} of the ungated pipeline, {(on - off) / on:.0%} of the gated one "
              f"(bronze/silver gate steps and Data Docs alone: {gate_steps:.1f}s = {gate_steps / on:.0%})")

    n, duck_s = duckdb_daily_usage(landing, cfg.utility.time_zone)
    ref = results.get(False) or results[True]
    ref_total = sum(v for k, v in ref[0].items() if k != "gates_gold")
    spark_gold = ref[0]["gold"]
    gold_wh = out / ("wh_nogates" if False in results else "wh_gates")
    spark_n = spark.read.format("delta").load(str(gold_wh / "gold" / METER_DAILY_USAGE)).count()
    print(f"\nDuckDB meter_daily_usage from the landing files: {n:,} meter-days in {duck_s:.1f}s "
          f"(Spark gold/meter_daily_usage: {spark_n:,} meter-days; DuckDB does no quarantine or superseding)")
    print(f"Spark landing -> gold ({'gates off' if False in results else 'gates on'}) vs DuckDB daily usage alone: "
          f"{ref_total:.1f}s vs {duck_s:.1f}s (ratio {ref_total / duck_s:.1f}x); "
          f"Spark silver -> gold alone {spark_gold:.1f}s (ratio {spark_gold / duck_s:.1f}x)")
    print(f"peak RSS over the runs: {max(m for _, m in results.values()) / 2**30:.2f} GiB")
    spark.stop()


if __name__ == "__main__":
    main()
