"""Labels with honest time: features describe days up to ``as_of_date`` D, labels
come from the window after it, ``(D, D + horizon]``.

Every label function takes the *population* (the ``household_id, as_of_date``
rows of ``gold/household_features``) and a silver table, and returns one row per
household and as-of date that belongs to the population at risk, with columns

- ``household_id`` string, ``as_of_date`` date
- ``label`` double (1/0 for classifiers, mean CSAT for ``csat``; null for
  households that did not answer a survey)
- ``label_event_date`` date: the first event that made the label (null when none)
- ``window_start`` date (= D + 1 day) and ``window_end`` date (= D + horizon)

Only as-of dates whose whole label window lies inside the data
(``window_end <= data_end``) are kept, so a late as-of date never yields a
"negative" that is only a not-yet-observed positive.

Modelling decisions (stated once, here):

- EV adoption: positive when the household enrolls in ``ev_rate`` or
  ``ev_charger_rebate`` in (D, D+12 months]. A household with any EV enrollment
  on or before D (still enrolled or not) has already adopted: it is not at risk
  of a first adoption and is excluded, never an easy positive.
- Payment risk: positive when a ``disconnect_notice`` is dated in
  (D, D+6 months]. Households already in the disconnection process, i.e. with a
  ``disconnect_notice`` or ``disconnect`` in (D-6 months, D], are excluded: their
  next notice is a continuation of a known case, not a prediction. Past-due
  notices and payment arrangements stay in the population (they are signals).
- CSAT: the label is the mean ``csat`` of the household's survey responses with
  a local response date in (D, D+6 months]; ``responded`` is 1 when there is
  at least one. Everybody stays in the population: the respondents train the
  CSAT model with inverse response-propensity weights, the rest are predicted.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ucx_spark.errors import DataError

EV_PROGRAMS: tuple[str, ...] = ("ev_rate", "ev_charger_rebate")
EV_HORIZON_MONTHS = 12
PAYMENT_HORIZON_MONTHS = 6
PAYMENT_LOOKBACK_MONTHS = 6
CSAT_HORIZON_MONTHS = 6
HORIZON_MONTHS: dict[str, int] = {
    "ev_adoption": EV_HORIZON_MONTHS,
    "payment_risk": PAYMENT_HORIZON_MONTHS,
    "csat": CSAT_HORIZON_MONTHS,
}
LABEL_COLUMNS = ("household_id", "as_of_date", "label", "label_event_date", "window_start", "window_end")


class LabelLeakError(DataError):
    """A label uses information dated on or before its as-of date, or a window outside the data."""


def _window(df: DataFrame, *, horizon_months: int, data_end: date) -> DataFrame:
    """Add window_start/window_end and keep the as-of dates whose window is complete."""
    return (
        df.withColumn("window_start", F.date_add(F.col("as_of_date"), 1))
        .withColumn("window_end", F.add_months(F.col("as_of_date"), horizon_months))
        .filter(F.col("window_end") <= F.lit(data_end))
    )


def _population(population_df: DataFrame) -> DataFrame:
    return population_df.select("household_id", "as_of_date").dropDuplicates(["household_id", "as_of_date"])


def _in_window(event_date: Column) -> Column:
    return (event_date > F.col("as_of_date")) & (event_date <= F.col("window_end"))


EV_ADOPTED_REASON = "already enrolled in ev_rate or ev_charger_rebate (not at risk of a first adoption)"
IN_COLLECTIONS_REASON = "in the disconnection process (a disconnect_notice or disconnect in the last 6 months)"


def ev_adopted(population_df: DataFrame, programs_df: DataFrame) -> DataFrame:
    """household_id, as_of_date of the population rows outside the EV model's population: an
    enrollment in an EV program on or before as_of_date (still enrolled or not)."""
    ev_df = programs_df.filter(F.col("program").isin(*EV_PROGRAMS)).select("household_id", "enrolled_on")
    return (
        _population(population_df).join(ev_df, "household_id")
        .filter(F.col("enrolled_on") <= F.col("as_of_date"))
        .select("household_id", "as_of_date").distinct()
    )


def in_collections(population_df: DataFrame, collections_df: DataFrame, *,
                   lookback_months: int = PAYMENT_LOOKBACK_MONTHS) -> DataFrame:
    """household_id, as_of_date of the population rows outside the payment-risk population: a
    disconnect_notice or disconnect in (as_of_date - lookback, as_of_date]."""
    events_df = collections_df.filter(F.col("event_type").isin("disconnect_notice", "disconnect")).select(
        "household_id", "event_date")
    recent = (F.col("event_date") > F.add_months(F.col("as_of_date"), -lookback_months)) & (
        F.col("event_date") <= F.col("as_of_date"))
    return (
        _population(population_df).join(events_df, "household_id").filter(recent)
        .select("household_id", "as_of_date").distinct()
    )


def ev_adoption_labels(
    population_df: DataFrame,
    programs_df: DataFrame,
    *,
    data_end: date,
    horizon_months: int = EV_HORIZON_MONTHS,
) -> DataFrame:
    """EV adoption labels.

    Needs population (household_id, as_of_date) and silver/programs
    (household_id, program, enrolled_on). Returns LABEL_COLUMNS.
    """
    pop_df = _window(_population(population_df), horizon_months=horizon_months, data_end=data_end)
    pop_df = pop_df.join(ev_adopted(pop_df, programs_df), ["household_id", "as_of_date"], "left_anti")
    ev_df = programs_df.filter(F.col("program").isin(*EV_PROGRAMS)).select(
        "household_id", F.col("enrolled_on").alias("event_date")
    )
    agg_df = pop_df.join(ev_df, "household_id", "left").groupBy(*pop_df.columns).agg(
        F.min(F.when(_in_window(F.col("event_date")), F.col("event_date"))).alias("label_event_date"),
    )
    return agg_df.withColumn("label", F.col("label_event_date").isNotNull().cast("double")).select(*LABEL_COLUMNS)


def payment_risk_labels(
    population_df: DataFrame,
    collections_df: DataFrame,
    *,
    data_end: date,
    horizon_months: int = PAYMENT_HORIZON_MONTHS,
    lookback_months: int = PAYMENT_LOOKBACK_MONTHS,
) -> DataFrame:
    """Payment-risk labels.

    Needs population (household_id, as_of_date) and silver/collections
    (household_id, event_date, event_type). Returns LABEL_COLUMNS.
    """
    pop_df = _window(_population(population_df), horizon_months=horizon_months, data_end=data_end)
    pop_df = pop_df.join(in_collections(pop_df, collections_df, lookback_months=lookback_months),
                         ["household_id", "as_of_date"], "left_anti")
    notices_df = collections_df.filter(F.col("event_type") == "disconnect_notice").select("household_id", "event_date")
    agg_df = pop_df.join(notices_df, "household_id", "left").groupBy(*pop_df.columns).agg(
        F.min(F.when(_in_window(F.col("event_date")), F.col("event_date"))).alias("label_event_date"),
    )
    return agg_df.withColumn("label", F.col("label_event_date").isNotNull().cast("double")).select(*LABEL_COLUMNS)


def csat_labels(
    population_df: DataFrame,
    surveys_df: DataFrame,
    *,
    data_end: date,
    time_zone: str,
    horizon_months: int = CSAT_HORIZON_MONTHS,
) -> DataFrame:
    """CSAT labels for every household of the population.

    Needs population (household_id, as_of_date) and silver/surveys
    (household_id, responded_at UTC timestamp, csat). Returns LABEL_COLUMNS plus
    ``responded`` double (1 when the household answered with a csat in the window)
    and ``n_responses`` long; ``label`` is null for non-respondents.
    """
    pop_df = _window(_population(population_df), horizon_months=horizon_months, data_end=data_end)
    responses_df = surveys_df.filter(F.col("csat").isNotNull()).select(
        "household_id",
        F.to_date(F.from_utc_timestamp(F.col("responded_at"), time_zone)).alias("event_date"),
        F.col("csat").cast("double").alias("csat"),
    )
    joined_df = pop_df.join(responses_df, "household_id", "left")
    in_window = _in_window(F.col("event_date"))
    agg_df = joined_df.groupBy(*pop_df.columns).agg(
        F.avg(F.when(in_window, F.col("csat"))).alias("label"),
        F.min(F.when(in_window, F.col("event_date"))).alias("label_event_date"),
        F.count(F.when(in_window, F.col("csat"))).alias("n_responses"),
    )
    return agg_df.withColumn("responded", (F.col("n_responses") > 0).cast("double")).select(
        *LABEL_COLUMNS, "responded", "n_responses"
    )


def build_labels(
    model: str,
    population_df: DataFrame,
    source_df: DataFrame,
    *,
    data_end: date,
    time_zone: str = "UTC",
) -> DataFrame:
    """Dispatch to the label function of ``model`` (csat, ev_adoption, payment_risk)."""
    if model == "ev_adoption":
        return ev_adoption_labels(population_df, source_df, data_end=data_end)
    if model == "payment_risk":
        return payment_risk_labels(population_df, source_df, data_end=data_end)
    if model == "csat":
        return csat_labels(population_df, source_df, data_end=data_end, time_zone=time_zone)
    raise ValueError(f"unknown model '{model}' (allowed: csat, ev_adoption, payment_risk)")


def leak_violations(features_df: DataFrame, labels_df: DataFrame, *, data_end: date) -> dict[str, int]:
    """Count the rows that break honest time; all zero when there is no leak.

    - ``label_event_on_or_before_as_of``: a label event dated <= as_of_date
    - ``label_event_after_window``: a label event after window_end
    - ``window_starts_on_or_before_as_of``: the label window overlaps the feature window
    - ``window_beyond_data``: window_end after the last date of the data
    - ``feature_date_after_as_of``: a date/timestamp feature column later than its as_of_date
      (timestamps are allowed one day of slack for the UTC/local-day difference)
    """
    label_checks = {
        "label_event_on_or_before_as_of": F.col("label_event_date") <= F.col("as_of_date"),
        "label_event_after_window": F.col("label_event_date") > F.col("window_end"),
        "window_starts_on_or_before_as_of": F.col("window_start") <= F.col("as_of_date"),
        "window_beyond_data": F.col("window_end") > F.lit(data_end),
    }
    row = labels_df.agg(
        *[F.count(F.when(cond, 1)).alias(name) for name, cond in label_checks.items()]
    ).first()
    counts = {name: int(row[name]) for name in label_checks}
    date_cols = [
        f.name
        for f in features_df.schema.fields
        if f.name != "as_of_date" and isinstance(f.dataType, (T.DateType, T.TimestampType, T.TimestampNTZType))
    ]
    conds = []
    for name in date_cols:
        field = features_df.schema[name].dataType
        if isinstance(field, T.DateType):
            conds.append(F.col(name) > F.col("as_of_date"))
        else:
            conds.append(F.to_date(F.col(name)) > F.date_add(F.col("as_of_date"), 1))
    if conds:
        any_late = conds[0]
        for cond in conds[1:]:
            any_late = any_late | cond
        counts["feature_date_after_as_of"] = int(features_df.filter(any_late).count())
    else:
        counts["feature_date_after_as_of"] = 0
    return counts


def check_no_leak(features_df: DataFrame, labels_df: DataFrame, *, data_end: date) -> None:
    """Raise LabelLeakError when any label or feature breaks honest time (see leak_violations)."""
    counts = leak_violations(features_df, labels_df, data_end=data_end)
    bad = {name: n for name, n in counts.items() if n}
    if bad:
        detail = ", ".join(f"{name}: {n} row(s)" for name, n in sorted(bad.items()))
        raise LabelLeakError(f"labels leak across the as-of boundary ({detail})")


def usable_as_of_dates(as_of_dates: list[date], *, data_end: date, horizon_months: int) -> list[date]:
    """The as-of dates whose label window (D, D + horizon] ends on or before data_end, ascending."""
    from dateutil.relativedelta import relativedelta

    return sorted(d for d in set(as_of_dates) if d + relativedelta(months=horizon_months) <= data_end)
