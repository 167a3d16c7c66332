"""Issue 23, "one way in": every table name is spelled once, in ucx_spark/catalog.py.

Elsewhere code names a table by the catalog's constant (``read_table(spark, wh, "gold",
HOUSEHOLD_FEATURES)``, ``f"gold/{CX_KPIS}"``), never by a string literal. The scan reads the
source (ast, no Spark): a string constant outside catalog.py fails when it

- equals a table name (``"household_features"``), or, stripped of path dots and slashes, is one
  (an f-string part ``"/household_features"``);
- holds a table reference ``<layer>/<name>`` or ``<layer>.<name>`` (``"gold/cx_kpis"``,
  ``"silver.ami_daily#changed_days"``, an f-string part ``"/gold/segments/"``) and is not prose: it
  has no whitespace, or the reference is ``<layer>.<name>`` after an SQL FROM / JOIN / INTO /
  TABLE / UPDATE.

Docstrings and prose (help texts, error messages, report text that mention ``gold/cx_kpis`` in a
sentence) are not references and are left alone. The feeds' own tables (silver/<feed>, ...) are
named by the contract's feed names, not by this catalog, so only the other tables are checked.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

from ucx_spark import catalog
from ucx_spark.contract import FEED_ORDER

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("ucx_spark", "jobs", "bench", "scripts")
CATALOG = Path("ucx_spark/catalog.py")
NAMES = frozenset(t.name for t in catalog.TABLES.values()) - set(FEED_ORDER)
_ALT = "|".join(sorted(map(re.escape, NAMES), key=len, reverse=True))
REF = re.compile(rf"(?<![\w.])(?:{'|'.join(catalog.LAYERS)})[./](?:{_ALT})(?![\w.])")
# SQL names a table <layer>.<name> after an upper-case keyword (prose says "into gold/...")
SQL_REF = re.compile(rf"\b(?:FROM|JOIN|INTO|TABLE|UPDATE)\s+(?:{'|'.join(catalog.LAYERS)})\.(?:{_ALT})(?![\w.])")

# Literals equal to a table name that do not name the table: (file, value) -> how many.
ALLOWED: dict[tuple[str, str], int] = {
    # `segmentation` given to rows that have none, and the HTML anchor of the Segments section
    # (<section id="segments">, SECTIONS): labels of the report, not gold/segments.
    ("ucx_spark/insights/report.py", "segments"): 2,
    # the "segments" section label, keying `present` and `tables` (which maps it to
    # gold/segment_profiles) in ReportResult: a report section, not gold/segments.
    ("ucx_spark/pipelines/report.py", "segments"): 2,
    # __all__ entry: the function ucx_spark.silver.ami_daily.ami_daily re-exported by name.
    ("ucx_spark/silver/__init__.py", "ami_daily"): 1,
}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}


def _strings(path: Path) -> list[tuple[int, str]]:
    """(line, value) of every string constant of ``path`` but its docstrings, f-string parts included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def _spelled(value: str) -> bool:
    """Does the literal ``value`` name a non-feed table instead of using the catalog's constant?"""
    if value in NAMES:
        return True
    if not any(c.isspace() for c in value):
        return value.strip("/.") in NAMES or REF.search(value) is not None
    return SQL_REF.search(value) is not None


def _sources() -> list[Path]:
    return sorted(p.relative_to(ROOT) for d in SCANNED for p in (ROOT / d).rglob("*.py")
                  if "_vendor" not in p.parts and p.relative_to(ROOT) != CATALOG)


def test_no_table_name_is_spelled_outside_the_catalog():
    found: list[str] = []
    allowed_seen: Counter[tuple[str, str]] = Counter()
    for rel in _sources():
        for line, value in _strings(ROOT / rel):
            if not _spelled(value):
                continue
            key = (rel.as_posix(), value)
            if key in ALLOWED:
                allowed_seen[key] += 1
            else:
                found.append(f"{rel.as_posix()}:{line}: {value!r}")
    assert not found, ("table names spelled as literals (use the constants of ucx_spark/catalog.py, "
                       "e.g. f\"gold/{CX_KPIS}\"):\n" + "\n".join(found))
    extra = {k: n for k, n in allowed_seen.items() if n > ALLOWED[k]}
    assert not extra, f"more allowed literals than the allow-list counts (a table name put back?): {extra}"
    stale = sorted(set(ALLOWED) - set(allowed_seen))
    assert not stale, f"allow-list entries no longer found (remove them): {stale}"


def test_every_table_name_has_one_catalog_constant_and_is_spelled_once():
    constants = Counter(v for k, v in vars(catalog).items() if k.isupper() and isinstance(v, str) and v in NAMES)
    assert {n for n in NAMES if constants[n] != 1} == set(), "one constant per non-feed table name"
    spelled = Counter(v for _, v in _strings(ROOT / CATALOG) if v in NAMES or REF.search(v))
    wrong = {v: n for v, n in spelled.items() if v not in NAMES or n != 1} | {v: 0 for v in NAMES - set(spelled)}
    assert not wrong, f"catalog.py spells each table name once, in its constant (times spelled): {wrong}"


def test_the_scan_catches_references():
    assert _spelled("household_features") and _spelled("/gold/household_features/")
    assert _spelled("gold.cx_kpis") and _spelled("silver.ami_daily#changed_days") and _spelled("/ami_daily")
    assert _spelled("SELECT kpi FROM gold.cx_kpis WHERE segment_type = 'all'")
    assert not _spelled("build personas (gold/segments)")  # prose
    assert not _spelled("score households into gold/household_scores, from gold.cx_kpis")
    assert not _spelled("ucx_spark.gold.cx_kpis") and not _spelled("whatif_results.json")  # module, artifact file
