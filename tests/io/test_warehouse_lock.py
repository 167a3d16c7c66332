"""One pipeline per warehouse: a second run stops at once, naming the running one (issue 13).

Real processes hold and contend for the lock (flock is per open file, so a
thread of this process would not show what a second scheduler sees).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ucx_spark.io.lock import WarehouseBusyError, holder, lock_path, warehouse_lock

HOLD = """
import sys, time
from ucx_spark.io.lock import warehouse_lock
with warehouse_lock(sys.argv[1], run_id=sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""

RACE = """
import sys, time
from ucx_spark.io.lock import WarehouseBusyError, warehouse_lock
start = float(sys.argv[3])
while time.time() < start:
    pass
try:
    with warehouse_lock(sys.argv[1], run_id=sys.argv[2]):
        time.sleep(1.0)
    print("ran")
except WarehouseBusyError as exc:
    print("busy", exc)
"""


def _holder(warehouse: Path, run_id: str, seconds: float = 300) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), run_id, str(seconds)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_stops_at_once_naming_the_first_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    first = _holder(wh, "run-A")
    try:
        t = time.monotonic()
        with pytest.raises(WarehouseBusyError) as err, warehouse_lock(str(wh), run_id="run-B"):
            pass
        assert time.monotonic() - t < 1.0
        assert "run_id run-A" in str(err.value) and f"pid {first.pid}" in str(err.value)
        assert holder(lock_path(str(wh)))["run_id"] == "run-A"  # the refused run did not overwrite it
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no clean release
        first.wait()
    with warehouse_lock(str(wh), run_id="run-C"):  # the kernel released it
        assert holder(lock_path(str(wh)))["run_id"] == "run-C"
        with warehouse_lock(str(wh), run_id="run-C"):  # re-entrant in one process (CLI, then medallion.run)
            pass
    assert holder(lock_path(str(wh))) == {}


def test_two_processes_started_together_exactly_one_runs_five_times(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    for round_ in range(5):
        start = time.time() + 1.5  # both processes spin until the same instant
        procs = [
            subprocess.Popen([sys.executable, "-c", RACE, str(wh), f"r{round_}-{i}", str(start)],
                             stdout=subprocess.PIPE, text=True)
            for i in range(2)
        ]
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert sorted(o.split()[0] for o in outs) == ["busy", "ran"], outs
        loser = next(o for o in outs if o.startswith("busy"))
        winner = next(i for i, o in enumerate(outs) if o == "ran")
        assert f"run_id r{round_}-{winner}" in loser


def test_ucx_pipeline_on_a_busy_warehouse_exits_75_before_spark_starts(tmp_path: Path) -> None:
    wh, landing = tmp_path / "wh", tmp_path / "landing"
    landing.mkdir()
    first = _holder(wh, "nightly-0401")
    try:
        env = {**os.environ, "UCX_PSEUDONYM_KEY": "lock-test-key"}
        t = time.monotonic()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "ucx"), "pipeline", "--landing", str(landing), "--warehouse", str(wh)],
            capture_output=True, text=True, env=env, timeout=120,
        )
        elapsed = time.monotonic() - t
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert done.returncode == 75, done.stderr
    assert "busy" in done.stderr and "nightly-0401" in done.stderr
    assert "starting Spark" not in done.stdout + done.stderr and elapsed < 30
    assert sorted(p.name for p in wh.iterdir()) == ["_locks"]  # nothing read, nothing written


@pytest.mark.parametrize("job", ["bronze", "silver", "gold", "pipeline"])
def test_a_spark_submit_job_on_a_busy_warehouse_exits_75_before_spark_starts(tmp_path: Path, job: str) -> None:
    """jobs/*.py take the same lock as ``ucx`` and exit with the same code (a step job beside a
    running pipeline would interleave its writes with the pipeline's)."""
    wh, landing = tmp_path / "wh", tmp_path / "landing"
    landing.mkdir()
    first = _holder(wh, "nightly-0402")
    repo = Path(__file__).resolve().parents[2]
    try:
        env = {**os.environ, "UCX_PSEUDONYM_KEY": "lock-test-key"}
        t = time.monotonic()
        landing_args = ["--landing", str(landing)] if job in ("bronze", "pipeline") else []
        done = subprocess.run([sys.executable, str(repo / "jobs" / f"{job}.py"), *landing_args, "--warehouse", str(wh)],
                              capture_output=True, text=True, env=env, timeout=120)
        elapsed = time.monotonic() - t
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert done.returncode == 75, done.stderr
    assert f"{job}: busy" in done.stderr and "nightly-0402" in done.stderr
    assert "master=" not in done.stdout and elapsed < 30  # no session was started
    assert sorted(p.name for p in wh.iterdir()) == ["_locks"]


def test_medallion_run_takes_the_lock_too(spark, tmp_path: Path) -> None:
    """spark-submit jobs/pipeline.py and the demo call medallion.run directly."""
    from ucx_spark.config import load_config
    from ucx_spark.pipelines import medallion

    wh, landing = tmp_path / "wh", tmp_path / "landing"
    landing.mkdir()
    cfg = load_config(env="local").with_paths(landing=str(landing), warehouse=str(wh))
    first = _holder(wh, "scheduler-1")
    try:
        with pytest.raises(WarehouseBusyError, match="scheduler-1"):
            medallion.run(spark, cfg=cfg, pseudonym_key=b"k", run_id="second")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert sorted(p.name for p in wh.iterdir()) == ["_locks"]


def test_maintain_takes_the_lock_and_touches_nothing_while_a_pipeline_holds_it(spark, tmp_path: Path) -> None:
    """A VACUUM beside a running pipeline could delete the files it is about to commit: `ucx
    maintain` waits its turn like any run (exit 75 from the CLI, which calls this)."""
    from ucx_spark.pipelines import maintain

    wh = tmp_path / "wh"
    spark.range(3).write.format("delta").save(str(wh / "gold" / "t"))
    spark.range(3, 6).write.format("delta").mode("append").save(str(wh / "gold" / "t"))  # two small files
    log_before = sorted(p.name for p in (wh / "gold" / "t" / "_delta_log").iterdir())
    first = _holder(wh, "nightly-0403")
    try:
        with pytest.raises(WarehouseBusyError, match="nightly-0403"):
            maintain.run(spark, warehouse=str(wh), vacuum_hours=None)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert sorted(p.name for p in (wh / "gold" / "t" / "_delta_log").iterdir()) == log_before  # no OPTIMIZE
    result = maintain.run(spark, warehouse=str(wh), vacuum_hours=None)  # free again: it runs
    assert len(result.tables) == 1
