"""Landing files of the generator and the exact accounting of what the pipeline must make of them.

Every row the generator writes carries the rule it was planted to break
(``None`` for a good row).  ``account_feed`` then replays the contract's
semantics that depend on other rows (foreign keys against the current
accounts, ambiguity within an extract, supersession across extracts) and
asserts that they agree with what was planted, so the manifest cannot drift
from the files: ``landed = current + superseded + quarantined`` per feed.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from ucx_spark.contract import FEEDS, RULES, TIMESTAMP
from ucx_spark.generate.timeutil import parse_ts

ROW_RULES = RULES[: RULES.index("kwh_quality_mismatch") + 1]  # rules decided by the row alone


@dataclass
class LandingFile:
    """One file of a feed folder; ``rows`` hold raw strings ('' = null) by contract column."""

    feed: str
    name: str
    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    plants: list[str | None] = field(default_factory=list)  # expected rule per row
    notes: list[str | None] = field(default_factory=list)  # defect description per row
    extra_fields: dict[int, list[str]] = field(default_factory=dict)  # wrong_field_count rows
    gz: bool = False
    raw_bytes: bytes | None = None  # written as-is (corrupt or misnamed files)
    rejected: str | None = None  # reason the pipeline must record for this file
    landed: bool = True  # False for files the pipeline must not ingest or cannot read

    def add(self, row: dict[str, str | None], plant: str | None = None, note: str | None = None) -> int:
        self.rows.append({k: ("" if v is None else str(v)) for k, v in row.items()})
        self.plants.append(plant)
        self.notes.append(note)
        return len(self.rows) - 1

    @property
    def stamp(self) -> str:
        return self.name.split("_")[1][:16]


@dataclass
class FeedLanding:
    """All files of one feed, plus the AMI bulk that Spark writes (counted, never held on the driver)."""

    feed: str
    files: list[LandingFile] = field(default_factory=list)
    base_count: int = 0  # rows of the Spark-written bulk extract (all good, distinct keys)
    base_files: list[str] = field(default_factory=list)
    base_stamp: str = ""
    in_base: Callable[[tuple], bool] | None = None  # is a key one of the bulk's keys?
    defects: Counter = field(default_factory=Counter)

    def new_file(self, name: str, *, header: list[str] | None = None, gz: bool = False) -> LandingFile:
        f = LandingFile(self.feed, name, list(header or FEEDS[self.feed].column_names), gz=gz)
        self.files.append(f)
        return f


@dataclass
class FeedAccount:
    landed: int
    current: int
    superseded: int
    quarantined: Counter
    current_values: dict[tuple, dict[str, str]]


def _key(feed: str, row: dict[str, str], tz: ZoneInfo) -> tuple:
    spec = FEEDS[feed]
    out = []
    for c in spec.key:
        v = row.get(c, "")
        out.append(parse_ts(v, tz).isoformat() if spec.column(c).kind == TIMESTAMP else v)
    return tuple(out)


def account_feed(fl: FeedLanding, tz: ZoneInfo, refs: dict[str, set[str]]) -> FeedAccount:
    """Replay supersession, FK and ambiguity over the planted rows; assert they match the plan."""
    spec = FEEDS[fl.feed]
    cols = spec.column_names
    quarantined: Counter = Counter()
    state: dict[tuple, dict[str, str]] = {}
    superseded = 0
    landed = fl.base_count
    # Extracts in contract order; the bulk (if any) is the first of its stamp, and no key is shared
    # between two files of one stamp, so "extract" = file is unambiguous.
    files = sorted((f for f in fl.files if f.landed), key=lambda f: (f.stamp, f.name))
    if fl.base_count:
        assert all(f.stamp > fl.base_stamp for f in files), "bulk AMI must be the earliest extract"
    base_superseded: set[tuple] = set()
    for f in files:
        landed += len(f.rows)
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(f.rows):
            plant = f.plants[i]
            if plant in ROW_RULES:
                quarantined[plant] += 1
                continue
            bad_fk = any(row.get(fk.column, "") not in refs[f"{fk.feed}.{fk.ref_column}"] for fk in spec.foreign_keys)
            if bad_fk:
                assert plant == "unknown_reference", f"{f.name} row {i}: unplanned unknown_reference {row}"
                quarantined["unknown_reference"] += 1
                continue
            assert plant in (None, "ambiguous_key"), f"{f.name} row {i}: planted {plant} but the row is good"
            groups.setdefault(_key(fl.feed, row, tz), []).append(i)
        seen_keys: set[tuple] = set()
        for key, idx in groups.items():
            assert key not in seen_keys
            seen_keys.add(key)
            values = {tuple(f.rows[i].get(c, "") for c in cols) for i in idx}
            if len(values) > 1:
                for i in idx:
                    assert f.plants[i] == "ambiguous_key", f"{f.name}: unplanned ambiguous key {key}"
                quarantined["ambiguous_key"] += len(idx)
                continue
            for i in idx:
                assert f.plants[i] is None, f"{f.name} row {i}: planted {f.plants[i]} but unambiguous"
            superseded += len(idx) - 1
            if key in state:
                superseded += 1
            elif fl.in_base is not None and fl.in_base(key):
                superseded += 1
                base_superseded.add(key)
            state[key] = f.rows[idx[0]]
    current = fl.base_count + sum(1 for k in state if not (fl.in_base is not None and fl.in_base(k)))
    out = FeedAccount(landed, current, superseded, quarantined, state)
    assert out.landed == out.current + out.superseded + sum(out.quarantined.values()), fl.feed
    return out


def _csv_bytes(f: LandingFile) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(f.header)
    for i, row in enumerate(f.rows):
        w.writerow([row.get(c, "") for c in f.header] + f.extra_fields.get(i, []))
    return buf.getvalue().encode("utf-8")


def write_file(f: LandingFile, feed_dir: Path) -> None:
    """Write one file deterministically (gzip without a timestamp in its header)."""
    data = f.raw_bytes if f.raw_bytes is not None else _csv_bytes(f)
    path = feed_dir / f.name
    if f.gz and f.raw_bytes is None:
        with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
