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
    from ucx_spark.pipelines import bronze, gold, silver

    results = {
        "bronze": bronze.run(spark, landing=cfg.paths.landing, warehouse=cfg.paths.warehouse, run_id=args.run_id),
        "silver": silver.run(
            spark,
            warehouse=cfg.paths.warehouse,
            run_id=args.run_id,
            time_zone=cfg.utility.time_zone,
            pseudonym_key=key,
        ),
        "gold": gold.run(
            spark,
            warehouse=cfg.paths.warehouse,
            time_zone=cfg.utility.time_zone,
            min_households=cfg.privacy.min_households,
            max_household_energy_share=cfg.privacy.max_household_energy_share,
            run_id=args.run_id,
        ),
    }
    for step_name, result in results.items():
        if result is not None:
            summary = getattr(result, "summary", None)
            print(f"[{step_name}] {summary() if callable(summary) else result}", flush=True)
    return None


if __name__ == "__main__":
    sys.exit(run_job("pipeline", body, parser("landing -> bronze -> silver -> gold", landing=True).parse_args()))
