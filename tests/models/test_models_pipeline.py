"""Train and score against a real `mlflow server` (sqlite backend, artifact
destination), then read everything back through MlflowClient.

One module-scoped run keeps the suite small: ev_adoption and csat (the
classifier path and the propensity-weighted regressor path), 2 Optuna trials
each, on ~300 synthetic households x 3 as-of dates with planted signal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from models_synth import AS_OF_DATES, build_synthetic_warehouse
from pyspark.sql import functions as F

from ucx_spark.io.delta import read_table
from ucx_spark.models import validation
from ucx_spark.models.score import SCORES_SCHEMA
from ucx_spark.pipelines import score as score_pipeline
from ucx_spark.pipelines import train as train_pipeline

MODELS = ["ev_adoption", "csat", "nps"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(mlflow_bin), "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (workers included)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@dataclass
class Trained:
    warehouse: Path
    uri: str
    train: train_pipeline.TrainResult
    score: score_pipeline.ScoreResult
    frames: dict


@pytest.fixture(scope="module")
def trained(spark, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import mlflow

    wh = tmp_path_factory.mktemp("models-wh")
    frames = build_synthetic_warehouse(spark, wh)
    result = train_pipeline.run(
        spark,
        warehouse=str(wh),
        tracking_uri=mlflow_server,
        experiment="ucx-test",
        models=MODELS,
        trials=2,
        run_id="test-train",
        time_zone="America/Chicago",
        # the scoring tests below need champions; the baseline rule is tested by the retrain test
        require_baseline_lift=False,
    )
    scored = score_pipeline.run(spark, warehouse=str(wh), tracking_uri=mlflow_server, run_id="test-score")
    assert mlflow.get_tracking_uri() == mlflow_server
    return Trained(wh, mlflow_server, result, scored, frames)


def test_runs_and_registered_models_read_back_from_the_server(trained: Trained) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=trained.uri, registry_uri=trained.uri)
    exp = client.get_experiment_by_name("ucx-test")
    for model in MODELS:
        res = trained.train.models[model]
        assert res.status == "trained", res.reason
        # ~60 validation households: too few rows to judge -> out-of-fold over household folds
        assert res.validation_scheme == validation.KFOLD
        parent = client.get_run(res.run_id)
        assert parent.info.experiment_id == exp.experiment_id
        params = parent.data.params
        assert "too few to judge" in params["validation_note"]
        assert params["data_version.gold.household_features"] == "0"
        assert any(k.startswith("data_version.silver.") for k in params)
        assert "ev_interest" in params["features"] and "meter_key" not in params["features"]
        assert "household_id" not in params["features"]
        if model != "ev_adoption":  # response rows: the answers are labels, never features
            assert "data_version.gold.survey_features" in params
            assert not {"csat", "nps", "ces", "response_date"} & set(params["features"].split(","))
        children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{res.run_id}'")
        roles = [c.data.tags.get("ucx.role", "trial") for c in children]
        trials = [c for c in children if "ucx.role" not in c.data.tags]
        baselines = [c for c in children if c.data.tags.get("ucx.role") == "baseline"]
        assert sorted(roles) == ["baseline", "refit", "trial", "trial"]
        assert all("max_depth" in c.data.params for c in trials)
        assert baselines[0].data.params["penalty"].startswith("chosen by 5-fold cross-validation")
        metric = "auc" if model == "ev_adoption" else "spearman"
        # the baseline's metric on the same rows, and the candidate's lift over it, on the parent run
        assert parent.data.metrics[f"baseline_{metric}"] == pytest.approx(baselines[0].data.metrics[metric])
        assert parent.data.metrics[f"lift_over_baseline_{metric}"] == pytest.approx(
            parent.data.metrics[f"candidate_{metric}"] - parent.data.metrics[f"baseline_{metric}"])
        assert parent.data.metrics["n_valid_households"] > 0
        expected = {"auc", "pr_auc", "brier"} if model == "ev_adoption" else {"mae", "spearman", "mean_response_weight"}
        if model == "nps":
            expected |= {"rps", "nps_error", "multiclass_rps", "ordinal_rps"}
        if model != "ev_adoption" and parent.data.tags.get("ucx.nps_form") != "multiclass":
            # the survey models also judge the blend of the tuned booster and the baseline, and keep the better
            expected |= {"xgboost_spearman", "blend_spearman"}
            best = max(parent.data.metrics["xgboost_spearman"], parent.data.metrics["blend_spearman"])
            assert parent.data.metrics["candidate_spearman"] == pytest.approx(best)
            assert res.winner == ("blend" if parent.data.metrics["blend_spearman"] > parent.data.metrics[
                "xgboost_spearman"] else "xgboost")
        assert expected <= set(parent.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(res.run_id)} | {a.path for a in client.list_artifacts(res.run_id, "explain")}
        assert {"features.json", "explain/shap_summary.png", "explain/calibration.png"} <= artifacts
        # what is registered is the refit on every usable row, logged in the nested refit run
        mv = client.get_model_version_by_alias(f"ucx_{model}", "champion")
        assert str(mv.version) == "1" and mv.run_id == res.refit_run_id
        refit = client.get_run(res.refit_run_id)
        assert int(refit.data.params["n_rows"]) == res.n_refit == int(parent.data.metrics["n_refit"])
        assert refit.data.params["fitted_on"].startswith("every usable row")
        assert mv.tags["refit_rows"] == str(res.n_refit) and mv.tags["winner"] == res.winner
        assert res.winner == "xgboost" if model == "ev_adoption" else res.winner in ("xgboost", "blend")
    # the planted signal is learned, out of fold
    assert trained.train.models["ev_adoption"].metrics["auc"] > 0.75
    assert trained.train.models["csat"].metrics["spearman"] > 0.4
    assert trained.train.models["nps"].metrics["spearman"] > 0.3


def test_logged_model_has_signature_and_pyfunc_matches_spark_scores(spark, trained: Trained) -> None:
    import mlflow

    info = mlflow.models.get_model_info("models:/ucx_csat@champion")
    assert info.signature is not None
    assert "satisfaction_index" in info.signature.inputs.input_names()
    pyfunc = mlflow.pyfunc.load_model("models:/ucx_csat@champion")
    features_df = (
        read_table(spark, trained.warehouse, "gold", "household_features")
        .filter(F.col("as_of_date") == AS_OF_DATES[-1])
        .filter(F.col("household_id") >= "hh00010")  # hh00000-hh00009 closed their accounts: not scored
    )
    sample_pdf = features_df.orderBy("household_id").limit(20).toPandas()
    cols = info.signature.inputs.input_names()
    numeric = [c.name for c in info.signature.inputs.inputs if c.type.name == "double"]
    sample_pdf[numeric] = sample_pdf[numeric].astype("float64")  # numeric inputs are doubles
    expected = pyfunc.predict(sample_pdf[cols]).to_numpy()
    got = (
        read_table(spark, trained.warehouse, "gold", "household_scores")
        .filter(F.col("model_name") == "csat")
        .filter(F.col("household_id").isin(list(sample_pdf["household_id"])))
        .orderBy("household_id")
        .toPandas()
    )
    assert list(got["household_id"]) == list(sample_pdf["household_id"])
    np.testing.assert_allclose(got["score"].to_numpy(), expected, rtol=1e-6)


def test_scores_table_one_row_per_active_household_and_model_each_within_its_population(spark, trained: Trained) -> None:
    scores_df = read_table(spark, trained.warehouse, "gold", "household_scores")
    assert [(f.name, f.dataType.simpleString()) for f in scores_df.schema.fields] == [
        ("household_id", "string"),
        ("model_name", "string"),
        ("score", "double"),
        ("as_of_date", "date"),
        ("model_version", "string"),
        ("scored_at", "timestamp"),
        ("top_drivers", "array<struct<feature:string,contribution:double>>"),
        ("p_promoter", "double"),
        ("p_detractor", "double"),
        ("not_scored_reason", "string"),
        ("model_kind", "string"),
        ("event_committed_at", "timestamp"),  # `ucx stream`'s rows only (docs/streaming.md)
    ]
    assert scores_df.filter("event_committed_at IS NOT NULL").count() == 0  # a batch score has no event
    assert [f.name for f in SCORES_SCHEMA.fields] == [f.name for f in scores_df.schema.fields]
    accounts = trained.frames["accounts"]
    latest = AS_OF_DATES[-1]
    active = set(accounts.loc[accounts["end_date"].isna() | (accounts["end_date"] >= latest), "household_id"])
    assert len(active) == 290
    pdf = scores_df.toPandas()  # tiny test table
    assert len(pdf) == len(active) * len(MODELS) == trained.score.rows
    assert not pdf.duplicated(["household_id", "model_name"]).any()
    for model in MODELS:
        assert set(pdf.loc[pdf["model_name"] == model, "household_id"]) == active
    assert set(pdf["as_of_date"]) == {latest}
    assert set(pdf["model_version"]) == {"1"}
    for model in MODELS:  # what won is what scores
        assert set(pdf.loc[pdf["model_name"] == model, "model_kind"]) == {trained.train.models[model].winner}
    assert pdf["scored_at"].nunique() == 1
    # EV scores only households not yet enrolled in an EV program: the others carry the reason
    programs = trained.frames["programs"]
    adopted = set(programs.loc[programs["program"].isin(["ev_rate", "ev_charger_rebate"])
                               & (programs["enrolled_on"] <= latest), "household_id"]) & active
    ev = pdf[pdf["model_name"] == "ev_adoption"]
    assert adopted and set(ev.loc[ev["score"].isna(), "household_id"]) == adopted
    assert (ev.loc[ev["score"].isna(), "not_scored_reason"].str.contains("already enrolled")).all()
    assert ev["score"].dropna().between(0, 1).all() and ev.loc[ev["score"].notna(), "not_scored_reason"].isna().all()
    assert trained.score.not_scored["ev_adoption"] == len(adopted)
    csat = pdf.loc[pdf["model_name"] == "csat", "score"]
    assert csat.notna().all() and csat.between(1, 5).all() and csat.std() > 0.1
    # NPS: the expected 0-10 answer, promoters and detractors; with passives they sum to 1
    nps = pdf[pdf["model_name"] == "nps"]
    assert nps["score"].between(0, 10).all()
    passives = 1 - nps["p_promoter"] - nps["p_detractor"]
    assert (passives >= -1e-9).all() and (passives <= 1).all()
    assert pdf.loc[pdf["model_name"] != "nps", ["p_promoter", "p_detractor"]].isna().all().all()
    assert trained.score.utility_nps == pytest.approx(100 * (nps["p_promoter"].mean() - nps["p_detractor"].mean()))
    features = {"ev_interest", "past_due_count", "satisfaction_index", "contacts_90d", "kwh_mean", "is_owner", "home_type"}
    for drivers in pdf["top_drivers"].dropna():
        assert len(drivers) == 5
        magnitudes = [abs(d["contribution"]) for d in drivers]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert {d["feature"] for d in drivers} <= features
    # planted drivers lead
    ev_top = ev["top_drivers"].dropna().map(lambda d: d[0]["feature"])
    assert ev_top.value_counts().index[0] == "ev_interest"
    csat_top = pdf.loc[pdf["model_name"] == "csat", "top_drivers"].map(lambda d: d[0]["feature"])
    assert csat_top.value_counts().index[0] == "satisfaction_index"
    # the write was gated by gold.household_scores's suite and its verdicts recorded
    gate = read_table(spark, trained.warehouse, "gold", "quality_results").filter(
        "run_id = 'test-score' AND table = 'household_scores'").toPandas()
    assert {"key_unique", "range_probability_scores", "range_nps_score", "fk_household_id"} <= set(gate["expectation_id"])
    assert gate.loc[gate["severity"] == "critical", "success"].all()
    assert trained.score.quality.startswith("passed")


def test_a_baseline_that_wins_is_registered_and_a_tie_stays_challenger(spark, trained: Trained) -> None:
    from mlflow import MlflowClient

    def retrain(run_id: str):  # noqa: ANN202
        return train_pipeline.run(
            spark, warehouse=str(trained.warehouse), tracking_uri=trained.uri, experiment="ucx-test",
            models=["ev_adoption"], trials=1, run_id=run_id, time_zone="America/Chicago",
        ).models["ev_adoption"]

    client = MlflowClient(tracking_uri=trained.uri, registry_uri=trained.uri)
    champion_auc = float(client.get_model_version("ucx_ev_adoption", "1").tags["validation_auc"])
    # one trial of default parameters against the logistic baseline on a linear planted signal:
    # the baseline wins its run, and is what is registered (a model always exists to score with)
    res = retrain("test-retrain")
    assert res.winner == "baseline" and res.metrics["lift_over_baseline_auc"] < 0
    assert res.version == "2" and "baseline won" in res.reason
    mv = client.get_model_version("ucx_ev_adoption", "2")
    assert mv.tags["winner"] == "baseline"
    # same data, same split: the versions' honest metrics are compared directly
    assert res.metrics["auc"] > champion_auc and res.alias == "champion"
    assert "same rows" in res.reason
    assert str(client.get_model_version_by_alias("ucx_ev_adoption", "champion").version) == "2"
    # the same again ties: the champion stays
    again = retrain("test-retrain-2")
    assert (again.version, again.alias) == ("3", "challenger"), again.reason
    assert str(client.get_model_version_by_alias("ucx_ev_adoption", "challenger").version) == "3"
    run = client.get_run(again.run_id)
    assert run.data.metrics["champion_auc_same_data"] == pytest.approx(run.data.metrics["auc"])
    # the linear champion scores and explains like any model
    from ucx_spark.models.score import load_model, score_frame

    linear = load_model("models:/ucx_ev_adoption/2", model_name="ev_adoption", version="2")
    assert linear.kind == "linear"
    features_df = read_table(spark, trained.warehouse, "gold", "household_features").filter(
        F.col("as_of_date") == AS_OF_DATES[-1]).limit(10)
    scored = score_frame(features_df, linear).toPandas()
    assert scored["score"].between(0, 1).all() and scored["top_drivers"].map(len).eq(5).all()


def test_the_mlflow_project_entry_point_scores_through_the_command_layer(spark, trained: Trained, capsys) -> None:
    """`mlflow run mlflow_projects/score` calls score_entry.main: the same `score` command as `ucx
    score` (commands.execute), so the same gate and exit code; a session the caller already runs
    is used and left running."""
    import importlib.util

    entry = Path(__file__).resolve().parents[2] / "mlflow_projects" / "score" / "score_entry.py"
    spec = importlib.util.spec_from_file_location("score_entry", entry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = read_table(spark, trained.warehouse, "gold", "household_scores").select("scored_at").distinct().collect()
    assert module.main(["--warehouse", str(trained.warehouse), "--tracking-uri", trained.uri]) == 0
    assert "household_scores" in capsys.readouterr().out
    after = read_table(spark, trained.warehouse, "gold", "household_scores")
    assert after.count() == trained.score.rows  # the same households and models, scored again
    stamps = after.select("scored_at").distinct().collect()
    assert len(stamps) == 1 and stamps != before  # one new scoring run replaced the rows
    assert spark.range(3).count() == 3  # the test's session still runs
