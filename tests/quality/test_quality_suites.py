"""Suite files: generated from the contract, committed, loadable, and every type known to GX."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ucx_spark.contract import FEEDS
from ucx_spark.errors import ConfigError
from ucx_spark.quality.checks import PreviousCount, freshness, referential_integrity, row_count_drift
from ucx_spark.quality.rows import quarantine_specs
from ucx_spark.quality.suites import (
    DEFAULT_SUITE_DIR,
    build_suites,
    dump_suite,
    load_suite,
    parse_suite,
    resolve_params,
    suite_path,
)


def test_committed_suites_match_the_generator():
    for suite in build_suites():
        path = suite_path(DEFAULT_SUITE_DIR, suite.layer, suite.table)
        assert path.is_file(), f"{path} missing: run python -m ucx_spark.quality.suites"
        assert path.read_text(encoding="utf-8") == dump_suite(suite), f"{path} is stale: regenerate"
        assert load_suite(DEFAULT_SUITE_DIR, suite.layer, suite.table) == suite


def test_every_table_has_a_suite_and_every_gx_type_exists():
    import great_expectations.expectations as gxe

    names = {s.name for s in build_suites()}
    expected = {f"{layer}.{feed}" for feed in FEEDS for layer in ("bronze", "silver")}
    expected |= {f"gold.{t}" for t in ("meter_daily_usage", "cx_kpis", "household_features", "household_scores")}
    assert expected <= names
    for suite in build_suites():
        for spec in suite.expectations:
            if not spec.is_custom:
                assert hasattr(gxe, "".join(p.capitalize() for p in spec.type.split("_"))), spec.type


def test_silver_suite_carries_the_contract_domains():
    by_id = {s.id: s for s in load_suite(DEFAULT_SUITE_DIR, "silver", "payments").expectations}
    assert by_id["in_set_method"].kwargs["value_set"] == list(FEEDS["payments"].column("method").domain or ())
    assert by_id["key_unique"].severity == "critical"
    assert by_id["fk_account_id"].kwargs["ref_table"] == "silver.accounts"
    assert by_id["freshness"].severity == "warning"
    routed = {s.id for s in quarantine_specs(load_suite(DEFAULT_SUITE_DIR, "silver", "payments"))}
    assert {"in_set_method", "not_null_amount"} <= routed and "key_unique" not in routed


def test_bad_suite_entries_are_named():
    with pytest.raises(ConfigError, match=r"expectations\[0\] \(x\): severity"):
        parse_suite({"layer": "gold", "table": "t", "expectations": [
            {"id": "x", "type": "expect_column_values_to_not_be_null", "severity": "fatal"}]}, origin="f.yaml")
    spec = load_suite(DEFAULT_SUITE_DIR, "gold", "cx_kpis").expectations[-1]
    assert resolve_params(spec, {"row_count_drift_max": 0.3}).kwargs["max_change"] == 0.3
    with pytest.raises(ConfigError, match="unknown threshold"):
        resolve_params(spec, {})


def test_referential_integrity_counts_missing_keys_ignoring_nulls(spark):
    df = spark.createDataFrame([("a1",), ("a2",), ("zz",), (None,), ("a1",)], "account_id string")
    ref = spark.createDataFrame([("a1",), ("a2",), ("a2",)], "account_id string")
    out = referential_integrity(df, ref, column="account_id", ref_column="account_id")
    assert (out.success, out.unexpected_count) == (False, 1)
    assert out.observed_value.startswith("1 of 4 rows (25.00%)")
    assert referential_integrity(df, ref, column="account_id", ref_column="account_id",
                                 max_missing_share=0.25).success


def test_freshness_and_drift(spark):
    df = spark.createDataFrame([(datetime(2026, 1, 1, 0, tzinfo=UTC),), (datetime(2026, 1, 2, 0, tzinfo=UTC),)],
                               "_extracted_at timestamp")
    now = datetime(2026, 1, 3, 12, tzinfo=UTC)
    stale = freshness(df, column="_extracted_at", max_age_hours=24, now=now)
    assert not stale.success and "2026-01-02T00:00:00Z, 36.0 h old" in stale.observed_value
    assert freshness(df, column="_extracted_at", max_age_hours=48, now=now).success
    assert row_count_drift(100, None, max_change=0.5).success
    assert "no comparable earlier batch" in row_count_drift(100, None, max_change=0.5).observed_value
    assert row_count_drift(140, PreviousCount("r0", 100), max_change=0.5).success
    assert not row_count_drift(40, PreviousCount("r0", 100), max_change=0.5).success
