"""Gold rebuilds keep rows another command owns (io/delta.overwrite_table with ``keep``): `ucx segment`'s
persona KPIs survive a later `ucx pipeline` rebuild of gold/cx_kpis."""

from __future__ import annotations

from datetime import date

from chispa import assert_df_equality

from ucx_spark.io.delta import overwrite_table, read_table, replace_rows_where, table_path

SCHEMA = "month date, segment_type string, segment_value string, kpi string, value double, n long"
KEEP = "segment_type = 'persona'"


def test_a_rebuild_replaces_its_rows_and_keeps_the_persona_rows(spark, tmp_path) -> None:
    wh = tmp_path / "wh"
    m = date(2025, 1, 1)
    overwrite_table(spark.createDataFrame([(m, "all", "all", "nps", 10.0, 40), (m, "zip", "1", "nps", 5.0, 20)],
                                          SCHEMA), wh, "gold", "cx_kpis")
    persona = spark.createDataFrame([(m, "persona", "persona_01", "nps", 7.0, 30)], SCHEMA)
    replace_rows_where(persona, table_path(wh, "gold", "cx_kpis"), predicate=KEEP)
    rebuilt = spark.createDataFrame([(m, "all", "all", "nps", 12.0, 41), (m, None, None, "nps", 1.0, 2)], SCHEMA)
    overwrite_table(rebuilt, wh, "gold", "cx_kpis", keep=KEEP, user_metadata='{"run_id": "r2"}')
    assert_df_equality(read_table(spark, wh, "gold", "cx_kpis"), rebuilt.unionByName(persona),
                       ignore_row_order=True, ignore_nullable=True)

    # a schema change cannot carry the kept rows over: a plain overwrite
    wider = rebuilt.withColumn("note", rebuilt["kpi"])
    overwrite_table(wider, wh, "gold", "cx_kpis", keep=KEEP)
    assert_df_equality(read_table(spark, wh, "gold", "cx_kpis"), wider, ignore_row_order=True, ignore_nullable=True)


def test_the_first_write_creates_the_table(spark, tmp_path) -> None:
    df = spark.createDataFrame([(date(2025, 1, 1), "all", "all", "nps", 10.0, 40)], SCHEMA)
    overwrite_table(df, tmp_path / "wh", "gold", "cx_kpis", keep=KEEP)
    assert_df_equality(read_table(spark, tmp_path / "wh", "gold", "cx_kpis"), df, ignore_nullable=True)
