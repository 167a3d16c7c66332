"""Benchmark of the synthetic-utility generator: rows/s and peak memory (driver + JVM).

    .venv/bin/python bench/bench_generate.py --households 10000 --months 3 --interval-minutes 15 --out /tmp/ucx-bench

Memory is the peak RSS of this process plus its children (the Spark JVM and its
Python workers), sampled every 0.25 s, because the JVM is where AMI lives.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ucx_spark.config import SparkConfig
from ucx_spark.generate import generate_utility
from ucx_spark.session import build_spark


class PeakRss:
    """Samples RSS of a process tree in a daemon thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--interval-minutes", type=int, default=15)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "ucx-bench-landing"))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--time-zone", default="America/Chicago")
    args = ap.parse_args(argv)

    warehouse = tempfile.mkdtemp(prefix="ucx-bench-wh-")
    cfg = SparkConfig(master=args.master, shuffle_partitions=4, driver_memory=args.driver_memory, log_level="ERROR")
    t0 = time.perf_counter()
    spark = build_spark(cfg, warehouse=warehouse, time_zone=args.time_zone)
    startup = time.perf_counter() - t0
    with PeakRss() as mem:
        t1 = time.perf_counter()
        manifest = generate_utility(
            spark, args.out, households=args.households, months=args.months,
            interval_minutes=args.interval_minutes, seed=args.seed, time_zone=args.time_zone,
        )
        elapsed = time.perf_counter() - t1
    spark.stop()
    ami_rows = manifest["feeds"]["ami"]["landed_rows"]
    all_rows = sum(f["landed_rows"] for f in manifest["feeds"].values())
    ami_bytes = sum(p.stat().st_size for p in (Path(args.out) / "ami").iterdir())
    result = {
        "households": args.households, "months": args.months, "interval_minutes": args.interval_minutes, "master": args.master,
        "session_startup_s": round(startup, 1), "generate_s": round(elapsed, 1),
        "ami_rows": ami_rows, "all_rows": all_rows,
        "ami_rows_per_s": round(ami_rows / elapsed), "all_rows_per_s": round(all_rows / elapsed),
        "ami_gz_mb": round(ami_bytes / 2**20, 1),
        "peak_rss_mb_driver_plus_children": round(mem.peak / 2**20),
        "load_average_1m": round(psutil.getloadavg()[0], 1),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
