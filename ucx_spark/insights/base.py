"""What every insight starts from: the scoring snapshot, the champions, the segments.

The snapshot is the latest ``as_of_date`` of gold/household_features,
restricted to accounts active that day (the same rows batch scoring scores).
Segment columns are attributes of that snapshot; a segment value that is null
is reported as ``unknown`` so no household drops out of a breakdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ucx_spark.errors import UcxError
from ucx_spark.gold.privacy import is_small_cell
from ucx_spark.models.score import MODEL_NAMES, LoadedModel, active_households, load_model

# Segment types reported by drivers and what-if (besides ``all``). The persona
# segment joins in from gold/segments when it exists.
SEGMENT_COLUMNS: tuple[str, ...] = ("customer_class", "rate_plan", "income_band", "tenure", "home_type")
ALL = "all"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Champions:
    """The champion version of each model that has one, loaded for Spark scoring."""

    models: dict[str, LoadedModel]

    @property
    def versions(self) -> dict[str, str]:
        return {name: m.version for name, m in sorted(self.models.items())}

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.models]
        if missing:
            raise LookupError(
                f"no champion for {', '.join(missing)}: run `ucx train` first (registered models ucx_<model>@champion)"
            )


def load_champions(tracking_uri: str, *, models: tuple[str, ...] = MODEL_NAMES) -> Champions:
    """Champions of ``models`` from the MLflow registry at ``tracking_uri`` (missing ones are left out)."""
    import mlflow

    from ucx_spark.models import registry

    require_store(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    loaded: dict[str, LoadedModel] = {}
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        for name in models:
            reg_name = registry.registered_name(name)
            version = registry.current_champion(client, reg_name)
            if version is not None:
                loaded[name] = load_model(f"models:/{reg_name}/{version}", model_name=name, version=version)
    except Exception as exc:  # noqa: BLE001 - any store failure becomes one clear error; nothing was written
        raise store_error(tracking_uri, exc) from exc
    return Champions(loaded)


def require_store(tracking_uri: str) -> None:
    """A local MLflow store that is not there is an error, not an empty store created on the fly
    (scoring from it would find no model and say something less useful)."""
    path = None
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
    elif tracking_uri.startswith("file:"):
        path = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
    elif "://" not in tracking_uri:
        path = Path(tracking_uri)
    if path is not None and not path.exists():
        raise UcxError(f"MLflow tracking store {tracking_uri} does not exist ({path}): run `ucx train` first, or point "
                       "mlflow.tracking_uri (UCX_MLFLOW_TRACKING_URI) at the store the models were trained into")


def store_error(tracking_uri: str, exc: BaseException) -> UcxError:
    """The MLflow store failed while models were read: say which store and what to do."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:400]
    if "locked" in text.lower():
        hint = "another process holds a lock on it (a training run or a copy in progress): retry when it is done"
    elif tracking_uri.startswith(("http://", "https://")):
        hint = "is the MLflow server running and reachable?"
    else:
        hint = "check that the store is readable and not damaged"
    return UcxError(f"MLflow tracking store {tracking_uri} could not be read ({text}): {hint}. Nothing was written.")


def snapshot(features_df: DataFrame, accounts_df: DataFrame | None) -> DataFrame:
    """Feature rows of the latest as_of_date for accounts active that day (one per household)."""
    return active_households(features_df, accounts_df)


def segment_value(column: str) -> Column:
    """The segment value of ``column`` as a string, ``unknown`` when null."""
    return F.coalesce(F.col(column).cast("string"), F.lit(UNKNOWN))


def with_segments(df: DataFrame, *, columns: tuple[str, ...] = SEGMENT_COLUMNS) -> DataFrame:
    """One row per (input row, segment): adds ``segment_type`` and ``segment_value``,
    ``all``/``all`` first, then each of ``columns`` present in ``df``."""
    present = [c for c in columns if c in df.columns]
    pairs = [F.struct(F.lit(ALL).alias("t"), F.lit(ALL).alias("v"))] + [
        F.struct(F.lit(c).alias("t"), segment_value(c).alias("v")) for c in present
    ]
    return (
        df.withColumn("_seg", F.explode(F.array(*pairs)))
        .withColumn("segment_type", F.col("_seg.t"))
        .withColumn("segment_value", F.col("_seg.v"))
        .drop("_seg")
    )


def suppress(df: DataFrame, *, value_cols: list[str], n_col: str = "n", min_households: int) -> DataFrame:
    """Null every column of ``value_cols`` where ``n_col`` < ``min_households``; adds ``is_suppressed``."""
    small = is_small_cell(F.col(n_col), min_households=min_households)
    out = df
    for c in value_cols:
        out = out.withColumn(c, F.when(~small, F.col(c)))
    return out.withColumn("is_suppressed", small)
