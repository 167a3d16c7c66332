"""BI load over JDBC/Thrift: N concurrent clients running BI queries against `ucx serve-sql`.

    .venv/bin/python bench/bench_jdbc_load.py --warehouse data/w1000 [--clients 20] [--seconds 60]

Starts the Spark Thrift Server over the warehouse (``serve.ThriftServer``, local[2],
loopback, no auth), then runs ``--clients`` HiveServer2 clients in threads (PyHive over
Thrift, SASL PLAIN in pure Python: the same protocol as the Hive JDBC driver and BI
tools) for ``--seconds``, each cycling through the BI queries below on the gold
tables that exist. Prints, per query and overall: queries run, errors, p50 / p95 /
max latency, and queries per second; and the load average before and after. Run it
alone (one Spark JVM on the machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ucx_spark.catalog import CX_KPIS, HOUSEHOLD_SCORES, METER_DAILY_USAGE  # noqa: E402
from ucx_spark.cluster import free_port  # noqa: E402
from ucx_spark.serve import ThriftServer  # noqa: E402

QUERIES = {
    "kpi_latest": (CX_KPIS, f"SELECT kpi, value, n FROM gold.{CX_KPIS} WHERE segment_type = 'all' "
                            f"AND month = (SELECT max(month) FROM gold.{CX_KPIS}) ORDER BY kpi"),
    "kpi_trend": (CX_KPIS, f"SELECT month, kpi, value FROM gold.{CX_KPIS} WHERE segment_type = 'all' "
                           "ORDER BY month, kpi"),
    "kpi_by_segment": (CX_KPIS, "SELECT segment_type, segment_value, avg(value) AS v, sum(n) AS n "
                                f"FROM gold.{CX_KPIS} WHERE kpi = 'csat_top2box' "
                                "GROUP BY segment_type, segment_value ORDER BY n DESC LIMIT 20"),
    "usage_by_day": (METER_DAILY_USAGE, "SELECT local_date, sum(kwh) AS kwh, count(*) AS meters "
                                        f"FROM gold.{METER_DAILY_USAGE} "
                                        "GROUP BY local_date ORDER BY local_date DESC LIMIT 31"),
    "scores_by_model": (HOUSEHOLD_SCORES, "SELECT model_name, count(*) AS n, avg(score) AS mean "
                                          f"FROM gold.{HOUSEHOLD_SCORES} GROUP BY model_name"),
}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args(argv)
    from pyhive import hive

    wh = Path(args.warehouse).resolve()
    queries = {k: sql for k, (table, sql) in QUERIES.items() if (wh / "gold" / table / "_delta_log").is_dir()}
    if not queries:
        print(f"no gold table to query under {wh}", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    port = free_port()
    with ThriftServer(wh, port=port, master="local[2]", driver_memory=args.driver_memory,
                      conf={"spark.sql.shuffle.partitions": "4"}) as server:
        results: dict[str, list[float]] = {k: [] for k in queries}
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds
        names = list(queries)

        def client(i: int) -> None:
            try:
                conn = hive.connect(host="127.0.0.1", port=server.port, username=f"bi{i}", database="gold")
            except Exception as exc:  # noqa: BLE001 - a failed connection is a finding
                with lock:
                    errors.append(f"connect {i}: {type(exc).__name__}: {exc}")
                return
            cursor = conn.cursor()
            k = i
            while time.monotonic() < stop:
                name = names[k % len(names)]
                k += 1
                started = time.perf_counter()
                try:
                    cursor.execute(queries[name])
                    cursor.fetchall()
                    with lock:
                        results[name].append(time.perf_counter() - started)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    every = [v for vs in results.values() for v in vs]
    print(f"{args.clients} clients x {args.seconds:.0f} s against {wh} (Thrift server local[2]): "
          f"{len(every)} queries in {wall:.1f} s = {len(every) / wall:.1f} queries/s, {len(errors)} errors")
    print(f"{'query':<18} {'n':>6} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for name, vs in results.items():
        print(f"{name:<18} {len(vs):>6} {_pct(vs, .5):>8.3f} {_pct(vs, .95):>8.3f} {max(vs, default=float('nan')):>8.3f}")
    print(f"{'all':<18} {len(every):>6} {_pct(every, .5):>8.3f} {_pct(every, .95):>8.3f} "
          f"{max(every, default=float('nan')):>8.3f}  (mean {statistics.fmean(every) if every else float('nan'):.3f})")
    for e in errors[:10]:
        print("error:", e)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
