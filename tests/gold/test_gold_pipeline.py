"""pipelines.gold smoke test: silver Delta tables in, three gold tables out, no PII."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ucx_spark.gold.cx_kpis import CONTRACT_KPIS
from ucx_spark.gold.privacy import FORBIDDEN_COLUMNS, forbidden_columns_in
from ucx_spark.io.delta import overwrite_table, read_table
from ucx_spark.pipelines import gold
from ucx_spark.pipelines.gold import empty_silver_schema, month_ends_between

TZ = "America/Chicago"


def test_month_ends_between():
    assert month_ends_between(date(2024, 1, 15), date(2024, 3, 31)) == [date(2024, 1, 31), date(2024, 2, 29),
                                                                         date(2024, 3, 31)]
    assert month_ends_between(date(2024, 1, 1), date(2024, 1, 30)) == []


def test_run_writes_gold_without_pii(spark, tmp_warehouse):
    wh = str(tmp_warehouse)
    accounts = spark.createDataFrame(
        [
            ("a1", "c1", "p1", "m1", "Ann Example", "1 Main St", "Town", "TX", "75001", "RES", "R1", "w1",
             date(2023, 1, 1), None, "ann@example.com", "555-0100", "h1", "k1"),
        ],
        "account_id string, customer_id string, premise_id string, meter_id string, customer_name string, "
        "service_address string, city string, state string, zip string, customer_class string, rate_plan string, "
        "weather_station_id string, start_date date, end_date date, email string, phone string, "
        "household_id string, meter_key string",
    )
    ami = spark.createDataFrame(
        [
            ("m1", "k1", datetime(2024, 1, 31, 18, tzinfo=UTC), 60, 1.5, "A"),
            ("m1", "k1", datetime(2024, 2, 29, 18, tzinfo=UTC), 60, None, "M"),
        ],
        "meter_id string, meter_key string, interval_start timestamp, interval_minutes int, kwh double, "
        "quality string",
    )
    overwrite_table(accounts, wh, "silver", "accounts")
    overwrite_table(ami, wh, "silver", "ami")
    result = gold.run(spark, warehouse=wh, time_zone=TZ, run_id="r1", min_households=1)

    assert [t for t, _ in result.tables] == list(gold.TABLES)
    assert result.as_of_dates == (date(2024, 1, 31), date(2024, 2, 29))
    assert "surveys" in result.missing_silver and "accounts" not in result.missing_silver
    counts = dict(result.rows)
    # 2 months x (all + class + plan + zip + income_band 'unknown') x KPIs
    assert counts == {"meter_daily_usage": 2, "cx_kpis": 2 * 5 * len(CONTRACT_KPIS), "household_features": 2,
                      "survey_features": 0,  # no surveys landed
                      "contact_insights": 0, "usage_baselines": 0, "bill_explanations": 0}  # no contact, weather, bill
    for table in gold.TABLES:
        schema = read_table(spark, wh, "gold", table).schema
        assert forbidden_columns_in(schema) == [], table
        assert not {f.name for f in schema.fields} & set(FORBIDDEN_COLUMNS)
    assert "summary" in dir(result) and "household_features 2 rows" in result.summary()
    assert {f.name for f in empty_silver_schema("contacts").fields} >= {"account_id", "household_id", "started_at"}
