"""What a Delta table's transaction log says, read from the log itself (no Spark job).

Answers the questions a pipeline asks of its tables dozens of times per run --
the latest version, a commit's metadata, the live files with their partition
values and row counts -- by reading ``<table>/_delta_log`` directly: the latest
``N.crc`` checksum (Delta writes the table's file list into it while the table
has few files), else the last checkpoint (Parquet, read with pyarrow) plus the
JSON commits after it. Through Spark each of these is a snapshot load or a
``history()`` query: one to three Spark jobs at 0.1-1 s each.

Scope, stated so callers can rely on it: local (POSIX) table paths, as every
UCX warehouse path is (``io.delta.table_path`` resolves them); classic
single-file or multi-part checkpoints. A log this reader cannot answer for
exactly (a v2 checkpoint, an add action without ``numRecords`` statistics or
with a deletion vector, a missing commit) yields None, and the caller falls
back to the Delta/Spark API. Reads never write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CRC = re.compile(r"^(\d{20})\.crc$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")


@dataclass(frozen=True)
class LiveFile:
    """A data file of the table's current snapshot."""

    path: str
    partition_values: dict[str, str | None]
    num_records: int | None  # None: no statistics (or a deletion vector changes the count)


def log_dir(path: str | Path) -> Path:
    return Path(path) / LOG_DIR


def commit_versions(path: str | Path) -> list[int]:
    """Versions of the JSON commits still in the log, ascending ([] without a log)."""
    folder = log_dir(path)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for name in _names(folder) if (m := _COMMIT.match(name)))


def latest_version(path: str | Path) -> int | None:
    """The table's latest committed version, or None when there is no table."""
    versions = commit_versions(path)
    return versions[-1] if versions else None


def _names(folder: Path) -> list[str]:
    try:
        return [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return []


def _actions(folder: Path, version: int) -> Iterator[dict[str, Any]]:
    with (folder / f"{version:020d}.json").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def commit_info(path: str | Path, version: int) -> dict[str, Any] | None:
    """The ``commitInfo`` action of commit ``version`` (None when absent or cleaned up)."""
    try:
        for action in _actions(log_dir(path), version):
            if "commitInfo" in action:
                return dict(action["commitInfo"])
    except FileNotFoundError:
        return None
    return None


def commit_infos(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(version, commitInfo) of the commits still in the log, newest first."""
    for version in reversed(commit_versions(path)):
        info = commit_info(path, version)
        if info is not None:
            yield version, info


def _from_add(add: dict[str, Any]) -> LiveFile:
    records: int | None = None
    stats = add.get("stats")
    if stats and not add.get("deletionVector"):
        try:
            value = json.loads(stats).get("numRecords")
            records = None if value is None else int(value)
        except (ValueError, TypeError):
            records = None
    return LiveFile(str(add["path"]), dict(add.get("partitionValues") or {}), records)


def _crc_files(folder: Path, version: int) -> dict[str, LiveFile] | None:
    """The file list the checksum of ``version`` carries, if it carries one."""
    crc = folder / f"{version:020d}.crc"
    if not crc.is_file():
        return None
    try:
        data = json.loads(crc.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("allFiles")
    if files is None:
        return None
    return {str(a["path"]): _from_add(a) for a in files}


def _checkpoint(folder: Path, upto: int) -> tuple[int, list[Path]] | None:
    """The newest classic checkpoint at or before ``upto``: (version, its part files)."""
    parts: dict[int, list[tuple[int, Path]]] = {}
    for name in _names(folder):
        m = _CHECKPOINT.match(name)
        if m and int(m.group(1)) <= upto:
            parts.setdefault(int(m.group(1)), []).append((int(m.group(2) or 1), folder / name))
    for version in sorted(parts, reverse=True):
        found = parts[version]
        expected = len(found) if len(found) == 1 else None
        m = _CHECKPOINT.match(found[0][1].name)
        if m and m.group(3):
            expected = int(m.group(3))
        if expected == len(found):
            return version, [p for _, p in sorted(found)]
    return None


def _checkpoint_files(paths: list[Path]) -> dict[str, LiveFile] | None:
    import pyarrow.parquet as pq

    live: dict[str, LiveFile] = {}
    for part in paths:
        table = pq.read_table(part)
        if "checkpointMetadata" in table.column_names or "sidecar" in table.column_names:
            return None  # a v2 checkpoint: left to Delta
        if "add" not in table.column_names:
            continue
        for add in table.column("add").to_pylist():
            if add:
                pv = add.get("partitionValues")
                if isinstance(pv, list):  # a map read as key/value pairs
                    add = {**add, "partitionValues": dict(pv)}
                live[str(add["path"])] = _from_add(add)
    return live


def table_id(path: str | Path) -> str | None:
    """The table's id (its ``metaData.id``, a UUID Delta gives a table when it is created and keeps
    for its life): a table dropped and built again has a new one, whatever its version number.
    Read from the newest checksum, else the newest commit or checkpoint that carries metadata;
    None when there is no table or the log does not say."""
    folder = log_dir(path)
    versions = commit_versions(path)
    if not versions:
        return None
    crc = folder / f"{versions[-1]:020d}.crc"
    try:
        data = json.loads(crc.read_text(encoding="utf-8")) if crc.is_file() else None
        found = ((data.get("metadata") or {}) if isinstance(data, dict) else {}).get("id")
    except (OSError, ValueError):
        found = None
    if found:
        return str(found)
    checkpoint = _checkpoint(folder, versions[-1])
    for version in reversed(versions):
        if checkpoint is not None and version <= checkpoint[0]:
            break
        try:
            for action in _actions(folder, version):
                if "metaData" in action:
                    found = (action["metaData"] or {}).get("id")
                    return str(found) if found else None
        except (OSError, ValueError):
            return None
    if checkpoint is not None:
        import pyarrow.parquet as pq

        for part in checkpoint[1]:
            table = pq.read_table(part, columns=["metaData"]) if "metaData" in pq.read_schema(part).names else None
            for meta in (table.column("metaData").to_pylist() if table is not None else []):
                if meta and meta.get("id"):
                    return str(meta["id"])
    return None


def live_files(path: str | Path, *, version: int | None = None) -> dict[str, LiveFile] | None:
    """The data files of the snapshot at ``version`` (default: the latest), or None when the log
    cannot be read exactly here (see the module doc)."""
    folder = log_dir(path)
    versions = commit_versions(path)
    if not versions:
        return None
    version = versions[-1] if version is None else version
    fast = _crc_files(folder, version)
    if fast is not None:
        return fast
    start, live = 0, {}
    checkpoint = _checkpoint(folder, version)
    if checkpoint is not None:
        loaded = _checkpoint_files(checkpoint[1])
        if loaded is None:
            return None
        start, live = checkpoint[0] + 1, loaded
    wanted = range(start, version + 1)
    if any(v not in set(versions) for v in wanted):
        return None  # a commit after the checkpoint is missing: not readable exactly
    for v in wanted:
        for action in _actions(folder, v):
            if "add" in action:
                live[str(action["add"]["path"])] = _from_add(action["add"])
            elif "remove" in action:
                live.pop(str(action["remove"]["path"]), None)
    return live


@dataclass(frozen=True)
class Damage:
    """What is wrong with a table's log or files, and the last version a reader can trust."""

    kind: str  # missing_commit | bad_commit | missing_file
    version: int  # the commit that is missing or unreadable, or that added the missing file
    detail: str
    last_good: int | None  # None: no earlier version

    def restore_sql(self, path: str | Path) -> str | None:
        if self.last_good is None:
            return None
        return f"RESTORE TABLE delta.`{Path(path)}` TO VERSION AS OF {self.last_good}"


def damage(path: str | Path) -> Damage | None:
    """Check what a reader of the latest snapshot needs: the commits after the last checkpoint
    (present, one after the other, each line valid JSON) and every live data file on disk.
    None when all is well (or there is no table)."""
    folder = log_dir(path)
    versions = commit_versions(path)
    if not versions:
        return None
    latest = versions[-1]
    checkpoint = _checkpoint(folder, latest)
    start = checkpoint[0] + 1 if checkpoint is not None else 0
    present = set(versions)
    for v in range(start, latest + 1):
        if v not in present:
            return Damage("missing_commit", v, f"commit {v} is missing from {folder}", v - 1 if v > 0 else None)
        commit = folder / f"{v:020d}.json"
        for n, line in enumerate(commit.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                return Damage("bad_commit", v, f"commit {commit.name} line {n} is not valid JSON ({exc})",
                              v - 1 if v > 0 else None)
    try:
        live = live_files(path)
    except (OSError, ValueError) as exc:
        return Damage("bad_commit", latest, f"the log cannot be read ({exc})", latest - 1 if latest > 0 else None)
    if live is None:
        return None  # a log this reader leaves to Delta (v2 checkpoint, deletion vectors)
    from urllib.parse import unquote

    missing = sorted(f for f in live if not (Path(path) / unquote(f)).is_file())
    if not missing:
        return None
    added = _added_in(folder, set(missing), versions)
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    if len(added) < len(missing):  # added by a commit the log no longer holds: no version is known good
        return Damage("missing_file", start, f"data file {missing[0]}{more} is missing (added before version "
                      f"{versions[0]}, the oldest commit left in the log)", None)
    first = min(added.values())
    return Damage("missing_file", first, f"data file {missing[0]}{more} is missing (added in version {first})",
                  first - 1 if first > 0 else None)


def _added_in(folder: Path, files: set[str], versions: list[int]) -> dict[str, int]:
    """The version that added each of ``files``, searched in the JSON commits ``versions`` (every one
    still in the log, also those a checkpoint covers; a file added by a commit already cleaned up is
    left out)."""
    found: dict[str, int] = {}
    for v in reversed(versions):
        try:
            actions = list(_actions(folder, v))
        except (OSError, ValueError):
            continue  # a commit a checkpoint covers need not be readable: Delta does not read it either
        for action in actions:
            add = action.get("add")
            if add and add.get("path") in files and add["path"] not in found:
                found[add["path"]] = v
    return found


def row_count(path: str | Path, *, by: str | None = None) -> dict[str | None, int] | None:
    """Rows of the current snapshot from the files' statistics (by partition column ``by``, or
    all under the key None); None when a file lacks the statistic (the caller counts instead)."""
    files = live_files(path)
    if files is None or any(f.num_records is None for f in files.values()):
        return None
    out: dict[str | None, int] = {}
    for f in files.values():
        key = f.partition_values.get(by) if by else None
        out[key] = out.get(key, 0) + int(f.num_records or 0)
    return out



def read_arrow(
    path: str | Path, *, columns: list[str], types: dict[str, str], max_rows: int,
    partitions: dict[str, set[str | None]] | None = None, rows: tuple[str, set[Any]] | None = None,
) -> Any | None:
    """The rows of the table's current snapshot as a pyarrow Table of ``columns``, read from its
    data files without Spark, when the log says exactly which files hold them and that those
    files hold at most ``max_rows`` rows; else None (the caller reads through Spark).

    ``partitions`` keeps the files whose partition values are in the given sets (pruning by the
    log, as Delta does); ``rows`` = (column, values) then keeps the rows whose value of that data
    column is in ``values``. ``types`` gives the Spark type (``simpleString``) of each partition
    column: its value, a string in the log, is cast to it (string, date and the integer types;
    another type gives None). A file with a deletion vector (its row count is then unknown here)
    or whose Parquet lacks a requested column (column mapping) gives None too.
    """
    from urllib.parse import unquote

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    live = live_files(path)
    if live is None:
        return None
    chosen = [
        f for f in live.values()
        if not partitions or all(f.partition_values.get(k) in v for k, v in partitions.items())
    ]
    if not chosen or any(f.num_records is None for f in chosen) or sum(f.num_records or 0 for f in chosen) > max_rows:
        return None
    arrow_types = {"string": pa.string(), "date": pa.date32(), "int": pa.int32(), "bigint": pa.int64(),
                   "smallint": pa.int16(), "tinyint": pa.int8()}
    part_cols = {k for f in chosen for k in f.partition_values}
    if any(c in part_cols and types.get(c) not in arrow_types for c in columns):
        return None
    read = [c for c in columns if c not in part_cols]
    if rows is not None:
        if rows[0] in part_cols:
            return None
        read += [] if rows[0] in read else [rows[0]]
    tables = []
    for f in chosen:
        parquet = pq.ParquetFile(Path(path) / unquote(f.path))
        if any(c not in parquet.schema_arrow.names for c in read):
            return None
        table = parquet.read(columns=read)
        if rows is not None:
            table = table.filter(pc.is_in(table[rows[0]], value_set=pa.array(sorted(rows[1]), table.schema.field(rows[0]).type)))
        for c in columns:
            if c in part_cols:
                value = f.partition_values.get(c)
                table = table.append_column(c, pa.array([value] * table.num_rows, pa.string()).cast(arrow_types[types[c]]))
        tables.append(table.select(columns))
    return pa.concat_tables(tables, promote_options="default")
