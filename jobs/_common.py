"""Shared plumbing of the spark-submit entry points in jobs/.

A job is the ``ucx`` command it names, run through the same typed command layer
(``ucx_spark.commands.execute``): the same options (declared once, in ``ucx_spark/cli.py``), the
same checks before any JVM starts, the same warehouse lock, one session builder
(``session.start_spark``), the session stopped at the end and the same exit codes (0, 1, 2, 75).
The same job file runs three ways:

* ``python jobs/pipeline.py ...``: no JVM yet, so the session is built from config with the
  configured master and the Delta jars (``spark.jars``); for a non-local master the package is
  zipped and shipped to the executors with ``addPyFile``.
* ``spark-submit --master local[2] jobs/pipeline.py ...`` and
* ``spark-submit --master spark://host:7077|yarn|k8s://... --py-files ucx_spark.zip
  --jars <delta jars> jobs/pipeline.py ...``: spark-submit has already started the driver JVM with
  its master, jars and ``--conf`` values. Those win: the UCX defaults fill in only what the
  command line left unset, and no ``spark.jars`` is added (the driver's class path is fixed by then).

Jobs stay thin (DESIGN.md rule 5): their arguments are ``ucx COMMAND``'s (``--conf`` and ``--env``
may come anywhere on the line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ucx_spark.config import Config

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
GLOBAL_OPTIONS = ("--conf", "--env")  # ucx's options that take a value and come before the command


def ucx(command: list[str], argv: list[str] | None = None, *, label: str) -> int:
    """Run ``ucx COMMAND...`` with this job's arguments; ``label`` names the job in error lines."""
    from ucx_spark.cli import main

    args = list(sys.argv[1:] if argv is None else argv)
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS and i + 1 < len(args):
            front += args[i:i + 2]
            i += 2
            continue
        (front if arg == "--debug" or arg.startswith(tuple(f"{o}=" for o in GLOBAL_OPTIONS)) else rest).append(arg)
        i += 1
    if not any(a == "--conf" or a.startswith("--conf=") for a in front) and (REPO_CONF / "base.yaml").is_file():
        front += ["--conf", str(REPO_CONF)]  # the repo's conf/ beside jobs/, wherever the job is started from
    return main([*front, *command, *rest], label=label)


# --------------------------------------------------------------------------- ad-hoc bodies (tests)


def parser(description: str, *, landing: bool) -> argparse.ArgumentParser:
    """Arguments of a job that is not a ``ucx`` command (the cluster harness's stand-in job)."""
    p = argparse.ArgumentParser(description=description)
    if landing:
        p.add_argument("--landing", metavar="DIR", help="landing zone (default: paths.landing)")
    p.add_argument("--warehouse", metavar="DIR", help="warehouse root (default: paths.warehouse)")
    p.add_argument("--conf", metavar="DIR", help="folder holding base.yaml (default: the repo's conf/)")
    p.add_argument("--env", metavar="NAME", help="overlay conf/<NAME>.yaml (default: $UCX_ENV or local)")
    p.add_argument("--run-id", help="run id (default: a new timestamped id)")
    return p


def run_job(name: str, body: Callable[[SparkSession, Config, argparse.Namespace], object],
            args: argparse.Namespace, *, lock: str = "pipeline") -> int:
    """``body`` as a command of its own through ``commands.execute``: the warehouse's ``lock``, the
    one session builder, the same exit codes."""
    from ucx_spark.commands import Command, execute
    from ucx_spark.config import load_config
    from ucx_spark.errors import UcxError
    from ucx_spark.session import new_run_id

    try:
        conf_dir = args.conf or (str(REPO_CONF) if (REPO_CONF / "base.yaml").is_file() else None)
        cfg = load_config(env=args.env, conf_dir=conf_dir).with_paths(
            landing=getattr(args, "landing", None), warehouse=args.warehouse)
    except UcxError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    args.run_id = args.run_id or new_run_id()
    command = Command(run=lambda spark, cfg, _params: body(spark, cfg, args), lock=lock)
    return execute(command, None, cfg, run_id=args.run_id, label=name)
