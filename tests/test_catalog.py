"""The table catalog (issue 23): one declaration per table, and what depends on it agrees with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ucx_spark import catalog
from ucx_spark.contract import FEEDS
from ucx_spark.pipelines import gold
from ucx_spark.quality.suites import DEFAULT_SUITE_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_docs_layers_inventory_is_generated_from_the_catalog() -> None:
    text = (ROOT / "docs" / "layers.md").read_text()
    assert catalog.render_into(text) == text, "run: python -m ucx_spark.catalog --write docs/layers.md"


def test_render_replaces_only_the_generated_section() -> None:
    text = f"before\n{catalog.BEGIN}\nstale\n{catalog.END}\nafter\n"
    out = catalog.render_into(text)
    assert out.startswith("before\n") and out.endswith("\nafter\n") and "stale" not in out
    assert "| `gold/household_features` |" in out
    with pytest.raises(ValueError, match="no generated section"):
        catalog.render_into("nothing here")


def _suite_key(path: Path) -> tuple[str, ...] | None:
    for e in yaml.safe_load(path.read_text()).get("expectations", []):
        if e.get("id") == "key_unique":
            kw = e.get("kwargs", {})
            return tuple(kw["column_list"]) if "column_list" in kw else (kw["column"],)
    return None


def test_every_suite_key_is_the_catalog_key() -> None:
    checked = 0
    for path in sorted(Path(DEFAULT_SUITE_DIR).glob("*.yaml")):
        layer, name = path.stem.split(".", 1)
        key = _suite_key(path)
        if key is None:
            continue
        assert catalog.spec(layer, name).keys == key, path.name
        checked += 1
    assert checked >= 15  # every silver feed, silver/ami_daily and the gold tables of the pipeline


def test_every_feed_has_its_three_tables_and_gold_its_inputs() -> None:
    for feed in FEEDS:
        assert catalog.spec("silver", feed).keys == tuple(FEEDS[feed].key)
        assert catalog.spec("bronze", feed).restricted and catalog.spec("quarantine", feed).restricted
    for table in gold.TABLES:
        inputs = catalog.silver_inputs(table)
        assert inputs and all(catalog.spec("silver", t) for t in inputs)
        assert not catalog.spec("gold", table).restricted
    with pytest.raises(KeyError, match="gold/nope is not a table of the catalog"):
        catalog.spec("gold", "nope")
