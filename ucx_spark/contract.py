"""Contract v1 (../shared/contract.md) as data: the landing feeds.

Everything that parses, validates, generates or tests a feed reads it from
here, so a versioned change of the contract is a change of this one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTRACT_VERSION = 1

# Column kinds of the contract.
STRING = "string"
TIMESTAMP = "timestamp"  # RFC 3339, offset optional (then utility time zone)
DATE = "date"  # YYYY-MM-DD
INT = "int"
DECIMAL = "decimal"  # plain notation
MONEY = "money"  # USD, up to 2 decimals
BOOL = "bool"  # true/false, any case


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = STRING
    required: bool = False
    domain: tuple[str, ...] | None = None  # allowed codes (case-sensitive as written)
    int_domain: tuple[int, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None  # a regex the raw value must fully match
    pii: bool = False
    free_text: bool = False


@dataclass(frozen=True)
class ForeignKey:
    column: str
    feed: str  # the referenced feed
    ref_column: str


@dataclass(frozen=True)
class Feed:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def pii_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii or c.free_text)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"feed {self.name} has no column {name}")


def _c(name: str, kind: str = STRING, req: bool = False, **kw: object) -> Column:
    return Column(name, kind, req, **kw)  # type: ignore[arg-type]


def _fk_account() -> tuple[ForeignKey, ...]:
    return (ForeignKey("account_id", "accounts", "account_id"),)


PROGRAMS = (
    "autopay", "paperless", "budget_billing", "liheap", "ee_rebate",
    "ev_rate", "ev_charger_rebate", "solar", "demand_response",
)
PAYMENT_METHODS = ("autopay", "online", "phone", "mail", "in_person", "assistance")
COLLECTION_EVENTS = ("past_due_notice", "disconnect_notice", "disconnect", "reconnect", "payment_arrangement")
CONTACT_CHANNELS = ("phone", "chat", "email", "ivr", "web")
CONTACT_REASONS = ("billing", "payment", "outage", "start_stop", "program", "complaint", "other")
OUTAGE_CAUSES = ("weather", "equipment", "vegetation", "planned", "other")
MARKETING_CHANNELS = ("email", "sms", "direct_mail", "ivr")
MARKETING_EVENTS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "converted")
INCOME_BANDS = ("lt25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k_plus")
HOME_TYPES = ("single_family", "multi_family", "mobile_home")
TENURES = ("owner", "renter")
AMI_QUALITIES = ("A", "E", "M")
INTERVAL_MINUTES = (5, 15, 30, 60)

FEEDS: dict[str, Feed] = {
    f.name: f
    for f in (
        Feed(
            "ami",
            ("meter_id", "interval_start"),
            (
                _c("meter_id", req=True),
                _c("interval_start", TIMESTAMP, True),
                _c("interval_minutes", INT, True, int_domain=INTERVAL_MINUTES),
                _c("kwh", DECIMAL),
                _c("quality", req=True, domain=AMI_QUALITIES),
            ),
            (ForeignKey("meter_id", "accounts", "meter_id"),),
        ),
        Feed(
            "accounts",
            ("account_id",),
            (
                _c("account_id", req=True),
                _c("customer_id", req=True),
                _c("premise_id", req=True),
                _c("meter_id", req=True),
                _c("customer_name", req=True, pii=True),
                _c("service_address", req=True, pii=True),
                _c("city", req=True),
                _c("state", req=True),
                _c("zip", req=True, pattern=r"\d{5}"),
                _c("customer_class", req=True, domain=("RES", "COM")),
                _c("rate_plan", req=True),
                _c("weather_station_id", req=True),
                _c("start_date", DATE, True),
                _c("end_date", DATE),
                _c("email", pii=True),
                _c("phone", pii=True),
            ),
        ),
        Feed(
            "bills",
            ("bill_id",),
            (
                _c("bill_id", req=True),
                _c("account_id", req=True),
                _c("period_start", DATE, True),
                _c("period_end", DATE, True),
                _c("bill_date", DATE, True),
                _c("due_date", DATE, True),
                _c("kwh", DECIMAL, True),
                _c("amount_due", MONEY, True),
            ),
            _fk_account(),
        ),
        Feed(
            "payments",
            ("payment_id",),
            (
                _c("payment_id", req=True),
                _c("account_id", req=True),
                _c("paid_at", TIMESTAMP, True),
                _c("amount", MONEY, True),
                _c("method", req=True, domain=PAYMENT_METHODS),
            ),
            _fk_account(),
        ),
        Feed(
            "collections",
            ("event_id",),
            (
                _c("event_id", req=True),
                _c("account_id", req=True),
                _c("event_date", DATE, True),
                _c("event_type", req=True, domain=COLLECTION_EVENTS),
                _c("amount_past_due", MONEY),
            ),
            _fk_account(),
        ),
        Feed(
            "programs",
            ("account_id", "program", "enrolled_on"),
            (
                _c("account_id", req=True),
                _c("program", req=True, domain=PROGRAMS),
                _c("enrolled_on", DATE, True),
                _c("ended_on", DATE),
            ),
            _fk_account(),
        ),
        Feed(
            "contacts",
            ("contact_id",),
            (
                _c("contact_id", req=True),
                _c("account_id", req=True),
                _c("started_at", TIMESTAMP, True),
                _c("channel", req=True, domain=CONTACT_CHANNELS),
                _c("reason", req=True, domain=CONTACT_REASONS),
                _c("handle_seconds", INT, min_value=0),
                _c("first_contact_resolution", BOOL),
                _c("transcript", free_text=True),
            ),
            _fk_account(),
        ),
        Feed(
            "surveys",
            ("survey_id",),
            (
                _c("survey_id", req=True),
                _c("account_id", req=True),
                _c("responded_at", TIMESTAMP, True),
                _c("survey_type", req=True, domain=("relationship", "transactional")),
                _c("related_contact_id"),
                _c("csat", INT, min_value=1, max_value=5),
                _c("nps", INT, min_value=0, max_value=10),
                _c("ces", INT, min_value=1, max_value=7),
                _c("comment", free_text=True),
            ),
            _fk_account(),
        ),
        Feed(
            "outages",
            ("outage_id", "premise_id"),
            (
                _c("outage_id", req=True),
                _c("premise_id", req=True),
                _c("started_at", TIMESTAMP, True),
                _c("restored_at", TIMESTAMP),
                _c("first_etr", TIMESTAMP),
                _c("cause", domain=OUTAGE_CAUSES),
            ),
            (ForeignKey("premise_id", "accounts", "premise_id"),),
        ),
        Feed(
            "marketing",
            ("event_id",),
            (
                _c("event_id", req=True),
                _c("account_id", req=True),
                _c("campaign_id", req=True),
                _c("channel", req=True, domain=MARKETING_CHANNELS),
                _c("event_type", req=True, domain=MARKETING_EVENTS),
                _c("occurred_at", TIMESTAMP, True),
            ),
            _fk_account(),
        ),
        Feed(
            "weather",
            ("station_id", "observed_at"),
            (
                _c("station_id", req=True),
                _c("observed_at", TIMESTAMP, True),
                _c("temp_f", DECIMAL, True),
            ),
        ),
        Feed(
            "households",
            ("record_id",),
            (
                _c("record_id", req=True),
                _c("address_line", req=True, pii=True),
                _c("city", req=True),
                _c("state", req=True),
                _c("zip", req=True, pattern=r"\d{5}"),
                _c("income_band", domain=INCOME_BANDS),
                _c("household_size", INT, min_value=1),
                _c("home_type", domain=HOME_TYPES),
                _c("tenure", domain=TENURES),
                _c("year_built", INT, min_value=1800, max_value=2100),
                _c("vehicles", INT, min_value=0),
            ),
        ),
        Feed(
            "census",
            ("zip",),
            (
                _c("zip", req=True, pattern=r"\d{5}"),
                _c("median_household_income", DECIMAL, min_value=0),
                _c("pct_renter", DECIMAL, min_value=0, max_value=100),
                _c("pct_below_poverty", DECIMAL, min_value=0, max_value=100),
                _c("population", INT, min_value=0),
            ),
        ),
    )
}

# File names: <feed>_<YYYYMMDDTHHMMSSZ>[_<suffix>].csv or .csv.gz
FILE_NAME_RE = re.compile(
    r"^(?P<feed>[a-z]+)_(?P<ts>\d{8}T\d{6}Z)(?:_(?P<suffix>[^/]+?))?\.csv(?P<gz>\.gz)?$"
)

# Raw-value grammars of the contract, as Java regexes usable in Spark's rlike
# (and Python's re: the syntax used is common to both).
TIMESTAMP_RE = (
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
INT_RE = r"^[+-]?\d+$"
DECIMAL_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
MONEY_RE = r"^[+-]?\d+(\.\d{1,2})?$"
BOOL_RE = r"^(?i)(true|false)$"

# Feeds in dependency order: referenced feeds first.
FEED_ORDER = (
    "accounts", "households", "census", "weather", "ami", "bills", "payments",
    "collections", "programs", "contacts", "surveys", "outages", "marketing",
)
assert set(FEED_ORDER) == set(FEEDS)


def parse_file_name(name: str) -> tuple[str, str, str | None, bool] | None:
    """(feed, timestamp, suffix, gzipped) of a landing file name, or None if it does not match."""
    m = FILE_NAME_RE.match(name)
    if not m:
        return None
    return m["feed"], m["ts"], m["suffix"], bool(m["gz"])

# Quarantine rule names (column `rule` of quarantine/<feed>). A bad row gets
# the FIRST rule it breaks in this order, so every bad row has exactly one.
RULES = (
    "file_rejected",  # the row's file lacks a required column (contract)
    "wrong_field_count",  # the row has more or fewer fields than the header
    "missing_required",  # a required column is empty
    "bad_timestamp",  # not RFC 3339 as the contract allows (e.g. -0600 offset, no seconds, bad day)
    "nonexistent_local_time",  # offset-less timestamp in the DST gap of the utility time zone
    "ambiguous_local_time",  # offset-less timestamp in the DST overlap
    "bad_date",  # not YYYY-MM-DD or not a calendar date
    "bad_number",  # int/decimal/money not in plain notation (NaN, inf, 1,234, 12.345 for money)
    "bad_boolean",  # not true/false
    "out_of_domain",  # code not in its domain, value out of range, zip not 5 digits
    "kwh_quality_mismatch",  # ami: kwh present with quality M, or null with A/E
    "unknown_reference",  # foreign key not found (account_id, meter_id, premise_id)
    "ambiguous_key",  # same key twice in one extract with different values
)
