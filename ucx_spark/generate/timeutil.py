"""Time helpers of the generator: the covered period, DST transitions, timestamp spellings.

Every timestamp the generator writes goes through one of the ``fmt_*`` helpers, so
the spellings the contract allows (``Z``, ``+HH:MM``, offset-less local) are
produced in one place and an offset-less local time is never accidentally
written inside a DST gap or overlap (that would be an unplanned bad row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Period:
    """The calendar months covered by the data, in the utility time zone."""

    start_date: date
    end_date: date  # inclusive
    time_zone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def start_utc(self) -> datetime:
        return local_midnight_utc(self.start_date, self.tz)

    @property
    def end_utc(self) -> datetime:
        """Exclusive end: local midnight after end_date."""
        return local_midnight_utc(self.end_date + timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def day(self, idx: int) -> date:
        return self.start_date + timedelta(days=int(idx))


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1) if d.day == 1 else date(d.year + y, m + 1, min(d.day, 28))


def period_for(end_date: str, months: int, time_zone: str) -> Period:
    """The ``months`` calendar months ending at ``end_date`` (start = end + 1 day - months)."""
    end = date.fromisoformat(end_date)
    after = end + timedelta(days=1)
    start = add_months(after, -months) if after.day == 1 else end - timedelta(days=round(months * 30.44) - 1)
    return Period(start, end, time_zone)


def local_midnight_utc(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def fmt_z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_offset(ts: datetime, tz: ZoneInfo) -> str:
    local = ts.astimezone(tz)
    off = local.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hh:02d}:{mm:02d}"


def is_unsafe_local(naive: datetime, tz: ZoneInfo) -> bool:
    """True when an offset-less local time falls in a DST gap or overlap of ``tz``."""
    a = naive.replace(tzinfo=tz, fold=0)
    b = naive.replace(tzinfo=tz, fold=1)
    if a.utcoffset() != b.utcoffset():
        return True
    round_trip = a.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return round_trip != naive


def fmt_local(ts: datetime, tz: ZoneInfo, *, sep: str = "T") -> str:
    """Offset-less local spelling; falls back to an explicit offset where that would be ambiguous."""
    naive = ts.astimezone(tz).replace(tzinfo=None)
    if is_unsafe_local(naive, tz):
        return fmt_offset(ts, tz)
    return naive.strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def parse_ts(raw: str, tz: ZoneInfo) -> datetime:
    """Parse a timestamp spelled by the fmt_* helpers (for keys of the generator's own accounting)."""
    s = raw.strip().replace(" ", "T").replace("t", "T")
    if s[-1] in "Zz":
        return datetime.fromisoformat(s[:-1]).replace(tzinfo=UTC)
    if len(s) > 19 and s[-6] in "+-":
        return datetime.fromisoformat(s).astimezone(UTC)
    return datetime.fromisoformat(s).replace(tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Transition:
    kind: str  # "gap" (spring forward) or "overlap" (fall back)
    at_utc: datetime
    local_example: datetime  # a naive local time inside the gap / overlap


def dst_transitions(tz: ZoneInfo, start: date, end: date) -> list[Transition]:
    """DST transitions of ``tz`` between two dates, found by scanning hourly offsets."""
    out: list[Transition] = []
    t = datetime(start.year, start.month, start.day, tzinfo=UTC)
    stop = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    prev = t.astimezone(tz).utcoffset()
    while t < stop:
        nxt = t + timedelta(hours=1)
        off = nxt.astimezone(tz).utcoffset()
        if off != prev and off is not None and prev is not None:
            if off > prev:
                out.append(Transition("gap", nxt, (nxt + prev).replace(tzinfo=None)))
            else:
                out.append(Transition("overlap", nxt, (nxt + off).replace(tzinfo=None)))
        prev = off
        t = nxt
    return out


def interval_frame(period: Period, interval_minutes: int) -> pd.DataFrame:
    """One row per AMI interval of the period: UTC/offset spellings and local calendar fields.

    Computed once on the driver (tens of thousands of rows) and broadcast, so the
    Spark job never converts time zones per meter-interval.
    """
    n = int((period.end_utc - period.start_utc).total_seconds() // 60 // interval_minutes)
    utc_idx = pd.date_range(period.start_utc, periods=n, freq=f"{interval_minutes}min", tz="UTC")
    local = utc_idx.tz_convert(period.time_zone)
    offsets = (local.tz_localize(None) - utc_idx.tz_localize(None)).total_seconds().astype(int) // 60
    sign = np.where(offsets < 0, "-", "+")
    hh = np.abs(offsets) // 60
    mm = np.abs(offsets) % 60
    off_str = pd.Series(sign) + pd.Series(hh).map("{:02d}".format) + ":" + pd.Series(mm).map("{:02d}".format)
    local_naive = local.tz_localize(None)
    start_local = pd.Timestamp(period.start_date)
    night = local_naive + pd.Timedelta(hours=3)  # a "night" runs 21:00 -> 21:00 local
    df = pd.DataFrame(
        {
            "t": np.arange(n, dtype=np.int64),
            "ts_z": utc_idx.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ts_off": pd.Series(local_naive.strftime("%Y-%m-%dT%H:%M:%S")) + off_str,
            "hour_idx": ((utc_idx - utc_idx[0]).total_seconds() // 3600).astype(np.int64),
            "local_day": (local_naive.normalize() - start_local).days.astype(np.int64),
            "local_hour": local_naive.hour + local_naive.minute / 60.0,
            "dow": local_naive.dayofweek,
            "doy": local_naive.dayofyear,
            "night_day": (night.normalize() - start_local).days.astype(np.int64),
            "night_minute": (night.hour * 60 + night.minute).astype(np.int64),
        }
    )
    return df
