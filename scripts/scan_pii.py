"""Scan what a run produced for the pseudonym key and the landed direct identifiers.

    .venv/bin/python scripts/scan_pii.py --landing data/demo/landing --out data/demo \\
        --key-file .ucx_demo_key [--text demo-output.log ...]

Every file under ``--out`` outside the restricted places (``bronze/``, ``silver/``,
``quarantine/``, ``_restricted/`` and the landing zone itself) is read: Parquet files
column by column (string cells; the bytes are compressed), every other file as bytes
(Delta logs, Data Docs, GX stores, MLflow runs and artifacts, SQLite stores, the report,
logs), plus each ``--text`` file (e.g. the captured terminal output). The needles are the
key and every account's account, customer, premise and meter number, name, address, email
and phone (6 characters or more). Prints each hit and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from pathlib import Path

RESTRICTED = {"bronze", "silver", "quarantine", "_restricted"}
COLUMNS = ("account_id", "customer_id", "premise_id", "meter_id", "customer_name", "service_address", "email", "phone")


def landed_identifiers(landing: Path) -> set[str]:
    found: set[str] = set()
    for path in (landing / "accounts").glob("accounts_*.csv*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
            for row in csv.DictReader(fh):
                for column in COLUMNS:
                    value = (row.get(column) or "").strip()
                    if len(value) >= 6:
                        found.add(value)
    return found


def _strings(value: object) -> list[str]:
    """Every string inside a Parquet cell: nested lists, structs and maps too (a top-drivers array
    of structs holds feature names and values)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _parquet_strings(path: Path) -> bytes:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = []
    for column in table.columns:
        for cell in column.to_pylist():
            out.extend(_strings(cell))
    return "\n".join(out).encode("utf-8")


def _content(path: Path) -> bytes:
    """What a file holds: a Parquet file's strings, a gzip file's decompressed bytes, else its bytes."""
    if path.suffix == ".parquet":
        return _parquet_strings(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip, whatever its name
        import gzip
        import zlib

        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


def _restricted(out: Path, rel: Path) -> bool:
    """Whether ``out/rel`` lies in a warehouse's restricted folder: a ``bronze``, ``silver``,
    ``quarantine`` or ``_restricted`` folder directly under ``out`` or under a folder holding a
    ``gold`` layer (a warehouse at any depth: the demo's working folder holds one). A folder of
    that name elsewhere (a GX store's ``silver`` suites) is scanned."""
    for i, part in enumerate(rel.parts[:-1]):
        if part in RESTRICTED and (i == 0 or (out.joinpath(*rel.parts[:i]) / "gold").is_dir()):
            return True
    return False


def scan(out: Path, landing: Path, key: bytes, texts: list[Path], *, skip: tuple[Path, ...] = ()) -> tuple[int, list[str]]:
    """(files scanned, hits) over every file under ``out`` outside the restricted places and
    ``skip`` (e.g. the key file itself), plus ``texts``."""
    skip = tuple(p.resolve() for p in skip)
    identifiers = landed_identifiers(landing)
    needles = [key, *(i.encode("utf-8") for i in identifiers)]
    landing = landing.resolve()
    hits: list[str] = []
    scanned = 0
    files = [p for p in out.rglob("*") if p.is_file()]
    for path in files + texts:
        resolved = path.resolve()
        if path in files:
            rel = path.relative_to(out)
            if _restricted(out, rel) or landing in resolved.parents or resolved in skip:
                continue
        data = _content(path)
        scanned += 1
        found = [n.decode("utf-8", "replace") if n != key else "<the pseudonym key>" for n in needles if n in data]
        if found:
            hits.append(f"{path}: {found[:3]}")
    return scanned, hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="what the run wrote (a warehouse, or the demo folder)")
    parser.add_argument("--key-file", type=Path, help="file holding the key (else UCX_PSEUDONYM_KEY)")
    parser.add_argument("--text", type=Path, action="append", default=[], help="captured output to scan too")
    args = parser.parse_args(argv)
    import os

    key = (args.key_file.read_text().strip() if args.key_file else os.environ.get("UCX_PSEUDONYM_KEY", "")).encode()
    if not key:
        print("no key: give --key-file or set UCX_PSEUDONYM_KEY", file=sys.stderr)
        return 2
    scanned, hits = scan(args.out, args.landing, key, args.text)
    for h in hits:
        print("HIT", h)
    print(f"scanned {scanned} files under {args.out} (+{len(args.text)} outputs): {len(hits)} with the key or a landed identifier")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
