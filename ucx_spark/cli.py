"""The `ucx` command (typer). Thin: each command turns its options into the parameter dataclass of
``ucx_spark.commands`` and calls ``commands.execute``, which builds the one session, runs the
command and maps what happened to the exit code every front end shares: 0 success, 1 the step
failed (data, quality gate, internal error), 2 a user mistake (arguments, config, missing input)
with a one-line message and no stack trace, 75 another run holds the warehouse.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import typer

from ucx_spark import __version__, commands
from ucx_spark.commands import (
    ActivateParams,
    DemoParams,
    EvaluateParams,
    ExplainBillParams,
    GenerateParams,
    MaintainParams,
    NoParams,
    PipelineParams,
    RebuildParams,
    ReportParams,
    SaturationParams,
    ScoreParams,
    SegmentParams,
    ServeSqlParams,
    SqlUserParams,
    StreamParams,
    TargetParams,
    TrainParams,
    WhatifParams,
)
from ucx_spark.contract import INTERVAL_MINUTES
from ucx_spark.errors import UcxError

app = typer.Typer(
    name="ucx",
    help="UCX Spark: utility customer-experience lakehouse. `ucx COMMAND --help` shows a command's options "
         "and an example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Globals:
    conf: str | None = None
    env: str | None = None
    debug: bool = False
    label: str | None = None  # names the command in error lines (jobs/*.py: the job's name)


# Options shared by many commands, declared once.
Warehouse = Annotated[str | None, typer.Option("--warehouse", metavar="DIR",
                                               help="warehouse root (default: paths.warehouse)")]
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON (for a scheduler)")]


def Positive(metavar: str = "N") -> typer.models.OptionInfo:  # noqa: N802 - reads as a type in the signatures
    return typer.Option(min=1, metavar=metavar)


def _version(value: bool) -> None:
    if value:
        print(f"ucx-spark {__version__}")
        raise typer.Exit(0)


@app.callback()
def _globals(
    ctx: typer.Context,
    conf: Annotated[str | None, typer.Option(metavar="DIR", help="configuration folder holding base.yaml "
                                                                "(default: the repo's conf/)")] = None,
    env: Annotated[str | None, typer.Option(metavar="NAME", help="environment overlay conf/<NAME>.yaml "
                                                                 "(default: $UCX_ENV or local)")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="show full stack traces and Spark's warnings "
                                             "(else in <warehouse>/_logs/spark.log)")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    ctx.obj = Globals(conf=conf, env=env, debug=debug, label=(ctx.obj or Globals()).label)
    if debug:
        from ucx_spark.session import CONSOLE_LEVEL_ENV

        os.environ[CONSOLE_LEVEL_ENV] = "warn"  # Spark's warnings on the terminal too
    else:
        quiet_terminal()


def quiet_terminal() -> None:
    """Lines a user cannot act on stay off the terminal (``--debug`` keeps them): MLflow's
    type-hint advice for every pyfunc model it loads (in the driver: the Python workers that load a
    model to score still print it twice, inside MLflow's own warnings.catch_warnings), its INFO lines ("Validating input example
    against model signature") and its artifact download progress bars."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # mlflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is imported (later than this)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _run(ctx: typer.Context, name: str, params: object, *, landing: str | None = None, warehouse: str | None = None,
         as_json: bool = False) -> None:
    """Load the configuration, call ``commands.execute``, exit with its code."""
    from ucx_spark.config import load_config

    g: Globals = ctx.obj or Globals()
    label = g.label or f"ucx {name}"
    try:
        cfg = load_config(env=g.env, conf_dir=g.conf).with_paths(landing=landing, warehouse=warehouse)
    except UcxError as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        raise typer.Exit(commands.EXIT_USAGE) from None
    raise typer.Exit(commands.execute(name, params, cfg, as_json=as_json, debug=g.debug, label=label))


def _usage(name: str, exc: UcxError) -> typer.Exit:
    print(f"ucx {name}: error: {exc}", file=sys.stderr)
    return typer.Exit(commands.EXIT_USAGE)


# --------------------------------------------------------------------------- the medallion


@app.command(epilog="Example: ucx generate --out data/landing --households 300 --months 25 --interval-minutes 60")
def generate(
    ctx: typer.Context,
    out: Annotated[str | None, typer.Option(metavar="LANDING_DIR", help="landing zone to write "
                                                                        "(default: paths.landing)")] = None,
    households: Annotated[int, Positive()] = 200,
    months: Annotated[int, Positive()] = 13,
    interval_minutes: Annotated[int, typer.Option(metavar="MINUTES", help="AMI interval: " + ", ".join(map(str, INTERVAL_MINUTES)))] = 15,
    seed: Annotated[int, typer.Option(metavar="N")] = 42,
    end_date: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD",
                                                 help="last day of data (default 2025-12-31)")] = None,
) -> None:
    """Write a synthetic utility's landing zone."""
    _run(ctx, "generate", GenerateParams(out=out, households=households, months=months,
                                         interval_minutes=interval_minutes, seed=seed, end_date=end_date))


class Step(StrEnum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"


@app.command(epilog="Example: UCX_PSEUDONYM_KEY=... ucx pipeline --landing data/landing --warehouse data/warehouse")
def pipeline(
    ctx: typer.Context,
    landing: Annotated[str | None, typer.Option(metavar="DIR", help="landing zone (default: paths.landing)")] = None,
    warehouse: Warehouse = None,
    run_id: Annotated[str | None, typer.Option(metavar="ID", help="run id (default: a new timestamped id)")] = None,
    no_gates: Annotated[bool, typer.Option("--no-gates", help="skip Great Expectations gates "
                                                             "(benchmarks only)")] = False,
    step: Annotated[list[Step] | None, typer.Option(
        metavar="bronze|silver|gold", help="run only this step (repeatable), with its gates and bookkeeping as in a whole run: "
             "what jobs/bronze.py, silver.py and gold.py run")] = None,
    accept_incomplete: Annotated[str | None, typer.Option(
        metavar="DAY[,DAY...]", help="publish these local days although their AMI completeness is below "
                                     "quality.ami_completeness_min (known-incomplete history); needs --accept-reason")] = None,
    accept_reason: Annotated[str | None, typer.Option(metavar="TEXT", help="why the accepted days are published "
                                                                           "(audited)")] = None,
    json: Json = False,
) -> None:
    """Landing -> bronze -> silver -> gold, with quality gates."""
    try:
        days = commands.accepted_days(accept_incomplete, accept_reason)
    except UcxError as exc:
        raise _usage("pipeline", exc) from None
    steps = tuple(dict.fromkeys(s.value for s in step)) if step else None
    _run(ctx, "pipeline", PipelineParams(run_id=run_id, gates=not no_gates, accept_incomplete=days,
                                         accept_reason=accept_reason, steps=steps),
         landing=landing, warehouse=warehouse, as_json=json)


# --------------------------------------------------------------------------- models


class ModelName(StrEnum):
    csat = "csat"
    nps = "nps"
    ev_adoption = "ev_adoption"
    payment_risk = "payment_risk"
    all = "all"


@app.command(epilog="Example: ucx train --warehouse data/warehouse --model all --trials 20")
def train(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    model: Annotated[ModelName, typer.Option(metavar="csat|nps|ev_adoption|payment_risk|all", help="which model")] = ModelName.all,
    trials: Annotated[int, Positive()] = 20,
    allow_below_baseline: Annotated[bool, typer.Option(
        "--allow-below-baseline", help="let a version become champion without beating the plain logistic/ridge baseline on its validation "
             "rows (default: it stays challenger)")] = False,
    json: Json = False,
) -> None:
    """Train, tune and register the household models (MLflow)."""
    _run(ctx, "train", TrainParams(models=(model.value,), trials=trials,
                                   require_baseline_lift=not allow_below_baseline),
         warehouse=warehouse, as_json=json)


@app.command(epilog="Example: ucx score --warehouse data/warehouse --as-of 2025-12-31")
def score(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    as_of: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="the last day the features describe "
                                              "(default: the latest as_of_date of gold/household_features)")] = None,
    json: Json = False,
) -> None:
    """Score every active household with the champion models."""
    try:
        day = commands.parse_day("--as-of", as_of)
    except UcxError as exc:
        raise _usage("score", exc) from None
    _run(ctx, "score", ScoreParams(as_of=day), warehouse=warehouse, as_json=json)


@app.command(epilog="Example: ucx stream --warehouse data/warehouse --trigger 15")
def stream(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    trigger: Annotated[float, typer.Option(metavar="SECONDS", help="a micro-batch every SECONDS")] = 15.0,
    available_now: Annotated[bool, typer.Option("--available-now", help="score the events committed so far, then stop "
                                                     "(a scheduled catch-up)")] = False,
    since: Annotated[str | None, typer.Option(metavar="TIMESTAMP", help="a new stream reads the change feeds from "
                                              "this commit time (default: from now on)")] = None,
    checkpoint: Annotated[str | None, typer.Option(metavar="DIR", help="default "
                                                   "<warehouse>/_stream/scores/checkpoint")] = None,
    timeout: Annotated[float | None, typer.Option(metavar="SECONDS", help="stop after SECONDS "
                                                  "(default: until stopped)")] = None,
) -> None:
    """Keep household scores up to date as silver's events arrive (Structured Streaming)."""
    _run(ctx, "stream", StreamParams(trigger=trigger, available_now=available_now, since=since,
                                     checkpoint=checkpoint, timeout=timeout), warehouse=warehouse)


@app.command(epilog="Example: ucx evaluate --warehouse data/w1000 --truth data/u1000 --trials 20 --json")
def evaluate(
    ctx: typer.Context,
    truth: Annotated[str, typer.Option(metavar="DIR", help="a `ucx generate` output (or its _truth folder)")],
    warehouse: Warehouse = None,
    trials: Annotated[int, Positive()] = 10,
    json: Json = False,
) -> None:
    """Train privately, score and compare with a generated utility's truth."""
    _run(ctx, "evaluate", EvaluateParams(truth=truth, trials=trials), warehouse=warehouse, as_json=json)


# --------------------------------------------------------------------------- insights


@app.command(epilog="Example: ucx whatif --warehouse data/warehouse --scenario rate_increase_usd=5 "
                    "--where customer_class=RES")
def whatif(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    scenario: Annotated[list[str] | None, typer.Option(
        metavar="NAME=VALUE", help="rate_increase_usd=5, rate_increase_pct=3 or liheap_enrollment_pct=+10 "
                                   "(repeatable: one run each)")] = None,
    set_exprs: Annotated[list[str] | None, typer.Option(
        "--set", metavar="FEATURE=EXPR", help="change a feature by a Spark SQL expression, e.g. "
                                              "outage_minutes_365d=outage_minutes_365d*0.8")] = None,
    where: Annotated[list[str] | None, typer.Option(
        metavar="CONDITION", help="scope: column=value or a Spark SQL predicate, e.g. customer_class=RES "
                                  "(repeatable: AND)")] = None,
) -> None:
    """Simulate a scenario through the champion models."""
    _run(ctx, "whatif", WhatifParams(scenarios=tuple(scenario or ()), sets=tuple(set_exprs or ()),
                                     where=tuple(where or ())), warehouse=warehouse)


@app.command(epilog="Example: ucx drivers --warehouse data/warehouse")
def drivers(ctx: typer.Context, warehouse: Warehouse = None) -> None:
    """Global drivers (mean |SHAP|, direction) of every champion, by segment."""
    _run(ctx, "drivers", NoParams(), warehouse=warehouse)


@app.command(epilog="Example: ucx report --warehouse data/warehouse --out report.html")
def report(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    out: Annotated[str, typer.Option(metavar="FILE")] = "report.html",
) -> None:
    """Write the self-contained CX report (HTML)."""
    _run(ctx, "report", ReportParams(out=out), warehouse=warehouse)


@app.command(epilog="Example: ucx quality --warehouse data/warehouse --json")
def quality(ctx: typer.Context, warehouse: Warehouse = None, json: Json = False) -> None:
    """Summary of the last quality-gate run and the Data Docs path."""
    _run(ctx, "quality", NoParams(), warehouse=warehouse, as_json=json)


@app.command(epilog="Example: ucx segment --warehouse data/warehouse --objective payment_risk")
def segment(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    objective: Annotated[str | None, typer.Option(metavar="NAME", help="payment_risk, ev_adoption, csat or a program "
                                                                       "(e.g. paperless)")] = None,
) -> None:
    """Personas (KMeans) and objective-driven segments -> gold/segments."""
    _run(ctx, "segment", SegmentParams(objective=objective), warehouse=warehouse)


@app.command(epilog="Example: ucx contacts --warehouse data/warehouse")
def contacts(ctx: typer.Context, warehouse: Warehouse = None) -> None:
    """What customers say: topic and sentiment of every contact transcript and survey comment -> gold/contact_insights."""
    _run(ctx, "contacts", NoParams(), warehouse=warehouse)


@app.command(epilog="Example: ucx baselines --warehouse data/warehouse")
def baselines(ctx: typer.Context, warehouse: Warehouse = None) -> None:
    """Why bills move: each household's daily degree-day baseline (CalTRACK) -> gold/usage_baselines, and
    every bill against a year earlier split into weather, days, rate and usage -> gold/bill_explanations."""
    _run(ctx, "baselines", NoParams(), warehouse=warehouse)


@app.command(epilog="Example: ucx equity --warehouse data/warehouse")
def equity(ctx: typer.Context, warehouse: Warehouse = None) -> None:
    """Who is treated unfairly: notices, disconnections, programs, campaigns, outages and predicted payment
    risk by income band, ZIP and poverty rate against the utility, bootstrap intervals -> gold/equity_audit."""
    _run(ctx, "equity", NoParams(), warehouse=warehouse)


@app.command("explain-bill", epilog="Example: ucx explain-bill --household 3f2a9c0d... --bills 3")
def explain_bill(
    ctx: typer.Context,
    household: Annotated[str, typer.Option("--household", metavar="ID",
                                           help="pseudonymous household id (as in gold/household_scores)")] = "",
    bills: Annotated[int, typer.Option(metavar="N", help="the last N bills, newest first")] = 1,
    warehouse: Warehouse = None,
) -> None:
    """Why a household's bill moved against a year earlier (gold/bill_explanations, from `ucx baselines`)."""
    _run(ctx, "explain-bill", ExplainBillParams(household_id=household, bills=bills), warehouse=warehouse)


@app.command(epilog="Example: ucx saturation --warehouse data/warehouse --goal autopay=+5")
def saturation(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    goal: Annotated[list[str] | None, typer.Option(
        metavar="PROGRAM=+PP", help="is a lift of PP percentage points reachable in the horizon? e.g. autopay=+5 "
                                    "(repeatable)")] = None,
) -> None:
    """Program potential and reachable enrollment -> gold/program_saturation."""
    _run(ctx, "saturation", SaturationParams(goals=tuple(goal or ())), warehouse=warehouse)


@app.command(epilog="Example: ucx target --warehouse data/warehouse --campaign autopay")
def target(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Option(metavar="CAMPAIGN", help="a program (autopay, paperless, liheap, ev_rate, "
                                                                   "...) or collections (the past-due worklist)")],
    warehouse: Warehouse = None,
) -> None:
    """Rank households for a program campaign, or the collections worklist -> gold/campaign_targets."""
    _run(ctx, "target", TargetParams(campaign=campaign), warehouse=warehouse)


@app.command(epilog="Example: UCX_PSEUDONYM_KEY=... ucx activate --warehouse data/warehouse --campaign autopay")
def activate(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Option(metavar="CAMPAIGN")],
    warehouse: Warehouse = None,
    actor: Annotated[str | None, typer.Option(metavar="WHO", help="who exports, for the audit log "
                                                                  "(default: the OS user)")] = None,
) -> None:
    """Export a campaign's re-identified targets to a restricted CSV (audited)."""
    _run(ctx, "activate", ActivateParams(campaign=campaign, actor=actor), warehouse=warehouse)


# --------------------------------------------------------------------------- the demo and operations


@app.command(epilog="Example: ucx demo --out data/demo (about 13 minutes on 2 cores)")
def demo(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(metavar="DIR", help="folder for the demo landing zone and warehouse")] = "data/demo",
    # about 1,000 households: enough survey respondents a month for the survey KPIs to pass the
    # privacy threshold (min_households 15; measured n 18-84 in each of the last six months); hourly
    # AMI keeps it quick
    households: Annotated[int, Positive()] = 1000,
    months: Annotated[int, Positive()] = 13,
    interval_minutes: Annotated[int, typer.Option(metavar="MINUTES", help="AMI interval of the generated meters: "
                                                  + ", ".join(map(str, INTERVAL_MINUTES)))] = 60,
    seed: Annotated[int, typer.Option(metavar="N")] = 7,
) -> None:
    """Generate a utility and run everything end to end (pipeline, models, insights, report)."""
    _run(ctx, "demo", DemoParams(out=out, households=households, months=months, interval_minutes=interval_minutes,
                                 seed=seed))


class Auth(StrEnum):
    none = "none"
    password = "password"


@app.command("serve-sql", epilog="Example: ucx serve-sql --warehouse data/warehouse --port 10000")
def serve_sql(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    port: Annotated[int, Positive("PORT")] = 10000,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="bind address (any other than 127.0.0.1 needs --auth password)")]
    = "127.0.0.1",
    auth: Annotated[Auth, typer.Option(metavar="none|password", help="password: users and PBKDF2 hashes from `ucx sql-user add` "
                                            "(needed beyond loopback)")] = Auth.none,
    master: Annotated[str | None, typer.Option(metavar="URL", help="Spark master of the server (default: spark.master)")] = None,
) -> None:
    """Serve the warehouse to BI tools over JDBC/ODBC (Spark Thrift Server)."""
    _run(ctx, "serve-sql", ServeSqlParams(port=port, host=host, auth=auth.value, master=master), warehouse=warehouse)


class UserAction(StrEnum):
    add = "add"


@app.command("sql-user", epilog="Example: UCX_SQL_PASSWORD=... ucx sql-user add analyst --warehouse data/warehouse")
def sql_user(
    ctx: typer.Context,
    action: Annotated[UserAction, typer.Argument()],
    name: Annotated[str, typer.Argument()],
    warehouse: Warehouse = None,
) -> None:
    """Add or replace a user of `ucx serve-sql --auth password`."""
    _run(ctx, "sql-user", SqlUserParams(name=name), warehouse=warehouse)


@app.command(epilog="Example: UCX_PSEUDONYM_KEY=old UCX_NEW_PSEUDONYM_KEY=new ucx rekey --warehouse data/warehouse")
def rekey(ctx: typer.Context, warehouse: Warehouse = None) -> None:
    """Rotate the pseudonym key: UCX_PSEUDONYM_KEY -> UCX_NEW_PSEUDONYM_KEY, every table."""
    _run(ctx, "rekey", NoParams(), warehouse=warehouse)


@app.command(epilog="Example: ucx rebuild --warehouse data/warehouse --table silver/bills")
def rebuild(
    ctx: typer.Context,
    table: Annotated[list[str], typer.Option(metavar="LAYER/TABLE", help="e.g. silver/bills (repeatable); "
                                                                         "`ucx pipeline` names the damaged ones")],
    warehouse: Warehouse = None,
) -> None:
    """Set a damaged table aside; the next `ucx pipeline` builds it again (nothing deleted)."""
    _run(ctx, "rebuild", RebuildParams(tables=tuple(table)), warehouse=warehouse)


@app.command(epilog="Example: ucx maintain --warehouse data/warehouse --vacuum-hours 168")
def maintain(
    ctx: typer.Context,
    warehouse: Warehouse = None,
    vacuum_hours: Annotated[float, typer.Option(metavar="HOURS", help="VACUUM retention (168, the default, is the minimum)")] = 168.0,
    force_retention: Annotated[bool, typer.Option("--force-retention", help="allow a retention below 168 hours")] = False,
    no_vacuum: Annotated[bool, typer.Option("--no-vacuum", help="OPTIMIZE only")] = False,
) -> None:
    """OPTIMIZE (compaction, Z-order/clustering) and VACUUM every Delta table."""
    _run(ctx, "maintain", MaintainParams(vacuum_hours=None if no_vacuum else vacuum_hours,
                                         force_retention=force_retention), warehouse=warehouse)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None, *, label: str | None = None) -> int:
    """``ucx``: run the app, return its exit code (argument mistakes: 2, like any user mistake).
    ``label`` names the command in error lines instead of ``ucx COMMAND`` (the spark-submit jobs)."""
    try:
        app(args=sys.argv[1:] if argv is None else list(argv), prog_name=label or "ucx", standalone_mode=True,
            obj=Globals(label=label))
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else commands.EXIT_FAILED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
