"""AMI interval reads, generated in Spark: meter x interval from ``spark.range``.

Row ``id = meter_idx * n_intervals + t``; per-meter parameters and per-interval
load components come from two broadcast joins, the randomness from
``xxhash64`` of (seed, salt, coordinates), so the content depends on the seed
only (not on partitioning) and no Python runs per row.  The frame is written
as gzipped CSV and Spark's part files are renamed to contract names.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from ucx_spark.generate.load import EV_KW, EV_NIGHT_P

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

P_MISSING = 0.004
P_ESTIMATED = 0.012
_MOD = 2_147_483_647


def uniform(seed: int, salt: int, *cols: Column) -> Column:
    """A deterministic U[0, 1) per (seed, salt, coordinates)."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), *cols), F.lit(_MOD)) / F.lit(float(_MOD))


def ami_frame(
    spark: SparkSession,
    meters: pd.DataFrame,
    load: pd.DataFrame,
    *,
    n_intervals: int,
    interval_minutes: int,
    seed: int,
    forced_quality: dict[int, str],
    partitions: int,
) -> DataFrame:
    """meter_id, interval_start, interval_minutes, kwh, quality as contract strings.

    ``meters`` needs meter_idx, meter_id, station_idx, is_com, base_kw, heat_slope,
    cool_slope, solar_kw, solar_install_day, ev_since_day, offset_style;
    ``load`` needs t, station_idx, ts_z, ts_off, local_day, night_day,
    night_minute, res_shape, com_shape, heat_dd, cool_dd, solar_f.
    ``forced_quality`` pins the quality of given row ids (the rows a later extract re-reads).
    """
    meters_df = spark.createDataFrame(
        meters[[
            "meter_idx", "meter_id", "station_idx", "is_com", "base_kw", "heat_slope", "cool_slope",
            "solar_kw", "solar_install_day", "ev_since_day", "offset_style",
        ]]
    )
    load_df = spark.createDataFrame(
        load[[
            "t", "station_idx", "ts_z", "ts_off", "local_day", "night_day", "night_minute",
            "res_shape", "com_shape", "heat_dd", "cool_dd", "solar_f",
        ]]
    )
    hours = interval_minutes / 60.0
    n_meters = len(meters)
    base = spark.range(0, n_meters * n_intervals, numPartitions=partitions).select(
        "id",
        F.expr(f"id div {n_intervals}").alias("meter_idx"),
        F.expr(f"id % {n_intervals}").alias("t"),
    )
    df = base.join(F.broadcast(meters_df), "meter_idx").join(F.broadcast(load_df), ["t", "station_idx"])
    shape = F.when(F.col("is_com"), F.col("com_shape")).otherwise(F.col("res_shape"))
    noise = F.lit(0.75) + F.lit(0.5) * uniform(seed, 1, F.col("id"))
    night = [F.col("meter_idx"), F.col("night_day")]
    ev_start = F.lit(60) + F.lit(30) * F.floor(uniform(seed, 3, *night) * 5)
    ev_end = ev_start + F.lit(120) + F.lit(30) * F.floor(uniform(seed, 4, *night) * 5)
    charging = (
        (F.col("ev_since_day") <= F.col("night_day"))
        & (uniform(seed, 2, *night) < F.lit(EV_NIGHT_P))
        & (F.col("night_minute") >= ev_start)
        & (F.col("night_minute") < ev_end)
    )
    load_kwh = (
        F.col("base_kw") * shape + F.col("heat_slope") * F.col("heat_dd") + F.col("cool_slope") * F.col("cool_dd")
    ) * F.lit(hours) * noise
    ev_kwh = F.when(charging, F.lit(EV_KW * hours)).otherwise(F.lit(0.0))
    solar_kwh = F.when(
        F.col("solar_install_day") <= F.col("local_day"), F.col("solar_kw") * F.col("solar_f") * F.lit(hours)
    ).otherwise(F.lit(0.0))
    kwh = load_kwh + ev_kwh - solar_kwh
    uq = uniform(seed, 5, F.col("id"))
    quality = F.when(uq < F.lit(P_MISSING), F.lit("M")).when(uq < F.lit(P_MISSING + P_ESTIMATED), F.lit("E")).otherwise(F.lit("A"))
    for q in ("M", "E"):
        ids = sorted(i for i, v in forced_quality.items() if v == q)
        if ids:
            quality = F.when(F.col("id").isin(ids), F.lit(q)).otherwise(quality)
    return (
        df.withColumn("quality", quality)
        .select(
            "id",
            "meter_id",
            F.when(F.col("offset_style"), F.col("ts_off")).otherwise(F.col("ts_z")).alias("interval_start"),
            F.lit(str(interval_minutes)).alias("interval_minutes"),
            F.when(F.col("quality") == "M", F.lit(None).cast("string"))
            .otherwise(F.round(kwh, 3).cast("decimal(12,3)").cast("string"))
            .alias("kwh"),
            "quality",
        )
        .drop("id")
    )


def write_ami(ami_df: DataFrame, feed_dir: Path, *, stamp: str) -> list[str]:
    """Write gzipped CSV with Spark, then give each part file a contract name; returns the names."""
    tmp = feed_dir / f"_spark_tmp_{stamp}"
    ami_df.write.mode("overwrite").option("header", True).option("compression", "gzip").csv(str(tmp))
    names: list[str] = []
    for k, part in enumerate(sorted(tmp.glob("part-*.csv.gz"))):
        name = f"ami_{stamp}_part-{k:05d}.csv.gz"
        part.rename(feed_dir / name)
        names.append(name)
    shutil.rmtree(tmp)
    return names
