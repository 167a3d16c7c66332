"""Scoring throughput: households/s for 100,000 synthetic households on local[2].

Builds a feature table in Spark (24 numeric/boolean features and 2 categoricals,
nulls included), a model-sized booster (default 300 trees of depth 6, the top of
the tuning space; fitted on a 5,000-row sample: the bench measures scoring, not
training), then times

- score + top-5 SHAP drivers (``score_frame``, the ``ucx score`` path), and
- score only (``predict_frame``),

each fully materialised (noop sink) after a warm-up run.

    .venv/bin/python bench/bench_score.py [--households 100000] [--master local[2]]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.config import SparkConfig
from ucx_spark.models.score import LoadedModel, predict_frame, score_frame
from ucx_spark.models.spec import FeatureSpec
from ucx_spark.session import build_spark

N_NUMERIC = 24


def features(spark: SparkSession, households: int, partitions: int) -> DataFrame:
    cols = [F.col("id").cast("string").alias("household_id"), F.lit("2025-12-31").cast("date").alias("as_of_date")]
    for j in range(N_NUMERIC):
        value = F.randn(seed=j) * (j + 1)
        if j % 6 == 5:
            value = F.when(F.rand(seed=100 + j) < 0.05, F.lit(None)).otherwise(value)
        cols.append(value.alias(f"f{j:02d}"))
    cols.append((F.rand(seed=200) < 0.6).alias("is_owner"))
    cols.append(F.element_at(F.array(F.lit("single_family"), F.lit("multi_family"), F.lit("mobile_home")), (F.floor(F.rand(seed=201) * 3) + 1).cast("int")).alias("home_type"))
    cols.append(F.element_at(F.array(*[F.lit(b) for b in ("lt25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k_plus")]), (F.floor(F.rand(seed=202) * 6) + 1).cast("int")).alias("income_band"))
    return spark.range(households, numPartitions=partitions).select(*cols)


def model(spec: FeatureSpec, sample_pdf, *, trees: int, depth: int) -> LoadedModel:
    y = (sample_pdf["f00"].fillna(0) + 0.5 * sample_pdf["f01"].fillna(0) + np.random.default_rng(0).normal(size=len(sample_pdf)) > 0).astype(float)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": depth, "eta": 0.05, "nthread": 2, "verbosity": 0},
        xgb.DMatrix(spec.matrix(sample_pdf), label=y, feature_names=list(spec.encoded), missing=np.nan),
        num_boost_round=trees,
    )
    return LoadedModel("ev_adoption", "bench", bytes(booster.save_raw("ubj")), spec)


def timed(df: DataFrame) -> float:
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--trees", type=int, default=300, help="exact TreeSHAP cost grows with trees x leaves x depth^2")
    parser.add_argument("--depth", type=int, default=6)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    wh = tempfile.mkdtemp(prefix="ucx-bench-")
    cfg = SparkConfig(master=args.master, shuffle_partitions=4, driver_memory="3g", log_level="ERROR")
    spark = build_spark(cfg, warehouse=wh, time_zone="UTC")
    cores = spark.sparkContext.defaultParallelism
    spec = FeatureSpec(
        numeric=(*(f"f{j:02d}" for j in range(N_NUMERIC)), "is_owner"),
        categorical=(
            ("home_type", ("single_family", "multi_family", "mobile_home")),
            ("income_band", ("lt25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k_plus")),
        ),
    )
    features_df = features(spark, args.households, partitions=cores * 2).cache()
    n = features_df.count()
    loaded = model(spec, features_df.limit(5000).toPandas(), trees=args.trees, depth=args.depth)  # bounded sample to fit the bench model
    timed(score_frame(features_df.limit(2000), loaded))  # warm-up: Python workers, broadcast
    t_drivers = timed(score_frame(features_df, loaded))
    t_scores = timed(predict_frame(features_df, loaded, keep=("household_id", "as_of_date")))
    print(f"households: {n:,}  master: {args.master}  cores: {cores}  model: {args.trees} trees depth {args.depth}, {len(spec.encoded)} matrix columns")
    print(f"score + top-5 SHAP drivers: {t_drivers:7.1f} s  {n / t_drivers:10,.0f} households/s")
    print(f"score only:                 {t_scores:7.1f} s  {n / t_scores:10,.0f} households/s")
    print(f"load average at end: {os.getloadavg()[0]:.1f} (other work on the machine slows these figures)")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
