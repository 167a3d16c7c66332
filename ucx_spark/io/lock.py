"""One writer per warehouse: an exclusive lock a pipeline run holds from start to end.

Two `ucx pipeline` runs on the same warehouse (two schedulers, an operator and
a cron job) would both list the same new landing files; Delta's idempotent
appends keep bronze exact, but the runs' silver MERGEs, quarantine writes and
`gold/pipeline_runs` rows would interleave. The second run therefore stops at
once, before it reads or writes anything, with a message naming the run that
holds the warehouse.

The lock is ``fcntl.flock`` on ``<warehouse>/_locks/pipeline.lock``: the
kernel releases it when the holder exits, however it exits (a SIGKILLed run
leaves no stale lock), and the file records who holds it (run id, pid, host,
start time, command) for the message. It works for a warehouse on a local or
NFSv4 file system shared by the machines that run the pipeline; for object
storage (``s3a://``, ``abfss://``, ``hdfs://``) there is no such lock, and the
scheduler must run one pipeline per warehouse (the run says so once).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ucx_spark.errors import UcxError
from ucx_spark.progress import say

LOCK_DIR = "_locks"
_held: dict[str, int] = {}  # lock path -> depth, for this process (re-entrant)
_warned: set[str] = set()
_guard = threading.Lock()


class WarehouseBusyError(UcxError):
    """Another run holds the warehouse."""


def _local_path(warehouse: str) -> Path | None:
    if "://" in warehouse and not warehouse.startswith("file://"):
        return None
    return Path(warehouse.removeprefix("file://"))


def lock_path(warehouse: str, job: str = "pipeline") -> Path | None:
    root = _local_path(warehouse)
    return None if root is None else root / LOCK_DIR / f"{job}.lock"


def holder(path: Path) -> dict[str, object]:
    """What the lock file says about its holder ({} when unreadable)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8") or "{}"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def warehouse_lock(warehouse: str, *, run_id: str, job: str = "pipeline") -> Iterator[None]:
    """Hold ``job``'s exclusive lock on ``warehouse`` for the block; raise WarehouseBusyError at
    once when another process holds it. Re-entrant within a process (the CLI takes it before
    the Spark session starts, ``medallion.run`` again inside)."""
    path = lock_path(warehouse, job)
    if path is None:
        if warehouse not in _warned:
            _warned.add(warehouse)
            say(f"{job}: no warehouse lock on {warehouse} (object storage): run one {job} per warehouse")
        yield
        return
    key = str(path.resolve())
    with _guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(path)
            for _ in range(20):  # the holder writes who it is just after it takes the lock
                if who:
                    break
                time.sleep(0.05)
                who = holder(path)
            detail = ", ".join(f"{k} {who[k]}" for k in ("run_id", "pid", "host", "started_at") if k in who)
            raise WarehouseBusyError(
                f"warehouse {warehouse} is busy: another `ucx {job}` holds {path} ({detail or 'holder unknown'}); "
                "wait for it to finish (this run read and wrote nothing)"
            ) from None
        info = {
            "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                del _held[key]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
