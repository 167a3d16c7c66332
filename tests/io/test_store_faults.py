"""Faults of the MLflow store while scoring (issue 24): a store that is not there, one locked by
another process, a server that does not answer. Each is one clear error naming the store, and
gold/household_scores is left as it was."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from ucx_spark.errors import UcxError
from ucx_spark.io.delta_log import latest_version
from ucx_spark.pipelines import score as score_pipeline


def _scores_version(wh: Path) -> int | None:
    return latest_version(str(wh / "gold" / "household_scores"))


def test_a_missing_store_is_named_and_not_created(spark, insights_wh, tmp_path) -> None:
    before = _scores_version(insights_wh.warehouse)
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(UcxError, match=r"does not exist.*ucx train") as err:
        score_pipeline.run(spark, warehouse=str(insights_wh.warehouse), tracking_uri=f"sqlite:///{missing}", run_id="fault-1")
    assert str(missing) in str(err.value)
    assert not missing.exists() and not missing.parent.exists()
    assert _scores_version(insights_wh.warehouse) == before


def test_a_locked_store_is_named_and_gold_is_unchanged(spark, insights_wh) -> None:
    before = _scores_version(insights_wh.warehouse)
    db = Path(insights_wh.tracking_uri.removeprefix("sqlite:///"))
    holder = sqlite3.connect(db, timeout=1)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # what a writer mid-transaction (or a copy tool) holds
        with pytest.raises(UcxError, match=r"locked.*Nothing was written") as err:
            score_pipeline.run(spark, warehouse=str(insights_wh.warehouse), tracking_uri=insights_wh.tracking_uri,
                               run_id="fault-2")
        assert insights_wh.tracking_uri in str(err.value)
    finally:
        holder.rollback()
        holder.close()
    assert _scores_version(insights_wh.warehouse) == before


def test_a_server_that_does_not_answer_is_named(spark, insights_wh, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    before = _scores_version(insights_wh.warehouse)
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(UcxError, match=r"server running and reachable") as err:
        score_pipeline.run(spark, warehouse=str(insights_wh.warehouse), tracking_uri=uri, run_id="fault-3")
    assert uri in str(err.value)
    assert _scores_version(insights_wh.warehouse) == before
