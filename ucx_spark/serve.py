"""Serve the warehouse to BI tools over JDBC/ODBC: the Spark Thrift Server.

``ucx serve-sql --warehouse DIR [--port 10000]`` starts ``HiveThriftServer2``
from the pip pyspark (``spark-submit --class ...HiveThriftServer2``) with the
Delta jars, the Delta SQL extension and catalog, and the persistent Derby
metastore under ``<warehouse>/_metastore`` (the one ``build_spark`` uses when
``spark.metastore: derby``).  Then it registers every Delta table found under
``<warehouse>/<layer>/`` as ``<layer>.<table>``.

Why register through the server: an embedded Derby metastore admits one JVM
at a time, and ``HiveThriftServer2`` has no init-SQL option.  So the server
starts first, owns the metastore, and the ``CREATE TABLE IF NOT EXISTS ...
USING DELTA LOCATION ...`` statements run inside it, sent with ``bin/beeline``
over the loopback port before the server is announced as ready.  Registration
is idempotent and only reads the Delta logs; the data stays where it is.

Clients connect to ``jdbc:hive2://HOST:PORT/gold`` (Hive JDBC driver, Simba
Spark ODBC driver, Power BI / Tableau "Spark" connectors, DBeaver "Apache
Spark" or "Apache Hive").  The default bind address is 127.0.0.1 and no
authentication (``hive.server2.authentication=NONE``): only local users reach it.
Any other bind address (``--host 0.0.0.0``) is refused unless ``--auth password``:
HiveServer2 CUSTOM authentication by ``org.ucx.auth.UcxPasswordAuthenticator``
(``conf/thrift-auth``, compiled by ``make setup`` into ``.jars/auth``), which
checks user names and passwords against PBKDF2-HMAC-SHA256 hashes in
``<warehouse>/_restricted/sql_users`` (owner-only; ``ucx sql-user add NAME``).
The server registers the tables as a one-time service user whose random
password lives in an owner-only file only while the server runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ucx_spark.cluster import DELTA_SQL_CONF, port_open, spark_env, spark_home, stop_process, tail
from ucx_spark.errors import UcxError
from ucx_spark.session import DELTA_MAVEN, delta_jars

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
AUTH_MODES = ("none", "password")
AUTH_CLASS = "org.ucx.auth.UcxPasswordAuthenticator"
SERVICE_USER = "_ucx_service"
PBKDF2_ITERATIONS = 210_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
_USER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def auth_jar(jars_dir: str) -> Path:
    """The compiled authenticator (``make setup``): ``.jars/auth`` beside the Delta jars' folder."""
    return Path(jars_dir).resolve().parent / "auth" / "ucx-thrift-auth.jar"


def users_file(warehouse: str | Path) -> Path:
    return Path(warehouse).resolve() / "_restricted" / "sql_users"


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt$hash`` (base64), the format the authenticator checks."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(stored: str, password: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
        return scheme == "pbkdf2_sha256" and secrets.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def add_user(warehouse: str | Path, name: str, password: str) -> Path:
    """Add (or replace) a SQL user of ``ucx serve-sql --auth password``; returns the users file."""
    if not _USER_NAME.match(name):
        raise UcxError(f"SQL user name {name!r}: letters, digits, '_', '.', '-' (starting with a letter), at most 64")
    if len(password) < 12:
        raise UcxError("a SQL user's password needs at least 12 characters")
    path = users_file(warehouse)
    lines = [ln for ln in (path.read_text(encoding="utf-8").splitlines() if path.is_file() else [])
             if ln.strip() and ln.split(":", 1)[0] != name]
    _write_private(path, "\n".join([*lines, f"{name}:{hash_password(password)}"]) + "\n")
    return path
SERVED_LAYERS = ("gold", "silver", "bronze", "quarantine")


def metastore_dir(warehouse: str | Path) -> Path:
    """The persistent Derby metastore folder shared with ``build_spark(metastore='derby')``."""
    return Path(warehouse).resolve() / "_metastore"


def delta_tables(warehouse: str | Path, layers: Sequence[str] = SERVED_LAYERS) -> Iterator[tuple[str, str, Path]]:
    """(layer, table, path) of every Delta table at ``<warehouse>/<layer>/<table>``."""
    root = Path(warehouse).resolve()
    for layer in layers:
        folder = root / layer
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if (path / "_delta_log").is_dir() and not path.name.startswith("."):
                yield layer, path.name, path


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _quote_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def registration_sql(warehouse: str | Path, layers: Sequence[str] = SERVED_LAYERS) -> list[str]:
    """Idempotent statements that expose every Delta table as ``<layer>.<table>``."""
    statements: list[str] = []
    seen: set[str] = set()
    for layer, table, path in delta_tables(warehouse, layers):
        if layer not in seen:
            statements.append(f"CREATE DATABASE IF NOT EXISTS {_quote_ident(layer)}")
            seen.add(layer)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {_quote_ident(layer)}.{_quote_ident(table)} "
            f"USING DELTA LOCATION {_quote_str(str(path))}"
        )
    return statements


def thrift_server_command(
    warehouse: str | Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    master: str = "local[2]",
    driver_memory: str = "2g",
    jars_dir: str = ".jars/delta",
    conf: Mapping[str, str] | None = None,
    auth: str = "none",
) -> list[str]:
    """The ``spark-submit`` argv that starts the Thrift server over ``warehouse``."""
    wh = Path(warehouse).resolve()
    meta = metastore_dir(wh)
    jdbc_url = f"jdbc:derby:;databaseName={meta / 'metastore_db'};create=true"
    cmd = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class", THRIFT_CLASS,
        "--name", "ucx-spark Thrift JDBC/ODBC server",
        "--master", master,
        "--driver-memory", driver_memory,
        "--driver-java-options", f"-Dderby.system.home={meta}",
    ]
    jars = delta_jars(jars_dir)
    if auth == "password":
        jar = auth_jar(jars_dir)
        if not jar.is_file():
            raise UcxError(f"--auth password needs the authenticator {jar}: run `make setup` (it compiles conf/thrift-auth)")
        jars = [*jars, str(jar)]
    settings: dict[str, str] = {
        **DELTA_SQL_CONF,
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(wh / "_catalog"),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.hadoop.javax.jdo.option.ConnectionURL": jdbc_url,
        "spark.sql.hive.thriftServer.singleSession": "false",
        # Delta answers max()/min()/count() from its log (OptimizeMetadataOnlyDeltaQuery) with a
        # java.sql.Date literal; the Thrift server runs queries with java8API on, and a scalar
        # subquery on a date column then fails with ClassCastException (delta-io/delta#4201):
        # `WHERE month = (SELECT max(month) FROM gold.cx_kpis)`, as BI tools write it
        "spark.databricks.delta.optimizeMetadataQuery.enabled": "false",
    }
    if jars:
        # Thrift sessions resolve the catalog class with the system class loader, which
        # --jars does not reach: put Delta on the driver class path as well.
        cmd += ["--jars", ",".join(jars), "--driver-class-path", ":".join(jars)]
    else:
        settings["spark.jars.packages"] = DELTA_MAVEN
    settings.update(conf or {})
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    # spark-submit passes unknown options of the Thrift server class through to it.
    cmd += [
        "--hiveconf", f"hive.server2.thrift.bind.host={host}",
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", "hive.server2.transport.mode=binary",
        "--hiveconf", f"javax.jdo.option.ConnectionURL={jdbc_url}",
    ]
    if auth == "password":
        cmd += ["--hiveconf", "hive.server2.authentication=CUSTOM",
                "--hiveconf", f"hive.server2.custom.authentication.class={AUTH_CLASS}"]
    return cmd


def beeline(
    port: int,
    *,
    sql: str | None = None,
    sql_file: Path | None = None,
    host: str = "127.0.0.1",
    database: str = "default",
    timeout: float = 180.0,
    extra_args: Sequence[str] = (),
    user: str = "ucx",
    password: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the pip pyspark's ``bin/beeline`` against the server (CSV output, no banner). A password
    goes through an owner-only file (``-w``), never the command line."""
    cmd = [
        str(spark_home() / "bin" / "beeline"),
        "-u", f"jdbc:hive2://{host}:{port}/{database}",
        "-n", user,
        "--silent=true",
        "--showHeader=true",
        "--outputformat=csv2",
        *extra_args,
    ]
    with tempfile.TemporaryDirectory(prefix="ucx-beeline-") as tmp:
        if password is not None:
            secret = Path(tmp) / "password"
            _write_private(secret, password)
            cmd += ["-w", str(secret)]
        if sql is not None:
            cmd += ["-e", sql]
        if sql_file is not None:
            cmd += ["-f", str(sql_file)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=spark_env(),
                              stdin=subprocess.DEVNULL, check=False)


@dataclass
class ThriftServer:
    """A running Thrift server over a warehouse; a context manager that always stops it."""

    warehouse: Path
    port: int = 10000
    host: str = "127.0.0.1"
    master: str = "local[2]"
    driver_memory: str = "2g"
    jars_dir: str = ".jars/delta"
    conf: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    start_timeout: float = 240.0
    auth: str = "none"  # none (loopback only) | password (UcxPasswordAuthenticator)
    proc: subprocess.Popen[bytes] | None = None
    registered: list[str] = field(default_factory=list)
    _service_password: str | None = None

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/gold"

    @property
    def log(self) -> Path:
        return (self.log_dir or metastore_dir(self.warehouse)) / "thriftserver.log"

    def __enter__(self) -> ThriftServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.warehouse = Path(self.warehouse).resolve()
        meta = metastore_dir(self.warehouse)
        meta.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if self.auth not in AUTH_MODES:
            raise UcxError(f"--auth {self.auth!r}: expected one of {', '.join(AUTH_MODES)}")
        if self.auth == "none" and self.host not in LOOPBACK:
            raise UcxError(f"refusing to serve the warehouse on {self.host or '0.0.0.0'} without authentication: anyone "
                           "who reaches the port could read every table. Use --auth password (users from `ucx sql-user "
                           "add NAME`), or keep the default --host 127.0.0.1")
        env = spark_env()
        if self.auth == "password":
            users = users_file(self.warehouse)
            if not users.is_file():
                raise UcxError(f"--auth password: no SQL user in {users}: add one with `ucx sql-user add NAME`")
            self._service_password = secrets.token_urlsafe(32)
            service = meta / "service_user"
            _write_private(service, f"{SERVICE_USER}:{hash_password(self._service_password, iterations=10_000)}\n")
            env["UCX_SQL_USERS_FILE"] = f"{users}{os.pathsep}{service}"
        if port_open(self.port, "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host):
            raise UcxError(f"port {self.port} is already in use on {self.host}: choose another with --port")
        cmd = thrift_server_command(self.warehouse, port=self.port, host=self.host, master=self.master,
                                    driver_memory=self.driver_memory, jars_dir=self.jars_dir, conf=self.conf,
                                    auth=self.auth)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=meta, env=env, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        probe_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        while not port_open(self.port, probe_host):
            if self.proc.poll() is not None:
                raise UcxError(f"the Thrift server exited with code {self.proc.returncode} before listening; "
                               f"last lines of {self.log}:\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise UcxError(f"the Thrift server did not listen on {self.host}:{self.port} within "
                               f"{self.start_timeout:.0f}s; last lines of {self.log}:\n{tail(self.log)}")
            time.sleep(1.0)
        self.register()

    def register(self) -> list[str]:
        """Expose every Delta table under the warehouse as <layer>.<table> (idempotent)."""
        statements = registration_sql(self.warehouse)
        if not statements:
            return []
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False, encoding="utf-8") as f:
            f.write(";\n".join(statements) + ";\n")
            script = Path(f.name)
        try:
            probe_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
            credentials = {"user": SERVICE_USER, "password": self._service_password} if self.auth == "password" else {}
            result = beeline(self.port, sql_file=script, host=probe_host, **credentials)
        finally:
            script.unlink(missing_ok=True)
        if result.returncode != 0:
            raise UcxError(f"registering tables through the Thrift server failed (beeline exit "
                           f"{result.returncode}): {result.stderr.strip()[-2000:]}")
        self.registered = [s.split(" USING ")[0].removeprefix("CREATE TABLE IF NOT EXISTS ")
                           for s in statements if s.startswith("CREATE TABLE")]
        return self.registered

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace_seconds=20)
            self.proc = None
        if self._service_password is not None:
            (metastore_dir(Path(self.warehouse).resolve()) / "service_user").unlink(missing_ok=True)
            self._service_password = None


def serve_forever(server: ThriftServer) -> int:
    """Start, announce, then block until the server exits or Ctrl-C; always stop it."""
    with server:
        print(f"Thrift JDBC/ODBC server ready: {server.jdbc_url}  (log: {server.log})")
        for name in server.registered:
            print(f"  {name.replace('`', '')}")
        print("Ctrl-C to stop.", flush=True)
        try:
            assert server.proc is not None
            code = server.proc.wait()
        except KeyboardInterrupt:
            return 0
    print(f"the Thrift server exited with code {code}; see {server.log}", file=sys.stderr)
    return 1
