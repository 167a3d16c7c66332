"""Configuration: conf/base.yaml, then conf/<env>.yaml, then UCX_* variables.

Loaded once at the entry point into frozen dataclasses; library functions take
the typed values they need, never the whole config or ``os.environ``.

Environment overrides use ``UCX_<SECTION>__<KEY>`` (double underscore between
section and key), for example ``UCX_PRIVACY__MIN_HOUSEHOLDS=100``.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ucx_spark.errors import ConfigError

PACKAGE_CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass(frozen=True)
class PathsConfig:
    landing: str = "data/landing"
    warehouse: str = "data/warehouse"


@dataclass(frozen=True)
class UtilityConfig:
    name: str = "Demo Electric"
    time_zone: str = "America/Chicago"


# contract section 3: the one default of each privacy threshold (gold/privacy and every step use these)
DEFAULT_MIN_HOUSEHOLDS = 15
DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE = 0.15


@dataclass(frozen=True)
class PrivacyConfig:
    min_households: int = DEFAULT_MIN_HOUSEHOLDS
    max_household_energy_share: float = DEFAULT_MAX_HOUSEHOLD_ENERGY_SHARE


@dataclass(frozen=True)
class PseudonymConfig:
    key_env: str = "UCX_PSEUDONYM_KEY"
    demo_key_file: str = ".ucx_demo_key"


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "ucx-spark"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"
    metastore: str = "none"
    jars_dir: str = ".jars/delta"
    log_level: str = "WARN"
    ui_enabled: bool = False
    # feeds whose bronze and silver steps run side by side (driver threads; 1: one at a time)
    feed_threads: int = 4
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str = ""
    experiment: str = "ucx-spark"


@dataclass(frozen=True)
class QualityConfig:
    ami_completeness_min: float = 0.9
    # a local day's AMI completeness is judged on the fleet only when at least this many meters
    # are expected that day (fewer: one meter's gap, reported but not fatal)
    ami_min_meters_per_day: int = 10
    # local days (YYYY-MM-DD) published although below ami_completeness_min, and why (required
    # with them); recorded in gold/quality_results with who ran it. CLI: --accept-incomplete
    accept_incomplete_days: tuple[str, ...] = ()
    accept_incomplete_reason: str = ""
    # tables with at least this many rows get their row-level expectations computed by Spark
    # in one aggregation instead of one GX metric pass each (same verdicts; see quality/gates.py)
    spark_row_rules_min_rows: int = 1_000_000
    # batches of at most this many rows are validated by GX's pandas engine (0: always Spark)
    pandas_max_rows: int = 200_000


@dataclass(frozen=True)
class InsightsConfig:
    """Settings of drivers, what-if, segmentation, saturation and targeting (issue 6)."""

    bootstrap_replicates: int = 200        # what-if confidence intervals
    confidence_level: float = 0.9
    liheap_annual_benefit_usd: float = 600.0  # assistance a newly enrolled household receives per year
    liheap_benefit_months: tuple[int, ...] = (12, 1, 2)  # the months it is paid in, in equal parts (heating season)
    liheap_take_up: float = 1.0  # probability a benefit month's part is paid (the year's expected benefit stays the same)
    csat_top2box_threshold: float = 3.5    # predicted CSAT at or above counts as top-2-box
    personas: int = 6                      # foundational persona clusters (5-7)
    seed: int = 42
    saturation_horizon_months: int = 12
    suppress_recent_contact_days: int = 30  # targeting: no campaign to households contacted this recently
    suppress_enrolled: bool = True          # targeting: skip households already in the program
    suppress_collections_hardship: bool = True  # targeting: skip households in the disconnection process
    activation_dir: str = ""               # empty = <warehouse>/_restricted/activation
    max_campaign_contacts_30d: int = 3     # targeting: frequency cap on marketing messages sent (0 = none)
    do_not_contact_path: str = ""          # empty = <landing>/_restricted/do_not_contact.csv (docs/contact_policy.md)
    moratorium_cold_f: float = 32.0        # collections: no action after a day this cold (min, F) at the station
    moratorium_heat_f: float = 95.0        # collections: ... or this hot (max, F)


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    utility: UtilityConfig = field(default_factory=UtilityConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    pseudonym: PseudonymConfig = field(default_factory=PseudonymConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    insights: InsightsConfig = field(default_factory=InsightsConfig)
    env: str = "local"
    sources: tuple[str, ...] = ()

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        db = Path(self.paths.warehouse).resolve() / "_mlflow" / "mlflow.db"
        return f"sqlite:///{db}"

    def with_paths(self, *, landing: str | None = None, warehouse: str | None = None) -> Config:
        """A copy with landing and/or warehouse replaced (CLI flags win over files)."""
        from dataclasses import replace

        new_paths = replace(
            self.paths,
            landing=landing if landing is not None else self.paths.landing,
            warehouse=warehouse if warehouse is not None else self.paths.warehouse,
        )
        return replace(self, paths=new_paths)


_SECTIONS: dict[str, type] = {
    "paths": PathsConfig,
    "utility": UtilityConfig,
    "privacy": PrivacyConfig,
    "pseudonym": PseudonymConfig,
    "spark": SparkConfig,
    "mlflow": MlflowConfig,
    "quality": QualityConfig,
    "insights": InsightsConfig,
}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _coerce(value: Any, target: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``target`` or raise naming ``where``."""
    if target in ("int", int):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if target in ("float", float):
        try:
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if target in ("bool", bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if target in ("str", str):
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    if isinstance(target, str) and target.startswith("tuple[str"):
        if value is None:
            return ()
        items = value if isinstance(value, list) else str(value).split(",")
        if any(isinstance(v, (dict, list)) for v in items):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(str(v).strip() for v in items if str(v).strip())
    if isinstance(target, str) and target.startswith("tuple[int"):
        items = [] if value is None else value if isinstance(value, list) else str(value).split(",")
        try:
            return tuple(int(str(v).strip()) for v in items if str(v).strip() and not isinstance(v, bool))
        except ValueError:
            raise ConfigError(f"{where}: expected a list of integers, got {value!r}") from None
    if isinstance(target, str) and target.startswith("Mapping"):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of setting: value, got {value!r}")
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    return value


def _merge(raw: dict[str, dict[str, tuple[Any, str]]], data: dict[str, Any], origin: str) -> None:
    for section, values in data.items():
        if section not in _SECTIONS:
            allowed = ", ".join(_SECTIONS)
            raise ConfigError(f"{origin}: unknown section '{section}' (allowed: {allowed})")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: section '{section}' must be a mapping")
        known = {f.name for f in fields(_SECTIONS[section])}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{origin}: unknown key '{section}.{key}' (allowed: {', '.join(sorted(known))})"
                )
            previous = raw.get(section, {}).get(key)
            if isinstance(value, dict) and previous is not None and isinstance(previous[0], dict):
                value = {**previous[0], **value}  # mappings (spark.extra) add to the earlier file's
            raw.setdefault(section, {})[key] = (value, origin)


def _validate(cfg: Config, raw: dict[str, dict[str, tuple[Any, str]]]) -> None:
    def fail(key: str, msg: str) -> None:
        section, _, name = key.partition(".")
        origin = raw.get(section, {}).get(name, (None, "built-in default"))[1]
        raise ConfigError(f"{origin}: {key}: {msg}")

    try:
        ZoneInfo(cfg.utility.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        fail("utility.time_zone", f"'{cfg.utility.time_zone}' is not an IANA time zone such as America/Chicago")
    _validate_insights(cfg.insights, fail)
    if cfg.privacy.min_households < 1:
        fail("privacy.min_households", f"must be an integer >= 1, got {cfg.privacy.min_households}")
    if not 0 < cfg.privacy.max_household_energy_share <= 1:
        fail("privacy.max_household_energy_share", "must be a fraction in (0, 1]")
    if cfg.spark.metastore not in ("none", "derby"):
        fail("spark.metastore", f"'{cfg.spark.metastore}' is not allowed (allowed: none, derby)")
    if cfg.spark.shuffle_partitions < 1:
        fail("spark.shuffle_partitions", "must be an integer >= 1")
    if cfg.spark.log_level.upper() not in ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"):
        fail("spark.log_level", f"'{cfg.spark.log_level}' is not a log4j level (WARN, INFO, ERROR...)")
    if not 0 <= cfg.quality.ami_completeness_min <= 1:
        fail("quality.ami_completeness_min", "must be a fraction in [0, 1]")
    if cfg.quality.ami_min_meters_per_day < 1:
        fail("quality.ami_min_meters_per_day", "must be an integer >= 1")
    for day in cfg.quality.accept_incomplete_days:
        try:
            date.fromisoformat(day)
        except ValueError:
            fail("quality.accept_incomplete_days", f"'{day}' is not a date YYYY-MM-DD")
    if cfg.quality.accept_incomplete_days and not cfg.quality.accept_incomplete_reason.strip():
        fail("quality.accept_incomplete_reason", "is required with accept_incomplete_days (why the days are published)")
    if cfg.quality.spark_row_rules_min_rows < 0:
        fail("quality.spark_row_rules_min_rows", "must be a row count >= 0 (0: always Spark)")
    if cfg.spark.feed_threads < 1:
        fail("spark.feed_threads", "must be >= 1 (1: one feed at a time)")
    if cfg.quality.pandas_max_rows < 0:
        fail("quality.pandas_max_rows", "must be a row count >= 0 (0: always Spark)")



def _validate_insights(ins: InsightsConfig, fail: Callable[[str, str], None]) -> None:
    if ins.bootstrap_replicates < 10:
        fail("insights.bootstrap_replicates", f"must be an integer >= 10, got {ins.bootstrap_replicates}")
    if not 0 < ins.confidence_level < 1:
        fail("insights.confidence_level", f"must be a fraction in (0, 1), got {ins.confidence_level}")
    if not 2 <= ins.personas <= 12:
        fail("insights.personas", f"must be an integer in [2, 12], got {ins.personas}")
    if ins.liheap_annual_benefit_usd < 0:
        fail("insights.liheap_annual_benefit_usd", "must be >= 0")
    if not 0 < ins.liheap_take_up <= 1:
        fail("insights.liheap_take_up", f"must be a probability in (0, 1], got {ins.liheap_take_up}")
    months = ins.liheap_benefit_months
    if not months or any(not 1 <= m <= 12 for m in months) or len(set(months)) != len(months):
        fail("insights.liheap_benefit_months", f"must be distinct months 1-12, at least one, got {list(months)}")
    if ins.saturation_horizon_months < 1:
        fail("insights.saturation_horizon_months", "must be >= 1")
    if ins.moratorium_cold_f >= ins.moratorium_heat_f:
        fail("insights.moratorium_cold_f", f"must be below insights.moratorium_heat_f ({ins.moratorium_heat_f}), "
                                           f"got {ins.moratorium_cold_f}")


def load_config(
    env: str | None = None,
    conf_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load base.yaml, then <env>.yaml, then UCX_<SECTION>__<KEY> variables.

    ``env`` defaults to ``UCX_ENV`` or ``local``; ``conf_dir`` to ``UCX_CONF_DIR``
    or the repository's ``conf/``.
    """
    environ = os.environ if environ is None else environ
    env = env or environ.get("UCX_ENV") or "local"
    directory = Path(conf_dir or environ.get("UCX_CONF_DIR") or PACKAGE_CONF_DIR)
    base = directory / "base.yaml"
    if not base.is_file():
        raise ConfigError(f"{base}: configuration file not found (set --conf to the folder holding base.yaml)")
    raw: dict[str, dict[str, tuple[Any, str]]] = {}
    sources = [str(base)]
    _merge(raw, _read_yaml(base), str(base))
    env_file = directory / f"{env}.yaml"
    if env_file.is_file():
        _merge(raw, _read_yaml(env_file), str(env_file))
        sources.append(str(env_file))
    elif env not in ("test",):
        raise ConfigError(f"{env_file}: no configuration for environment '{env}' (have: "
                          + ", ".join(sorted(p.stem for p in directory.glob("*.yaml") if p.stem != "base"))
                          + ")")
    for name, value in sorted(environ.items()):
        if not name.startswith("UCX_") or "__" not in name:
            continue
        section, _, key = name[4:].lower().partition("__")
        _merge(raw, {section: {key: value}}, f"environment variable {name}")
        sources.append(f"environment variable {name}")

    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        kwargs = {}
        types = {f.name: f.type for f in fields(cls)}
        for key, (value, origin) in raw.get(section, {}).items():
            kwargs[key] = _coerce(value, types[key], f"{origin}: {section}.{key}")
        sections[section] = cls(**kwargs)
    cfg = Config(**sections, env=env, sources=tuple(sources))
    _validate(cfg, raw)
    return cfg


def pseudonym_key(cfg: PseudonymConfig, *, demo: bool = False, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key for pseudonyms: UTF-8 bytes of the secret in the environment.

    Outside the demo a missing key stops the run.  The demo creates (once) a
    random key in a local file, outside git, and warns that it did so.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(cfg.key_env, "")
    if value:
        return value.encode("utf-8")
    if not demo:
        raise ConfigError(
            f"environment variable {cfg.key_env} is not set: it holds the secret key for "
            "household_id and meter_key pseudonyms (contract section 3). Set it, e.g. "
            f"export {cfg.key_env}=$(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    path = Path(cfg.demo_key_file)
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    print(
        f"warning: {cfg.key_env} is not set; the demo uses the local key in {path.resolve()}. "
        "Pseudonyms made with it do not match any other system's.",
        file=sys.stderr,
    )
    return path.read_text(encoding="utf-8").strip().encode("utf-8")
