"""`ucx demo`, end to end as a user runs it (its own process and Spark), leaks neither the
pseudonym key nor a landed identifier (issue 24, security): every file it wrote outside the
restricted places (bronze, silver, quarantine, _restricted; the landing zone itself) and all
it printed are scanned by `scripts/scan_pii.py` for the key and every account's account,
customer, premise and meter number, name, address, email and phone."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scanner():
    spec = importlib.util.spec_from_file_location("scan_pii", ROOT / "scripts" / "scan_pii.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_demo_leaks_neither_the_key_nor_a_landed_identifier(tmp_path: Path) -> None:
    # as a new user runs it: no key in the environment, so the demo makes its own key file (in
    # the working folder) and warns; that key is what must not leak
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name in ("UCX_PSEUDONYM_KEY", "UCX_MLFLOW__TRACKING_URI", "UCX_PSEUDONYM__DEMO_KEY_FILE"):
        env.pop(name, None)  # the demo's own key and MLflow store
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "ucx_spark.cli", "demo", "--out", str(out), "--households", "30",
         "--interval-minutes", "15"],
        cwd=tmp_path, env=env, capture_output=True, timeout=2400, check=False,
    )
    printed = tmp_path / "demo-output.log"
    printed.write_bytes(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:].decode("utf-8", "replace")
    # the terminal carries lines a user can act on (issue 23): no JVM stack (Janino's codegen
    # fallback goes to spark.log), no MLflow progress bars or INFO lines
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert "\tat org." not in text and "Downloading artifacts" not in text and " INFO mlflow" not in text, [
        line for line in text.splitlines() if "\tat org." in line or "artifacts" in line or "INFO" in line][:5]
    key_file = tmp_path / ".ucx_demo_key"
    assert key_file.stat().st_mode & 0o077 == 0 and b"uses the local key in" in proc.stderr
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) == 64

    # the demo did everything it says, so there was something to leak
    warehouse = out / "warehouse"
    for table in ("gold/meter_daily_usage", "gold/household_features", "gold/cx_kpis", "gold/household_scores",
                  "silver/accounts", "bronze/accounts"):
        assert (warehouse / table / "_delta_log").is_dir(), table
    assert (warehouse / "_mlflow" / "mlflow.db").is_file()
    assert list(out.rglob("*.html")), "no report or Data Docs"

    scan = _scanner()
    identifiers = scan.landed_identifiers(out / "landing")
    assert len(identifiers) > 100
    # everything it wrote (its working folder too: the key file itself aside) and everything it printed
    scanned, hits = scan.scan(tmp_path, out / "landing", key.encode(), [], skip=(key_file,))
    assert scanned > 300, scanned  # Delta logs and files of gold, Data Docs, GX stores, MLflow, report, logs
    assert hits == [], hits[:5]

    # and the scanner finds what it looks for: a landed accounts file copied into gold is a hit
    control = tmp_path / "control"
    shutil.copytree(out / "landing" / "accounts", control / "landing" / "accounts")
    leaked = control / "gold" / "export.csv"
    leaked.parent.mkdir(parents=True)
    source = sorted((out / "landing" / "accounts").glob("accounts_*.csv*"))[0]
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as fh:
        leaked.write_bytes(fh.read())
    (control / "gold" / "run.log").write_text(f"connecting with key {key}\n", encoding="utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    one = sorted(scan.landed_identifiers(out / "landing"))[0]  # nested in a Parquet cell, as top_drivers are
    pq.write_table(pa.table({"drivers": [[{"feature": "x", "note": f"about {one}"}]]}), control / "gold" / "p.parquet")
    (control / "gold" / "out.txt.gz").write_bytes(gzip.compress(f"{key}\n".encode()))
    _, control_hits = scan.scan(control, control / "landing", key.encode(), [])
    assert {Path(h.split(":")[0]).name for h in control_hits} == {"export.csv", "run.log", "p.parquet", "out.txt.gz"}, \
        control_hits
