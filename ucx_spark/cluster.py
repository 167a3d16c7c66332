"""A local Spark standalone cluster (one Master, N Workers) from the pip pyspark.

Used by the cluster integration test and ``bench/bench_scale.py``, and by hand::

    python -m ucx_spark.cluster start --state-dir /tmp/ucx-cluster   # prints the master URL
    python -m ucx_spark.cluster stop  --state-dir /tmp/ucx-cluster

Every daemon is ``bin/spark-class org.apache.spark.deploy.{master.Master,worker.Worker}``
bound to 127.0.0.1 on free ports, started in its own process group so that
stopping it also ends the executors it spawned.  Starting waits (bounded) until
the Master's JSON status page lists every Worker as ALIVE.

``spark_submit_command`` builds the ``spark-submit`` line the jobs use on any
master (``local[2]``, ``spark://...``, ``yarn``, ``k8s://...``): the package
shipped with ``--py-files``, Delta with ``--jars``, the Delta SQL extension and
catalog with ``--conf``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class ClusterError(RuntimeError):
    """A daemon did not start, died, or did not become ready in time."""


def spark_home() -> Path:
    """The pip pyspark's folder: it holds bin/spark-class, bin/spark-submit, bin/beeline and jars/."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def spark_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Spark daemons and spark-submit: the pip pyspark, loopback, this Python."""
    env = dict(os.environ)
    env["SPARK_HOME"] = str(spark_home())
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["PYSPARK_PYTHON"] = env.get("PYSPARK_PYTHON") or sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = env.get("PYSPARK_DRIVER_PYTHON") or sys.executable
    # The driver of a job submitted from a test must not inherit pytest's own gateway.
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_SUBMIT_ARGS"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def stop_process(proc: subprocess.Popen[bytes], *, grace_seconds: float = 15.0) -> None:
    """End a process started with ``start_new_session=True`` and everything in its group."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_pid_group(pid: int, *, grace_seconds: float = 15.0) -> None:
    """Like ``stop_process`` for a process group recorded by pid (``stop`` of the CLI)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.2)


# --------------------------------------------------------------------------- packaging


def package_zip(out: str | Path, *, package_dir: Path = PACKAGE_DIR) -> Path:
    """Zip the ``ucx_spark`` package for ``--py-files`` (executors import it from the zip)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    root = package_dir.parent
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package_dir.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            zf.write(path, path.relative_to(root).as_posix())
    return out


# --------------------------------------------------------------------------- spark-submit


def spark_submit_command(
    app: str | Path,
    app_args: Sequence[str] = (),
    *,
    master: str,
    py_files: Sequence[str | Path] = (),
    jars: Sequence[str | Path] = (),
    conf: Mapping[str, str] | None = None,
    driver_memory: str | None = None,
    executor_memory: str | None = None,
    total_executor_cores: int | None = None,
) -> list[str]:
    """The ``spark-submit`` argv for a Python job with Delta and the shipped package."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master]
    if driver_memory:
        cmd += ["--driver-memory", driver_memory]
    if executor_memory:
        cmd += ["--executor-memory", executor_memory]
    if total_executor_cores:
        cmd += ["--total-executor-cores", str(total_executor_cores)]
    if py_files:
        cmd += ["--py-files", ",".join(str(p) for p in py_files)]
    if jars:
        cmd += ["--jars", ",".join(str(p) for p in jars)]
    for key, value in {**DELTA_SQL_CONF, **(conf or {})}.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(app), *app_args]


# --------------------------------------------------------------------------- standalone cluster


@dataclass
class StandaloneCluster:
    """One Master and ``workers`` Workers on 127.0.0.1, each Worker with ``cores`` and ``memory``.

    Use as a context manager (``with StandaloneCluster(dir) as c: c.master_url``) so
    that the daemons are always stopped; ``start``/``stop`` for manual control.
    """

    work_dir: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    daemon_memory: str = "256m"
    start_timeout: float = 120.0
    master_port: int = 0
    master_webui_port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.master_webui_port}/json/"

    def __enter__(self) -> StandaloneCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str], *, detach: bool) -> subprocess.Popen[bytes]:
        log = self.work_dir / f"{name}.log"
        env = spark_env(
            {
                "SPARK_DAEMON_MEMORY": self.daemon_memory,
                "SPARK_LOG_DIR": str(self.work_dir),
                "SPARK_WORKER_DIR": str(self.work_dir / "work"),
                "SPARK_LOCAL_DIRS": str(self.work_dir / "local"),
                "SPARK_NO_DAEMONIZE": "1",
            }
        )
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.work_dir,
                start_new_session=True,  # its own process group: stop() ends executors too
                close_fds=True,
            )
        self.procs.append(proc)
        if detach:
            (self.work_dir / f"{name}.pid").write_text(str(proc.pid), encoding="utf-8")
        return proc

    def start(self, *, detach: bool = False) -> None:
        self.work_dir = Path(self.work_dir).resolve()
        for sub in ("work", "local"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        self.master_port = self.master_port or free_port()
        self.master_webui_port = self.master_webui_port or free_port()
        self._spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1",
                "--port", str(self.master_port),
                "--webui-port", str(self.master_webui_port),
            ],
            detach=detach,
        )
        self._wait(lambda: port_open(self.master_port), "the Master to listen on port "
                   f"{self.master_port}", "master")
        for i in range(self.workers):
            self._spawn(
                f"worker-{i + 1}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    "--host", "127.0.0.1",
                    "--webui-port", str(free_port()),
                    "--cores", str(self.cores),
                    "--memory", self.memory,
                    "--work-dir", str(self.work_dir / "work" / f"worker-{i + 1}"),
                    self.master_url,
                ],
                detach=detach,
            )
        self._wait(lambda: self.alive_workers() >= self.workers,
                   f"{self.workers} Workers to register as ALIVE with {self.master_url}", None)

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as resp:  # noqa: S310 - loopback
                status = json.load(resp)
        except (OSError, ValueError):
            return 0
        return sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE")

    def _wait(self, ready: Callable[[], bool], what: str, log_name: str | None) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for proc in self.procs:
                if proc.poll() is not None:
                    logs = "\n".join(
                        f"--- {p.name}\n{tail(p)}" for p in sorted(self.work_dir.glob("*.log"))
                    )
                    raise ClusterError(f"a Spark daemon exited (code {proc.returncode}) while waiting for {what}:\n{logs}")
            time.sleep(0.5)
        name = log_name or "worker-1"
        raise ClusterError(
            f"timed out after {self.start_timeout:.0f}s waiting for {what}; "
            f"last lines of {name}.log:\n{tail(self.work_dir / f'{name}.log')}"
        )

    def stop(self) -> None:
        # Workers first so they do not log the Master vanishing, then the Master.
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


# --------------------------------------------------------------------------- command line


def _cmd_start(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    cluster = StandaloneCluster(state, workers=args.workers, cores=args.cores, memory=args.memory,
                                master_port=args.port)
    try:
        cluster.start(detach=True)
    except BaseException:
        cluster.stop()
        raise
    info = {"master_url": cluster.master_url, "status_url": cluster.status_url,
            "pids": [p.pid for p in cluster.procs]}
    (state / "cluster.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(cluster.master_url)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve() / "cluster.json"
    if not state.is_file():
        print(f"no cluster recorded in {state}", file=sys.stderr)
        return 1
    info = json.loads(state.read_text(encoding="utf-8"))
    for pid in reversed(info["pids"]):
        stop_pid_group(int(pid))
    state.unlink()
    print(f"stopped {info['master_url']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ucx_spark.cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="start a Master and Workers on 127.0.0.1 (detached)")
    p.add_argument("--state-dir", required=True, help="folder for logs, work dirs and cluster.json")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--memory", default="1g")
    p.add_argument("--port", type=int, default=0, help="Master port (default: a free one)")
    p.set_defaults(func=_cmd_start)
    p = sub.add_parser("stop", help="stop the cluster recorded in --state-dir")
    p.add_argument("--state-dir", required=True)
    p.set_defaults(func=_cmd_stop)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
