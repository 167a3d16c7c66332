"""The broken-build list (scripts/broken_builds.py, issue 24) stays in step with the code: every
mutation's snippet occurs exactly once in its file and still parses once mutated, and every test it
names exists. No Spark: this only reads files (the broken builds themselves run by hand or in CI
with `python scripts/broken_builds.py`)."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "broken_builds.py"


@functools.cache
def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("broken_builds", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["broken_builds"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_every_broken_build_still_applies_and_names_existing_tests() -> None:
    bb = _script()
    assert bb.check_cases(REPO) == []
    assert len(bb.CASES) >= 23
    assert all(m.file.startswith(("ucx_spark/", "jobs/")) for m in bb.CASES)


def test_the_check_finds_a_stale_snippet_and_a_missing_test() -> None:
    bb = _script()
    good = bb.CASES[0]
    stale = bb.Mutation(name="stale", case="a snippet the code no longer has", file=good.file,
                        old="this text is not in the file", new="x", tests=good.tests)
    renamed = bb.Mutation(name="renamed", case="a test that was renamed", file=good.file, old=good.old,
                          new=good.new, tests=(good.tests[0] + "_renamed[param]",))
    problems = bb.check_cases(REPO, [good, stale, renamed, good])
    assert any(p.startswith("stale: old occurs 0 times") for p in problems), problems
    assert any(p.startswith("renamed: ") and "no such test function" in p for p in problems), problems
    assert any(p == f"{good.name}: duplicate name" for p in problems), problems
    assert bb.split_node("tests/test_x.py::test_y[a-b]") == ("tests/test_x.py", ["test_y"])


def test_a_case_is_caught_only_when_every_one_of_its_tests_failed() -> None:
    module = _script()
    tests = ("tests/a.py::test_one", "tests/a.py::test_two")
    out = "FAILED tests/a.py::test_one - AssertionError\nFAILED tests/a.py::test_two[x] - assert 0\n"
    assert module.judge(tests, out, 1) == "caught"
    out = "FAILED tests/a.py::test_one - AssertionError\nPASSED tests/a.py::test_two\n"
    assert module.judge(tests, out, 1) == "MISSED"
    out = "FAILED tests/a.py::test_one - AssertionError\nERROR tests/a.py::test_two - fixture\n"
    assert module.judge(tests, out, 1) == "error"
    assert module.judge(tests, "", 4) == "error"
