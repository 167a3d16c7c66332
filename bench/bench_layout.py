"""Silver AMI layout: how many files the typical queries must read, per layout.

Writes an AMI-shaped table (meter_id, local_date, local_month, local_hour, kwh)
in incremental appends, like silver batches, under four layouts, then counts
for each query the files whose Delta statistics (min/max per file, partition
values) cannot be skipped, read from the Delta log with delta-rs:

  A  appended, no OPTIMIZE
  B  OPTIMIZE ZORDER BY (meter_id, local_date)          <- chosen default
  C  PARTITIONED BY (local_month) + ZORDER BY (meter_id)
  D  CLUSTER BY (meter_id, local_date) + OPTIMIZE       (liquid clustering)

    .venv/bin/python bench/bench_layout.py --meters 400 --days 60

A small ``optimize.maxFileSize`` stands in for a large table, so that the
file counts have the proportions a big utility would see.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ucx_spark.config import SparkConfig  # noqa: E402
from ucx_spark.session import build_spark  # noqa: E402


def files_to_read(path: Path, *, meter: str | None = None, day: dt.date | None = None,
                  month: dt.date | None = None) -> int:
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pandas()
    keep = [True] * len(actions)
    for i, cols in enumerate(actions.to_dict("records")):
        if meter is not None and "min.meter_id" in cols and not (cols["min.meter_id"] <= meter <= cols["max.meter_id"]):
            keep[i] = False
        if day is not None and "min.local_date" in cols and not (
            _date(cols["min.local_date"]) <= day <= _date(cols["max.local_date"])
        ):
            keep[i] = False
        if month is not None:
            if "partition.local_month" in cols:
                if _date(cols["partition.local_month"]) != month:
                    keep[i] = False
            elif "min.local_month" in cols and not (
                _date(cols["min.local_month"]) <= month <= _date(cols["max.local_month"])
            ):
                keep[i] = False
    return sum(keep)


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=400)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--max-file-mb", type=float, default=0.5)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ucx-layout-"))
    spark = build_spark(
        SparkConfig(master="local[2]", driver_memory="2g", shuffle_partitions=4, log_level="ERROR",
                    extra={"spark.databricks.delta.optimize.maxFileSize": str(int(args.max_file_mb * 2**20))}),
        warehouse=str(work), time_zone="UTC",
    )
    from pyspark.sql import functions as F

    try:
        per_batch = args.days // args.batches
        base = (
            spark.range(args.meters * per_batch * 24)
            .select(
                F.format_string("M%05d", (F.col("id") % args.meters).cast("int")).alias("meter_id"),
                (F.col("id") / (args.meters * 24)).cast("int").alias("day_offset"),
                (F.col("id") % 24).cast("int").alias("local_hour"),
                (F.rand(3) * 2).alias("kwh"),
            )
        )
        layouts = {
            "A appended": ("none", None),
            "B zorder(meter_id, local_date)": ("zorder", "meter_id, local_date"),
            "C partition(local_month) + zorder(meter_id)": ("partition", "meter_id"),
            "D cluster by(meter_id, local_date)": ("cluster", None),
        }
        start = dt.date(2025, 1, 1)
        rows = args.meters * per_batch * 24 * args.batches
        results = []
        for name, (kind, zorder) in layouts.items():
            path = work / name.split()[0]
            t0 = time.perf_counter()
            if kind == "cluster":
                spark.sql(f"CREATE TABLE delta.`{path}` (meter_id string, local_date date, local_month date, "
                          "local_hour int, kwh double) USING DELTA CLUSTER BY (meter_id, local_date)")
            for b in range(args.batches):
                batch_df = (
                    base.withColumn("local_date", F.date_add(F.lit(start), F.col("day_offset") + b * per_batch))
                    .withColumn("local_month", F.trunc("local_date", "month"))
                    .select("meter_id", "local_date", "local_month", "local_hour", "kwh")
                    .repartition(4)
                )
                writer = batch_df.write.format("delta").mode("append")
                if kind == "partition":
                    writer = writer.partitionBy("local_month")
                writer.save(str(path))
            if kind in ("zorder", "partition"):
                spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY ({zorder})")
            elif kind == "cluster":
                spark.sql(f"OPTIMIZE delta.`{path}`")
            seconds = time.perf_counter() - t0
            detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
            assert detail is not None
            meter = f"M{args.meters // 3:05d}"
            day = start + dt.timedelta(days=args.days // 2)
            results.append((
                name, int(detail["numFiles"]),
                files_to_read(path, meter=meter),
                files_to_read(path, day=day),
                files_to_read(path, meter=meter, month=dt.date(2025, 2, 1)),
                seconds,
            ))
        print(f"{rows:,} rows, {args.meters} meters x {args.days} days x 24 h; "
              f"optimize.maxFileSize {args.max_file_mb} MB")
        print(f"{'layout':<46} {'files':>6} {'1 meter, all days':>18} {'1 day, all meters':>18} "
              f"{'1 meter, 1 month':>17} {'write+optimize s':>16}")
        for r in results:
            print(f"{r[0]:<46} {r[1]:>6} {r[2]:>18} {r[3]:>18} {r[4]:>17} {r[5]:>16.1f}")
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
