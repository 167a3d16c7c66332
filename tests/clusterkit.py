"""Helpers shared by the cluster, Thrift-server and benchmark harnesses (not a test module)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ucx_spark.cluster import spark_env, spark_submit_command, stop_process, tail
from ucx_spark.session import DELTA_MAVEN, delta_jars

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

REPO = Path(__file__).resolve().parent.parent

# Columns whose values depend on when or as which run a job ran, not on its input.
RUN_TIME_COLUMNS = frozenset(
    {"run_id", "_run_id", "scored_at", "_ingested_at", "ingested_at", "computed_at",
     "published_at", "recorded_at", "created_at", "updated_at", "model_version"}
)


@dataclass
class Submitted:
    returncode: int
    seconds: float
    log: Path

    def check(self, what: str) -> Submitted:
        if self.returncode != 0:
            raise AssertionError(f"{what} exited with {self.returncode}; last lines of {self.log}:\n{tail(self.log, 60)}")
        return self


def submit(
    app: Path,
    app_args: Sequence[str],
    *,
    master: str,
    work_dir: Path,
    py_files: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 420.0,
    executor_memory: str | None = None,
    total_executor_cores: int | None = None,
    log_name: str = "submit.log",
) -> Submitted:
    """Run ``spark-submit`` with Delta and the package, bounded, always killed on timeout."""
    jars = delta_jars(str(REPO / ".jars" / "delta"))
    conf = dict(conf or {})
    if not jars:
        conf["spark.jars.packages"] = DELTA_MAVEN
    cmd = spark_submit_command(
        app, app_args, master=master, py_files=py_files, jars=jars,
        conf={"spark.ui.enabled": "false", **conf},
        driver_memory="1g", executor_memory=executor_memory, total_executor_cores=total_executor_cores,
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / log_name
    started = time.perf_counter()
    with open(log, "wb") as out:
        out.write((" ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=work_dir, env=spark_env(env), start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, grace_seconds=5)
            raise AssertionError(f"spark-submit {app.name} did not finish within {timeout:.0f}s; "
                                 f"last lines of {log}:\n{tail(log, 60)}") from None
        finally:
            stop_process(proc, grace_seconds=5)
    return Submitted(proc.returncode, time.perf_counter() - started, log)


def run_python(script: Path, args: Sequence[str], *, work_dir: Path, env: Mapping[str, str] | None = None,
               timeout: float = 420.0, log_name: str = "python.log") -> Submitted:
    """``python script args`` (the plain, non-spark-submit way to run a job), bounded."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / log_name
    started = time.perf_counter()
    full_env = spark_env(env)
    full_env.setdefault("PYTHONPATH", str(REPO))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(script), *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=work_dir, env=full_env, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, grace_seconds=5)
            raise AssertionError(f"{script.name} did not finish within {timeout:.0f}s; "
                                 f"last lines of {log}:\n{tail(log, 60)}") from None
        finally:
            stop_process(proc, grace_seconds=5)
    return Submitted(proc.returncode, time.perf_counter() - started, log)


def comparable(df: DataFrame) -> DataFrame:
    """Drop run-time columns, round doubles (summation order differs across executors),
    turn maps into JSON (maps cannot be sorted), so two runs compare row by row."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    cols = []
    for f in df.schema.fields:
        if f.name in RUN_TIME_COLUMNS:
            continue
        c = F.col(f"`{f.name}`")
        if isinstance(f.dataType, (T.DoubleType, T.FloatType)):
            c = F.round(c, 6)
        elif isinstance(f.dataType, (T.MapType, T.ArrayType, T.StructType)):
            c = F.to_json(c)
        cols.append(c.alias(f.name))
    return df.select(*cols)
