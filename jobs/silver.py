"""spark-submit entry point: bronze -> silver.  See jobs/_common.py for how the session is built."""

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

    key = pseudonym_key(cfg.pseudonym)
    from ucx_spark.pipelines import silver

    return silver.run(
        spark,
        warehouse=cfg.paths.warehouse,
        run_id=args.run_id,
        time_zone=cfg.utility.time_zone,
        pseudonym_key=key,
    )


if __name__ == "__main__":
    sys.exit(run_job("silver", body, parser("bronze -> silver", landing=False).parse_args()))
