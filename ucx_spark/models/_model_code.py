"""MLflow models-from-code entry: logged with every UCX household model."""

from __future__ import annotations

from mlflow.models import set_model

from ucx_spark.models.score import HouseholdModel

set_model(HouseholdModel())
