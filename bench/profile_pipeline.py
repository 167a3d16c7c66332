"""Where the time of a pipeline run goes: per step and per Spark job, from Spark's own event log.

    .venv/bin/python bench/profile_pipeline.py --landing data/u300/landing --out /tmp/ucx-profile
    .venv/bin/python bench/profile_pipeline.py --landing L --out O --then L2   # then an incremental run

Runs the real medallion (``medallion.run``, gates on unless ``--gates off``)
into a fresh warehouse with ``spark.eventLog.enabled``, then parses the event
log: every Spark job carries the step it ran in (the local property
``ucx.step`` set by the medallion). Prints, per step: wall seconds, Spark jobs,
the seconds those jobs ran (wall, overlapping jobs counted once), tasks, rows
and bytes read, files read, shuffle bytes written, rows written, and the Delta
commits made (from the tables' ``_delta_log``); then the slowest jobs of each
step with their call site. ``--then DIR`` runs the pipeline a second time on
the same warehouse with a landing zone holding one more extract (an
incremental run) and profiles that run too.

The load average is printed before and after; a figure taken above 2.5 is
marked INVALID (another process was competing for the 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MAX_VALID_LOAD = 2.5


def wait_for_quiet(threshold: float = 1.0, timeout_s: float = 300.0) -> tuple[float, float, float]:
    """Wait (up to ``timeout_s``) for the 1-minute load average to fall below ``threshold`` so the
    figures are not another process's; returns the load averages at the start."""
    deadline = time.monotonic() + timeout_s
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()


@dataclass
class JobStats:
    job_id: int
    step: str
    name: str
    submitted: float
    completed: float = 0.0
    stages: list[int] = field(default_factory=list)
    execution_id: int | None = None
    op: str = ""  # the ``ucx.op`` tag of the code that started it (concurrency.job_tag)

    @property
    def seconds(self) -> float:
        return max(0.0, self.completed - self.submitted)


@dataclass
class StepStats:
    jobs: int = 0
    job_seconds: float = 0.0
    tasks: int = 0
    rows_read: int = 0
    bytes_read: int = 0
    files_read: int = 0
    shuffle_write: int = 0
    rows_written: int = 0
    executor_seconds: float = 0.0


def _plan_metrics(node: dict[str, Any], out: dict[int, str]) -> None:
    for m in node.get("metrics", []):
        out[int(m["accumulatorId"])] = str(m["name"])
    for child in node.get("children", []):
        _plan_metrics(child, out)


def parse_event_log(path: Path) -> tuple[dict[int, JobStats], dict[str, StepStats], dict[int, dict[str, float]]]:
    """Jobs, per-step totals and per-job metric totals from one event log file."""
    jobs: dict[int, JobStats] = {}
    stage_job: dict[int, int] = {}
    per_job: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    accum_names: dict[int, str] = {}
    exec_files: dict[int, int] = defaultdict(int)
    with path.open() as fh:
        for line in fh:
            ev = json.loads(line)
            kind = ev.get("Event", "")
            if kind == "SparkListenerJobStart":
                props = ev.get("Properties") or {}
                stage_infos = ev.get("Stage Infos") or []
                name = stage_infos[-1].get("Stage Name", "") if stage_infos else ""
                ex = props.get("spark.sql.execution.id")
                job = JobStats(
                    int(ev["Job ID"]), props.get("ucx.step") or "(outside steps)", name,
                    float(ev["Submission Time"]) / 1000, stages=list(ev.get("Stage IDs") or []),
                    execution_id=int(ex) if ex not in (None, "") else None, op=props.get("ucx.op") or "",
                )
                jobs[job.job_id] = job
                for s in job.stages:
                    stage_job[int(s)] = job.job_id
            elif kind == "SparkListenerJobEnd":
                if int(ev["Job ID"]) in jobs:
                    jobs[int(ev["Job ID"])].completed = float(ev["Completion Time"]) / 1000
            elif kind == "SparkListenerTaskEnd":
                job_id = stage_job.get(int(ev["Stage ID"]))
                if job_id is None:
                    continue
                m = ev.get("Task Metrics") or {}
                acc = per_job[job_id]
                acc["tasks"] += 1
                acc["executor_seconds"] += float(m.get("Executor Run Time", 0)) / 1000
                inp = m.get("Input Metrics") or {}
                acc["rows_read"] += int(inp.get("Records Read", 0))
                acc["bytes_read"] += int(inp.get("Bytes Read", 0))
                out = m.get("Output Metrics") or {}
                acc["rows_written"] += int(out.get("Records Written", 0))
                sw = m.get("Shuffle Write Metrics") or {}
                acc["shuffle_write"] += int(sw.get("Shuffle Bytes Written", 0))
            elif kind.endswith("SparkListenerSQLExecutionStart") or kind.endswith(
                "SparkListenerSQLAdaptiveExecutionUpdate"
            ):
                _plan_metrics(ev.get("sparkPlanInfo") or {}, accum_names)
            elif kind.endswith("SparkListenerDriverAccumUpdates"):
                ex = int(ev["executionId"])
                for acc_id, value in ev.get("accumUpdates") or []:
                    if accum_names.get(int(acc_id)) == "number of files read":
                        exec_files[ex] += int(value)
    steps: dict[str, StepStats] = defaultdict(StepStats)
    seen_exec: set[int] = set()
    by_step: dict[str, list[JobStats]] = defaultdict(list)
    for job in jobs.values():
        by_step[job.step].append(job)
        st = steps[job.step]
        st.jobs += 1
        acc = per_job.get(job.job_id, {})
        st.tasks += int(acc.get("tasks", 0))
        st.rows_read += int(acc.get("rows_read", 0))
        st.bytes_read += int(acc.get("bytes_read", 0))
        st.shuffle_write += int(acc.get("shuffle_write", 0))
        st.rows_written += int(acc.get("rows_written", 0))
        st.executor_seconds += float(acc.get("executor_seconds", 0.0))
        if job.execution_id is not None and job.execution_id not in seen_exec:
            seen_exec.add(job.execution_id)
            st.files_read += exec_files.get(job.execution_id, 0)
    for step, step_jobs in by_step.items():  # wall time covered by the step's jobs (overlaps once)
        spans = sorted((j.submitted, max(j.completed, j.submitted)) for j in step_jobs)
        total, cur_start, cur_end = 0.0, None, None
        for s, e in spans:
            if cur_end is None or s > cur_end:
                if cur_end is not None:
                    total += cur_end - cur_start  # type: ignore[operator]
                cur_start, cur_end = s, e
            else:
                cur_end = max(cur_end, e)
        if cur_end is not None:
            total += cur_end - cur_start  # type: ignore[operator]
        steps[step].job_seconds = total
    return jobs, dict(steps), {k: dict(v) for k, v in per_job.items()}


def delta_commits(warehouse: Path, spans: dict[str, tuple[float, float]]) -> dict[str, dict[str, int]]:
    """step -> {operation: commits} from every table's _delta_log, by commit timestamp."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for log_dir in warehouse.rglob("_delta_log"):
        for commit in log_dir.glob("*.json"):
            info: dict[str, Any] = {}
            with commit.open() as fh:
                for line in fh:
                    action = json.loads(line)
                    if "commitInfo" in action:
                        info = action["commitInfo"]
                        break
            ts = float(info.get("timestamp", 0)) / 1000
            for step, (start, end) in spans.items():
                if start <= ts <= end + 0.5:
                    out[step][str(info.get("operation", "?"))] += 1
                    break
    return {k: dict(v) for k, v in out.items()}


def _gb(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def report(
    title: str, timings: dict[str, float], spans: dict[str, tuple[float, float]], log_file: Path, warehouse: Path,
    *, top: int, rows_in: dict[str, int],
) -> str:
    jobs, steps, per_job = parse_event_log(log_file)
    commits = delta_commits(warehouse, spans)
    lines = [f"\n## {title}", "",
             "| step | wall s | Spark jobs | job s | tasks | rows in | rows read | MiB read | files read "
             "| shuffle MiB | rows written | Delta commits |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for step, wall in timings.items():
        if step == "gates_gold":
            continue
        st = steps.get(step, StepStats())
        c = commits.get(step, {})
        ctext = ", ".join(f"{op} {n}" for op, n in sorted(c.items())) or "0"
        lines.append(
            f"| {step} | {wall:.1f} | {st.jobs} | {st.job_seconds:.1f} | {st.tasks} | {rows_in.get(step, 0):,} "
            f"| {st.rows_read:,} | {st.bytes_read / 2**20:,.1f} | {st.files_read} | {st.shuffle_write / 2**20:,.1f} "
            f"| {st.rows_written:,} | {sum(c.values())} ({ctext}) |"
        )
    if "gates_gold" in timings:
        lines.append(f"\n(gold includes its publish gates: {timings['gates_gold']:.1f} s of validation)")
    outside = steps.get("(outside steps)")
    if outside:
        lines.append(f"Spark jobs outside the steps (session start, reads by the bench): {outside.jobs}, "
                     f"{outside.job_seconds:.1f} s")
    for step in timings:
        sites: dict[str, int] = defaultdict(int)
        for j in jobs.values():
            if j.step == step:
                sites[j.name[:100]] += 1
        if sites:
            lines.append(f"\nSpark jobs of {step} by call site (most first):")
            for name, n in sorted(sites.items(), key=lambda kv: -kv[1])[:top]:
                lines.append(f"  {n:>4}  {name}")
    for step in timings:
        ops: dict[str, list[JobStats]] = defaultdict(list)
        for j in jobs.values():
            if j.step == step and j.op:
                ops[j.op].append(j)
        if ops:
            lines.append(f"\nSpark jobs of {step} by operation (ucx.op tag; jobs, seconds of their spans):")
            for op, op_jobs in sorted(ops.items()):
                lines.append(f"  {len(op_jobs):>4} {sum(j.seconds for j in op_jobs):6.1f}s  {op}")
    for step in timings:
        step_jobs = sorted((j for j in jobs.values() if j.step == step), key=lambda j: -j.seconds)[:top]
        if not step_jobs:
            continue
        lines.append(f"\nslowest Spark jobs of {step}:")
        for j in step_jobs:
            m = per_job.get(j.job_id, {})
            lines.append(
                f"  job {j.job_id:>4} {j.seconds:6.1f}s tasks {int(m.get('tasks', 0)):>4} "
                f"read {int(m.get('rows_read', 0)):>11,} rows shuffle {_gb(m.get('shuffle_write', 0)):>11} "
                f"wrote {int(m.get('rows_written', 0)):>10,} rows  {j.name[:90]}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bench_generate import PeakRss

    from ucx_spark.config import load_config
    from ucx_spark.session import build_spark

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landing", required=True, help="landing zone of the first run")
    ap.add_argument("--then", help="landing zone of a second, incremental run on the same warehouse")
    ap.add_argument("--out", default="/tmp/ucx-profile")
    ap.add_argument("--gates", choices=("on", "off"), default="on")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--top", type=int, default=8, help="slowest jobs listed per step")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra Spark setting for this profile (repeatable), e.g. spark.sql.adaptive.enabled=false")
    ap.add_argument("--feed-threads", type=int, default=0,
                    help="feeds side by side (default: the config's; 1 gives exact per-operation job counts)")
    args = ap.parse_args(argv)

    from ucx_spark.pipelines import medallion

    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    events = out / "eventlog"
    events.mkdir(parents=True)
    wh = out / "wh"
    base = load_config(env="local")
    extra = dict(base.spark.extra)
    extra.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{events}",
                  "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"})
    extra.update(dict(kv.split("=", 1) for kv in args.conf))
    spark_cfg = replace(base.spark, master=args.master, driver_memory=args.driver_memory, log_level="ERROR",
                        metastore="none", extra=extra,
                        feed_threads=args.feed_threads or base.spark.feed_threads)
    cfg = replace(base, spark=spark_cfg).with_paths(landing=args.landing, warehouse=str(wh))
    load_before = wait_for_quiet()
    t0 = time.perf_counter()
    spark = build_spark(spark_cfg, warehouse=str(wh), time_zone=cfg.utility.time_zone)
    start_s = time.perf_counter() - t0
    runs: list[tuple[str, Any]] = []
    with PeakRss() as mem:
        result = medallion.run(spark, cfg=cfg, pseudonym_key=b"profile", run_id="profile-1", gates=args.gates == "on")
        runs.append((f"first run: {args.landing}", result))
        if args.then:
            cfg2 = cfg.with_paths(landing=args.then)
            result2 = medallion.run(spark, cfg=cfg2, pseudonym_key=b"profile", run_id="profile-2",
                                    gates=args.gates == "on")
            runs.append((f"incremental run: {args.then}", result2))
    spark.stop()
    load_after = os.getloadavg()
    log_files = sorted(p for p in events.iterdir() if p.is_file())
    if not log_files:
        raise SystemExit(f"no event log written in {events}")
    manifest_rows: dict[str, int] = {}
    manifest = Path(args.landing, "_manifest.json")
    if manifest.is_file():
        feeds = json.loads(manifest.read_text())["feeds"]
        manifest_rows = {"bronze": sum(int(f["landed_rows"]) for f in feeds.values())}
    valid = load_before[0] <= MAX_VALID_LOAD
    print(f"# pipeline profile (gates {args.gates}, master {args.master})")
    print(f"Spark session start {start_s:.1f} s; peak RSS (driver JVM + Python) {mem.peak / 2**30:.2f} GiB; "
          f"load average 1/5/15 min before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (the run's own 2 cores count in "
          f"'after')" + ("" if valid else f"  ** INVALID: load above {MAX_VALID_LOAD} before the run **"))
    for i, (title, res) in enumerate(runs):
        total = sum(v for k, v in res.timings.items() if k != "gates_gold")
        rows_in = dict(manifest_rows) if i == 0 else {}
        bronze = res.steps.get("bronze")
        if bronze is not None:
            rows_in["bronze"] = bronze.rows_landed
        silver = res.steps.get("silver")
        if silver is not None:
            rows_in["silver"] = sum(f.rows for f in silver.feeds)
        print(report(f"{title} (total {total:.1f} s)", res.timings, res.spans, log_files[0], wh,
                     top=args.top, rows_in=rows_in))


if __name__ == "__main__":
    main()
