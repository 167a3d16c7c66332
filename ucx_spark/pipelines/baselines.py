"""`ucx baselines`: why bills move -> gold/usage_baselines and gold/bill_explanations
(insights/baselines.py); `ucx explain-bill`: the sentence for one household's bill.

Reads gold/meter_daily_usage, silver/accounts (the weather station of each household),
silver/weather and silver/bills; fits every household's daily degree-day model once (on the
executors), gates both tables like every gold table and replaces them. ``slope_recovery``
judges the fitted slopes against what a generated utility planted (``_truth/households.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ucx_spark.catalog import BILL_EXPLANATIONS, METER_DAILY_USAGE, USAGE_BASELINES
from ucx_spark.errors import UcxError
from ucx_spark.gold.household_features import daily_temperatures
from ucx_spark.gold.privacy import assert_no_pii
from ucx_spark.insights import baselines as B
from ucx_spark.io.delta import overwrite_table, read_optional
from ucx_spark.quality import publish_if_passed


@dataclass
class BaselinesResult:
    run_id: str
    paths: dict[str, str]
    households: int
    by_model: dict[str, int] = field(default_factory=dict)
    sufficient: int = 0
    median_cvrmse: float | None = None
    bills: int = 0
    bills_explained: int = 0

    def summary(self) -> str:
        models = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_model.items(), key=lambda kv: -kv[1]))
        cv = "n/a" if self.median_cvrmse is None else f"{self.median_cvrmse:.3f}"
        return "\n".join([
            f"usage baselines -> {self.paths.get(USAGE_BASELINES, '-')}: {self.households:,} households "
            f"({self.sufficient:,} with a sufficient year); models: {models}; median CV(RMSE) {cv}",
            f"bill explanations -> {self.paths.get(BILL_EXPLANATIONS, '-')}: {self.bills:,} bills, "
            f"{self.bills_explained:,} against the same period a year earlier",
        ])


def _inputs(spark: SparkSession, warehouse: str) -> dict[str, DataFrame]:
    tables = {"usage": ("gold", METER_DAILY_USAGE), "accounts": ("silver", "accounts"),
              "weather": ("silver", "weather"), "bills": ("silver", "bills")}
    out = {name: read_optional(spark, warehouse, layer, table) for name, (layer, table) in tables.items()}
    missing = [f"{layer}/{table}" for name, (layer, table) in tables.items() if out[name] is None]
    if missing:
        raise UcxError(f"{', '.join(missing)} missing in {warehouse}: run `ucx pipeline` first")
    return out  # type: ignore[return-value]


def run(spark: SparkSession, *, warehouse: str, run_id: str, time_zone: str) -> BaselinesResult:
    """Both tables rebuilt now, as ``ucx pipeline``'s gold step builds them: the baselines through
    the last complete month of gold/meter_daily_usage (``insights.baselines.baseline_through``),
    every bill explained against them."""
    src = _inputs(spark, warehouse)
    last = src["usage"].agg(F.max("local_date").alias("d")).first()
    if last is None or last["d"] is None:
        raise UcxError(f"gold/{METER_DAILY_USAGE} in {warehouse} has no day: run `ucx pipeline` on AMI reads first")
    through = B.baseline_through(last["d"])
    created_at = F.lit(datetime.now(UTC).replace(microsecond=0)).cast("timestamp")
    temps = daily_temperatures(src["weather"], time_zone=time_zone).persist()
    fits = B.usage_baselines(src["usage"], src["accounts"], temps, through=through).persist()
    paths: dict[str, str] = {}
    try:
        baselines_df = fits.withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at)
        publish_if_passed(spark, assert_no_pii(baselines_df, table=USAGE_BASELINES),
                          lambda ok: paths.__setitem__(USAGE_BASELINES, overwrite_table(ok, warehouse, "gold", USAGE_BASELINES)),
                          layer="gold", table=USAGE_BASELINES, run_id=run_id, warehouse=warehouse)
        explained_df = (B.bill_explanations(src["bills"], fits, temps)
                        .withColumn("run_id", F.lit(run_id)).withColumn("created_at", created_at))
        publish_if_passed(spark, assert_no_pii(explained_df, table=BILL_EXPLANATIONS),
                          lambda ok: paths.__setitem__(BILL_EXPLANATIONS, overwrite_table(ok, warehouse, "gold", BILL_EXPLANATIONS)),
                          layer="gold", table=BILL_EXPLANATIONS, run_id=run_id, warehouse=warehouse)
        by_model = fits.groupBy("model_type").agg(
            F.count(F.lit(1)).alias("n"), F.sum(F.col("data_sufficient").cast("int")).alias("ok")).collect()  # <= 5 rows
        cv = fits.agg(F.percentile_approx("cvrmse", 0.5).alias("cv")).first()
    finally:
        fits.unpersist()
        temps.unpersist()
    bills = read_optional(spark, warehouse, "gold", BILL_EXPLANATIONS)
    counts = (bills.agg(F.count(F.lit(1)).alias("n"), F.count("rate_usd").alias("x")).first()
              if bills is not None else None)
    return BaselinesResult(
        run_id=run_id, paths=paths, households=sum(int(r["n"]) for r in by_model),
        by_model={r["model_type"]: int(r["n"]) for r in by_model}, sufficient=sum(int(r["ok"] or 0) for r in by_model),
        median_cvrmse=None if cv is None else cv["cv"],
        bills=0 if counts is None else int(counts["n"]), bills_explained=0 if counts is None else int(counts["x"]),
    )


@dataclass
class BillExplanation:
    household_id: str
    sentences: list[str]

    def summary(self) -> str:
        return "\n".join([f"household {self.household_id}:", *(f"  {s}" for s in self.sentences)])


def explain_bill(spark: SparkSession, *, warehouse: str, household_id: str, bills: int = 1) -> BillExplanation:
    """The last ``bills`` bills of a household (its pseudonymous id), newest first, as sentences."""
    table = read_optional(spark, warehouse, "gold", BILL_EXPLANATIONS)
    if table is None:
        raise UcxError(f"gold/{BILL_EXPLANATIONS} missing in {warehouse}: run `ucx baselines` first")
    rows = (table.filter(F.col("household_id") == household_id)
            .orderBy(F.desc("period_start")).limit(bills).collect())  # at most ``bills`` rows
    if not rows:
        raise UcxError(f"no bill of household {household_id} in gold/{BILL_EXPLANATIONS}: "
                       "household ids are the pseudonyms of gold (e.g. gold/household_scores)")
    return BillExplanation(household_id, [B.explain_sentence(r.asDict()) for r in rows])


@dataclass(frozen=True)
class SlopeRecovery:
    """Fitted slopes against the planted ones of a generated utility, over households with a
    sufficient year, no solar and no EV (their load has parts no weather model describes), whose
    model has the slope: the median relative error and the share within ``tolerance``."""

    households: int
    heating_households: int
    heating_median_error: float | None
    heating_within: float | None
    cooling_households: int
    cooling_median_error: float | None
    cooling_within: float | None
    tolerance: float


def slope_recovery(spark: SparkSession, warehouse: str, truth_dir: str | Path, *, key: bytes,
                   tolerance: float = 0.25) -> SlopeRecovery:
    import numpy as np
    import pandas as pd

    from ucx_spark.identity import pseudonym_py

    path = Path(truth_dir) / "_truth" / "households.csv"
    if not path.is_file():
        raise UcxError(f"no _truth/households.csv under {truth_dir}: a utility generated by `ucx generate` has one")
    truth = pd.read_csv(path, dtype={"account_id": str})
    if "heating_kwh_per_dd" not in truth.columns:
        raise UcxError(f"{path} has no planted slopes: generate the utility again with this version")
    truth = truth[~truth["has_solar"] & ~truth["has_ev"] & ~truth["vacant"]]
    truth = truth.assign(household_id=[pseudonym_py(a, key=key, namespace="account") for a in truth["account_id"]])
    fits = read_optional(spark, warehouse, "gold", USAGE_BASELINES)
    if fits is None:
        raise UcxError(f"gold/{USAGE_BASELINES} missing in {warehouse}: run `ucx baselines` first")
    ids = spark.createDataFrame(truth[["household_id"]])
    got = (fits.filter("data_sufficient").join(ids, "household_id")
           .select("household_id", "heating_slope_kwh", "cooling_slope_kwh").toPandas())  # one row per planted household
    joined = got.merge(truth, on="household_id")

    def judge(fitted: str, planted: str) -> tuple[int, float | None, float | None]:
        rows = joined[joined[fitted].notna()]
        if rows.empty:
            return 0, None, None
        err = np.abs(rows[fitted] / rows[planted] - 1.0)
        return len(rows), float(err.median()), float((err <= tolerance).mean())

    h = judge("heating_slope_kwh", "heating_kwh_per_dd")
    c = judge("cooling_slope_kwh", "cooling_kwh_per_dd")
    return SlopeRecovery(len(joined), h[0], h[1], h[2], c[0], c[1], c[2], tolerance)
