"""The `ucx` command. Thin: parse arguments, load config once, build the session
once, call a pipeline step. Exit codes: 0 success, 1 the step failed (data,
quality gate, internal error), 2 a user mistake (arguments, config, missing
input) with a one-line message and no stack trace.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ucx_spark import __version__
from ucx_spark.catalog import CAMPAIGN_TARGETS, HOUSEHOLD_FEATURES
from ucx_spark.config import Config, load_config, pseudonym_key
from ucx_spark.contract import INTERVAL_MINUTES
from ucx_spark.errors import EXIT_BUSY, DataError, UcxError
from ucx_spark.io.lock import WarehouseBusyError
from ucx_spark.progress import step
from ucx_spark.session import new_run_id, start_spark

if TYPE_CHECKING:
    pass


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


# --------------------------------------------------------------------------- commands


def cmd_generate(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.generate import generate_utility, print_feed_counts

    if args.interval_minutes not in INTERVAL_MINUTES:
        allowed = ", ".join(str(m) for m in INTERVAL_MINUTES)
        raise UcxError(f"--interval-minutes {args.interval_minutes}: allowed values are {allowed}")
    out = args.out or cfg.paths.landing
    spark = start_spark(cfg)
    with step(f"generating {args.households} households x {args.months} months into {out}"):
        manifest = generate_utility(
            spark,
            out,
            households=args.households,
            months=args.months,
            interval_minutes=args.interval_minutes,
            seed=args.seed,
            time_zone=cfg.utility.time_zone,
            **({"end_date": args.end_date} if args.end_date else {}),
        )
    print_feed_counts(manifest)
    print(f"manifest: {Path(out) / '_manifest.json'}")
    return 0


def cmd_pipeline(args: argparse.Namespace, cfg: Config) -> int:
    cfg = cfg.with_paths(landing=args.landing, warehouse=args.warehouse)
    if not Path(cfg.paths.landing).is_dir():
        raise UcxError(f"landing zone {cfg.paths.landing} does not exist (set --landing or paths.landing)")
    if args.accept_incomplete is not None:
        cfg = _with_accepted_days(cfg, args.accept_incomplete, args.accept_reason)
    elif args.accept_reason:
        raise UcxError("--accept-reason goes with --accept-incomplete DAY[,DAY...]")
    key = pseudonym_key(cfg.pseudonym, demo=False)
    from ucx_spark.io.lock import warehouse_lock
    from ucx_spark.pipelines import medallion

    run_id = args.run_id or new_run_id()
    # Taken before the Spark session starts: a second run on a busy warehouse stops at once.
    with warehouse_lock(cfg.paths.warehouse, run_id=run_id):
        spark = start_spark(cfg)
        result = medallion.run(spark, cfg=cfg, pseudonym_key=key, run_id=run_id, gates=not args.no_gates)
    print(result.summary())
    return 0


def _with_accepted_days(cfg: Config, days_text: str, reason: str | None) -> Config:
    """cfg with quality.accept_incomplete_days/reason from ``--accept-incomplete``/``--accept-reason``."""
    from dataclasses import replace
    from datetime import date

    days = tuple(d.strip() for d in days_text.split(",") if d.strip())
    if not days:
        raise UcxError("--accept-incomplete: expected one or more local days YYYY-MM-DD[,YYYY-MM-DD...]")
    for day in days:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise UcxError(f"--accept-incomplete: '{day}' is not a date YYYY-MM-DD") from None
    if not (reason or "").strip():
        raise UcxError("--accept-incomplete needs --accept-reason TEXT: why these days are published incomplete "
                       "(recorded in gold/quality_results with who ran it)")
    return replace(cfg, quality=replace(cfg.quality, accept_incomplete_days=days,
                                        accept_incomplete_reason=str(reason).strip()))


def cmd_train(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import train

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    spark = start_spark(cfg)
    with step(f"training {args.model} ({args.trials} Optuna trials each) into {cfg.mlflow_tracking_uri}"):
        result = train.run(
            spark,
            warehouse=cfg.paths.warehouse,
            tracking_uri=cfg.mlflow_tracking_uri,
            experiment=cfg.mlflow.experiment,
            models=[args.model],
            trials=args.trials,
            run_id=new_run_id(),
            time_zone=cfg.utility.time_zone,
            require_baseline_lift=not args.allow_below_baseline,
        )
    print(result.summary())
    return 0


def cmd_score(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import score
    from ucx_spark.quality import Thresholds

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    spark = start_spark(cfg)
    as_of = None
    if args.as_of:
        from datetime import date

        try:
            as_of = date.fromisoformat(args.as_of)
        except ValueError:
            raise UcxError(f"--as-of: '{args.as_of}' is not a date YYYY-MM-DD") from None
    with step("scoring every active household with the champion models"):
        result = score.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri, run_id=new_run_id(),
                           as_of=as_of, time_zone=cfg.utility.time_zone, experiment=cfg.mlflow.experiment,
                           thresholds=Thresholds.from_config(cfg.quality))
    print(result.summary() if hasattr(result, "summary") else result)
    return 0


def cmd_stream(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.io.lock import warehouse_lock
    from ucx_spark.pipelines import stream

    _require_gold(cfg, HOUSEHOLD_FEATURES)  # a warehouse `ucx pipeline` has built, before any JVM starts
    with warehouse_lock(cfg.paths.warehouse, run_id=new_run_id(), job="stream"), \
            step("scoring the households that silver's new events touch (Ctrl-C stops)"):
        spark = start_spark(cfg)
        result = stream.run_with(spark, cfg, args)
    print(result.summary())
    return 0


def stream_arguments(parser: argparse.ArgumentParser) -> None:
    """``ucx stream``'s and ``jobs/stream.py``'s options (one definition; light: no
    Spark or MLflow import at parse time)."""
    parser.add_argument("--trigger", type=float, default=15.0, metavar="SECONDS",
                        help="a micro-batch every SECONDS (default 15)")
    parser.add_argument("--available-now", action="store_true",
                        help="score the events committed so far, then stop (a scheduled catch-up)")
    parser.add_argument("--since", metavar="TIMESTAMP",
                        help="a new stream reads the change feeds from this commit time (default: from now on)")
    parser.add_argument("--checkpoint", metavar="DIR", help="default <warehouse>/_stream/scores/checkpoint")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after SECONDS (default: until stopped)")


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import evaluate

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    if not Path(args.truth).is_dir():
        raise UcxError(f"--truth {args.truth}: not a folder (a `ucx generate` output or its _truth)")
    key = pseudonym_key(cfg.pseudonym, demo=False)
    spark = start_spark(cfg)
    with step(f"evaluating the models against the truth in {args.truth} ({args.trials} trials each)"):
        result = evaluate.run(spark, warehouse=cfg.paths.warehouse, truth_dir=args.truth, key=key,
                              time_zone=cfg.utility.time_zone, trials=args.trials)
    print(result.to_json() if args.json else result.summary())
    return 0


def _require_warehouse(cfg: Config) -> Path:
    warehouse = Path(cfg.paths.warehouse)
    if not warehouse.is_dir():
        raise UcxError(f"warehouse {warehouse} does not exist (set --warehouse or paths.warehouse)")
    return warehouse


def _require_gold(cfg: Config, table: str) -> None:
    path = Path(cfg.paths.warehouse) / "gold" / table / "_delta_log"
    if not path.is_dir():
        raise UcxError(
            f"gold/{table} not found under warehouse {cfg.paths.warehouse}: run `ucx pipeline` first "
            "(or set --warehouse)"
        )


def cmd_whatif(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.insights.whatif import parse_scenario
    from ucx_spark.pipelines import whatif

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    where = " AND ".join(f"({w})" for w in args.where) if len(args.where) > 1 else (args.where[0] if args.where else None)
    scenarios = [parse_scenario(s, sets=args.set_exprs, where=where) for s in args.scenario] or [
        parse_scenario(None, sets=args.set_exprs, where=where)
    ]
    spark = start_spark(cfg)
    ins = cfg.insights
    for scenario in scenarios:
        with step(f"what-if {scenario.label}"):
            result = whatif.run(
                spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri,
                experiment=cfg.mlflow.experiment, scenario=scenario, min_households=cfg.privacy.min_households,
                liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd, csat_top2box_threshold=ins.csat_top2box_threshold,
                bootstrap_replicates=ins.bootstrap_replicates, confidence_level=ins.confidence_level, seed=ins.seed,
                liheap_benefit_months=ins.liheap_benefit_months, liheap_take_up=ins.liheap_take_up,
            )
        print(result.summary())
    return 0


def cmd_drivers(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import drivers

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    spark = start_spark(cfg)
    with step("global drivers of every champion model (mean |SHAP|, by segment)"):
        result = drivers.run(spark, warehouse=cfg.paths.warehouse, tracking_uri=cfg.mlflow_tracking_uri,
                             run_id=new_run_id(), min_households=cfg.privacy.min_households)
    print(result.summary())
    return 0


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import report

    if not Path(cfg.paths.warehouse).is_dir():
        raise UcxError(f"warehouse {cfg.paths.warehouse} does not exist (set --warehouse or paths.warehouse)")
    spark = start_spark(cfg)
    with step(f"writing the CX report of {cfg.paths.warehouse}"):
        result = report.run(
            spark,
            warehouse=cfg.paths.warehouse,
            out=args.out,
            utility_name=cfg.utility.name,
            min_households=cfg.privacy.min_households,
            top2box_threshold=cfg.insights.csat_top2box_threshold,
            tracking_uri=cfg.mlflow_tracking_uri,
        )
    print(result.summary())
    return 0


def cmd_quality(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.quality import summary

    cfg = cfg.with_paths(warehouse=args.warehouse)
    spark = start_spark(cfg)
    print(summary(spark, cfg.paths.warehouse))
    return 0


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.demo import run_demo

    return run_demo(args, cfg)


def cmd_serve_sql(args: argparse.Namespace, cfg: Config) -> int:
    """Spark Thrift Server over the warehouse (its own JVM; no session in this process)."""
    from ucx_spark.serve import ThriftServer, serve_forever

    warehouse = _require_warehouse(cfg)
    conf = {"spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
            "spark.databricks.delta.snapshotPartitions": str(cfg.spark.shuffle_partitions), **cfg.spark.extra}
    server = ThriftServer(warehouse, port=args.port, host=args.host, master=args.master or cfg.spark.master,
                          driver_memory=cfg.spark.driver_memory, jars_dir=cfg.spark.jars_dir, conf=conf, auth=args.auth)
    with step(f"starting the Spark Thrift Server on {args.host}:{args.port}"):
        return serve_forever(server)


def cmd_sql_user(args: argparse.Namespace, cfg: Config) -> int:
    """Add or replace a user of `ucx serve-sql --auth password` (password from UCX_SQL_PASSWORD or a prompt)."""
    import getpass

    from ucx_spark.serve import add_user

    warehouse = _require_warehouse(cfg)
    password = os.environ.get("UCX_SQL_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for SQL user {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UcxError("the two passwords differ")
    path = add_user(warehouse, args.name, password)
    print(f"SQL user {args.name} saved in {path} (owner-only; PBKDF2-HMAC-SHA256); serve with `ucx serve-sql --auth password`")
    return 0


def cmd_rekey(args: argparse.Namespace, cfg: Config) -> int:
    """Rotate the pseudonym key: UCX_PSEUDONYM_KEY (current) -> UCX_NEW_PSEUDONYM_KEY (new)."""
    from ucx_spark.pipelines import rekey

    old = pseudonym_key(cfg.pseudonym, demo=False)
    new = os.environ.get("UCX_NEW_PSEUDONYM_KEY", "").encode("utf-8")
    if not new:
        raise UcxError("set UCX_NEW_PSEUDONYM_KEY to the new key (and UCX_PSEUDONYM_KEY to the current one)")
    spark = start_spark(cfg)
    with step("re-deriving every household_id and meter_key with the new key"):
        result = rekey.run(spark, warehouse=cfg.paths.warehouse, old_key=old, new_key=new, run_id=new_run_id())
    print(result.summary())
    return 0


def cmd_rebuild(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import rebuild

    spark = start_spark(cfg)
    for table in args.table:
        with step(f"setting {table} aside to be built again"):
            result = rebuild.run(spark, warehouse=cfg.paths.warehouse, table=table, run_id=new_run_id())
        print(result.summary())
    return 0


def cmd_maintain(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.maintain import check_retention
    from ucx_spark.pipelines import maintain

    vacuum_hours = None if args.no_vacuum else args.vacuum_hours
    if vacuum_hours is not None:
        check_retention(vacuum_hours, force=args.force_retention)
    spark = start_spark(cfg)
    with step("OPTIMIZE and VACUUM every Delta table"):
        result = maintain.run(spark, warehouse=cfg.paths.warehouse, vacuum_hours=vacuum_hours,
                              force_retention=args.force_retention)
    print(result.summary())
    return 0


# ----------------------------------------------------------- segments, saturation, targeting


def cmd_segment(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.insights.segments import resolve_objective
    from ucx_spark.pipelines import segments

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    try:
        objective = resolve_objective(args.objective) if args.objective else None
    except ValueError as exc:
        raise UcxError(f"--objective: {exc}") from None
    spark = start_spark(cfg)
    ins = cfg.insights
    with step(f"{ins.personas} personas" + (f" and {objective} segments" if objective else "")):
        result = segments.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), personas=ins.personas,
                              seed=ins.seed, min_households=cfg.privacy.min_households,
                              max_household_energy_share=cfg.privacy.max_household_energy_share,
                              objective=objective, time_zone=cfg.utility.time_zone)
    print(result.summary())
    return 0


def cmd_saturation(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.insights.saturation import parse_goal
    from ucx_spark.pipelines import saturation

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    try:
        goals = [parse_goal(g) for g in args.goal]
    except ValueError as exc:
        raise UcxError(f"--goal: {exc}") from None
    spark = start_spark(cfg)
    with step("program eligibility, propensity and reachable enrollment"):
        result = saturation.run(spark, warehouse=cfg.paths.warehouse, run_id=new_run_id(), seed=cfg.insights.seed,
                                min_households=cfg.privacy.min_households,
                                horizon_months=cfg.insights.saturation_horizon_months, goals=goals)
    print(result.summary())
    return 0


def cmd_target(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.insights.targeting import CAMPAIGN_PROGRAMS, SuppressionRules
    from ucx_spark.pipelines import targeting

    _require_gold(cfg, HOUSEHOLD_FEATURES)
    if args.campaign not in CAMPAIGN_PROGRAMS:
        raise UcxError(f"--campaign {args.campaign}: allowed campaigns are {', '.join(CAMPAIGN_PROGRAMS)}")
    ins = cfg.insights
    rules = SuppressionRules(suppress_enrolled=ins.suppress_enrolled,
                             suppress_collections_hardship=ins.suppress_collections_hardship,
                             recent_contact_days=ins.suppress_recent_contact_days)
    spark = start_spark(cfg)
    with step(f"ranking households for the {args.campaign} campaign"):
        result = targeting.run(spark, warehouse=cfg.paths.warehouse, campaign=args.campaign, run_id=new_run_id(),
                               rules=rules, seed=ins.seed, liheap_annual_benefit_usd=ins.liheap_annual_benefit_usd)
    print(result.summary())
    return 0


def cmd_activate(args: argparse.Namespace, cfg: Config) -> int:
    from ucx_spark.pipelines import targeting

    _require_gold(cfg, CAMPAIGN_TARGETS)
    key = pseudonym_key(cfg.pseudonym, demo=False)
    spark = start_spark(cfg)
    with step(f"re-identifying the {args.campaign} targets for activation"):
        result = targeting.activate(spark, warehouse=cfg.paths.warehouse, campaign=args.campaign, pseudonym_key=key,
                                    out_dir=cfg.insights.activation_dir or None, actor=args.actor)
    print(result.summary())
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ucx", description="UCX Spark: utility customer-experience lakehouse")
    parser.add_argument("--version", action="version", version=f"ucx-spark {__version__}")
    parser.add_argument("--conf", metavar="DIR", help="configuration folder holding base.yaml (default: the repo's conf/)")
    parser.add_argument("--env", metavar="NAME", help="environment overlay conf/<NAME>.yaml (default: $UCX_ENV or local)")
    parser.add_argument("--debug", action="store_true",
                        help="show full stack traces and Spark's warnings (else in <warehouse>/_logs/spark.log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("generate", help="write a synthetic utility's landing zone")
    p.add_argument("--out", metavar="LANDING_DIR", help="landing zone to write (default: paths.landing)")
    p.add_argument("--households", type=_positive, default=200)
    p.add_argument("--months", type=_positive, default=13)
    p.add_argument("--interval-minutes", type=int, default=15)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--end-date", metavar="YYYY-MM-DD", help="last day of data (default 2025-12-31)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("pipeline", help="landing -> bronze -> silver -> gold, with quality gates")
    p.add_argument("--landing", metavar="DIR")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--run-id", help="run id (default: a new timestamped id)")
    p.add_argument("--no-gates", action="store_true", help="skip Great Expectations gates (benchmarks only)")
    p.add_argument("--accept-incomplete", metavar="DAY[,DAY...]",
                   help="publish these local days although their AMI completeness is below "
                        "quality.ami_completeness_min (known-incomplete history); needs --accept-reason")
    p.add_argument("--accept-reason", metavar="TEXT", help="why the accepted days are published (audited)")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("train", help="train, tune and register the household models (MLflow)")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--model", choices=["csat", "nps", "ev_adoption", "payment_risk", "all"], default="all")
    p.add_argument("--trials", type=_positive, default=20)
    p.add_argument("--allow-below-baseline", action="store_true",
                   help="let a version become champion without beating the plain logistic/ridge baseline "
                        "on its validation rows (default: it stays challenger)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score every active household with the champion models")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--as-of", metavar="YYYY-MM-DD",
                   help="the last day the features describe (default: the latest as_of_date of gold/household_features)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("stream", help="keep household scores up to date as silver's events arrive (Structured Streaming)")
    p.add_argument("--warehouse", metavar="DIR")
    stream_arguments(p)
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("evaluate", help="train privately, score and compare with a generated utility's truth")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--truth", required=True, metavar="DIR", help="a `ucx generate` output (or its _truth folder)")
    p.add_argument("--trials", type=_positive, default=10)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("whatif", help="simulate a scenario through the champion models")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME=VALUE",
                   help="rate_increase_usd=5, rate_increase_pct=3 or liheap_enrollment_pct=+10 (repeatable: one run each)")
    p.add_argument("--set", action="append", default=[], dest="set_exprs", metavar="FEATURE=EXPR",
                   help="change a feature by a Spark SQL expression, e.g. outage_minutes_365d=outage_minutes_365d*0.8")
    p.add_argument("--where", action="append", default=[], metavar="CONDITION",
                   help="scope: column=value or a Spark SQL predicate, e.g. customer_class=RES (repeatable: AND)")
    p.set_defaults(func=cmd_whatif)

    p = sub.add_parser("drivers", help="global drivers (mean |SHAP|, direction) of every champion, by segment")
    p.add_argument("--warehouse", metavar="DIR")
    p.set_defaults(func=cmd_drivers)

    p = sub.add_parser("report", help="write the self-contained CX report (HTML)")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--out", metavar="FILE", default="report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("quality", help="summary of the last quality-gate run and the Data Docs path")
    p.add_argument("--warehouse", metavar="DIR")
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("demo", help="generate a small utility and run everything end to end")
    p.add_argument("--out", metavar="DIR", default="data/demo", help="folder for the demo landing zone and warehouse")
    # about 1,000 households: enough survey respondents a month for the survey KPIs to pass the
    # privacy threshold (min_households 15; measured n 18-84 in each of the last six months); hourly
    # AMI keeps it quick
    p.add_argument("--households", type=_positive, default=1000)
    p.add_argument("--months", type=_positive, default=13)
    p.add_argument("--interval-minutes", type=int, default=60, choices=INTERVAL_MINUTES,
                   help="AMI interval of the generated meters (default 60)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve-sql", help="serve the warehouse to BI tools over JDBC/ODBC (Spark Thrift Server)")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--port", type=_positive, default=10000)
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1; any other needs --auth password)")
    p.add_argument("--auth", choices=("none", "password"), default="none",
                   help="password: users and PBKDF2 hashes from `ucx sql-user add` (needed beyond loopback)")
    p.add_argument("--master", help="Spark master of the server (default: spark.master)")
    p.set_defaults(func=cmd_serve_sql)

    p = sub.add_parser("sql-user", help="add or replace a user of `ucx serve-sql --auth password`")
    p.add_argument("action", choices=("add",))
    p.add_argument("name")
    p.add_argument("--warehouse", metavar="DIR")
    p.set_defaults(func=cmd_sql_user)

    p = sub.add_parser("rekey", help="rotate the pseudonym key: UCX_PSEUDONYM_KEY -> UCX_NEW_PSEUDONYM_KEY, every table")
    p.add_argument("--warehouse", metavar="DIR")
    p.set_defaults(func=cmd_rekey)

    p = sub.add_parser("rebuild", help="set a damaged table aside; the next `ucx pipeline` builds it again (nothing deleted)")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--table", action="append", required=True, metavar="LAYER/TABLE",
                   help="e.g. silver/bills (repeatable); `ucx pipeline` names the damaged ones")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("maintain", help="OPTIMIZE (compaction, Z-order/clustering) and VACUUM every Delta table")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--vacuum-hours", type=float, default=168.0, help="VACUUM retention (default 168, the minimum)")
    p.add_argument("--force-retention", action="store_true", help="allow a retention below 168 hours")
    p.add_argument("--no-vacuum", action="store_true", help="OPTIMIZE only")
    p.set_defaults(func=cmd_maintain)

    p = sub.add_parser("segment", help="personas (KMeans) and objective-driven segments -> gold/segments")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--objective", metavar="NAME", help="payment_risk, ev_adoption, csat or a program (e.g. paperless)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("saturation", help="program potential and reachable enrollment -> gold/program_saturation")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--goal", action="append", default=[], metavar="PROGRAM=+PP",
                   help="is a lift of PP percentage points reachable in the horizon? e.g. autopay=+5 (repeatable)")
    p.set_defaults(func=cmd_saturation)

    p = sub.add_parser("target", help="rank households for a program campaign -> gold/campaign_targets")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--campaign", required=True, metavar="PROGRAM", help="autopay, paperless, liheap, ev_rate, ...")
    p.set_defaults(func=cmd_target)

    p = sub.add_parser("activate", help="export a campaign's re-identified targets to a restricted CSV (audited)")
    p.add_argument("--warehouse", metavar="DIR")
    p.add_argument("--campaign", required=True, metavar="PROGRAM")
    p.add_argument("--actor", metavar="WHO", help="who exports, for the audit log (default: the OS user)")
    p.set_defaults(func=cmd_activate)
    return parser


def _short_java_error(exc: BaseException) -> str | None:
    """The first line of a Spark/Java error, without the JVM stack."""
    name = type(exc).__name__
    if name in ("AnalysisException", "Py4JJavaError", "IllegalArgumentException", "SparkRuntimeException") or "pyspark" in type(exc).__module__:
        text = str(exc).strip().splitlines()
        return f"{name}: {text[0] if text else ''}"
    return None




def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        from ucx_spark.session import CONSOLE_LEVEL_ENV

        os.environ[CONSOLE_LEVEL_ENV] = "warn"  # Spark's warnings on the terminal too
    else:
        import warnings

        # MLflow asks for type hints on every pyfunc model it loads: nothing a user can act on
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")
    try:
        cfg = load_config(env=args.env, conf_dir=args.conf)
        if getattr(args, "warehouse", None) and args.command not in ("pipeline", "quality"):
            cfg = cfg.with_paths(warehouse=args.warehouse)
        return int(args.func(args, cfg) or 0)
    except WarehouseBusyError as exc:
        print(f"ucx {args.command}: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except UcxError as exc:
        kind = "data error" if isinstance(exc, DataError) else "error"
        print(f"ucx {args.command}: {kind}: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DataError) else 2
    except KeyboardInterrupt:
        print(f"ucx {args.command}: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI boundary turns failures into exit codes
        if args.debug:
            raise
        short = _short_java_error(exc) or f"{type(exc).__name__}: {exc}"
        print(f"ucx {args.command}: failed: {short}\n(run with --debug for the full trace)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
