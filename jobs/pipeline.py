"""spark-submit entry point: landing -> bronze -> silver -> gold in one Spark application.

    spark-submit --master spark://127.0.0.1:7077 --py-files ucx_spark.zip \\
        --jars "$(ls .jars/delta/*.jar | paste -sd,)" \\
        jobs/pipeline.py --landing data/landing --warehouse data/warehouse

See jobs/_common.py for how the session is built under spark-submit and plain python.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, run_job  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ucx_spark.config import Config


def body(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> object:
    from ucx_spark.config import pseudonym_key

    key = pseudonym_key(cfg.pseudonym)  # fail before any work when the secret is missing
    from ucx_spark.pipelines import medallion

    result = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=args.run_id, gates=not args.no_gates)
    print(result.summary(), flush=True)
    return None


def build_parser() -> argparse.ArgumentParser:
    p = parser("landing -> bronze -> silver -> gold, with quality gates and row accounting", landing=True)
    p.add_argument("--no-gates", action="store_true", help="skip the Great Expectations gates")
    return p


if __name__ == "__main__":
    sys.exit(run_job("pipeline", body, build_parser().parse_args()))
