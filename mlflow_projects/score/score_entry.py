"""MLflow Project entry point for `ucx score`: parse, load config, build the session, call the pipeline."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score households with the champion models")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--env", default=None)
    parser.add_argument("--conf", default=None)
    args = parser.parse_args(argv)

    from ucx_spark.config import load_config
    from ucx_spark.pipelines import score
    from ucx_spark.session import build_spark, new_run_id

    cfg = load_config(args.env, args.conf).with_paths(warehouse=args.warehouse)
    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or cfg.mlflow_tracking_uri
    spark = build_spark(cfg.spark, warehouse=cfg.paths.warehouse, time_zone=cfg.utility.time_zone)
    try:
        result = score.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=tracking_uri, run_id=new_run_id(),
                           time_zone=cfg.utility.time_zone)
        print(result.summary())
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
