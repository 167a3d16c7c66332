"""Event-to-score latency of `ucx stream` (issue 20), measured from the tables themselves.

    .venv/bin/python bench/bench_stream.py --warehouse DIR [--rate 1] [--minutes 10] [--trigger 15]
                                           [--ramp 2,4,8 --ramp-minutes 3]

The warehouse must be built, trained and scored (`ucx pipeline`, `ucx train`, `ucx score`). The
stream runs as `jobs/stream.py` in its own process (the one Spark JVM: this script starts none),
reading from a new checkpoint from the moment it starts (``--since``). This script is the source
system: it commits one new contact per event to silver/contacts with delta-rs (one Delta commit
each, as the silver step makes them; each event a different household), at ``--rate`` events per
second, and polls gold/household_scores with delta-rs once a second.

Per event: commit -> scored = ``scored_at - event_committed_at`` of the household's new row (the
stream stamps both); commit -> visible = the first poll that saw the row minus the commit (what a
reader of gold waits, to within the poll's second). Printed: cold start (process start to the first
event's score being visible), then per rate: events, p50/p95/max of both, events never scored; the
highest rate of the ramp whose visible p95 stays under 120 s; load average before and after.
The silver rows it adds are marked ``_run_id = 'bench_stream'`` (delete them after if the
warehouse matters: ``DELETE FROM delta.`<wh>/silver/contacts` WHERE _run_id = 'bench_stream'``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ucx_spark.catalog import HOUSEHOLD_SCORES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] if s else float("nan")


class Poller(threading.Thread):
    """Reads gold/household_scores once a second; the first time a household's row carries an
    ``event_committed_at`` we are waiting for, records when it was seen."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.waiting: dict[str, datetime] = {}  # household -> its event's commit time
        self.seen: dict[str, tuple[float, float]] = {}  # household -> (seen - commit, scored_at - commit) seconds
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.table: DeltaTable
        self.files: set[str] = set()

    def run(self) -> None:
        self.table = DeltaTable(self.path)  # the table before any event: nothing waited for is in it
        self.files = set(self.table.file_uris())
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - a table mid-commit: the next poll reads it
                print(f"  poll: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.stop.wait(1.0)

    def poll(self) -> None:
        with self.lock:
            if not self.waiting:
                return
            wanted = dict(self.waiting)
        # Only the data files added since the last poll (a MERGE's rewritten files hold its new rows):
        # reading the whole table every second took a core of the two the stream runs on.
        self.table.update_incremental()
        files = set(self.table.file_uris())
        new, self.files = sorted(files - self.files), files
        if not new:
            return
        now = datetime.now(UTC)
        table = pa.concat_tables(
            pq.read_table(f.removeprefix("file://"), columns=["household_id", "scored_at", "event_committed_at"])
            for f in new)
        table = table.filter(pc.is_valid(table["event_committed_at"]))
        for household, scored_at, committed in zip(*(table[c].to_pylist() for c in table.column_names), strict=True):
            commit = wanted.get(household)
            if commit is None or committed is None:
                continue
            committed = committed.replace(tzinfo=UTC) if committed.tzinfo is None else committed
            if committed < commit.replace(microsecond=0) and abs((committed - commit).total_seconds()) > 1:
                continue  # an earlier event's row
            scored_at = scored_at.replace(tzinfo=UTC) if scored_at.tzinfo is None else scored_at
            with self.lock:
                if household in self.waiting:
                    del self.waiting[household]
                    self.seen[household] = ((now - commit).total_seconds(), (scored_at - commit).total_seconds())


class ContactWriter:
    """Commits one new contact per call to silver/contacts with delta-rs, keeping the table loaded
    (loading it per event replayed its log each time: CPU the stream needs)."""

    def __init__(self, path: str, template: pa.Table) -> None:
        self.table = DeltaTable(path)
        self.template = template

    def commit(self, account: str, household: str, n: int) -> datetime:
        """One new contact of ``account``, now, in its own commit; returns the commit's time."""
        now = datetime.now(UTC)
        row = {}
        for name in self.template.column_names:
            value = self.template[name][0].as_py()
            if name == "contact_id":
                value = f"bench-{int(time.time())}-{n}"
            elif name == "account_id":
                value = account
            elif name == "household_id":
                value = household
            elif name in ("started_at", "_extracted_at"):
                value = now
            elif name == "_run_id":
                value = "bench_stream"
            row[name] = [value]
        write_deltalake(self.table, pa.table(row, schema=self.template.schema), mode="append")
        self.table.update_incremental()
        ts = self.table.history(1)[0]["timestamp"]  # milliseconds since the epoch
        return datetime.fromtimestamp(ts / 1000.0, UTC)


def _stream(warehouse: str, trigger: float, checkpoint: str, since: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "false"}
    cmd = [sys.executable, str(REPO / "jobs" / "stream.py"), "--warehouse", warehouse, "--trigger", str(trigger),
           "--checkpoint", checkpoint, "--since", since]
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _phase(poller: Poller, writer: ContactWriter, pool: list[tuple[str, str]], *, rate: float,
           seconds: float, drain: float) -> dict[str, float]:
    """Events at ``rate`` per second for ``seconds``; then up to ``drain`` s for the last ones."""
    n = max(1, int(rate * seconds))
    if n > len(pool):
        raise SystemExit(f"{n} events need {n} households; the warehouse has {len(pool)} active ones left")
    events, start, cpu = [], time.monotonic(), time.process_time()
    for k in range(n):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        account, household = pool.pop()
        commit = writer.commit(account, household, k)
        with poller.lock:
            poller.waiting[household] = commit
        events.append(household)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        with poller.lock:
            if not any(h in poller.waiting for h in events):
                break
        time.sleep(1.0)
    with poller.lock:
        got = [poller.seen[h] for h in events if h in poller.seen]
        missing = sum(1 for h in events if h in poller.waiting)
        for h in events:
            poller.waiting.pop(h, None)
    visible, scored = [g[0] for g in got], [g[1] for g in got]
    # this process (the source system and the reader) shares the stream's cores: its share, stated
    bench_cpu = (time.process_time() - cpu) / max(time.monotonic() - start, 1e-9)
    return {"bench_cpu": bench_cpu, "rate": rate, "events": n, "scored": len(got), "missing": missing,
            "visible_p50": _pct(visible, 0.5), "visible_p95": _pct(visible, 0.95), "visible_max": max(visible, default=float("nan")),
            "scored_p50": _pct(scored, 0.5), "scored_p95": _pct(scored, 0.95)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--rate", type=float, default=1.0, help="events per second of the sustained phase")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the sustained phase")
    ap.add_argument("--trigger", type=float, default=15.0)
    ap.add_argument("--ramp", default="", help="further rates, e.g. 2,4,8 (each --ramp-minutes long)")
    ap.add_argument("--ramp-minutes", type=float, default=3.0)
    ap.add_argument("--drain", type=float, default=180.0, help="seconds to wait for the last events of a phase")
    args = ap.parse_args()

    wh = str(Path(args.warehouse).resolve())
    contacts, scores = f"{wh}/silver/contacts", f"{wh}/gold/{HOUSEHOLD_SCORES}"
    print(f"load average before: {_load()}; cores {os.cpu_count()}; warehouse {wh}", flush=True)
    accounts = DeltaTable(f"{wh}/silver/accounts").to_pyarrow_table(columns=["account_id", "household_id", "end_date"])
    accounts = accounts.filter(pc.is_null(accounts["end_date"]))
    pool = sorted(set(zip(accounts["account_id"].to_pylist(), accounts["household_id"].to_pylist(), strict=True)))
    template = DeltaTable(contacts).to_pyarrow_table().slice(0, 1)
    work = Path(tempfile.mkdtemp(prefix="ucx-bench-stream-"))
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    log = work / "stream.log"
    started = time.monotonic()
    proc = _stream(wh, args.trigger, str(work / "checkpoint"), since, log)
    poller = Poller(scores)
    writer = ContactWriter(contacts, template)
    poller.start()
    results = []
    try:
        cold = _phase(poller, writer, pool, rate=1.0, seconds=1.0, drain=600.0)
        cold_start = time.monotonic() - started
        if cold["missing"]:
            print(f"the first event was not scored in 600 s; stream log:\n{log.read_text()[-3000:]}")
            return 1
        print(f"cold start (process start to the first event's score visible): {cold_start:.1f} s", flush=True)
        rates = [args.rate, *[float(r) for r in args.ramp.split(",") if r.strip()]]
        for i, rate in enumerate(rates):
            seconds = (args.minutes if i == 0 else args.ramp_minutes) * 60
            print(f"phase {i + 1}: {rate:g} events/s for {seconds:.0f} s (trigger {args.trigger:g} s; load {_load()})",
                  flush=True)
            r = _phase(poller, writer, pool, rate=rate, seconds=seconds, drain=args.drain)
            r["load"] = _load()
            results.append(r)
            print(f"  {r['events']} events, {r['scored']} scored, {r['missing']} never within {args.drain:.0f} s; "
                  f"commit->visible p50 {r['visible_p50']:.1f} s p95 {r['visible_p95']:.1f} s max {r['visible_max']:.1f} s; "
                  f"commit->scored_at p50 {r['scored_p50']:.1f} s p95 {r['scored_p95']:.1f} s; load {r['load']}; "
                  f"this script's own CPU {r['bench_cpu']:.2f} cores", flush=True)
            if proc.poll() is not None:
                print(f"the stream stopped (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
                return 1
    finally:
        poller.stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    ok = [r["rate"] for r in results if r["missing"] == 0 and r["visible_p95"] < 120]
    print(f"\nhighest rate with every event scored and visible p95 < 120 s: {max(ok) if ok else 'none'} events/s")
    print(f"load average after: {_load()}; stream log {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
