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


AUDIT = "run_id string, tbl string, expectation string, success boolean"


def test_a_new_batch_is_appended_and_a_retry_replaces_its_rows(spark, tmp_path) -> None:
    """io/delta.replace_batches: a batch the log never named is a plain append; a retry replaces the
    batch's rows (stale rows of the earlier attempt go too); every commit names its batches."""
    from ucx_spark.io import delta_log
    from ucx_spark.io.delta import names_in_log, replace_batches

    path = table_path(tmp_path / "wh", "gold", "quality_results")

    def write(rows, tables):
        pred = " OR ".join(f"(run_id = 'r1' AND tbl = '{t}')" for t in tables)
        replace_batches(spark.createDataFrame(rows, AUDIT), path, batches=[f"r1/{t}" for t in tables], predicate=pred)
        return next(delta_log.commit_infos(path))[1]  # newest first

    assert write([("r1", "a", "e1", True), ("r1", "a", "e2", True)], ["a"])["operation"] == "WRITE"
    assert write([("r1", "b", "e1", True)], ["b"])["operation"] == "WRITE"
    assert delta_log.latest_version(path) == 1
    # a retry of a (one expectation left, its verdict changed) together with c, never written
    info = write([("r1", "a", "e1", False), ("r1", "c", "e1", True)], ["a", "c"])
    assert info["operationParameters"]["mode"] == "Overwrite"
    assert names_in_log(path, "batches") == {"r1/a", "r1/b", "r1/c"}
    write([("r1", "c", "e1", False)], ["c"])  # c first came with a retry: retrying it replaces, never duplicates
    expected = spark.createDataFrame(
        [("r1", "a", "e1", False), ("r1", "b", "e1", True), ("r1", "c", "e1", False)], AUDIT)
    assert_df_equality(spark.read.format("delta").load(path), expected, ignore_row_order=True, ignore_nullable=True)
