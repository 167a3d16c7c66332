"""MLflow Project entry point for `ucx score`: its parameters become ``commands.ScoreParams``; the command
layer builds the session, runs it and gives the exit code (``ucx_spark/commands.py``)."""

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

    from ucx_spark.commands import ScoreParams, execute
    from ucx_spark.config import load_config

    cfg = load_config(args.env, args.conf).with_paths(warehouse=args.warehouse)
    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or cfg.mlflow_tracking_uri
    return execute("score", ScoreParams(tracking_uri=tracking_uri), cfg, label="mlflow run score")

if __name__ == "__main__":
    sys.exit(main())
