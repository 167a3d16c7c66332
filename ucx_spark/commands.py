"""One way in: every ``ucx`` command is a parameter dataclass and one typed function.

``run_<command>(spark, cfg, params) -> result`` does the work on a session it is given (``ucx
demo`` runs several on one session); ``execute(name, params, cfg)`` runs one command for a front
end (the ``ucx`` CLI, the spark-submit jobs in ``jobs/``, the MLflow project entry points): the
checks that need no JVM first, the warehouse lock where the command takes it (before the session
starts, so a busy warehouse stops at once), one session (``session.start_spark``), the result
printed (its summary, or JSON rendered from the result dataclass), the session stopped at the end,
and one exit-code map for every front end:

    0 done, 1 the step failed (data, quality gate, internal error), 2 a mistake the user can fix
    (arguments, config, missing input; one line, no stack trace), 75 another run holds the
    warehouse (sysexits' EX_TEMPFAIL: a scheduler retries later).

Front ends only turn their arguments into a parameter dataclass and a Config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucx_spark.catalog import CAMPAIGN_TARGETS, HOUSEHOLD_FEATURES
from ucx_spark.config import Config, pseudonym_key
from ucx_spark.contract import INTERVAL_MINUTES
from ucx_spark.errors import EXIT_BUSY, DataError, UcxError
from ucx_spark.progress import say, step
from ucx_spark.session import new_run_id

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class GenerateParams:
    out: str | None = None  # default: paths.landing
    households: int = 200
    months: int = 13
    interval_minutes: int = 15
    seed: int = 42
    end_date: str | None = None  # YYYY-MM-DD; default the generator's


@dataclass(frozen=True)
class PipelineParams:
    run_id: str | None = None
    gates: bool = True
    demo_key: bool = False  # ucx demo: a local demo key (with a warning) when UCX_PSEUDONYM_KEY is unset
    accept_incomplete: tuple[str, ...] = ()  # local days published although incomplete
    accept_reason: str | None = None
    steps: tuple[str, ...] | None = None  # a part of medallion.STEPS (the step jobs); None: all


@dataclass(frozen=True)
class TrainParams:
    models: tuple[str, ...] = ("all",)
    trials: int = 20
    require_baseline_lift: bool = True
    tracking_uri: str | None = None  # default: the configured store
    experiment: str | None = None
    parent_run_id: str | None = None  # an MLflow project run to nest under


@dataclass(frozen=True)
class ScoreParams:
    as_of: date | None = None
    tracking_uri: str | None = None


@dataclass(frozen=True)
class StreamParams:
    trigger: float = 15.0
    available_now: bool = False
    since: str | None = None
    checkpoint: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class EvaluateParams:
    truth: str = ""
    trials: int = 10


@dataclass(frozen=True)
class WhatifParams:
    scenarios: tuple[str, ...] = ()  # NAME=VALUE, one run each
    sets: tuple[str, ...] = ()  # FEATURE=EXPR
    where: tuple[str, ...] = ()  # ANDed conditions


@dataclass(frozen=True)
class NoParams:
    """The parameters of a command that has none beyond the configuration (drivers, quality, rekey)."""


@dataclass(frozen=True)
class ReportParams:
    out: str = "report.html"


@dataclass(frozen=True)
class DemoParams:
    out: str = "data/demo"
    households: int = 1000
    months: int = 13
    interval_minutes: int = 60
    seed: int = 7
    trials: int = 3


@dataclass(frozen=True)
class ServeSqlParams:
    port: int = 10000
    host: str = "127.0.0.1"
    auth: str = "none"
    master: str | None = None


@dataclass(frozen=True)
class SqlUserParams:
    name: str = ""


@dataclass(frozen=True)
class RebuildParams:
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaintainParams:
    vacuum_hours: float | None = 168.0  # None: OPTIMIZE only
    force_retention: bool = False


@dataclass(frozen=True)
class SegmentParams:
    objective: str | None = None


@dataclass(frozen=True)
class SaturationParams:
    goals: tuple[str, ...] = ()  # PROGRAM=+PP


@dataclass(frozen=True)
class TargetParams:
    campaign: str = ""


@dataclass(frozen=True)
class ExplainBillParams:
    household_id: str = ""
    bills: int = 1


@dataclass(frozen=True)
class ActivateParams:
    campaign: str = ""
    actor: str | None = None


# --------------------------------------------------------------------------- checks (no JVM yet)


def require_warehouse(cfg: Config) -> Path:
    warehouse = Path(cfg.paths.warehouse)
    if not warehouse.is_dir():
        raise UcxError(f"warehouse {warehouse} does not exist (set --warehouse or paths.warehouse)")
    return warehouse


def require_gold(cfg: Config, table: str = HOUSEHOLD_FEATURES) -> None:
    path = Path(cfg.paths.warehouse) / "gold" / table / "_delta_log"
    if not path.is_dir():
        raise UcxError(
            f"gold/{table} not found under warehouse {cfg.paths.warehouse}: run `ucx pipeline` first "
            "(or set --warehouse)"
        )


def parse_day(option: str, text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UcxError(f"{option}: '{text}' is not a date YYYY-MM-DD") from None


def accepted_days(text: str | None, reason: str | None) -> tuple[str, ...]:
    """``--accept-incomplete DAY[,DAY...]`` parsed and checked against ``--accept-reason``."""
    if text is None:
        check_accepted((), reason)
        return ()
    days = tuple(d.strip() for d in text.split(",") if d.strip())
    if not days:
        raise UcxError("--accept-incomplete: expected one or more local days YYYY-MM-DD[,YYYY-MM-DD...]")
    check_accepted(days, reason)
    return days


def check_accepted(days: tuple[str, ...], reason: str | None) -> None:
    """Accepted incomplete days are dates and come with a reason; a reason comes with days."""
    if not days:
        if reason:
            raise UcxError("--accept-reason goes with --accept-incomplete DAY[,DAY...]")
        return
    for day in days:
        parse_day("--accept-incomplete", day)
    if not (reason or "").strip():
        raise UcxError("--accept-incomplete needs --accept-reason TEXT: why these days are published incomplete "
                       "(recorded in gold/quality_results with who ran it)")


def _check_generate(cfg: Config, p: GenerateParams) -> Config:
    if p.interval_minutes not in INTERVAL_MINUTES:
        allowed = ", ".join(str(m) for m in INTERVAL_MINUTES)
        raise UcxError(f"--interval-minutes {p.interval_minutes}: allowed values are {allowed}")
    parse_day("--end-date", p.end_date)
    return cfg


def _check_pipeline(cfg: Config, p: PipelineParams) -> Config:
    steps = p.steps or ("bronze", "silver", "gold")
    if "bronze" in steps and not Path(cfg.paths.landing).is_dir():
        raise UcxError(f"landing zone {cfg.paths.landing} does not exist (set --landing or paths.landing)")
    check_accepted(p.accept_incomplete, p.accept_reason)
    if p.accept_incomplete:
        cfg = dataclasses.replace(cfg, quality=dataclasses.replace(
            cfg.quality, accept_incomplete_days=tuple(p.accept_incomplete),
            accept_incomplete_reason=str(p.accept_reason).strip()))
    if "silver" in steps:
        pseudonym_key(cfg.pseudonym, demo=p.demo_key)  # fail before any work when the secret is missing
    return cfg


def _check_gold(cfg: Config, p: object) -> Config:
    require_gold(cfg)
    return cfg


def _check_evaluate(cfg: Config, p: EvaluateParams) -> Config:
    require_gold(cfg)
    if not Path(p.truth).is_dir():
        raise UcxError(f"--truth {p.truth}: not a folder (a `ucx generate` output or its _truth)")
    pseudonym_key(cfg.pseudonym, demo=False)
    return cfg


def _check_whatif(cfg: Config, p: WhatifParams) -> Config:
    require_gold(cfg)
    _scenarios(p)  # a scenario that does not parse stops before the JVM starts
    return cfg


def _check_report(cfg: Config, p: ReportParams) -> Config:
    require_warehouse(cfg)
    return cfg


def _check_rekey(cfg: Config, p: NoParams) -> Config:
    pseudonym_key(cfg.pseudonym, demo=False)
    if not os.environ.get("UCX_NEW_PSEUDONYM_KEY"):
        raise UcxError("set UCX_NEW_PSEUDONYM_KEY to the new key (and UCX_PSEUDONYM_KEY to the current one)")
    return cfg


def _check_maintain(cfg: Config, p: MaintainParams) -> Config:
    from ucx_spark.maintain import check_retention

    if p.vacuum_hours is not None:
        check_retention(p.vacuum_hours, force=p.force_retention)
    return cfg


def _check_segment(cfg: Config, p: SegmentParams) -> Config:
    require_gold(cfg)
    _objective(p)
    return cfg


def _check_saturation(cfg: Config, p: SaturationParams) -> Config:
    require_gold(cfg)
    _goals(p)
    return cfg


def _check_target(cfg: Config, p: TargetParams) -> Config:
    from ucx_spark.insights.targeting import CAMPAIGNS

    require_gold(cfg)
    if p.campaign not in CAMPAIGNS:
        raise UcxError(f"--campaign {p.campaign}: allowed campaigns are {', '.join(CAMPAIGNS)}")
    if do_not_contact_path(cfg).is_file():
        pseudonym_key(cfg.pseudonym, demo=False)  # the list's account ids need it: fail before any JVM
    return cfg


def do_not_contact_path(cfg: Config) -> Path:
    """The do-not-contact list (docs/contact_policy.md): insights.do_not_contact_path, else
    <landing>/_restricted/do_not_contact.csv (a folder the landing scan leaves alone)."""
    return Path(cfg.insights.do_not_contact_path or Path(cfg.paths.landing) / "_restricted" / "do_not_contact.csv")


def _do_not_contact(spark: SparkSession, cfg: Config) -> Any:
    from ucx_spark.pipelines.targeting import read_do_not_contact

    path = do_not_contact_path(cfg)
    if not path.is_file():
        return None
    return read_do_not_contact(spark, path, pseudonym_key=pseudonym_key(cfg.pseudonym, demo=False))


def _check_activate(cfg: Config, p: ActivateParams) -> Config:
    require_gold(cfg, CAMPAIGN_TARGETS)
    pseudonym_key(cfg.pseudonym, demo=False)
    return cfg


def _check_explain_bill(cfg: Config, p: ExplainBillParams) -> Config:
    from ucx_spark.catalog import BILL_EXPLANATIONS

    if not p.household_id:
        raise UcxError("--household: the pseudonymous household id (as in gold/household_scores) is required")
    if p.bills < 1:
        raise UcxError(f"--bills {p.bills}: at least 1")
    require_gold(cfg, BILL_EXPLANATIONS)
    return cfg


def _check_warehouse(cfg: Config, p: object) -> Config:
    require_warehouse(cfg)
    return cfg


def _scenarios(p: WhatifParams) -> list[Any]:
    from ucx_spark.insights.whatif import parse_scenario

    where = " AND ".join(f"({w})" for w in p.where) if len(p.where) > 1 else (p.where[0] if p.where else None)
    return [parse_scenario(s, sets=list(p.sets), where=where) for s in p.scenarios] or [
        parse_scenario(None, sets=list(p.sets), where=where)
    ]


def _objective(p: SegmentParams) -> str | None:
    from ucx_spark.insights.segments import resolve_objective

    try:
        return resolve_objective(p.objective) if p.objective else None
    except ValueError as exc:
        raise UcxError(f"--objective: {exc}") from None


def _goals(p: SaturationParams) -> list[Any]:
    from ucx_spark.insights.saturation import parse_goal

    try:
        return [parse_goal(g) for g in p.goals]
    except ValueError as exc:
        raise UcxError(f"--goal: {exc}") from None


# --------------------------------------------------------------------------- commands


def run_generate(spark: SparkSession, cfg: Config, p: GenerateParams) -> Any:
    from ucx_spark.generate import generate_utility, print_feed_counts

    out = p.out or cfg.paths.landing
    with step(f"generating {p.households} households x {p.months} months into {out}"):
        manifest = generate_utility(
            spark, out, households=p.households, months=p.months, interval_minutes=p.interval_minutes,
            seed=p.seed, time_zone=cfg.utility.time_zone, **({"end_date": p.end_date} if p.end_date else {}),
        )
    print_feed_counts(manifest)
    print(f"manifest: {Path(out) / '_manifest.json'}")
    return None


def run_pipeline(spark: SparkSession, cfg: Config, p: PipelineParams) -> Any:
    from ucx_spark.pipelines import medallion

    key = pseudonym_key(cfg.pseudonym, demo=p.demo_key) if p.steps is None or "silver" in p.steps else None
    steps = {"steps": tuple(p.steps)} if p.steps else {}
    return medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=p.run_id or new_run_id(), gates=p.gates, **steps)


def run_train(spark: SparkSession, cfg: Config, p: TrainParams) -> Any:
    from ucx_spark.pipelines import train

    tracking_uri = p.tracking_uri or cfg.mlflow_tracking_uri
    with step(f"training {', '.join(p.models)} ({p.trials} Optuna trials each) into {tracking_uri}"):
        return train.run(
            spark, warehouse=cfg.paths.warehouse, tracking_uri=tracking_uri,
            experiment=p.experiment or cfg.mlflow.experiment, models=list(p.models), trials=p.trials,
            run_id=new_run_id(), time_zone=cfg.utility.time_zone, require_baseline_lift=p.require_baseline_lift,
            parent_run_id=p.parent_run_id,
        )


def run_score(spark: SparkSession, cfg: Config, p: ScoreParams) -> Any:
    from ucx_spark.pipelines import score
    from ucx_spark.quality import Thresholds

    with step("scoring every active household with the champion models"):
        return score.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=p.tracking_uri or cfg.mlflow_tracking_uri,
                         run_id=new_run_id(), as_of=p.as_of, time_zone=cfg.utility.time_zone,
                         experiment=cfg.mlflow.experiment, thresholds=Thresholds.from_config(cfg.quality))


def run_stream(spark: SparkSession, cfg: Config, p: StreamParams) -> Any:
    from ucx_spark.pipelines import stream

    with step("scoring the households that silver's new events touch (Ctrl-C stops)"):
        return stream.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri,
                          time_zone=cfg.utility.time_zone, trigger_seconds=p.trigger, available_now=p.available_now,
                          since=p.since, checkpoint=p.checkpoint, timeout_seconds=p.timeout)


def run_evaluate(spark: SparkSession, cfg: Config, p: EvaluateParams) -> Any:
    from ucx_spark.pipelines import evaluate

    with step(f"evaluating the models against the truth in {p.truth} ({p.trials} trials each)"):
        return evaluate.run(spark, warehouse=cfg.paths.warehouse, truth_dir=p.truth,
                            key=pseudonym_key(cfg.pseudonym, demo=False), time_zone=cfg.utility.time_zone,
                            trials=p.trials)


def run_whatif(spark: SparkSession, cfg: Config, p: WhatifParams) -> Any:
    from ucx_spark.pipelines import whatif

    ins, results = cfg.insights, []
    for scenario in _scenarios(p):
        with step(f"what-if {scenario.label}"):
            results.append(whatif.run(
                spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri,
                experiment=cfg.mlflow.experiment, scenario=scenario, min_households=cfg.privacy.min_households,
                liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd, csat_top2box_threshold=ins.csat_top2box_threshold,
                bootstrap_replicates=ins.bootstrap_replicates, confidence_level=ins.confidence_level, seed=ins.seed,
                liheap_benefit_months=ins.liheap_benefit_months, liheap_take_up=ins.liheap_take_up,
            ))
    return results[0] if len(results) == 1 else results


def run_drivers(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.pipelines import drivers

    with step("global drivers of every champion model (mean |SHAP|, by segment)"):
        return drivers.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri,
                           run_id=new_run_id(), min_households=cfg.privacy.min_households)


def run_report(spark: SparkSession, cfg: Config, p: ReportParams) -> Any:
    from ucx_spark.pipelines import report

    with step(f"writing the CX report of {cfg.paths.warehouse}"):
        return report.run(spark, warehouse=cfg.paths.warehouse, out=p.out, utility_name=cfg.utility.name,
                          min_households=cfg.privacy.min_households,
                          top2box_threshold=cfg.insights.csat_top2box_threshold, tracking_uri=cfg.mlflow_tracking_uri)


def run_quality(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.quality.audit import quality_report

    return quality_report(spark, cfg.paths.warehouse)


def run_rekey(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.pipelines import rekey

    old = pseudonym_key(cfg.pseudonym, demo=False)
    new = os.environ.get("UCX_NEW_PSEUDONYM_KEY", "").encode("utf-8")
    with step("re-deriving every household_id and meter_key with the new key"):
        return rekey.run(spark, warehouse=cfg.paths.warehouse, old_key=old, new_key=new, run_id=new_run_id())


def run_rebuild(spark: SparkSession, cfg: Config, p: RebuildParams) -> Any:
    from ucx_spark.pipelines import rebuild

    results = []
    for table in p.tables:
        with step(f"setting {table} aside to be built again"):
            results.append(rebuild.run(spark, warehouse=cfg.paths.warehouse, table=table, run_id=new_run_id()))
    return results[0] if len(results) == 1 else results


def run_maintain(spark: SparkSession, cfg: Config, p: MaintainParams) -> Any:
    from ucx_spark.pipelines import maintain

    with step("OPTIMIZE and VACUUM every Delta table"):
        return maintain.run(spark, warehouse=cfg.paths.warehouse, vacuum_hours=p.vacuum_hours,
                            force_retention=p.force_retention)


def run_segment(spark: SparkSession, cfg: Config, p: SegmentParams) -> Any:
    from ucx_spark.pipelines import segments

    objective, ins = _objective(p), cfg.insights
    with step(f"{ins.personas} personas" + (f" and {objective} segments" if objective else "")):
        return segments.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), personas=ins.personas,
                            seed=ins.seed, min_households=cfg.privacy.min_households,
                            max_household_energy_share=cfg.privacy.max_household_energy_share,
                            objective=objective, time_zone=cfg.utility.time_zone)


def run_contacts(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.pipelines import contacts

    with step("topic and sentiment of every contact"):
        return contacts.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(),
                            time_zone=cfg.utility.time_zone, min_households=cfg.privacy.min_households)


def run_baselines(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.pipelines import baselines

    with step("daily degree-day baselines and bill explanations"):
        return baselines.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), time_zone=cfg.utility.time_zone)


def run_equity(spark: SparkSession, cfg: Config, p: NoParams) -> Any:
    from ucx_spark.pipelines import equity

    with step("outcomes by income band, ZIP and poverty rate against the utility"):
        return equity.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), time_zone=cfg.utility.time_zone,
                          min_households=cfg.privacy.min_households, seed=cfg.insights.seed)


def run_explain_bill(spark: SparkSession, cfg: Config, p: ExplainBillParams) -> Any:
    from ucx_spark.pipelines import baselines

    return baselines.explain_bill(spark, warehouse=cfg.paths.warehouse, household_id=p.household_id, bills=p.bills)


def run_saturation(spark: SparkSession, cfg: Config, p: SaturationParams) -> Any:
    from ucx_spark.pipelines import saturation

    goals = _goals(p)
    with step("program eligibility, propensity and reachable enrollment"):
        return saturation.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), seed=cfg.insights.seed,
                              min_households=cfg.privacy.min_households,
                              horizon_months=cfg.insights.saturation_horizon_months, goals=goals)


def _suppression_rules(cfg: Config) -> Any:
    """The contact policy's settings (insights.*) as targeting reads them."""
    from ucx_spark.insights.targeting import SuppressionRules

    ins = cfg.insights
    return SuppressionRules(suppress_enrolled=ins.suppress_enrolled,
                            suppress_collections_hardship=ins.suppress_collections_hardship,
                            recent_contact_days=ins.suppress_recent_contact_days,
                            max_campaign_contacts_30d=ins.max_campaign_contacts_30d,
                            moratorium_cold_f=ins.moratorium_cold_f, moratorium_heat_f=ins.moratorium_heat_f)


def run_target(spark: SparkSession, cfg: Config, p: TargetParams) -> Any:
    from ucx_spark.pipelines import targeting

    ins = cfg.insights
    with step(f"ranking households for the {p.campaign} campaign"):
        return targeting.run(spark, warehouse=cfg.paths.warehouse, campaign=p.campaign, run_id=new_run_id(),
                             rules=_suppression_rules(cfg), seed=ins.seed, liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd,
                             do_not_contact=_do_not_contact(spark, cfg), time_zone=cfg.utility.time_zone)


def run_activate(spark: SparkSession, cfg: Config, p: ActivateParams) -> Any:
    from ucx_spark.pipelines import targeting

    with step(f"re-identifying the {p.campaign} targets for activation"):
        return targeting.activate(spark, warehouse=cfg.paths.warehouse, campaign=p.campaign,
                                  pseudonym_key=pseudonym_key(cfg.pseudonym, demo=False),
                                  out_dir=cfg.insights.activation_dir or None, actor=p.actor,
                                  do_not_contact=_do_not_contact(spark, cfg), rules=_suppression_rules(cfg),
                                  time_zone=cfg.utility.time_zone)


def _prepare_demo(cfg: Config, p: DemoParams) -> Config:
    """The demo's landing zone and warehouse under ``p.out`` (the previous demo there removed)."""
    import shutil

    _check_generate(cfg, GenerateParams(interval_minutes=p.interval_minutes))
    out = Path(p.out)
    if out.exists():
        say(f"removing the previous demo in {out}")
        shutil.rmtree(out)
    return cfg.with_paths(landing=str(out / "landing"), warehouse=str(out / "warehouse"))


def run_demo(spark: SparkSession, cfg: Config, p: DemoParams) -> Any:
    from ucx_spark.demo import run_demo as demo

    return demo(spark, cfg, p)


def serve_sql(cfg: Config, p: ServeSqlParams) -> int:
    """Spark Thrift Server over the warehouse (its own JVM; no session in this process)."""
    from ucx_spark.serve import ThriftServer, serve_forever

    warehouse = require_warehouse(cfg)
    conf = {"spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
            "spark.databricks.delta.snapshotPartitions": str(cfg.spark.shuffle_partitions), **cfg.spark.extra}
    server = ThriftServer(warehouse, port=p.port, host=p.host, master=p.master or cfg.spark.master,
                          driver_memory=cfg.spark.driver_memory, jars_dir=cfg.spark.jars_dir, conf=conf, auth=p.auth)
    with step(f"starting the Spark Thrift Server on {p.host}:{p.port}"):
        return serve_forever(server)


def sql_user(cfg: Config, p: SqlUserParams) -> int:
    """Add or replace a user of `ucx serve-sql --auth password` (password from UCX_SQL_PASSWORD or a prompt)."""
    import getpass

    from ucx_spark.serve import add_user

    warehouse = require_warehouse(cfg)
    password = os.environ.get("UCX_SQL_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for SQL user {p.name}: ")
        if getpass.getpass("again: ") != password:
            raise UcxError("the two passwords differ")
    path = add_user(warehouse, p.name, password)
    print(f"SQL user {p.name} saved in {path} (owner-only; PBKDF2-HMAC-SHA256); serve with `ucx serve-sql --auth password`")
    return 0


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Command:
    """How ``execute`` runs a command: its function on a session (or without one), ``prepare`` (the
    checks that need no JVM; it returns the configuration the session is built for), and the
    warehouse lock it holds, if any ("pipeline" or "stream")."""

    run: Callable[..., Any]
    prepare: Callable[[Config, Any], Config] | None = None
    lock: str | None = None
    session: bool = True  # False: run(cfg, params) -> exit code, no Spark in this process
    json: bool = False  # a scheduler calls it: --json renders the result


COMMANDS: dict[str, Command] = {
    "generate": Command(run_generate, _check_generate),
    "pipeline": Command(run_pipeline, _check_pipeline, lock="pipeline", json=True),
    "train": Command(run_train, _check_gold, json=True),
    "score": Command(run_score, _check_gold, json=True),
    "stream": Command(run_stream, _check_gold, lock="stream"),
    "evaluate": Command(run_evaluate, _check_evaluate, json=True),
    "whatif": Command(run_whatif, _check_whatif),
    "drivers": Command(run_drivers, _check_gold),
    "report": Command(run_report, _check_report),
    "quality": Command(run_quality, None, json=True),
    "demo": Command(run_demo, _prepare_demo),
    "serve-sql": Command(serve_sql, _check_warehouse, session=False),
    "sql-user": Command(sql_user, _check_warehouse, session=False),
    "rekey": Command(run_rekey, _check_rekey),
    "rebuild": Command(run_rebuild),
    "maintain": Command(run_maintain, _check_maintain),
    "segment": Command(run_segment, _check_segment),
    "saturation": Command(run_saturation, _check_saturation),
    "contacts": Command(run_contacts, _check_warehouse),
    "baselines": Command(run_baselines, _check_warehouse),
    "explain-bill": Command(run_explain_bill, _check_explain_bill),
    "equity": Command(run_equity, _check_gold),
    "target": Command(run_target, _check_target),
    "activate": Command(run_activate, _check_activate),
}


# --------------------------------------------------------------------------- rendering


def _plain(value: Any) -> Any:
    """A result as JSON-ready values (dataclasses, paths, dates, sets, numpy scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, tuple) else "/".join(map(str, k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


def render_json(result: Any) -> str:
    """The result as JSON: its own ``to_json`` where it has one, else its dataclass fields."""
    to_json = getattr(result, "to_json", None)
    if callable(to_json):
        return str(to_json())
    return json.dumps(_plain(result), indent=2, sort_keys=True, default=str)


def render(result: Any) -> str | None:
    if result is None:
        return None
    if isinstance(result, list):
        return "\n".join(filter(None, (render(r) for r in result)))
    summary = getattr(result, "summary", None)
    return summary() if callable(summary) else str(result)


# --------------------------------------------------------------------------- execute


def _short_java_error(exc: BaseException) -> str | None:
    """The first line of a Spark/Java error, without the JVM stack."""
    name = type(exc).__name__
    if name in ("AnalysisException", "Py4JJavaError", "IllegalArgumentException", "SparkRuntimeException") or \
            "pyspark" in type(exc).__module__:
        text = str(exc).strip().splitlines()
        return f"{name}: {text[0] if text else ''}"
    return None


def execute(name: str | Command, params: Any, cfg: Config, *, as_json: bool = False, debug: bool = False,
            run_id: str | None = None, label: str | None = None) -> int:
    """Run command ``name`` (or an unregistered ``Command``: a test's stand-in job) with ``params``
    on ``cfg`` for a front end; print its result; return the exit code (module doc). ``label``
    names the command in error lines (default ``ucx NAME``)."""
    from ucx_spark.io.lock import WarehouseBusyError, warehouse_lock

    command = COMMANDS[name] if isinstance(name, str) else name
    label = label or f"ucx {name if isinstance(name, str) else 'job'}"
    spark, owned = None, False
    try:
        if command.prepare is not None:
            cfg = command.prepare(cfg, params)
        if not command.session:
            return int(command.run(cfg, params) or 0)
        if command.lock:
            run_id = run_id or getattr(params, "run_id", None) or new_run_id()
            if dataclasses.is_dataclass(params) and hasattr(params, "run_id"):
                params = dataclasses.replace(params, run_id=run_id)
            with warehouse_lock(cfg.paths.warehouse, run_id=run_id, job=command.lock):
                spark, owned = start_session(cfg)
                result = command.run(spark, cfg, params)
        else:
            spark, owned = start_session(cfg)
            result = command.run(spark, cfg, params)
        text = render_json(result) if as_json and result is not None else render(result)
        if text:
            print(text, flush=True)
        return EXIT_OK
    except WarehouseBusyError as exc:
        print(f"{label}: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except UcxError as exc:
        kind = "data error" if isinstance(exc, DataError) else "error"
        print(f"{label}: {kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, DataError) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the boundary turns failures into exit codes
        if debug:
            raise
        short = _short_java_error(exc) or f"{type(exc).__name__}: {exc}"
        print(f"{label}: failed: {short}\n(run with --debug for the full trace)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if spark is not None and owned:
            stop_session(spark)


def start_session(cfg: Config) -> tuple[SparkSession, bool]:
    """The command's session and whether this call started it: a session the caller already runs
    (a test's, a notebook's) is used and left running; one started here is stopped at the end."""
    from pyspark import SparkContext

    from ucx_spark.session import start_spark

    running = SparkContext._active_spark_context is not None
    return start_spark(cfg), not running


def stop_session(spark: SparkSession) -> None:
    try:
        spark.stop()
    except Exception as exc:  # noqa: BLE001 - a session that will not stop must not hide the result
        say(f"stopping Spark: {type(exc).__name__}: {exc}")
