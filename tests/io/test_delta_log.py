"""The transaction-log reader (io/delta_log.py) against Delta itself: after appends, partition
overwrites, deletes, MERGEs and checkpoints, the log's row counts, partitions and versions are
what Spark reads, and a log it cannot read exactly (deletion vectors) says so."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from ucx_spark.io import delta_log
from ucx_spark.io.delta import commit_metadata, last_commit, partition_values, table_version


def _spark_counts(spark, path: str, by: str | None = None) -> dict:
    df = spark.read.format("delta").load(path)
    if by is None:
        return {None: df.count()}
    return {r[0]: int(r[1]) for r in df.groupBy(by).count().collect()}


@pytest.mark.parametrize("files_in_crc", [True, False])
def test_counts_partitions_and_versions_match_delta(spark, tmp_path, files_in_crc: bool) -> None:
    from delta.tables import DeltaTable

    path = str(tmp_path / "t")
    spark.conf.set("spark.databricks.delta.allFilesInCrc.enabled", str(files_in_crc).lower())
    try:
        def rows(feed: str, n: int, start: int = 0):  # noqa: ANN202
            return spark.range(start, start + n).select(F.lit(feed).alias("feed"), F.col("id").alias("k"))

        rows("a", 10).write.format("delta").partitionBy("feed").option("delta.checkpointInterval", "2").save(path)
        rows("b", 7).write.format("delta").mode("append").option("userMetadata", '{"built_from": {"x": 1}}').save(path)
        rows("a", 5, 100).write.format("delta").mode("append").save(path)
        rows("a", 3).write.format("delta").mode("overwrite").option("replaceWhere", "feed = 'a'").save(path)
        DeltaTable.forPath(spark, path).delete("k = 1")
        (DeltaTable.forPath(spark, path).alias("t")
         .merge(rows("c", 4).alias("s"), "t.feed = s.feed AND t.k = s.k")
         .whenNotMatchedInsertAll().execute())
        rows("b", 2, 50).write.format("delta").mode("append").save(path)
        assert delta_log.row_count(path) == _spark_counts(spark, path)
        assert delta_log.row_count(path, by="feed") == _spark_counts(spark, path, "feed")
        assert table_version(spark, path) == delta_log.latest_version(path) == 6
        assert last_commit(spark, path)[0] == 6 and last_commit(spark, path)[1]["numOutputRows"] == "2"
        assert commit_metadata(spark, path, "built_from") == {"x": 1}
        assert any(p.name.endswith(".checkpoint.parquet") for p in (tmp_path / "t" / "_delta_log").iterdir())
    finally:
        spark.conf.unset("spark.databricks.delta.allFilesInCrc.enabled")


def test_bronze_partitions_come_from_the_log(spark, tmp_path) -> None:
    path = str(tmp_path / "bronze")
    df = spark.createDataFrame([("f 1.csv", None, 1), ("f 1.csv", None, 2), ("g%2.csv", "missing_column", 3)],
                               "_source_file string, _file_rejected string, x int")
    df.write.format("delta").partitionBy("_source_file", "_file_rejected").save(path)
    assert partition_values(spark, path) == {"f 1.csv": None, "g%2.csv": "missing_column"}
    assert delta_log.row_count(path, by="_source_file") == {"f 1.csv": 2, "g%2.csv": 1}


def test_deletion_vectors_are_left_to_spark(spark, tmp_path) -> None:
    from delta.tables import DeltaTable

    path = str(tmp_path / "dv")
    spark.range(20).write.format("delta").option("delta.enableDeletionVectors", "true").save(path)
    DeltaTable.forPath(spark, path).delete("id < 5")
    assert delta_log.row_count(path) is None  # a file with a deletion vector: not counted from the log
    assert delta_log.latest_version(path) == 1
    assert delta_log.row_count(str(tmp_path / "missing")) is None and delta_log.latest_version(str(tmp_path)) is None


def test_table_id_is_the_tables_identity_from_checksum_commit_or_checkpoint(spark, tmp_path) -> None:
    """A rebuilt table may reach the version number its predecessor had: gold tells them apart
    by the id Delta gives a table when it is created (read from the log, no Spark job)."""
    from delta.tables import DeltaTable

    path = tmp_path / "t"
    spark.range(2).write.format("delta").save(str(path))
    want = DeltaTable.forPath(spark, str(path)).detail().first()["id"]
    assert delta_log.table_id(path) == want  # from the checksum
    for crc in (path / "_delta_log").glob("*.crc"):
        crc.unlink()
    assert delta_log.table_id(path) == want  # from commit 0's metaData
    for _ in range(11):  # a checkpoint at version 10
        spark.range(1).write.format("delta").mode("append").save(str(path))
    for name in [*(path / "_delta_log").glob("*.crc"), *(path / "_delta_log").glob("0000000000000000000[0-9].json")]:
        name.unlink()  # what log cleanup leaves: the checkpoint and the commits after it
    assert (path / "_delta_log" / "00000000000000000010.checkpoint.parquet").is_file()
    assert delta_log.table_id(path) == want  # from the checkpoint
    spark.range(2).write.format("delta").mode("overwrite").save(str(tmp_path / "u"))
    assert delta_log.table_id(tmp_path / "u") not in (None, want) and delta_log.table_id(tmp_path / "none") is None


def test_a_lost_file_names_the_last_version_without_it_across_a_checkpoint(spark, tmp_path) -> None:
    """The RESTORE a damaged table's message gives must name a version that does not need the
    lost file, also when a checkpoint covers the commit that added it; and no version when the
    commit that added it was already cleaned up from the log."""
    path = tmp_path / "t"
    added: dict[int, set[str]] = {}
    for v in range(12):  # a checkpoint at version 10
        spark.range(v * 10, v * 10 + 3).coalesce(1).write.format("delta").mode("append").save(str(path))
        added[v] = set(delta_log.live_files(path, version=v)) - (set(delta_log.live_files(path, version=v - 1))
                                                                 if v else set())
    assert (path / "_delta_log" / "00000000000000000010.checkpoint.parquet").is_file()
    (path / next(iter(added[3]))).unlink()
    found = delta_log.damage(path)
    assert (found.kind, found.version, found.last_good) == ("missing_file", 3, 2)
    assert found.restore_sql(path) == f"RESTORE TABLE delta.`{path}` TO VERSION AS OF 2"
    assert spark.read.format("delta").option("versionAsOf", 2).load(str(path)).count() == 9  # 2 does not need it
    for name in (path / "_delta_log").glob("0000000000000000000[0-9].json"):
        name.unlink()  # log cleanup: the checkpoint and the commits after it remain
    found = delta_log.damage(path)
    assert found.kind == "missing_file" and found.last_good is None and "oldest commit left" in found.detail
