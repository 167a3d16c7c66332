"""The typed command layer (issue 23, "one way in"): one function per command, one exit-code map
for the CLI, the spark-submit jobs and the MLflow entry points, checks before any JVM starts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ucx_spark import commands
from ucx_spark.cli import main
from ucx_spark.commands import Command, PipelineParams, execute, render_json
from ucx_spark.config import load_config
from ucx_spark.errors import DataError, UcxError
from ucx_spark.io.lock import WarehouseBusyError
from ucx_spark.quality.audit import QualityCheck, QualityReport

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_command_with_a_line_and_each_command_shows_an_example(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(commands.COMMANDS)
    for name in commands.COMMANDS:
        assert main([name, "--help"]) == 0, name
        text = capsys.readouterr().out
        assert f"Usage: ucx {name}" in text and "Example:" in text and f"ucx {name}" in text.split("Example:")[1], name


def _cfg(tmp_path: Path):
    return load_config(env="local").with_paths(landing=str(tmp_path / "landing"), warehouse=str(tmp_path / "wh"))


@pytest.mark.parametrize(("raised", "code", "words"), [
    (None, 0, "all went well"),
    (UcxError("--thing: not allowed"), 2, "job: error: --thing: not allowed"),
    (DataError("bad row 7 of x.csv"), 1, "job: data error: bad row 7 of x.csv"),
    (WarehouseBusyError("held by run nightly-1"), 75, "job: busy: held by run nightly-1"),
    (RuntimeError("disk on fire"), 1, "job: failed: RuntimeError: disk on fire"),
])
def test_one_exit_code_map_for_every_front_end(tmp_path, capsys, raised, code, words):
    def run(cfg, params):
        if raised is not None:
            raise raised
        print("all went well")
        return 0

    assert execute(Command(run, session=False), None, _cfg(tmp_path), label="job") == code
    captured = capsys.readouterr()
    assert words in (captured.out if code == 0 else captured.err)
    assert "Traceback" not in captured.err
    if code == 1 and isinstance(raised, RuntimeError):
        assert "--debug" in captured.err  # how to see the whole trace


def test_debug_lets_an_internal_error_through_with_its_trace(tmp_path):
    def run(cfg, params):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        execute(Command(run, session=False), None, _cfg(tmp_path), debug=True)


def test_checks_run_before_any_lock_or_session(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UCX_PSEUDONYM_KEY", "k")
    started = []
    monkeypatch.setattr(commands, "start_session", lambda cfg: started.append(cfg) or (None, False))
    cfg = _cfg(tmp_path)
    assert execute("pipeline", PipelineParams(), cfg) == 2  # no landing zone
    assert "landing zone" in capsys.readouterr().err
    (tmp_path / "landing").mkdir()
    assert execute("pipeline", PipelineParams(accept_incomplete=("2024-03-10",)), cfg) == 2
    assert "needs --accept-reason" in capsys.readouterr().err
    assert execute("pipeline", PipelineParams(steps=("gold",), accept_reason="why"), cfg) == 2
    assert execute("train", commands.TrainParams(), cfg) == 2  # no gold yet
    assert "run `ucx pipeline` first" in capsys.readouterr().err
    assert started == [] and not (tmp_path / "wh").exists()


def test_a_job_takes_ucx_options_anywhere_and_names_itself_in_errors(tmp_path):
    """jobs/*.py are `ucx COMMAND` with the job's arguments: --env after the command's options,
    the same checks (exit 2 before any JVM) and the job's name in the message."""
    done = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "bronze.py"), "--landing", str(tmp_path / "none"),
         "--warehouse", str(tmp_path / "wh"), "--env", "local"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "bronze: error: landing zone" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "wh").exists()


def test_pipeline_steps_are_checked_by_the_parser(capsys):
    assert main(["pipeline", "--step", "sliver"]) == 2
    assert "sliver" in capsys.readouterr().err


def test_json_renders_the_result_dataclass():
    report = QualityReport(
        warehouse="/wh", data_docs="/wh/_quality/index.html", data_docs_built=True, run_id="r1",
        checks=(QualityCheck("silver", "bills", "not_null_kwh", "expect_column_values_to_not_be_null", "critical",
                             False, "3 of 40"),
                QualityCheck("silver", "bills", "key_unique", "expect_compound_columns_to_be_unique", "critical",
                             True, None)))
    data = json.loads(render_json(report))
    assert data["run_id"] == "r1" and data["data_docs_built"] is True
    assert [c["expectation_id"] for c in data["checks"]] == ["not_null_kwh", "key_unique"]
    assert data["checks"][0] == {"layer": "silver", "table": "bills", "expectation_id": "not_null_kwh",
                                 "expectation_type": "expect_column_values_to_not_be_null", "severity": "critical",
                                 "success": False, "observed_value": "3 of 40"}
    assert "failures:\n  [critical] silver.bills not_null_kwh" in report.summary()
    assert json.loads(render_json(commands.ScoreParams(as_of=date(2025, 12, 31)))) == {
        "as_of": "2025-12-31", "tracking_uri": None}
