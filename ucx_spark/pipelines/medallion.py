"""The whole medallion in one call: landing -> bronze -> silver -> gold.

Each step is idempotent and crash-safe on its own (see the step modules), so
this orchestration is a plain sequence: a rerun after any failure or kill
picks up where the committed Delta versions left off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from ucx_spark.config import Config
from ucx_spark.progress import say, step


@dataclass
class MedallionResult:
    run_id: str
    steps: dict[str, Any] = field(default_factory=dict)
    accounting: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"run {self.run_id}"]
        for name, result in self.steps.items():
            text = result.summary() if hasattr(result, "summary") else str(result)
            lines.append(f"{name}: {text}")
        if self.accounting:
            lines.append(f"{'feed':<12} {'landed':>10} {'current':>10} {'superseded':>10} {'quarantined':>11}")
            for row in self.accounting:
                lines.append(
                    f"{row['feed']:<12} {row['landed']:>10,} {row['current']:>10,} "
                    f"{row['superseded']:>10,} {row['quarantined']:>11,}"
                )
        return "\n".join(lines)


def run(
    spark: SparkSession,
    *,
    cfg: Config,
    pseudonym_key: bytes,
    run_id: str,
    gates: bool = True,
) -> MedallionResult:
    from ucx_spark.pipelines import accounting, bronze, gold, silver

    landing, warehouse = cfg.paths.landing, cfg.paths.warehouse
    result = MedallionResult(run_id=run_id)
    with step("bronze: landing -> bronze"):
        result.steps["bronze"] = bronze.run(spark, landing=landing, warehouse=warehouse, run_id=run_id)
    with step("silver: bronze -> silver"):
        result.steps["silver"] = silver.run(
            spark, warehouse=warehouse, run_id=run_id, time_zone=cfg.utility.time_zone, pseudonym_key=pseudonym_key
        )
    with step("accounting: landed = current + superseded + quarantined"):
        result.accounting = accounting.record(spark, warehouse=warehouse, run_id=run_id)
    with step("gold: silver -> gold"):
        result.steps["gold"] = gold.run(
            spark,
            warehouse=warehouse,
            time_zone=cfg.utility.time_zone,
            min_households=cfg.privacy.min_households,
            max_household_energy_share=cfg.privacy.max_household_energy_share,
            run_id=run_id,
        )
    say(f"pipeline run {run_id} complete")
    return result
