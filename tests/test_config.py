from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from ucx_spark.cli import main
from ucx_spark.config import PseudonymConfig, load_config, pseudonym_key
from ucx_spark.errors import ConfigError


def _conf(tmp_path: Path, base: str, **envs: str) -> Path:
    (tmp_path / "base.yaml").write_text(base)
    for name, text in envs.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_repo_config_loads_with_documented_defaults():
    cfg = load_config(env="local", environ={})
    assert cfg.utility.time_zone == "America/Chicago"
    assert cfg.privacy.min_households == 15
    assert cfg.spark.metastore == "derby"  # local.yaml overrides base.yaml's none
    assert cfg.mlflow_tracking_uri.startswith("sqlite:///") and cfg.mlflow_tracking_uri.endswith("_mlflow/mlflow.db")
    cluster = load_config(env="cluster", environ={})
    assert cluster.spark.master.startswith("spark://")
    assert cluster.spark.extra["spark.executor.memory"] == "4g"
    assert cfg.insights.liheap_benefit_months == (12, 1, 2) and cfg.insights.liheap_take_up == 1.0
    with pytest.raises(ConfigError, match=r"insights.liheap_take_up: must be a probability in \(0, 1\]"):
        load_config(env="local", environ={"UCX_INSIGHTS__LIHEAP_TAKE_UP": "0"})
    assert load_config(env="local", environ={"UCX_INSIGHTS__LIHEAP_BENEFIT_MONTHS": "1, 2"}).insights.liheap_benefit_months \
        == (1, 2)
    for bad in ("12,13", "1,1,2"):
        with pytest.raises(ConfigError, match=r"insights.liheap_benefit_months: must be distinct months 1-12"):
            load_config(env="local", environ={"UCX_INSIGHTS__LIHEAP_BENEFIT_MONTHS": bad})
    with pytest.raises(ConfigError, match=r"insights.liheap_benefit_months: expected a list of integers"):
        load_config(env="local", environ={"UCX_INSIGHTS__LIHEAP_BENEFIT_MONTHS": "dec"})


def test_env_file_then_environment_variables_override(tmp_path):
    conf = _conf(tmp_path, "privacy:\n  min_households: 15\nspark:\n  shuffle_partitions: 8\n", local="privacy:\n  min_households: 30\n")
    cfg = load_config(env="local", conf_dir=conf, environ={"UCX_PRIVACY__MIN_HOUSEHOLDS": "100", "UCX_SPARK__UI_ENABLED": "true"})
    assert cfg.privacy.min_households == 100
    assert cfg.spark.ui_enabled is True
    assert cfg.spark.shuffle_partitions == 8
    with pytest.raises(FrozenInstanceError):
        cfg.privacy.min_households = 1  # type: ignore[misc]


def test_bad_value_names_file_key_and_what_is_allowed(tmp_path):
    conf = _conf(tmp_path, "utility:\n  time_zone: Mars/Olympus\n", local="")
    with pytest.raises(ConfigError) as err:
        load_config(env="local", conf_dir=conf, environ={})
    assert str(tmp_path / "base.yaml") in str(err.value)
    assert "utility.time_zone" in str(err.value) and "IANA" in str(err.value)

    conf = _conf(tmp_path, "spark:\n  metastore: oracle\n", local="")
    with pytest.raises(ConfigError, match=r"base.yaml: spark.metastore: 'oracle' is not allowed \(allowed: none, derby\)"):
        load_config(env="local", conf_dir=conf, environ={})

    conf = _conf(tmp_path, "privacy:\n  min_households: 15\n", local="privacy:\n  min_houshelds: 10\n")
    with pytest.raises(ConfigError, match=r"local.yaml: unknown key 'privacy.min_houshelds'"):
        load_config(env="local", conf_dir=conf, environ={})

    conf = _conf(tmp_path, "privacy:\n  min_households: 15\n", local="")
    with pytest.raises(ConfigError, match=r"UCX_PRIVACY__MIN_HOUSEHOLDS: privacy.min_households: must be an integer >= 1"):
        load_config(env="local", conf_dir=conf, environ={"UCX_PRIVACY__MIN_HOUSEHOLDS": "0"})


def test_unknown_environment_is_a_clear_error(tmp_path):
    conf = _conf(tmp_path, "", local="")
    with pytest.raises(ConfigError, match="no configuration for environment 'prod'"):
        load_config(env="prod", conf_dir=conf, environ={})


def test_pseudonym_key_comes_from_environment_or_stops(tmp_path, capsys):
    cfg = PseudonymConfig(key_env="UCX_PSEUDONYM_KEY", demo_key_file=str(tmp_path / "demo.key"))
    assert pseudonym_key(cfg, environ={"UCX_PSEUDONYM_KEY": "s3cr\u00e9t"}) == "s3cr\u00e9t".encode()
    with pytest.raises(ConfigError, match="UCX_PSEUDONYM_KEY is not set"):
        pseudonym_key(cfg, environ={})
    first = pseudonym_key(cfg, demo=True, environ={})
    assert "warning" in capsys.readouterr().err
    assert pseudonym_key(cfg, demo=True, environ={}) == first  # the demo key file is reused
    assert (tmp_path / "demo.key").stat().st_mode & 0o077 == 0


def test_cli_user_mistakes_exit_2_without_stack_trace(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UCX_PRIVACY__MIN_HOUSEHOLDS", "many")
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert "UCX_PRIVACY__MIN_HOUSEHOLDS" in err and "Traceback" not in err
    monkeypatch.delenv("UCX_PRIVACY__MIN_HOUSEHOLDS")
    monkeypatch.delenv("UCX_PSEUDONYM_KEY", raising=False)
    assert main(["pipeline", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "wh")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "land").mkdir()
    assert main(["pipeline", "--landing", str(tmp_path / "land"), "--warehouse", str(tmp_path / "wh")]) == 2
    assert "UCX_PSEUDONYM_KEY is not set" in capsys.readouterr().err
    assert main(["generate", "--households", "0"]) == 2  # an argument mistake: 2, and no SystemExit to catch
    assert "--households" in capsys.readouterr().err


def test_accept_incomplete_days_need_dates_and_a_reason(tmp_path, capsys, monkeypatch):
    cfg = load_config(env="local", environ={"UCX_QUALITY__ACCEPT_INCOMPLETE_DAYS": "2024-03-10, 2024-03-11",
                                            "UCX_QUALITY__ACCEPT_INCOMPLETE_REASON": "head-end outage"})
    assert cfg.quality.accept_incomplete_days == ("2024-03-10", "2024-03-11")
    assert cfg.quality.ami_min_meters_per_day == 10
    with pytest.raises(ConfigError, match="accept_incomplete_reason: is required"):
        load_config(env="local", environ={"UCX_QUALITY__ACCEPT_INCOMPLETE_DAYS": "2024-03-10"})
    with pytest.raises(ConfigError, match="'2024-13-01' is not a date"):
        load_config(env="local", environ={"UCX_QUALITY__ACCEPT_INCOMPLETE_DAYS": "2024-13-01",
                                          "UCX_QUALITY__ACCEPT_INCOMPLETE_REASON": "x"})
    (tmp_path / "land").mkdir()
    monkeypatch.setenv("UCX_PSEUDONYM_KEY", "k")
    base = ["pipeline", "--landing", str(tmp_path / "land"), "--warehouse", str(tmp_path / "wh")]
    assert main([*base, "--accept-incomplete", "2024-03-10"]) == 2
    assert "--accept-incomplete needs --accept-reason" in capsys.readouterr().err
    assert main([*base, "--accept-incomplete", "yesterday", "--accept-reason", "x"]) == 2
    assert "'yesterday' is not a date" in capsys.readouterr().err
    assert main([*base, "--accept-reason", "x"]) == 2
    assert not (tmp_path / "wh").exists()  # refused before anything was read or written
