"""Scale benchmark: the pipeline on local[2] vs a 2-worker standalone cluster.

For each size (default 1,000, 10,000 and 50,000 households x 1 month of 15-minute
reads) it generates a landing zone (``ucx generate``), then runs ``jobs/pipeline.py``
with ``spark-submit`` once on ``local[2]`` and once on a local standalone cluster
(one Master, two Workers with one core each, started here and always stopped),
and prints, per run: wall time of the spark-submit, the pipeline's own time
(session start excluded), landed rows and rows/s, and the peak resident memory
(psutil) of the driver (JVM + Python) and of the executors (JVMs + their Python
workers; on local[2] the executors are the driver).

    .venv/bin/python bench/bench_scale.py --households 1000          # quick mode
    .venv/bin/python bench/bench_scale.py                             # 1k, 10k, 50k
    .venv/bin/python bench/bench_scale.py --modes local --households 1000 10000

Results go to bench/out/scale-<timestamp>.json as well.  Cost should grow
linearly with rows: compare the "s per M rows" column across sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ucx_spark.cluster import (  # noqa: E402
    StandaloneCluster,
    package_zip,
    spark_env,
    spark_submit_command,
    stop_process,
    tail,
)
from ucx_spark.session import DELTA_MAVEN, delta_jars  # noqa: E402


@dataclass
class RunResult:
    households: int
    mode: str
    landed_rows: int
    ami_rows: int
    wall_seconds: float
    pipeline_seconds: float | None
    rows_per_second: float
    driver_peak_mb: float
    executors_peak_mb: float
    returncode: int
    log: str


class PeakSampler:
    """Samples RSS of the driver's process tree and of executor processes every ``interval`` s."""

    def __init__(self, driver_pid: int, cluster: StandaloneCluster | None, interval: float = 0.5) -> None:
        self.driver_pid = driver_pid
        self.cluster = cluster
        self.interval = interval
        self.driver_peak = 0
        self.executors_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss(root: psutil.Process) -> int:
        total = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _executors_rss(self) -> int:
        if self.cluster is None:
            return 0
        total = 0
        for proc in self.cluster.procs:  # Workers: their children are executor JVMs (+ Python workers)
            try:
                for child in psutil.Process(proc.pid).children(recursive=False):
                    if "CoarseGrainedExecutorBackend" in " ".join(child.cmdline()):
                        total += self._tree_rss(child)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                self.driver_peak = max(self.driver_peak, self._tree_rss(psutil.Process(self.driver_pid)))
            self.executors_peak = max(self.executors_peak, self._executors_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def generate(landing: Path, households: int, months: int, interval_minutes: int, work: Path) -> dict:
    manifest = landing / "_manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8"))
    cmd = [sys.executable, "-m", "ucx_spark.cli", "generate", "--out", str(landing),
           "--households", str(households), "--months", str(months), "--interval-minutes", str(interval_minutes)]
    log = work / f"generate-{households}.log"
    with open(log, "wb") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=work, env=spark_env())
    if rc != 0:
        raise SystemExit(f"generate failed ({rc}); see {log}:\n{tail(log)}")
    return json.loads(manifest.read_text(encoding="utf-8"))


def run_pipeline(*, mode: str, master: str, landing: Path, warehouse: Path, work: Path, pyfiles: Path,
                 cluster: StandaloneCluster | None, households: int, manifest: dict, args: argparse.Namespace
                 ) -> RunResult:
    if warehouse.exists():
        shutil.rmtree(warehouse)
    jars = delta_jars(str(REPO / ".jars" / "delta"))
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
    }
    if not jars:
        conf["spark.jars.packages"] = DELTA_MAVEN
    cmd = spark_submit_command(
        REPO / "jobs" / "pipeline.py",
        ["--env", "test", "--landing", str(landing), "--warehouse", str(warehouse), "--run-id", f"bench-{mode}"],
        master=master, py_files=[pyfiles] if cluster else [], jars=jars, conf=conf,
        driver_memory=args.driver_memory,
        executor_memory=args.worker_memory if cluster else None,
        total_executor_cores=2 if cluster else None,
    )
    log = work / f"pipeline-{households}-{mode}.log"
    env = spark_env({"UCX_PSEUDONYM_KEY": os.environ.get("UCX_PSEUDONYM_KEY", "bench-pseudonym-key")})
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env,
                                start_new_session=True)
        try:
            with PeakSampler(proc.pid, cluster) as sampler:
                proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"  timed out after {args.timeout}s; see {log}", file=sys.stderr)
        finally:
            stop_process(proc, grace_seconds=10)
    wall = time.perf_counter() - started
    match = re.search(r"\[pipeline\] done in ([0-9.]+)s", log.read_text(encoding="utf-8", errors="replace"))
    pipeline_s = float(match.group(1)) if match else None
    feeds = manifest.get("feeds", {})
    landed = sum(int(f.get("landed_rows", 0)) for f in feeds.values())
    ami = int(feeds.get("ami", {}).get("landed_rows", 0))
    if proc.returncode != 0:
        print(f"  {mode} failed ({proc.returncode}); last lines of {log}:\n{tail(log, 30)}", file=sys.stderr)
    secs = pipeline_s or wall
    executors_peak = sampler.executors_peak if cluster is not None else sampler.driver_peak
    return RunResult(households, mode, landed, ami, wall, pipeline_s, landed / secs if secs else 0.0,
                     sampler.driver_peak / 2**20, executors_peak / 2**20, int(proc.returncode or 0), str(log))


def print_table(results: list[RunResult]) -> None:
    head = (f"{'households':>10} {'mode':<8} {'landed rows':>12} {'wall s':>8} {'pipeline s':>10} "
            f"{'rows/s':>10} {'s per M rows':>12} {'driver MB':>10} {'executors MB':>12} {'ok':>3}")
    print(head)
    print("-" * len(head))
    for r in results:
        secs = r.pipeline_seconds or r.wall_seconds
        per_m = secs / (r.landed_rows / 1e6) if r.landed_rows else float("nan")
        pipe = f"{r.pipeline_seconds:.1f}" if r.pipeline_seconds is not None else "-"
        print(f"{r.households:>10,} {r.mode:<8} {r.landed_rows:>12,} {r.wall_seconds:>8.1f} {pipe:>10} "
              f"{r.rows_per_second:>10,.0f} {per_m:>12.1f} {r.driver_peak_mb:>10,.0f} {r.executors_peak_mb:>12,.0f} "
              f"{'yes' if r.returncode == 0 else 'NO':>3}")
    print("local[2]: executors are threads of the driver JVM, so 'executors MB' repeats the driver's peak.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--households", type=int, nargs="+", default=[1000, 10000, 50000])
    p.add_argument("--months", type=int, default=1)
    p.add_argument("--interval-minutes", type=int, default=15)
    p.add_argument("--modes", default="local,cluster", help="comma list of local, cluster")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--worker-memory", default="6g", help="memory of each Worker (= executor memory)")
    p.add_argument("--shuffle-partitions", type=int, default=8)
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per pipeline run")
    p.add_argument("--keep", action="store_true", help="keep landing zones and warehouses")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - {"local", "cluster"}:
        p.error("--modes takes local and/or cluster")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = (args.out / f"scale-{stamp}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    pyfiles = package_zip(work / "ucx_spark.zip")
    results: list[RunResult] = []
    cluster: StandaloneCluster | None = None
    try:
        if "cluster" in modes:
            print("starting a standalone Master + 2 Workers on 127.0.0.1 ...", flush=True)
            cluster = StandaloneCluster(work / "cluster", workers=2, cores=1, memory=args.worker_memory,
                                        start_timeout=300)
            cluster.start()
            print(f"  {cluster.master_url}", flush=True)
        for n in args.households:
            landing = work / f"landing-{n}"
            print(f"generating {n:,} households x {args.months} month(s), {args.interval_minutes}-minute reads ...",
                  flush=True)
            manifest = generate(landing, n, args.months, args.interval_minutes, work)
            for mode in modes:
                master = cluster.master_url if mode == "cluster" and cluster else "local[2]"
                print(f"  pipeline on {master} ...", flush=True)
                r = run_pipeline(mode=mode, master=master, landing=landing, warehouse=work / f"wh-{n}-{mode}",
                                 work=work, pyfiles=pyfiles, cluster=cluster if mode == "cluster" else None,
                                 households=n, manifest=manifest, args=args)
                results.append(r)
                print(f"    {r.wall_seconds:.1f}s wall, rc={r.returncode}", flush=True)
                if not args.keep:
                    shutil.rmtree(work / f"wh-{n}-{mode}", ignore_errors=True)
            if not args.keep:
                shutil.rmtree(landing, ignore_errors=True)
    finally:
        if cluster is not None:
            cluster.stop()
    print()
    print_table(results)
    out = work / "results.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    print(f"\nresults: {out}")
    return 0 if all(r.returncode == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
