"""Bronze: landed rows as strings with lineage (docs/layers.md, bronze/<feed>)."""

from __future__ import annotations

from ucx_spark.bronze.rows import BRONZE_LINEAGE, bronze_schema, missing_required

__all__ = ["BRONZE_LINEAGE", "bronze_schema", "missing_required"]
