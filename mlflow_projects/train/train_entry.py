"""MLflow Project entry point for `ucx train`: its parameters become ``commands.TrainParams``; the command
layer builds the session, runs it and gives the exit code (``ucx_spark/commands.py``)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the UCX household models")
    parser.add_argument("--model", default="all", help="csat | ev_adoption | payment_risk | all (comma-separated allowed)")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--trials", type=float, default=10)
    parser.add_argument("--experiment", default="")
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--env", default=None)
    parser.add_argument("--conf", default=None)
    args = parser.parse_args(argv)

    from ucx_spark.commands import TrainParams, execute
    from ucx_spark.config import load_config

    cfg = load_config(args.env, args.conf).with_paths(warehouse=args.warehouse)
    # `mlflow run` sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID (the project run).
    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or cfg.mlflow_tracking_uri
    # Taken out of the environment: left there, every later mlflow.start_run() would resume it.
    project_run = os.environ.pop("MLFLOW_RUN_ID", None)
    parent = project_run if os.environ.get("MLFLOW_TRACKING_URI") == tracking_uri else None
    params = TrainParams(models=tuple(m.strip() for m in args.model.split(",")), trials=int(args.trials),
                         tracking_uri=tracking_uri, experiment=args.experiment or None, parent_run_id=parent)
    return execute("train", params, cfg, label="mlflow run train")

if __name__ == "__main__":
    sys.exit(main())
