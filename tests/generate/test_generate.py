"""The synthetic utility against contract v1, checked by an independent reading of its files.

``_Reference`` re-derives every row's fate from the raw bytes with the contract's
rules (not from the generator's own plan), so the manifest the pipeline's
end-to-end test trusts is verified here row by row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ucx_spark.contract import (
    BOOL,
    DATE,
    DATE_RE,
    DECIMAL,
    DECIMAL_RE,
    FEED_ORDER,
    FEEDS,
    FILE_NAME_RE,
    INT,
    INT_RE,
    MONEY,
    MONEY_RE,
    RULES,
    TIMESTAMP,
    TIMESTAMP_RE,
)
from ucx_spark.generate import generate_utility

TZ = "America/Chicago"
KW = {"households": 30, "months": 13, "interval_minutes": 60, "seed": 7, "time_zone": TZ, "end_date": "2025-12-31"}


@pytest.fixture(scope="module")
def landing(spark, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("utility_a")
    manifest = generate_utility(spark, out, **KW)
    return out, manifest


@pytest.fixture(scope="module")
def landing_again(spark, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("utility_b")
    generate_utility(spark, out, **KW)
    return out


# --------------------------------------------------------------------------- reference classifier


def _read(path: Path) -> list[list[str]] | None:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except OSError:
            return None
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


_RE = {k: re.compile(v) for k, v in {TIMESTAMP: TIMESTAMP_RE, DATE: DATE_RE, INT: INT_RE, DECIMAL: DECIMAL_RE, MONEY: MONEY_RE}.items()}


@cache
def _parse_ts(v: str, tz: ZoneInfo) -> tuple[str | None, datetime | None]:
    """(rule, instant) of a raw timestamp: rule None when it is good (cached: AMI repeats instants per meter)."""
    if not _RE[TIMESTAMP].match(v):
        return "bad_timestamp", None
    body = v.replace(" ", "T").replace("t", "T")
    off = None
    if body[-1] in "Zz":
        body, off = body[:-1], timedelta(0)
    elif len(body) > 19 and body[-6] in "+-" and body[-3] == ":":
        sign = -1 if body[-6] == "-" else 1
        off = sign * timedelta(hours=int(body[-5:-3]), minutes=int(body[-2:]))
        body = body[:-6]
    try:
        naive = datetime.fromisoformat(body)
    except ValueError:
        return "bad_timestamp", None
    if off is not None:
        return None, (naive - off).replace(tzinfo=UTC)
    a, b = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if a.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return "nonexistent_local_time", None
    if a.utcoffset() != b.utcoffset():
        return "ambiguous_local_time", None
    return None, a.astimezone(UTC)


_REQUIRED = {f: FEEDS[f].required for f in FEEDS}


def _row_rule(feed: str, d: dict[str, str], tz: ZoneInfo) -> str | None:
    spec = FEEDS[feed]
    if any(d.get(c, "") == "" for c in _REQUIRED[feed]):
        return "missing_required"
    found: list[str] = []
    for c in spec.columns:
        v = d.get(c.name, "")
        if v == "":
            continue
        if c.kind == TIMESTAMP:
            rule, _ = _parse_ts(v, tz)
            if rule:
                found.append(rule)
        elif c.kind == DATE:
            try:
                ok = bool(_RE[DATE].match(v)) and datetime.strptime(v, "%Y-%m-%d") is not None
            except ValueError:
                ok = False
            if not ok:
                found.append("bad_date")
        elif c.kind in (INT, DECIMAL, MONEY):
            if not _RE[c.kind].match(v):
                found.append("bad_number")
                continue
            x = float(v)
            if (c.int_domain and int(x) not in c.int_domain) or (c.min_value is not None and x < c.min_value) or (
                c.max_value is not None and x > c.max_value
            ):
                found.append("out_of_domain")
        elif c.kind == BOOL:
            if v.lower() not in ("true", "false"):
                found.append("bad_boolean")
        elif (c.domain and v not in c.domain) or (c.pattern and not re.fullmatch(c.pattern, v)):
            found.append("out_of_domain")
    if feed == "ami" and not found and (d["quality"] == "M") != (d.get("kwh", "") == ""):
        found.append("kwh_quality_mismatch")
    return min(found, key=RULES.index) if found else None


class _Reference:
    """What a correct pipeline makes of the landing zone, feed by feed."""

    def __init__(self, root: Path, tz: ZoneInfo) -> None:
        self.root, self.tz = root, tz
        self.refs: dict[str, set[str]] = {}
        self.result: dict[str, dict] = {}
        self.rows: dict[str, list[tuple[str, dict[str, str], str | None]]] = {}  # (file, values, rule)
        for feed in FEED_ORDER:
            self.result[feed] = self._feed(feed)
            if feed == "accounts":
                cur = self.result[feed]["current_rows"]
                for c in ("account_id", "meter_id", "premise_id"):
                    self.refs[f"accounts.{c}"] = {r[c] for r in cur}

    def _feed(self, feed: str) -> dict:
        spec = FEEDS[feed]
        cols = spec.column_names
        key_ts = [spec.column(c).kind == TIMESTAMP for c in spec.key]
        files = []
        for p in sorted((self.root / feed).iterdir()):
            m = FILE_NAME_RE.match(p.name)
            if m and m["feed"] == feed:
                files.append((m["ts"], p.name, p))
        landed = superseded = 0
        quarantined: Counter = Counter()
        state: dict[tuple, tuple] = {}
        current_rows: dict[tuple, dict[str, str]] = {}
        self.rows[feed] = []
        for _, name, path in sorted(files):
            table = _read(path)
            if not table:
                continue
            header = [h.strip().lower() for h in table[0]]
            body = table[1:]
            landed += len(body)
            if any(c not in header for c in spec.required):
                quarantined["file_rejected"] += len(body)
                continue
            groups: dict[tuple, list[tuple]] = {}
            for raw in body:
                if len(raw) != len(header):
                    quarantined["wrong_field_count"] += 1
                    continue
                d = dict(zip(header, raw, strict=True))
                rule = _row_rule(feed, d, self.tz)
                if rule is None and any(d[fk.column] not in self.refs[f"{fk.feed}.{fk.ref_column}"] for fk in spec.foreign_keys):
                    rule = "unknown_reference"
                self.rows[feed].append((name, d, rule))
                if rule:
                    quarantined[rule] += 1
                    continue
                key = tuple(_parse_ts(d[c], self.tz)[1] if ts else d[c] for c, ts in zip(spec.key, key_ts, strict=True))
                groups.setdefault(key, []).append(tuple(d.get(c, "") for c in cols))
            for key, vals in groups.items():
                if len(set(vals)) > 1:
                    quarantined["ambiguous_key"] += len(vals)
                    continue
                superseded += len(vals) - 1 + (key in state)
                state[key] = vals[0]
                current_rows[key] = dict(zip(cols, vals[0], strict=True))
        return {
            "landed_rows": landed, "expected_current": len(state), "expected_superseded": superseded,
            "expected_quarantined": {r: quarantined[r] for r in RULES if quarantined[r]},
            "current_rows": list(current_rows.values()),
        }


@pytest.fixture(scope="module")
def reference(landing) -> _Reference:
    root, _ = landing
    return _Reference(root, ZoneInfo(TZ))


# --------------------------------------------------------------------------- tests


def test_feed_folders_and_file_names(landing) -> None:
    root, manifest = landing
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("_")) == sorted(FEEDS)
    misnamed = {(r["feed"], r["file"]) for r in manifest["rejected_files"] if r["reason"] == "bad_file_name"}
    assert misnamed == {("bills", "bills_latest.csv")}
    for feed in FEEDS:
        names = sorted(p.name for p in (root / feed).iterdir())
        assert names == sorted(manifest["feeds"][feed]["files"])
        for name in names:
            m = FILE_NAME_RE.match(name)
            assert (m is not None and m["feed"] == feed) or (feed, name) in misnamed, name
            assert not name.startswith(("_", ".", "part-")) and not name.endswith(".crc")
    ami = manifest["feeds"]["ami"]["files"]
    assert sum(1 for n in ami if "_part-" in n) >= 2
    assert len(manifest["feeds"]["bills"]["files"]) >= 3 and len(manifest["feeds"]["accounts"]["files"]) == 2


def test_headers_carry_every_contract_column(landing) -> None:
    root, manifest = landing
    rejected = {(r["feed"], r["file"]): r["reason"] for r in manifest["rejected_files"]}
    assert rejected[("payments", next(f for f in manifest["feeds"]["payments"]["files"] if "branch" in f))] == "missing_column:method"
    assert rejected[("ami", next(f for f in manifest["feeds"]["ami"]["files"] if "corrupt" in f))] == "unreadable"
    for feed, spec in FEEDS.items():
        for name in manifest["feeds"][feed]["files"]:
            table = _read(root / feed / name)
            reason = rejected.get((feed, name))
            if reason == "unreadable":
                assert table is None
                continue
            header = {h.lower() for h in table[0]}
            missing = set(spec.column_names) - header
            if reason and reason.startswith("missing_column:"):
                assert missing == {reason.split(":", 1)[1]}
            else:
                assert not missing, (feed, name, missing)


def test_manifest_matches_an_independent_reading(landing, reference) -> None:
    """Landed / current / superseded / quarantined-by-rule, re-derived from the raw files."""
    _, manifest = landing
    for feed in FEED_ORDER:
        got = {k: v for k, v in reference.result[feed].items() if k != "current_rows"}
        want = {k: manifest["feeds"][feed][k] for k in got}
        assert got == want, feed
        f = manifest["feeds"][feed]
        assert f["landed_rows"] == f["expected_current"] + f["expected_superseded"] + sum(f["expected_quarantined"].values())


def test_every_rule_and_defect_is_planted(landing) -> None:
    _, manifest = landing
    seen = Counter()
    for f in manifest["feeds"].values():
        seen.update(f["expected_quarantined"])
    assert set(seen) == set(RULES)
    ami = manifest["feeds"]["ami"]
    assert ami["defects"]["reread_fills_missing"] >= 1 and ami["defects"]["reread_corrects_estimated"] >= 1
    assert ami["expected_superseded"] == ami["defects"]["reread_fills_missing"] + ami["defects"]["reread_corrects_estimated"] + ami["defects"]["exact_duplicate"]
    bills = manifest["feeds"]["bills"]
    # corrections + one exact copy supersede; the bad 'abc' correction and the ambiguous pair do not
    assert bills["expected_superseded"] == bills["defects"]["amount_corrected_in_later_extract"] + bills["defects"]["exact_duplicate"]


def test_domains_hold_outside_planted_defects(landing, reference) -> None:
    """Rows the reference reads as good respect every domain; bad rows are exactly the planted ones."""
    root, manifest = landing
    planted = pd.read_csv(root / "_truth" / "defects.csv")
    for feed in FEED_ORDER:
        rows = reference.rows[feed]
        bad = Counter(rule for _, _, rule in rows if rule and rule != "unknown_reference")
        want = Counter(planted.loc[(planted["feed"] == feed) & ~planted["rule"].isin(["superseded", "ambiguous_key", "unknown_reference", "wrong_field_count", "file_rejected"]), "rule"])
        assert bad == want, feed
        for _, d, rule in rows:
            if rule is None:
                for c in FEEDS[feed].columns:
                    if c.domain and d.get(c.name):
                        assert d[c.name] in c.domain


def test_foreign_keys_point_at_current_accounts(reference) -> None:
    meters = reference.refs["accounts.meter_id"]
    premises = reference.refs["accounts.premise_id"]
    ami_meters = {d["meter_id"] for _, d, rule in reference.rows["ami"] if rule is None}
    assert ami_meters and ami_meters <= meters
    assert {d["premise_id"] for _, d, rule in reference.rows["outages"] if rule is None} <= premises
    accounts = reference.result["accounts"]["current_rows"]
    moved = [a for a in accounts if a["end_date"]]
    assert moved, "some accounts move out"
    for a in moved:
        nxt = [b for b in accounts if b["premise_id"] == a["premise_id"] and b["start_date"] > a["end_date"]]
        assert nxt and (datetime.fromisoformat(nxt[0]["start_date"]) - datetime.fromisoformat(a["end_date"])).days == 1


def test_ami_crosses_both_dst_transitions(reference) -> None:
    tz = ZoneInfo(TZ)
    rows = [d for name, d, rule in reference.rows["ami"] if rule is None and "_part-" in name]
    meter = rows[0]["meter_id"]
    per_day = Counter(_parse_ts(d["interval_start"], tz)[1].astimezone(tz).date().isoformat() for d in rows if d["meter_id"] == meter)
    assert per_day["2025-03-09"] == 23 and per_day["2025-11-02"] == 25
    assert per_day["2025-06-15"] == 24 and len(per_day) == 396  # 2024-12-01 .. 2025-12-31
    spellings = Counter("Z" if d["interval_start"].endswith("Z") else "offset" for d in rows)
    assert spellings["Z"] > 0.9 * len(rows)  # a few meters' head-ends may write -06:00/-05:00
    quality = Counter(d["quality"] for d in rows)
    assert quality["A"] > 0.95 * len(rows) and quality["E"] > 0 and quality["M"] > 0


def test_load_shapes_and_truth(landing, reference) -> None:
    root, _ = landing
    truth = pd.read_csv(root / "_truth" / "households.csv")
    for col in ("account_id", "latent_csat", "ev_adopter_future", "ev_adoption_date", "payment_risk", "income_band", "has_ev", "has_solar"):
        assert col in truth.columns
    assert truth["latent_csat"].between(1, 5).all() and truth["payment_risk"].between(0, 1).all()
    kwh = pd.DataFrame([d for name, d, rule in reference.rows["ami"] if rule is None and "_part-" in name and d["kwh"]])
    kwh["kwh"] = kwh["kwh"].astype(float)
    meter_of = truth.drop_duplicates("meter_id").set_index("meter_id")
    solar = set(meter_of.index[meter_of["has_solar"]])
    if solar:
        assert kwh.loc[kwh["meter_id"].isin(solar), "kwh"].min() < 0  # midday export
    assert kwh.loc[~kwh["meter_id"].isin(solar), "kwh"].min() >= 0


def test_same_seed_same_files(landing, landing_again) -> None:
    root, _ = landing
    for feed in FEEDS:
        for p in sorted((root / feed).iterdir()):
            other = landing_again / feed / p.name
            if "_part-" in p.name:
                assert gzip.decompress(p.read_bytes()) == gzip.decompress(other.read_bytes()), p.name
            else:
                assert p.read_bytes() == other.read_bytes(), p.name
    assert json.loads((root / "_manifest.json").read_text()) == json.loads((landing_again / "_manifest.json").read_text())


def _norm(addr: str) -> str:
    s = addr.upper().replace(".", "").replace(",", "")
    for a, b in (("STREET", "ST"), ("AVENUE", "AVE"), (" AV ", " AVE "), ("ROAD", "RD"), ("DRIVE", "DR"), ("LANE", "LN"),
                 ("BOULEVARD", "BLVD"), ("COURT", "CT"), ("CIRCLE", "CIR"), ("PARKWAY", "PKWY"), ("NORTH", "N"),
                 ("SOUTH", "S"), ("EAST", "E"), ("WEST", "W"), (" APT ", " # "), (" UNIT ", " # "), (" LOT ", " # "),
                 (" SPC ", " # "), (" #", " # ")):
        s = (s + " ").replace(a, b).strip()
    return re.sub(r"# ?", "#", " ".join(s.split()))


def test_household_addresses_in_another_style(landing, reference) -> None:
    root, _ = landing
    match = pd.read_csv(root / "_truth" / "premise_household_match.csv")
    accounts = {a["premise_id"]: a["service_address"] for a in reference.result["accounts"]["current_rows"]}
    records = {d["record_id"]: d["address_line"] for _, d, rule in reference.rows["households"] if rule is None}
    assert 0.8 <= len(match) / len(accounts) <= 0.97
    assert len(records) > len(match)  # some vendor records match no premise
    differ = 0
    for m in match.itertuples(index=False):
        ours, theirs = accounts[m.premise_id], records[m.record_id]
        assert _norm(ours) == _norm(theirs), (ours, theirs)
        differ += ours != theirs
        assert theirs == theirs.upper() and ours != ours.upper()
    assert differ == len(match)
