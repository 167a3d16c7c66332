"""A tiny stand-in pipeline job for the cluster harness (tests/e2e/test_cluster.py).

It goes through the same session plumbing as jobs/*.py (jobs/_common.py),
reads a CSV feed with an explicit schema, runs a pandas UDF on the executors
that imports ``ucx_spark`` (so the package must reach them through
``--py-files``), shuffles, and writes a Delta gold table.  Not collected by
pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd  # module level: the pandas UDFs' type hints resolve here

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ucx_spark.config import Config

JOBS_DIR = Path(__file__).resolve().parent.parent / "jobs"
TABLE = "standin_daily"


def read_reads(spark: SparkSession, landing: str) -> DataFrame:
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("meter_id", T.StringType()),
            T.StructField("read_at", T.TimestampType()),
            T.StructField("kwh", T.DoubleType()),
        ]
    )
    return spark.read.csv(str(Path(landing) / "ami"), header=True, schema=schema)


def daily_usage(reads_df: DataFrame, *, time_zone: str) -> DataFrame:
    """meter_id, read_at, kwh -> meter_key, local_date, kwh, intervals, module_origin."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def meter_key(meter_id: pd.Series) -> pd.Series:
        from ucx_spark.identity import pseudonym_py

        return meter_id.map(lambda v: None if v is None else pseudonym_py(v, key=b"standin", namespace="meter"))

    @pandas_udf("string")
    def module_origin(meter_id: pd.Series) -> pd.Series:
        import ucx_spark

        return pd.Series([ucx_spark.__file__] * len(meter_id))

    return (
        reads_df.withColumn("local_date", F.to_date(F.from_utc_timestamp("read_at", time_zone)))
        .withColumn("meter_key", meter_key("meter_id"))
        .withColumn("module_origin", module_origin("meter_id"))
        .groupBy("meter_key", "local_date")
        .agg(
            F.round(F.sum("kwh"), 6).alias("kwh"),
            F.count("*").alias("intervals"),
            F.max("module_origin").alias("module_origin"),
        )
    )


def body(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> object:
    from pyspark.sql import functions as F

    from ucx_spark.io.delta import overwrite_table

    out_df = daily_usage(read_reads(spark, cfg.paths.landing), time_zone=cfg.utility.time_zone).withColumn(
        "run_id", F.lit(args.run_id)
    )
    return overwrite_table(out_df, cfg.paths.warehouse, "gold", TABLE)


if __name__ == "__main__":
    sys.path.insert(0, str(JOBS_DIR))
    from _common import parser, run_job

    sys.exit(run_job("standin", body, parser("stand-in job for the cluster harness", landing=True).parse_args()))
