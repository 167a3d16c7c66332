"""Synthetic utility: a contract-conformant landing zone with planted effects and deliberate defects.

``generate_utility(spark, out_dir, households=..., months=...)`` writes every feed
of contract v1, ``_manifest.json`` (the exact expected outcome of ingesting it)
and ``_truth/`` (the latent per-account truth the models should recover).
"""

from __future__ import annotations

from ucx_spark.generate.utility import generate_utility


def print_feed_counts(manifest: dict) -> None:
    """The generated landing zone's files and rows per feed (and the files planted to be rejected)."""
    print(f"{'feed':<12} {'files':>5} {'landed rows':>12}")
    total = 0
    for feed, info in sorted(manifest["feeds"].items()):
        total += int(info["landed_rows"])
        print(f"{feed:<12} {len(info['files']):>5} {info['landed_rows']:>12,}")
    print(f"{'total':<12} {'':>5} {total:>12,}")
    rejected = manifest.get("rejected_files", [])
    if rejected:
        print(f"{len(rejected)} file(s) planted to be rejected: " + ", ".join(r["file"] for r in rejected))


__all__ = ["generate_utility", "print_feed_counts"]
