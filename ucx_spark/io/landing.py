"""Landing-zone discovery and raw CSV reads (contract section 1, file rules).

``discover(landing)`` lists ``<landing>/<feed>/`` for every contract feed and
returns the well-named files in extract order (extract timestamp, then whole
file name) and the badly named ones as rejections. ``read_header`` reads a
file's header line on the driver (a few KB); the rows are read in Spark tasks
by ``io.csv_arrow``.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from ucx_spark.contract import FEED_ORDER, parse_file_name

# A file still being written: source systems write under a temporary name and rename it when the
# file is complete (the rename is atomic on POSIX file systems). Such names are skipped, neither
# ingested nor rejected, until the rename (docs/operations.md).
IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial", ".inprogress", ".writing", ".crdownload")


def is_in_flight(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(IN_FLIGHT_SUFFIXES)


def file_sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path.removeprefix("file://"), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def changed_since(path: str, recorded: dict[str, object]) -> bool:
    """Whether the file's bytes differ from the ``recorded`` fingerprint: size and mtime first, the
    hash only when they moved (a copy with a new mtime and the same bytes is not a change)."""
    st = Path(path.removeprefix("file://")).stat()
    if st.st_size == recorded.get("size") and st.st_mtime_ns == recorded.get("mtime_ns"):
        return False
    return st.st_size != recorded.get("size") or file_sha256(path) != recorded.get("sha256")


@dataclass(frozen=True)
class LandingFile:
    feed: str
    name: str
    path: str
    extracted_at: datetime  # UTC, from the file name
    gzipped: bool

    @property
    def order_key(self) -> tuple[datetime, str]:
        return (self.extracted_at, self.name)


@dataclass(frozen=True)
class RejectedFile:
    feed: str
    name: str
    reason: str
    landed_rows: int = 0


@dataclass(frozen=True)
class Discovery:
    files: tuple[LandingFile, ...]
    rejected: tuple[RejectedFile, ...]

    def for_feed(self, feed: str) -> tuple[LandingFile, ...]:
        return tuple(f for f in self.files if f.feed == feed)


def parse_extracted_at(ts: str) -> datetime:
    """``YYYYMMDDTHHMMSSZ`` of a file name as an aware UTC datetime."""
    return datetime.strptime(ts, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def discover(landing: str | Path, *, feeds: tuple[str, ...] = FEED_ORDER) -> Discovery:
    """Files of every feed folder in extract order, and the badly named ones.

    Entries starting with ``_`` are ignored (bookkeeping folders such as
    ``_archive``) and so are files still being written (``is_in_flight``: a
    temporary name renamed when complete); a missing feed folder means no files. A name that does not
    match the contract grammar, a name of another feed, an impossible
    timestamp or a sub-folder is a rejected file ``bad_file_name``; every file of
    a folder the contract does not know is a rejected file ``unknown_feed``.
    """
    root = Path(landing)
    if not root.is_dir():
        raise FileNotFoundError(f"landing folder {root} does not exist")
    files: list[LandingFile] = []
    rejected: list[RejectedFile] = []
    if feeds == FEED_ORDER:
        # A folder the contract does not know (a new feed, a typo such as "bill"): its files are
        # reported as rejected, never silently left behind.
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith("_") and folder.name not in FEED_ORDER:
                for entry in sorted(folder.iterdir()):
                    if not entry.name.startswith("_"):
                        rejected.append(RejectedFile(folder.name, entry.name, "unknown_feed"))
    for feed in feeds:
        folder = root / feed
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("_") or (entry.is_file() and is_in_flight(entry.name)):
                continue
            parsed = parse_file_name(entry.name)
            if entry.is_dir() or parsed is None or parsed[0] != feed:
                rejected.append(RejectedFile(feed, entry.name, "bad_file_name"))
                continue
            try:
                extracted_at = parse_extracted_at(parsed[1])
            except ValueError:
                rejected.append(RejectedFile(feed, entry.name, "bad_file_name"))
                continue
            files.append(LandingFile(feed, entry.name, str(entry.resolve()), extracted_at, parsed[3]))
    files.sort(key=lambda f: (FEED_ORDER.index(f.feed), f.order_key))
    return Discovery(tuple(files), tuple(rejected))


_HEADER_BYTES = 64 * 1024


class UnreadableFile(Exception):
    """A landing file that cannot be read at all: the message is the reason recorded."""


def _first_record(path: str) -> str:
    """The first CSV record of a local landing file, read on the driver (a few KB at most).

    Checking the gzip magic and UTF-8 here costs microseconds; a Spark job per
    file would cost a second each and log a stack trace for a corrupt file.
    """
    local = path.removeprefix("file://")
    try:
        with open(local, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            if local.endswith(".gz"):
                if head != b"\x1f\x8b":
                    raise UnreadableFile("unreadable:not_gzip")
                try:
                    data = gzip.GzipFile(fileobj=raw).read(_HEADER_BYTES)
                except (OSError, EOFError) as exc:
                    raise UnreadableFile("unreadable:not_gzip") from exc
            else:
                data = raw.read(_HEADER_BYTES)
    except OSError as exc:
        raise UnreadableFile(f"unreadable:{exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise UnreadableFile("unreadable:not_text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not just a multi-byte character cut at the read boundary
            raise UnreadableFile("unreadable:not_text") from exc
        text = data[: exc.start].decode("utf-8")
    return text.removeprefix("\ufeff")


def has_data_rows(path: str, *, gzipped: bool) -> bool:
    """Whether a landing file holds a line after its header (a header-only extract lands no row and
    leaves no trace in bronze, so a run can tell it has nothing to land without reading it twice).
    An unreadable file counts as having rows: bronze decides what it is."""
    import gzip

    try:
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as fh:  # type: ignore[operator]
            lines = 0
            for raw in fh:
                if raw.strip():
                    lines += 1
                    if lines > 1:
                        return True
        return False
    except (OSError, EOFError):
        return True


def read_header(spark: SparkSession, path: str) -> list[str]:
    """The header fields of a landing file.

    Raises UnreadableFile for a file that is not gzip (named .gz), not text,
    empty, or whose header is blank or has duplicate names.
    """
    text = _first_record(path)
    if not text.strip():
        raise UnreadableFile("unreadable:no_header")
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise UnreadableFile("unreadable:not_text")
    try:
        fields = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration) as exc:
        raise UnreadableFile("unreadable:bad_header") from exc
    names = [f.strip().lower() for f in fields]
    if not names or all(n == "" for n in names):
        raise UnreadableFile("unreadable:no_header")
    if any(n == "" for n in names):
        raise UnreadableFile("unreadable:empty_column_name")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise UnreadableFile(f"unreadable:duplicate_column:{n}")
        seen.add(n)
    return names
