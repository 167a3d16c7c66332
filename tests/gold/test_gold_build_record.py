"""Gold's build record (no Spark): a table is built in part, skipped or rebuilt whole by what its
commit says it was built from, each silver input by version and by Delta table id."""

from __future__ import annotations

from datetime import date

from ucx_spark.pipelines.gold import (
    NO_CHANGE,
    TABLE_IDS,
    ami_changes_since_built,
    changes_since_built,
    settled_inputs,
)

PARAMS = {"time_zone": "America/Chicago"}


def _record(bills: int, accounts: int, *, ids: dict | None = None) -> dict:
    record = {"silver.bills": bills, "silver.accounts": accounts, "params": dict(PARAMS)}
    if ids is not None:
        record[TABLE_IDS] = ids
    return record


IDS = {"bills": "b-1", "accounts": "a-1"}


def test_a_moved_input_that_can_be_dated_is_built_in_part() -> None:
    now = _record(5, 3, ids=IDS)
    assert changes_since_built(_record(4, 3, ids=IDS), now, lambda table, since: date(2025, 3, 1)) \
        == (True, date(2025, 3, 1))
    assert changes_since_built(now, now, lambda table, since: date(2025, 3, 1)) == (True, None)


def test_an_input_built_again_under_a_new_id_rebuilds_whole_whatever_its_version() -> None:
    asked: list = []

    def first_changed(table: str, since: int) -> date | None:
        asked.append((table, since))
        return NO_CHANGE

    rebuilt = _record(4, 3, ids={**IDS, "bills": "b-2"})  # same version numbers, another table
    previous = _record(4, 3, ids=IDS)
    assert changes_since_built(previous, rebuilt, first_changed) == (False, None)
    assert settled_inputs(previous, rebuilt, first_changed) is previous
    assert asked == []  # the old table's versions are never read against the new one


def test_a_record_from_before_table_ids_rebuilds_once() -> None:
    """Upgrading: a commit written before the ids were recorded is not comparable (one whole
    rebuild); the record the rebuild writes is."""
    old = _record(4, 3)
    now = _record(4, 3, ids=IDS)
    assert changes_since_built(old, now, lambda table, since: None) == (False, None)
    assert settled_inputs(old, now, lambda table, since: NO_CHANGE) is old


def test_inputs_moved_only_by_updates_that_changed_nothing_count_as_where_they_were() -> None:
    previous, now = _record(4, 3, ids=IDS), _record(4, 7, ids=IDS)
    settled = settled_inputs(previous, now, lambda table, since: NO_CHANGE)
    assert settled == now


def test_a_table_built_through_a_day_settles_changes_after_it_and_not_on_it() -> None:
    """usage_baselines and bill_explanations read nothing dated after their ``through``: a daily
    load inside the month settles; a change on the day itself, or one that cannot be dated, does
    not; a moved ``through`` (a month completed) is another build whatever the inputs say."""
    def record(bills: int, through: str) -> dict:
        return {**_record(bills, 3, ids=IDS), "params": {**PARAMS, "through": through}}

    previous, now = record(4, "2025-03-31"), record(5, "2025-03-31")
    assert settled_inputs(previous, now, lambda table, since: date(2025, 4, 1)) == now
    assert settled_inputs(previous, now, lambda table, since: date(2025, 3, 31)) == previous
    assert settled_inputs(previous, now, lambda table, since: None) == previous
    month_done = record(5, "2025-04-30")
    assert settled_inputs(previous, month_done, lambda table, since: date(2025, 4, 1)) != month_done


def test_the_baselines_are_built_through_the_last_complete_month() -> None:
    from ucx_spark.insights.baselines import baseline_through

    assert baseline_through(date(2025, 11, 30)) == date(2025, 11, 30)
    assert baseline_through(date(2025, 11, 29)) == date(2025, 10, 31)
    assert baseline_through(date(2024, 3, 1)) == date(2024, 2, 29)
    assert baseline_through(date(2024, 12, 31)) == date(2024, 12, 31)


def test_meter_days_take_the_changed_ami_days_and_every_day_from_a_dated_accounts_change() -> None:
    ids = {"ami_daily": "d-1", "accounts": "a-1"}

    def record(daily: int, accounts: int) -> dict:
        return {"silver.ami_daily": daily, "silver.accounts": accounts, "params": dict(PARAMS), TABLE_IDS: ids}

    ami_days = lambda since: [date(2025, 3, 30), date(2025, 2, 1)]  # noqa: E731
    moved_out = lambda table, since: date(2025, 3, 29)  # noqa: E731
    # silver/ami_daily alone moved: its changed days, whether or not other inputs may be dated
    assert ami_changes_since_built(record(4, 3), record(5, 3), ami_days) == (True, [date(2025, 2, 1), date(2025, 3, 30)])
    # accounts moved too: without a way to date it, rebuild whole
    assert ami_changes_since_built(record(4, 3), record(5, 4), ami_days) == (False, [])
    # dated (a move-out on March 29): March 29 through the last meter-day join the changed days
    assert ami_changes_since_built(record(4, 3), record(5, 4), ami_days, first_changed=moved_out,
                                   last_day=date(2025, 3, 31)) \
        == (True, [date(2025, 2, 1), date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)])
    # a change after the last meter-day touches none; one no day bounds rebuilds whole
    assert ami_changes_since_built(record(5, 3), record(5, 4), ami_days, first_changed=lambda t, s: date(2025, 4, 2),
                                   last_day=date(2025, 3, 31)) == (True, [])
    assert ami_changes_since_built(record(5, 3), record(5, 4), ami_days, first_changed=lambda t, s: None,
                                   last_day=date(2025, 3, 31)) == (False, [])
