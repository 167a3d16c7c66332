"""Landing zones of real-shaped meters (issue 24: the completeness gate must let them publish).

- ``eemeter_landing``: OpenEEmeter's five electricity sample meters, as the
  ``eemeter`` wheel (a development dependency) ships them: two Illinois meters
  (hourly, offsets, 2015-2018), three UK meters (one hourly in UTC from
  2020-03-31 20:00 Chicago time, two half-hourly in naive time, 2012-2014),
  with the gaps and blackout days of the samples.
- ``household_meter_rows``: one household's 15-minute meter in naive local
  time, shaped like the converted public 2006-2010 household series: a first
  day that starts mid-afternoon, days the head-end sent as ``M`` for every
  interval, a day with no reads at all, scattered missing intervals, and the
  DST changes of a naive local clock (the fall-back hour twice: ambiguous).

Each meter gets one residential account that starts before its first read and
stays active. Nothing else lands: the pipeline must publish gold/meter_daily_usage
from these alone.
"""

from __future__ import annotations

import csv
import gzip
import math
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

EEMETER_SAMPLES = (
    ("il-electricity-cdd-hdd-hourly", 60),
    ("il-electricity-cdd-only-hourly", 60),
    ("uk-electricity-hdd-only-hourly-sample-0", 60),
    ("uk-electricity-hdd-only-hourly-sample-1", 30),
    ("uk-electricity-hdd-only-hourly-sample-2", 30),
)
AMI_HEADER = ["meter_id", "interval_start", "interval_minutes", "kwh", "quality"]
ACCOUNT_HEADER = ["account_id", "customer_id", "premise_id", "meter_id", "customer_name", "service_address",
                  "city", "state", "zip", "customer_class", "rate_plan", "weather_station_id", "start_date",
                  "end_date", "email", "phone"]
HOUSEHOLD_GAP_DAYS = (date(2007, 4, 29), date(2007, 8, 14), date(2008, 1, 9))  # every interval M
HOUSEHOLD_SILENT_DAY = date(2007, 11, 20)  # no reads at all


def _samples_dir() -> Path:
    import eemeter

    return Path(eemeter.__file__).parent / "eemeter" / "samples"


def eemeter_rows() -> list[tuple[str, list[list[str]]]]:
    """(meter_id, ami rows) of the five electricity samples, timestamps as the files write them."""
    out = []
    for i, (sample, minutes) in enumerate(EEMETER_SAMPLES, start=1):
        with gzip.open(_samples_dir() / f"{sample}.csv.gz", "rt", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [[f"EEM{i}", r["start"], str(minutes), r["value"], "A"] for r in reader if r["value"] != ""]
        out.append((f"EEM{i}", rows))
    return out


def household_meter_rows(meter_id: str = "HH1", *, first: date = date(2006, 12, 16),
                         last: date = date(2008, 6, 30), time_zone: str = "America/Chicago") -> list[list[str]]:
    """One real-shaped 15-minute meter in naive local time (see the module docstring)."""
    tz = ZoneInfo(time_zone)
    start = datetime(first.year, first.month, first.day, 17, 24, tzinfo=tz).astimezone(ZoneInfo("UTC"))
    start = start.replace(minute=start.minute - start.minute % 15, second=0)
    end = datetime(last.year, last.month, last.day, tzinfo=tz).astimezone(ZoneInfo("UTC")) + timedelta(days=1)
    rows, t, i = [], start, 0
    while t < end:
        local = t.astimezone(tz)
        day = local.date()
        i += 1
        if day != HOUSEHOLD_SILENT_DAY and i % 997 != 0:  # scattered lost intervals
            hour = local.hour + local.minute / 60
            kwh = 0.08 + 0.25 * max(0.0, math.sin((hour - 6) / 24 * 2 * math.pi)) + 0.03 * (i % 7)
            stamp = local.strftime("%Y-%m-%d %H:%M:%S")  # naive local clock
            if day in HOUSEHOLD_GAP_DAYS:
                rows.append([meter_id, stamp, "15", "", "M"])
            else:
                rows.append([meter_id, stamp, "15", f"{kwh:.3f}", "A"])
        t += timedelta(minutes=15)
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_landing(landing: Path, meters: list[tuple[str, list[list[str]]]]) -> dict[str, int]:
    """One AMI extract per meter and one accounts extract; returns landed AMI rows per meter."""
    accounts = []
    for n, (meter_id, rows) in enumerate(meters, start=1):
        _write(landing / "ami" / f"ami_20260101T0000{n:02d}Z_{meter_id.lower()}.csv", AMI_HEADER, rows)
        accounts.append([f"A{n}", f"C{n}", f"P{n}", meter_id, f"Customer {n}", f"{n} Main St", "Springfield",
                         "IL", "62701", "RES", "R1", "ST1", "2005-01-01", "", "", ""])
    _write(landing / "accounts" / "accounts_20260101T000000Z.csv", ACCOUNT_HEADER, accounts)
    return {m: len(r) for m, r in meters}
