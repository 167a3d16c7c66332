"""Synthetic utility: a contract-conformant landing zone with planted effects and deliberate defects.

``generate_utility(spark, out_dir, households=..., months=...)`` writes every feed
of contract v1, ``_manifest.json`` (the exact expected outcome of ingesting it)
and ``_truth/`` (the latent per-account truth the models should recover).
"""

from __future__ import annotations

from ucx_spark.generate.utility import generate_utility

__all__ = ["generate_utility"]
