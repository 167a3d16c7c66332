"""Pipeline step: gold/model_drivers from the champions and the scoring snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import MODEL_DRIVERS
from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights.base import load_champions
from ucx_spark.insights.drivers import model_drivers
from ucx_spark.io.delta import overwrite_table, read_table
from ucx_spark.pipelines.insights_common import read_persona_segments, read_snapshot
from ucx_spark.quality import publish_if_passed


@dataclass(frozen=True)
class DriversResult:
    run_id: str
    path: str
    models: dict[str, str]
    rows: int
    top: dict[str, list[tuple[str, float, str | None]]]

    def summary(self) -> str:
        lines = [f"gold/model_drivers: {self.rows} rows ({', '.join(f'{m} v{v}' for m, v in self.models.items())})"]
        for model, feats in self.top.items():
            shown = ", ".join(f"{f} {d or '?'} {v:.3f}" for f, v, d in feats)
            lines.append(f"  {model}: {shown}")
        return "\n".join(lines)


def run(spark: SparkSession, *, warehouse: str, tracking_uri: str, run_id: str, min_households: int) -> DriversResult:
    """Drivers of every champion, overall and by segment (personas too when gold/segments exists).

    The table is replaced as a whole: it describes the current champions on the latest snapshot.
    """
    champions = load_champions(tracking_uri)
    if not champions.models:
        raise UcxError(f"no champion model in {tracking_uri}: run `ucx train` first")
    snapshot_df, _ = read_snapshot(spark, warehouse)
    snapshot_df = snapshot_df.cache()
    personas_df = read_persona_segments(spark, warehouse)
    parts = [
        model_drivers(snapshot_df, model, segments_df=personas_df, min_households=min_households)
        for _, model in sorted(champions.models.items())
    ]
    drivers_df = parts[0]
    for part in parts[1:]:
        drivers_df = drivers_df.unionByName(part)
    computed_at = datetime.now(UTC).replace(microsecond=0)
    drivers_df = drivers_df.withColumn("run_id", F.lit(run_id)).withColumn("computed_at", F.lit(computed_at).cast("timestamp"))
    written: list[str] = []
    publish_if_passed(spark, assert_no_pii(drivers_df, table=MODEL_DRIVERS),
                      lambda df: written.append(overwrite_table(df, warehouse, "gold", MODEL_DRIVERS)),
                      layer="gold", table=MODEL_DRIVERS, run_id=run_id, warehouse=warehouse)
    path = written[0]
    snapshot_df.unpersist()
    written_df = read_table(spark, warehouse, "gold", MODEL_DRIVERS)
    top: dict[str, list[tuple[str, float, str | None]]] = {}
    for row in (
        written_df.filter((F.col("segment_type") == "all") & (F.col("rank") <= 5))
        .orderBy("model_name", "rank")
        .select("model_name", "feature", "mean_abs_shap", "direction")
        .collect()
    ):
        top.setdefault(row["model_name"], []).append((row["feature"], float(row["mean_abs_shap"]), row["direction"]))
    return DriversResult(run_id, path, champions.versions, written_df.count(), top)
