"""io/csv_arrow.py read directly (issue 23): the executor-side reader of landing CSV files, without
Spark. Both readers (pyarrow's, and Python's csv module for what pyarrow cannot parse) give the
same rows: every value a string, an empty field null, quoted newlines kept, data records numbered
from 1 without blank lines, a record with the wrong field count kept (padded or cut) and marked
malformed, columns the contract does not know in ``_extra``; a file that cannot be read at all
fails with the marker the driver turns into a rejected file."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from ucx_spark.io import csv_arrow
from ucx_spark.io.csv_arrow import FileSpec, unreadable_in

EXTRACTED = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
COLUMNS = ("contact_id", "account_id", "transcript")
TEXT = (
    "contact_id,account_id,transcript,agent_note\n"
    'C1,A1,"said ""hello""\nthen hung up",x\n'
    "\n"
    "C2,,plain,\n"
    "C3,A3\n"
    "C4,A4,too,many,fields\n"
    "C5,A5,last,y\n"
)
EXPECTED = [
    # contact_id, account_id, transcript, _extra, _malformed, _row_number
    ("C1", "A1", 'said "hello"\nthen hung up', {"agent_note": "x"}, False, 1),
    ("C2", None, "plain", {"agent_note": None}, False, 2),
    ("C5", "A5", "last", {"agent_note": "y"}, False, 5),
    ("C3", "A3", None, {"agent_note": None}, True, 3),
    ("C4", "A4", "too", {"agent_note": "many"}, True, 4),
]


def _spec(path: Path, *, gzipped: bool = False, name: str = "contacts_20260105.csv") -> FileSpec:
    return FileSpec(path=str(path), name=name, extracted_at=EXTRACTED,
                    header=("contact_id", "account_id", "transcript", "agent_note"), gzipped=gzipped)


def _rows(spec: FileSpec) -> list[tuple]:
    table = pa.Table.from_batches(list(csv_arrow._file_batches(0, spec, COLUMNS)))
    out = []
    for r in table.to_pylist():
        assert r["_source_file"] == spec.name and r["_extracted_at"] == EXTRACTED and r["_file_rejected"] is None
        out.append((r["contact_id"], r["account_id"], r["transcript"], dict(r["_extra"]), r["_malformed"],
                    r["_row_number"]))
    return out


def test_the_pyarrow_reader_keeps_the_contract_rules(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(TEXT, encoding="utf-8")
    assert _rows(_spec(path)) == EXPECTED


def test_a_gzipped_file_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv.gz"
    path.write_bytes(gzip.compress(TEXT.encode()))
    assert _rows(_spec(path, gzipped=True)) == EXPECTED


def test_the_python_reader_gives_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    """A record longer than pyarrow's block hands the file to Python's csv module: same rows."""
    path = tmp_path / "contacts.csv"
    path.write_text(TEXT, encoding="utf-8")
    monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 16)
    assert sorted(_rows(_spec(path)), key=lambda r: r[-1]) == sorted(EXPECTED, key=lambda r: r[-1])


def test_invalid_utf8_is_replaced_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"contact_id,account_id,transcript,agent_note\nC1,A1,caf\xe9,x\n")
    rows = _rows(_spec(path))
    assert [(r[0], r[2], r[-1]) for r in rows] == [("C1", "caf\ufffd", 1)]


def test_a_file_that_cannot_be_decompressed_fails_with_the_marker_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv.gz"
    path.write_text(TEXT, encoding="utf-8")  # not gzip at all
    with pytest.raises(RuntimeError) as info:
        list(csv_arrow._file_batches(7, _spec(path, gzipped=True), COLUMNS))
    found = unreadable_in(info.value)
    assert found is not None and found.index == 7 and found.reason.startswith("unreadable:")
    assert unreadable_in(RuntimeError("an unrelated failure")) is None
