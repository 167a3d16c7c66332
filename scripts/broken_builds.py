"""Broken builds: each hardening case of issue 24 shown to fail its tests when its protection is broken.

    .venv/bin/python scripts/broken_builds.py --check          # no Spark: every mutation still applies
    .venv/bin/python scripts/broken_builds.py --list           # the cases, their files and tests
    .venv/bin/python scripts/broken_builds.py [--case NAME ...] # run them (all by default)

``CASES`` lists one mutation per protection: the smallest plausible bug a developer could make
that defeats it (a dropped check, a flipped comparison, a wider mode, a swallowed error), an exact
snippet ``old`` of a file under ``ucx_spark/`` or ``jobs/`` (it occurs exactly once) and its
replacement ``new``, and the tests that must fail on that broken build.

A run takes each case in turn, never two at a time (each starts a Spark JVM): a detached
``git worktree`` of HEAD in a temporary folder (uncommitted changes are not in it: a warning names
them), the untracked build products ``.jars`` and ``ucx_spark/_vendor`` linked in, the mutation
applied, the mutated module imported once (a broken build must import and run), then
``pytest`` on the case's tests with ``PYTHONPATH`` pointing at the worktree. ``caught`` when
every one of the case's tests failed (``judge``, from pytest's ``-rA`` summary), ``MISSED`` when
one of them passed, ``error`` otherwise (a setup or collection error, a timeout). Processes a case's tests leave behind (a Thrift server a broken build failed to
refuse) are found by the case's folder in their command line and stopped; the worktree is
removed. The full output of each case goes to a log file; the table at the end gives each case's
outcome, time and first failure. Exit 1 unless every case run is caught.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MUTABLE_DIRS = ("ucx_spark/", "jobs/")
WATCHED_DIRS = ("ucx_spark/", "jobs/", "tests/")  # uncommitted changes here are not in the broken builds
UNTRACKED_LINKS = (".jars", "ucx_spark/_vendor")  # build products a worktree lacks (make setup)
PYTEST_TIMEOUT = 1800  # seconds per test (pytest-timeout), as in pyproject.toml
CASE_TIMEOUT = 4 * 3600  # seconds for a whole case, a last resort


# snippets too long for one line of the list below
DRIFT_MEDIAN_OLD = "            counts[table_key] = PreviousCount(batch[0][\"run_id\"], median, len(batch))"
DRIFT_MEDIAN_NEW = ("            counts[table_key] = PreviousCount(batch[0][\"run_id\"], int(batch[0][\"row_count\"]), "
                    "len(batch))")
RESTORE_OLD = ('    return Damage("missing_file", first, f"data file {missing[0]}{more} is missing (added in version '
               '{first})",\n                  first - 1 if first > 0 else None)')
RESTORE_NEW = ('    return Damage("missing_file", first, f"data file {missing[0]}{more} is missing (added in version '
               '{first})",\n                  first if first > 0 else None)')


@dataclass(frozen=True)
class Mutation:
    """One broken build: ``old`` (exactly once in ``file``) replaced by ``new``; ``tests`` must fail."""

    name: str
    case: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]

    def apply(self, text: str) -> str:
        return text.replace(self.old, self.new, 1)


CASES: tuple[Mutation, ...] = (
    # --- AMI completeness (ucx_spark/quality/checks.py) ---------------------------------------------
    Mutation(
        name="completeness_silent_meter_not_expected",
        case="AMI completeness: a meter that sends nothing on a day counts as missing; with the active "
             "account dropped from 'expected', a silent meter whose last read was the day before is not expected",
        file="ucx_spark/quality/checks.py",
        old='        pairs_df.filter((F.col("local_date") <= F.col("last_date")) | has_account)\n',
        new='        pairs_df.filter(F.col("local_date") <= F.col("last_date"))\n',
        tests=(
            "tests/quality/test_completeness_fleet.py::test_a_third_of_the_meters_sending_nothing_fails_closed",
            "tests/quality/test_completeness_fleet.py::test_a_single_meter_gap_day_is_reported_not_fatal",
        ),
    ),
    Mutation(
        name="completeness_small_days_judged",
        case="AMI completeness: days with fewer than min_meters expected meters are reported, not judged; "
             "with min_meters ignored a small fleet's gap day fails the gate",
        file="ucx_spark/quality/checks.py",
        old='.withColumn("judged", F.col("meters") >= F.lit(min_meters))',
        new='.withColumn("judged", F.col("meters") >= F.lit(1))',
        tests=("tests/quality/test_completeness_fleet.py::test_small_days_are_reported_not_judged_and_accepted_days_publish",),
    ),
    Mutation(
        name="completeness_acceptance_ignored",
        case="AMI completeness: a day an operator accepted (--accept-incomplete) publishes; counted as "
             "'below' anyway, it still fails the check",
        file="ucx_spark/quality/checks.py",
        old='F.count(F.when(judged & low & ~ok, 1)).alias("below"),',
        new='F.count(F.when(judged & low, 1)).alias("below"),',
        tests=("tests/quality/test_completeness_fleet.py::test_small_days_are_reported_not_judged_and_accepted_days_publish",),
    ),
    Mutation(
        name="completeness_acceptance_not_passed",
        case="AMI completeness: the acceptance reaches the gate of a pipeline run (config -> Thresholds -> "
             "check); dropped on the way, the accepted day still stops gold",
        file="ucx_spark/quality/gates.py",
        old="accepted=thresholds.accept_incomplete, small=small,",
        new="accepted=None, small=small,",
        tests=("tests/quality/test_completeness_gate.py::"
               "test_a_new_day_a_third_of_the_meters_never_sent_fails_closed_until_accepted",),
    ),
    # --- Landing files (ucx_spark/io/*.py, ucx_spark/pipelines/bronze.py) ---------------------------
    Mutation(
        name="fuzz_strict_utf8",
        case="Hostile landing files never crash: invalid UTF-8 is read with replacement characters; decoded "
             "strictly, a Latin-1 or random byte raises UnicodeDecodeError out of the reader",
        file="ucx_spark/io/csv_arrow.py",
        old='v.decode("utf-8", "replace")',
        new='v.decode("utf-8")',
        tests=(
            "tests/bronze/test_fuzz_landing.py::test_latin1_bytes_and_nul_are_read_with_replacement",
            "tests/bronze/test_fuzz_landing.py::test_random_bytes_never_crash_and_rows_stay_numbered",
        ),
    ),
    Mutation(
        name="fuzz_wrong_width_rows_misnumbered",
        case="Hostile landing files: rows are numbered 1..n without a gap; forgetting that pyarrow's invalid-row "
             "handler counts the header as row 1 numbers every wrong-width record one too high (a gap, a repeat)",
        file="ucx_spark/io/csv_arrow.py",
        old="        invalid.append((int(row.number) - 1, row.text))  # number counts the header as record 1",
        new="        invalid.append((int(row.number), row.text))",
        tests=("tests/bronze/test_fuzz_landing.py::test_extra_and_missing_fields_are_kept_and_marked",),
    ),
    Mutation(
        name="resend_checked_on_new_files",
        case="A landing file replaced after ingest (same name, other bytes) is a rejected re-send "
             "(replaced_after_ingest); the fingerprint check run on the new files instead of the ingested ones "
             "lets it pass silently",
        file="ucx_spark/pipelines/bronze.py",
        old="    records += replaced_files(path, [f for f in files if f.name in state and (feed, f.name) not in "
            "recorded], feed)",
        new="    records += replaced_files(path, [f for f in files if f.name not in state and (feed, f.name) not in "
            "recorded], feed)",
        tests=("tests/bronze/test_bronze.py::test_a_file_replaced_after_ingest_is_a_rejected_resend_and_in_flight_files_wait",),
    ),
    Mutation(
        name="resend_reported_every_run",
        case="A replaced landing file is reported once: without the 'already recorded' filter every later run "
             "records it again",
        file="ucx_spark/pipelines/bronze.py",
        old="    records += replaced_files(path, [f for f in files if f.name in state and (feed, f.name) not in "
            "recorded], feed)",
        new="    records += replaced_files(path, [f for f in files if f.name in state], feed)",
        tests=("tests/bronze/test_bronze.py::test_a_file_replaced_after_ingest_is_a_rejected_resend_and_in_flight_files_wait",),
    ),
    Mutation(
        name="in_flight_files_read",
        case="Files still being written (*.part, *.tmp, ...: IN_FLIGHT_SUFFIXES) are skipped until renamed; "
             "without the skip a *.part file is rejected as bad_file_name",
        file="ucx_spark/io/landing.py",
        old='            if entry.name.startswith("_") or (entry.is_file() and is_in_flight(entry.name)):',
        new='            if entry.name.startswith("_"):',
        tests=("tests/bronze/test_bronze.py::test_a_file_replaced_after_ingest_is_a_rejected_resend_and_in_flight_files_wait",),
    ),
    Mutation(
        name="extra_columns_not_reported",
        case="A column the contract does not know is reported once per file (FeedIngest.extra_columns, the run "
             "summary); dropped from the step's result, nobody hears of it",
        file="ucx_spark/pipelines/bronze.py",
        old="    return FeedIngest(feed, tuple(landed), rows, landed_extra), records",
        new="    return FeedIngest(feed, tuple(landed), rows), records",
        tests=("tests/bronze/test_bronze.py::test_unknown_columns_are_kept_and_reported_once_per_file",),
    ),
    Mutation(
        name="extra_columns_dropped",
        case="A column the contract does not know is kept in bronze _extra; the reader dropping it loses data",
        file="ucx_spark/io/csv_arrow.py",
        old="        self.extras = [(name, i) for i, name in enumerate(spec.header) if name not in set(columns)]",
        new="        self.extras: list[tuple[str, int]] = []  # only the contract's columns are kept",
        tests=("tests/bronze/test_bronze.py::test_bronze_rows_strings_extra_malformed_and_rejected_file",),
    ),
    Mutation(
        name="missing_column_not_rejected",
        case="A file missing a required column (or with it renamed) is rejected (file_rejected, "
             "quarantine/_files); without the check its rows land as if valid, the column null",
        file="ucx_spark/pipelines/bronze.py",
        old='        reason = "missing_column:" + ",".join(missing) if missing else None',
        new="        reason = None  # a missing column reads as nulls",
        tests=(
            "tests/bronze/test_bronze.py::test_rejected_files_are_recorded_with_reason",
            "tests/bronze/test_bronze.py::test_bronze_rows_strings_extra_malformed_and_rejected_file",
        ),
    ),
    Mutation(
        name="missing_column_not_named",
        case="A rejected file names the missing column (missing_column:zip); a bare reason leaves the sender "
             "guessing",
        file="ucx_spark/pipelines/bronze.py",
        old='        reason = "missing_column:" + ",".join(missing) if missing else None',
        new='        reason = "missing_column" if missing else None',
        tests=(
            "tests/bronze/test_bronze.py::test_rejected_files_are_recorded_with_reason",
            "tests/bronze/test_bronze.py::test_bronze_rows_strings_extra_malformed_and_rejected_file",
        ),
    ),
    Mutation(
        name="unknown_feed_ignored",
        case="A feed folder the contract does not know (bill/ for bills/) is reported (unknown_feed); with the "
             "comparison flipped its files are silently left behind",
        file="ucx_spark/io/landing.py",
        old="    if feeds == FEED_ORDER:",
        new="    if feeds != FEED_ORDER:",
        tests=("tests/bronze/test_bronze.py::test_a_folder_the_contract_does_not_know_is_reported_not_ignored",),
    ),
    # --- Runs (ucx_spark/pipelines/medallion.py, ucx_spark/io/delta_log.py, maintain) ---------------
    Mutation(
        name="storage_fault_not_recognised",
        case="Disk full or read-only mid-run stops with one error naming the warehouse, the fault and the free "
             "space; matched exactly instead of within the JVM's message, the raw stack trace comes out",
        file="ucx_spark/pipelines/medallion.py",
        old="    fault = next((f for f in STORAGE_FAULTS if f in text), None)",
        new="    fault = next((f for f in STORAGE_FAULTS if f == text), None)",
        tests=("tests/e2e/test_e2e.py::test_a_full_disk_mid_run_is_named_and_the_next_run_completes",),
    ),
    Mutation(
        name="damage_latest_commit_unchecked",
        case="A damaged Delta table stops the run naming it: an off-by-one in the commit loop leaves the latest "
             "commit (the torn one) unchecked, so silver/bills is not named for its bad JSON",
        file="ucx_spark/io/delta_log.py",
        old="    for v in range(start, latest + 1):",
        new="    for v in range(start, latest):",
        tests=("tests/e2e/test_e2e.py::test_a_damaged_table_stops_the_run_and_is_rebuilt",),
    ),
    Mutation(
        name="damage_files_unchecked",
        case="A damaged Delta table stops the run naming it and the RESTORE version: without the data-file "
             "check a deleted live file of silver/payments goes unnoticed",
        file="ucx_spark/io/delta_log.py",
        old="    missing = sorted(f for f in live if not (Path(path) / unquote(f)).is_file())",
        new="    missing: list[str] = []  # checking every data file is too slow on big tables",
        tests=("tests/e2e/test_e2e.py::test_a_damaged_table_stops_the_run_and_is_rebuilt",),
    ),
    Mutation(
        name="missing_store_created",
        case="An MLflow store that is not where the settings say is named and not created; without the check "
             "MLflow creates an empty one and the run says 'no champion'",
        file="ucx_spark/insights/base.py",
        old="    require_store(tracking_uri)\n    mlflow.set_tracking_uri(tracking_uri)",
        new="    mlflow.set_tracking_uri(tracking_uri)",
        tests=("tests/io/test_store_faults.py::test_a_missing_store_is_named_and_not_created",),
    ),
    Mutation(
        name="store_errors_read_as_no_champion",
        case="A locked MLflow store is named ('another process holds a lock'); a registry error read as "
             "'no champion' hides the lock behind 'run ucx train first'",
        file="ucx_spark/models/registry.py",
        old='        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", '
            '"NOT_FOUND"):\n            return None\n        raise\n',
        new="        return None  # no such model or alias\n",
        tests=("tests/io/test_store_faults.py::test_a_locked_store_is_named_and_gold_is_unchanged",),
    ),
    Mutation(
        name="server_fault_hint_https_only",
        case="An MLflow server that does not answer is named ('is the MLflow server running and reachable?'); "
             "recognising only https:// gives an http:// server the local-store hint",
        file="ucx_spark/insights/base.py",
        old='    elif tracking_uri.startswith(("http://", "https://")):',
        new='    elif tracking_uri.startswith("https://"):',
        tests=("tests/io/test_store_faults.py::test_a_server_that_does_not_answer_is_named",),
    ),
    # --- Security --------------------------------------------------------------------------------
    Mutation(
        name="loopback_includes_any_address",
        case="The JDBC server refuses to bind beyond loopback without --auth password; with 0.0.0.0 taken for "
             "a loopback address it serves every table to the network (the harness stops the server it starts)",
        file="ucx_spark/serve.py",
        old='LOOPBACK = ("127.0.0.1", "localhost", "::1")',
        new='LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0")',
        tests=("tests/test_serve_sql.py::test_beyond_loopback_needs_authentication",),
    ),
    Mutation(
        name="sql_auth_disabled",
        case="--auth password refuses wrong, unknown and missing credentials; with HiveServer2 authentication "
             "left at NONE any password gets in",
        file="ucx_spark/serve.py",
        old='"hive.server2.authentication=CUSTOM"',
        new='"hive.server2.authentication=NONE"',
        tests=("tests/test_serve_sql.py::test_password_authentication_end_to_end_with_beeline",),
    ),
    Mutation(
        name="rekey_keeps_mapping",
        case="`ucx rekey` re-derives every pseudonym and deletes the old-to-new mapping once every table checks "
             "out; kept, the mapping still links old and new pseudonyms",
        file="ucx_spark/pipelines/rekey.py",
        old="        shutil.rmtree(map_root)\n",
        new="        pass  # the mapping stays for the audit trail\n",
        tests=("tests/e2e/test_e2e.py::test_rekey_rotates_every_pseudonym",),
    ),
    Mutation(
        name="rekey_skips_gold",
        case="`ucx rekey` rewrites every table with a pseudonym; skipping gold ('the next run rebuilds it') "
             "leaves gold on the old, leaked key",
        file="ucx_spark/pipelines/rekey.py",
        old='LAYERS = ("silver", "gold", "_restricted")',
        new='LAYERS = ("silver", "_restricted")  # gold is rebuilt from silver by the next run',
        tests=("tests/e2e/test_e2e.py::test_rekey_rotates_every_pseudonym",),
    ),
    Mutation(
        name="restricted_layers_group_readable",
        case="bronze/, silver/ and quarantine/ (landed identifiers) are owner-only (0700) and fixed on every "
             "run; opened to the group they are readable by every analyst",
        file="ucx_spark/io/delta.py",
        old="        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and an older folder may be wider",
        new="        os.chmod(folder, 0o750)  # the analysts' group may read",
        tests=("tests/e2e/test_job_budget.py::"
               "test_a_small_gated_run_stays_under_its_job_and_commit_ceiling_and_a_rerun_does_nothing",),
    ),
    Mutation(
        name="activation_export_readable",
        case="An activation export (re-identified names, emails, phones) is owner-only (0600 in a 0700 "
             "folder); made readable for a CRM import job it is readable by every local user",
        file="ucx_spark/pipelines/targeting.py",
        old="    os.fchmod(fd, 0o600)",
        new="    os.fchmod(fd, 0o644)  # the CRM import job reads it",
        tests=("tests/insights/test_insights_targeting.py::test_target_pipeline_and_activation",),
    ),
    Mutation(
        name="resend_size_only",
        case="A replaced landing file is found by its content hash: a fingerprint that compares sizes only "
             "misses a rewrite of the same size",
        file="ucx_spark/io/landing.py",
        old='    return st.st_size != recorded.get("size") or file_sha256(path) != recorded.get("sha256")',
        new='    return st.st_size != recorded.get("size")',
        tests=("tests/bronze/test_bronze.py::test_a_file_replaced_after_ingest_is_a_rejected_resend_and_in_flight_files_wait",),
    ),
    Mutation(
        name="fuzz_invalid_utf8_passed_through",
        case="Hostile landing files: invalid UTF-8 becomes U+FFFD; decoded as Latin-1 instead (a 'fix' for "
             "European exports), every UTF-8 accent turns into two wrong characters and bad bytes into text",
        file="ucx_spark/io/csv_arrow.py",
        old='v.decode("utf-8", "replace")',
        new='v.decode("latin-1")',
        tests=("tests/bronze/test_fuzz_landing.py::"
               "test_invalid_utf8_becomes_the_replacement_character_and_the_rest_of_the_row_stays",),
    ),
    Mutation(
        name="drift_against_the_last_batch",
        case="Row-count drift compares a batch with the median of the feed's recent batches; compared with the "
             "last batch alone, one big day makes the next normal day a false alarm",
        file="ucx_spark/quality/audit.py",
        old=DRIFT_MEDIAN_OLD,
        new=DRIFT_MEDIAN_NEW,
        tests=("tests/quality/test_quality_gates.py::test_audit_is_idempotent_per_run_and_feeds_row_count_drift",),
    ),
    Mutation(
        name="publish_in_two_commits",
        case="Readers during a publish see the old or the new table: a publish that first empties the table "
             "(DELETE) and then writes commits a version in between, which every reader can see",
        file="ucx_spark/io/delta.py",
        old="    writer.save(path)\n    register_table(df.sparkSession, warehouse, layer, table)\n",
        new="    if table_exists(spark, path) and keep is None:\n"
            "        spark.sql(f\"DELETE FROM delta.`{path}`\")  # start clean\n"
            "    writer.save(path)\n    register_table(df.sparkSession, warehouse, layer, table)\n",
        tests=("tests/e2e/test_e2e.py::test_a_damaged_table_stops_the_run_and_is_rebuilt",),
    ),
    Mutation(
        name="demo_prints_its_key",
        case="The pseudonym key never leaves: the demo's warning names its key file; printing the key itself "
             "(to help the user) puts it in every terminal and CI log",
        file="ucx_spark/config.py",
        old='        f"warning: {cfg.key_env} is not set; the demo uses the local key in {path.resolve()}. "',
        new='        f"warning: {cfg.key_env} is not set; the demo uses the local key in {path.resolve()} '
            '({path.read_text(encoding=\'utf-8\').strip()}). "',
        tests=("tests/e2e/test_demo_leaks.py::test_the_demo_leaks_neither_the_key_nor_a_landed_identifier",),
    ),
    Mutation(
        name="maintain_without_lock",
        case="ucx maintain takes the warehouse lock (a VACUUM beside a running pipeline could delete the files "
             "it is about to commit); without it, it compacts a table while a pipeline holds the warehouse",
        file="ucx_spark/pipelines/maintain.py",
        old='    with warehouse_lock(warehouse, run_id=f"maintain-{int(time.time())}"):',
        new="    if True:  # maintenance runs when nothing else does",
        tests=("tests/io/test_warehouse_lock.py::test_maintain_takes_the_lock_and_touches_nothing_while_a_pipeline_holds_it",),
    ),
    Mutation(
        name="restore_version_off_by_one",
        case="A damaged table names the version to RESTORE: the last one without the lost file; one too many "
             "names a version that still needs it",
        file="ucx_spark/io/delta_log.py",
        old=RESTORE_OLD,
        new=RESTORE_NEW,
        tests=("tests/e2e/test_e2e.py::test_a_damaged_table_stops_the_run_and_is_rebuilt",),
    ),
    Mutation(
        name="lock_shared",
        case="One pipeline per warehouse: the second run stops at once naming the first; a shared flock lets "
             "both in",
        file="ucx_spark/io/lock.py",
        old="fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        new="fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
        tests=(
            "tests/io/test_warehouse_lock.py::"
            "test_second_holder_stops_at_once_naming_the_first_and_a_killed_holder_leaves_no_lock",
            "tests/io/test_warehouse_lock.py::test_two_processes_started_together_exactly_one_runs_five_times",
        ),
    ),
    Mutation(
        name="medallion_without_lock",
        case="One pipeline per warehouse: medallion.run (spark-submit jobs/pipeline.py, the demo) takes the "
             "lock too; removed as 'the CLI already holds it', a job runs beside a running pipeline",
        file="ucx_spark/pipelines/medallion.py",
        old="    with warehouse_lock(cfg.paths.warehouse, run_id=run_id):",
        new="    if True:  # the CLI and jobs/_common.py already hold the lock",
        tests=("tests/io/test_warehouse_lock.py::test_medallion_run_takes_the_lock_too",),
    ),
)


# --- checking the list against the code (no Spark) ----------------------------------------------


def split_node(node: str) -> tuple[str, list[str]]:
    """``tests/test_x.py::Class::test_y[param]`` -> ("tests/test_x.py", ["Class", "test_y"])."""
    path, _, rest = node.partition("::")
    names = [re.sub(r"\[.*\]$", "", part) for part in rest.split("::")] if rest else []
    return path, names


def _defines(tree: ast.Module, names: Sequence[str]) -> bool:
    body: Iterable[ast.stmt] = tree.body
    for i, name in enumerate(names):
        last = i == len(names) - 1
        found = None
        for stmt in body:
            if last and isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
                return True
            if not last and isinstance(stmt, ast.ClassDef) and stmt.name == name:
                found = stmt
                break
        if found is None:
            return False
        body = found.body
    return False


def case_problems(m: Mutation, repo: Path = REPO, *, trees: dict[str, ast.Module | None] | None = None) -> list[str]:
    """What is wrong with one mutation against the working tree (empty: it applies)."""
    trees = {} if trees is None else trees
    out = []
    if not m.name or not re.fullmatch(r"[a-z0-9_]+", m.name):
        out.append(f"name {m.name!r}: lower-case letters, digits and '_' only")
    if not m.case.strip() or "\n" in m.case:
        out.append("case: one line of prose")
    if not m.file.startswith(MUTABLE_DIRS) or not m.file.endswith(".py"):
        out.append(f"{m.file}: not a Python file under {' or '.join(MUTABLE_DIRS)}")
    if m.old == m.new:
        out.append("new is the same as old")
    path = repo / m.file
    if not path.is_file():
        out.append(f"{m.file}: no such file")
    else:
        text = path.read_text(encoding="utf-8")
        count = text.count(m.old)
        if count != 1:
            out.append(f"old occurs {count} times in {m.file} (must be exactly once)")
        else:
            try:
                ast.parse(m.apply(text), filename=m.file)
            except SyntaxError as exc:
                out.append(f"the mutated {m.file} does not parse: {exc}")
    if not m.tests:
        out.append("no tests")
    for node in m.tests:
        test_path, names = split_node(node)
        if not test_path.startswith("tests/") or not names:
            out.append(f"{node}: expected tests/<file>.py::<test>")
            continue
        if test_path not in trees:
            file = repo / test_path
            trees[test_path] = ast.parse(file.read_text(encoding="utf-8"), filename=test_path) if file.is_file() else None
        tree = trees[test_path]
        if tree is None:
            out.append(f"{test_path}: no such test file")
        elif not names[-1].startswith("test") or not _defines(tree, names):
            out.append(f"{node}: no such test function")
    return out


def check_cases(repo: Path = REPO, cases: Sequence[Mutation] = CASES) -> list[str]:
    """Every problem of the mutation list against the working tree, each prefixed with its case's name."""
    problems = []
    seen: set[str] = set()
    trees: dict[str, ast.Module | None] = {}
    for m in cases:
        if m.name in seen:
            problems.append(f"{m.name}: duplicate name")
        seen.add(m.name)
        problems += [f"{m.name}: {p}" for p in case_problems(m, repo, trees=trees)]
    return problems


# --- running the broken builds -------------------------------------------------------------------


@dataclass
class Outcome:
    mutation: Mutation
    outcome: str = "error"  # caught | MISSED | error
    seconds: float = 0.0
    first: str = ""
    excerpt: list[str] = field(default_factory=list)
    log: Path | None = None
    notes: list[str] = field(default_factory=list)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check)


def uncommitted(repo: Path) -> list[str]:
    """Changed or untracked paths under ucx_spark/, jobs/, tests/ (the broken builds use HEAD)."""
    status = _git(repo, "status", "--porcelain", "--untracked-files=all", check=False).stdout
    paths = [line[3:].split(" -> ")[-1] for line in status.splitlines() if len(line) > 3]
    return [p for p in paths if p.startswith(WATCHED_DIRS)]


def failure_excerpt(output: str, lines: int = 15) -> tuple[str, list[str]]:
    """(one line naming the first failure, the last ``lines`` lines of its report) from pytest's output."""
    text = output.splitlines()
    first_e = next((i for i, ln in enumerate(text) if ln.startswith("E ")), None)
    summary = next((ln for ln in text if ln.startswith("FAILED ")), None) or next(
        (ln for ln in text if ln.startswith("ERROR ")), None)
    excerpt: list[str] = []
    if first_e is not None:
        end = first_e
        while end + 1 < len(text) and (text[end + 1].startswith("E ") or not text[end + 1].strip()):
            end += 1
        while end > first_e and not text[end].strip():
            end -= 1
        after = end + 1
        while after < len(text) and not text[after].strip():
            after += 1
        if after < len(text) and re.match(r"^\S+:\d+: \w", text[after]):  # where it failed: path:line: Error
            end = after
        start = first_e
        while start > 0 and not re.match(r"^_{3,} .* _{3,}$", text[start - 1]):
            start -= 1
        excerpt = text[max(start, end + 1 - lines):end + 1]
    first = summary or (text[first_e].strip() if first_e is not None else "")
    return first[:160], excerpt


def _processes_mentioning(marker: str) -> list[int]:
    """Pids (not this process) whose command line holds ``marker`` (Linux /proc)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def stop_leftovers(marker: str, grace: float = 20.0) -> list[int]:
    """Stop what a case's tests left running (found by the case's folder in their command line)."""
    pids = _processes_mentioning(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.5)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return pids


def unmount_leftovers(base: str) -> list[str]:
    """Lazily unmount what a case's tests mounted under its folder and left (a tmpfs of the
    disk-full test killed before its own clean-up)."""
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    points = [fields[1].replace("\\040", " ") for fields in (m.split() for m in mounts) if len(fields) > 1]
    found = sorted((p for p in points if p.startswith(base + "/")), key=len, reverse=True)
    for point in found:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except (OSError, IndexError):
        return True


def _module_of(rel: str) -> str | None:
    if not rel.startswith("ucx_spark/"):
        return None
    name = rel.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


_RESULT = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")


def judge(tests: Sequence[str], output: str, code: int) -> str:
    """``caught`` when every one of ``tests`` failed (a parametrised test: any of its cases), from
    pytest's ``-rA`` summary; ``MISSED`` when one of them passed; ``error`` otherwise (a setup
    error, a collection error, a timeout: not the protection's test failing)."""
    seen: dict[str, set[str]] = {}
    for line in output.splitlines():
        if m := _RESULT.match(line):
            seen.setdefault(re.sub(r"\[.*\]$", "", m.group(2)), set()).add(m.group(1))
    verdicts = [seen.get(re.sub(r"\[.*\]$", "", t), set()) for t in tests]
    if code == 1 and all("FAILED" in v for v in verdicts):
        return "caught"
    if any(v == {"PASSED"} for v in verdicts):
        return "MISSED"
    return "error"


def run_case(m: Mutation, *, repo: Path, python: str, log_dir: Path, keep: bool = False) -> Outcome:
    """One broken build: worktree of HEAD, links, mutation, import check, pytest on its tests (each must fail)."""
    result = Outcome(m)
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix=f"ucx-broken-{m.name}-"))
    wt = base / "repo"
    log = log_dir / f"{m.name}.log"
    result.log = log
    links: list[Path] = []
    proc: subprocess.Popen[str] | None = None
    output = ""
    try:
        added = _git(repo, "worktree", "add", "--detach", str(wt), "HEAD", check=False)
        if added.returncode != 0:
            result.first = f"git worktree add failed: {added.stderr.strip()[:120]}"
            return result
        for rel in UNTRACKED_LINKS:
            src, dst = repo / rel, wt / rel
            if src.exists() and not dst.exists() and not dst.is_symlink():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src)
                links.append(dst)
        target = wt / m.file
        text = target.read_text(encoding="utf-8") if target.is_file() else ""
        if text.count(m.old) != 1:
            result.first = f"old occurs {text.count(m.old)} times in HEAD's {m.file} (commit the code, or fix the case)"
            return result
        target.write_text(m.apply(text), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(wt), os.environ.get("PYTHONPATH")) if p),
               "GX_ANALYTICS_ENABLED": "false"}
        module = _module_of(m.file)
        probe = (f"import importlib; m = importlib.import_module({module!r}); print(m.__file__)" if module
                 else f"compile(open({str(target)!r}, encoding='utf-8').read(), {m.file!r}, 'exec'); print({str(target)!r})")
        imported = subprocess.run([python, "-c", probe], cwd=wt, env=env, capture_output=True, text=True, check=False)
        if imported.returncode != 0 or not imported.stdout.strip().startswith(str(wt)):
            result.first = ("the broken build does not import: " + (imported.stderr.strip().splitlines() or [""])[-1]
                            if imported.returncode != 0 else f"{module} imported from {imported.stdout.strip()}, "
                            "not the worktree")[:160]
            return result
        cmd = [python, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-m", "", f"--timeout={PYTEST_TIMEOUT}",
               f"--basetemp={base / 'pytest'}", *m.tests]
        with open(log, "w", encoding="utf-8") as fh:
            fh.write(f"# {m.name}: {m.case}\n# {m.file}\n# - {m.old!r}\n# + {m.new!r}\n# cwd {wt}\n# {' '.join(cmd)}\n\n")
            fh.flush()
            proc = subprocess.Popen(cmd, cwd=wt, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            chunks = []
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                chunks.append(line)
                if time.monotonic() - started > CASE_TIMEOUT:
                    result.notes.append(f"stopped after {CASE_TIMEOUT} s")
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    break
            code = proc.wait()
            output = "".join(chunks)
        result.outcome = judge(m.tests, output, code)
        result.first, excerpt = failure_excerpt(output)
        if result.outcome == "caught":
            result.excerpt = excerpt
        elif result.outcome == "error":
            result.first = f"pytest exit {code}: " + (result.first or (output.strip().splitlines() or [""])[-1])[:140]
        elif result.outcome == "MISSED":
            result.first = (output.strip().splitlines() or [""])[-1][:160]
        return result
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)  # anything of pytest's group still running
        stopped = stop_leftovers(str(base))
        if stopped:
            result.notes.append(f"stopped {len(stopped)} leftover process(es): {', '.join(map(str, stopped))}")
        unmounted = unmount_leftovers(str(base))
        if unmounted:
            result.notes.append(f"unmounted {', '.join(unmounted)}")
        result.seconds = time.monotonic() - started
        if keep:
            result.notes.append(f"worktree kept: {wt}")
        else:
            for link in links:
                with contextlib.suppress(OSError):
                    link.unlink()
            if wt.exists():
                _git(repo, "worktree", "remove", "--force", str(wt), check=False)
            _git(repo, "worktree", "prune", check=False)
            shutil.rmtree(base, ignore_errors=True)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _short_tests(tests: Sequence[str], width: int = 60) -> str:
    text = ", ".join(split_node(t)[1][-1] for t in tests)
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="without Spark: each `old` occurs exactly once, each test exists; exit 1 on a problem")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--case", action="append", metavar="NAME", help="run only this case (repeatable)")
    parser.add_argument("--log-dir", type=Path, help="where each case's pytest output goes (default: a new /tmp folder)")
    parser.add_argument("--keep", action="store_true", help="keep each case's worktree (debugging)")
    args = parser.parse_args(argv)

    by_name = {m.name: m for m in CASES}
    unknown = [n for n in args.case or [] if n not in by_name]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    selected = [by_name[n] for n in dict.fromkeys(args.case)] if args.case else list(CASES)

    if args.list:
        print(table([(m.name, m.file, _short_tests(m.tests)) for m in selected], ("case", "file", "tests")))
        for m in selected:
            print(f"\n{m.name}: {m.case}")
        return 0

    if args.check:
        chosen = {m.name for m in selected}
        problems = [p for p in check_cases(REPO) if p.split(":", 1)[0] in chosen]
        rows = []
        for m in selected:
            path = REPO / m.file
            count = path.read_text(encoding="utf-8").count(m.old) if path.is_file() else 0
            bad = any(p.split(":", 1)[0] == m.name for p in problems)
            rows.append((m.name, m.file, str(count), f"{len(m.tests)}", "PROBLEM" if bad else "ok"))
        print(table(rows, ("case", "file", "old found", "tests", "status")))
        if problems:
            print("\nproblems:")
            print("\n".join(f"  {p}" for p in problems))
            return 1
        print(f"\n{len(selected)} cases: every `old` occurs exactly once and every test exists")
        return 0

    problems = [p for p in check_cases(REPO) if p.split(":", 1)[0] in {m.name for m in selected}]
    if problems:
        print("the mutation list does not match the code (run --check):", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 1
    python = str(REPO / ".venv" / "bin" / "python")
    if not Path(python).is_file():
        python = sys.executable
    changed = uncommitted(REPO)
    if changed:
        print(f"warning: {len(changed)} uncommitted change(s) under {', '.join(WATCHED_DIRS)} are NOT in the broken "
              f"builds (they use HEAD): {', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''}", file=sys.stderr)
    log_dir = args.log_dir or Path(tempfile.gettempdir()) / f"ucx-broken-builds-{datetime.now():%Y%m%dT%H%M%S}"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {_loadavg()}; {len(selected)} case(s), one at a time; logs in {log_dir}", flush=True)

    outcomes: list[Outcome] = []
    try:
        for i, m in enumerate(selected, start=1):
            print(f"[{i}/{len(selected)}] {m.name}: {m.file} -> {_short_tests(m.tests)}", flush=True)
            out = run_case(m, repo=REPO, python=python, log_dir=log_dir, keep=args.keep)
            outcomes.append(out)
            print(f"    {out.outcome} in {out.seconds:.0f} s{': ' + out.first if out.first else ''}", flush=True)
            for note in out.notes:
                print(f"    note: {note}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)

    print()
    print(table([(o.mutation.name, _short_tests(o.mutation.tests, 48), o.outcome, f"{o.seconds:.0f}", o.first[:100])
                 for o in outcomes], ("case", "tests", "outcome", "s", "first failure")))
    for o in outcomes:
        if o.excerpt:
            print(f"\n--- {o.mutation.name} (first failure; full output: {o.log})")
            print("\n".join(o.excerpt))
    print(f"\nload average at end: {_loadavg()}")
    missed = [o.mutation.name for o in outcomes if o.outcome != "caught"]
    if missed or len(outcomes) < len(selected):
        print(f"not caught: {', '.join(missed) or '-'}"
              + (f"; not run: {len(selected) - len(outcomes)}" if len(outcomes) < len(selected) else ""))
        return 1
    print(f"all {len(outcomes)} broken builds caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
