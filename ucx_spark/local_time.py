"""Local calendar of the utility time zone as Column helpers (silver and gold: one definition).

The session time zone is UTC (layers.md), so ``from_utc_timestamp`` yields a
timestamp whose UTC wall clock is the local wall clock; ``to_date``/``hour``
of it are the local date and hour. The time zone is always a parameter.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def local_timestamp(instant: Column, *, time_zone: str) -> Column:
    """Wall-clock time in ``time_zone`` of a UTC instant (null stays null)."""
    return F.from_utc_timestamp(instant, time_zone)


def local_date(instant: Column, *, time_zone: str) -> Column:
    return F.to_date(local_timestamp(instant, time_zone=time_zone))


def local_month(instant: Column, *, time_zone: str) -> Column:
    """First day of the local month of a UTC instant."""
    return month_start(local_date(instant, time_zone=time_zone))


def month_start(day: Column) -> Column:
    return F.trunc(day, "month")


def local_midnight_utc(day: Column, *, time_zone: str) -> Column:
    """The UTC instant at which a local day starts."""
    return F.to_utc_timestamp(day.cast("timestamp"), time_zone)


def local_day_minutes(day: Column, *, time_zone: str) -> Column:
    """Length of a local day in minutes: 1440, or 1380/1500 on DST change days."""
    start = local_midnight_utc(day, time_zone=time_zone)
    end = local_midnight_utc(F.date_add(day, 1), time_zone=time_zone)
    return ((F.unix_timestamp(end) - F.unix_timestamp(start)) / 60).cast("int")


def minutes_between(start: Column, end: Column) -> Column:
    """(end - start) in minutes as a double; null if either is null."""
    return (F.unix_micros(end) - F.unix_micros(start)) / F.lit(60_000_000.0)


def is_active_on(day: Column, *, start_date: Column, end_date: Column) -> Column:
    """Contract section 4: start_date <= day and (end_date is null or end_date >= day)."""
    return (start_date <= day) & (end_date.isNull() | (end_date >= day))


def is_active_between(first_day: Column, last_day: Column, *, start_date: Column, end_date: Column) -> Column:
    """Active on any day of [first_day, last_day] (e.g. a month)."""
    return (start_date <= last_day) & (end_date.isNull() | (end_date >= first_day))
