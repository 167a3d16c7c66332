"""spark-submit entry point: silver -> gold.  See jobs/_common.py for how the session is built."""

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
    from ucx_spark.pipelines import gold

    return gold.run(
        spark,
        warehouse=cfg.paths.warehouse,
        time_zone=cfg.utility.time_zone,
        min_households=cfg.privacy.min_households,
        max_household_energy_share=cfg.privacy.max_household_energy_share,
        run_id=args.run_id,
    )


if __name__ == "__main__":
    sys.exit(run_job("gold", body, parser("silver -> gold", landing=False).parse_args()))
