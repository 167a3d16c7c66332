"""Real-shaped meters publish (issue 24): OpenEEmeter's sample meters and one household meter.

Five meters of OpenEEmeter's samples (hourly and half-hourly, 2012-2018, a
meter whose reads start at 20:00 local, blackout days) and one household meter
in naive local time with days sent as ``M`` for every interval and a day with
no reads: the first run must publish gold/meter_daily_usage (a day of a
handful of meters is one meter's gap, reported, not a broken extract), with the
gap days in ``intervals_missing`` and every landed row accounted for.
"""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from realmeters import HOUSEHOLD_GAP_DAYS, HOUSEHOLD_SILENT_DAY, eemeter_rows, household_meter_rows, write_landing

from ucx_spark.config import Config
from ucx_spark.io.delta import read_table
from ucx_spark.pipelines import medallion

pytestmark = pytest.mark.slow  # long: CI and `make test-all` run it, `make test` leaves it out

KEY = b"real-meters-key"


@pytest.fixture(scope="module")
def real_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("real-meters")
    landed = write_landing(root / "landing", [*eemeter_rows(), ("HH1", household_meter_rows("HH1"))])
    cfg = Config().with_paths(landing=str(root / "landing"), warehouse=str(root / "warehouse"))
    result = medallion.run(spark, cfg=cfg, pseudonym_key=KEY, run_id="real-1")
    return cfg, landed, result


def test_real_meters_first_run_publishes(spark, real_run):
    cfg, landed, result = real_run
    wh = cfg.paths.warehouse
    ami = {r["feed"]: r for r in result.accounting}["ami"]
    assert ami["landed"] == sum(landed.values())
    assert ami["landed"] == ami["current"] + ami["superseded"] + ami["quarantined"]
    usage_df = read_table(spark, wh, "gold", "meter_daily_usage")
    daily_df = read_table(spark, wh, "silver", "ami_daily")
    assert usage_df.count() == daily_df.count() > 3000
    records = {
        (r["layer"], r["table"]): r["observed_value"]
        for r in read_table(spark, wh, "gold", "quality_results")
        .filter((F.col("run_id") == "real-1") & (F.col("expectation_id") == "ami_completeness"))
        .collect()
    }
    for text in records.values():
        assert text.startswith("0 local days judged"), text
        assert "expected meters not judged" in text and "single meters' gaps, reported" in text
    assert set(records) == {("silver", "ami_daily"), ("gold", "meter_daily_usage")}


def test_household_gap_days_show_as_missing(spark, real_run):
    cfg, _, _ = real_run
    accounts = read_table(spark, cfg.paths.warehouse, "silver", "accounts").filter(F.col("meter_id") == "HH1")
    household_id = accounts.select("household_id").first()[0]
    rows = {
        r["local_date"]: r
        for r in read_table(spark, cfg.paths.warehouse, "gold", "meter_daily_usage")
        .filter(F.col("household_id") == household_id).collect()
    }
    for day in HOUSEHOLD_GAP_DAYS:
        assert rows[day]["kwh"] is None and rows[day]["intervals_actual"] == 0
        assert rows[day]["intervals_missing"] == rows[day]["expected_intervals"]
    assert HOUSEHOLD_SILENT_DAY not in rows
