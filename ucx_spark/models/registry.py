"""Model registry: ``ucx_<model>`` names, champion/challenger aliases.

A new version takes the ``champion`` alias only when it beats the current
champion *on the same validation data*: the champion is re-evaluated on the
new validation set (never compared through the metric it logged on older
data). Otherwise the new version gets ``challenger`` and the champion stays.
A champion that cannot be evaluated on the new data (its input columns are gone
from the feature table) could not score either, so the new version replaces it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_name(model: str) -> str:
    return f"ucx_{model}"


def champion_uri(model: str) -> str:
    return f"models:/{registered_name(model)}@{CHAMPION}"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    alias: str  # champion | challenger
    metric: str
    new_value: float
    champion_version: str | None  # the champion before this decision
    champion_value: float | None  # its metric on the same validation data
    reason: str


def current_champion(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _better(new: float, old: float, *, greater_is_better: bool, min_delta: float) -> bool:
    if math.isnan(new):
        return False
    if math.isnan(old):
        return True
    return new > old + min_delta if greater_is_better else new < old - min_delta


def promote(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    metric: str,
    new_value: float,
    evaluate: Callable[[str], float | None],
    greater_is_better: bool = True,
    min_delta: float = 0.0,
    baseline_value: float | None = None,
) -> Promotion:
    """Set ``champion`` or ``challenger`` on ``name`` version ``version``.

    ``evaluate(model_uri)`` scores a model version on the new version's
    validation data and returns its ``metric`` (None when it cannot be
    evaluated there). Ties keep the champion. With ``baseline_value`` (the
    plain baseline's metric on the same validation rows) a version that does
    not beat it stays challenger, whatever the champion: extra capacity that
    does not beat a linear model is fitting noise. A NaN baseline (the metric
    is undefined on so few rows, e.g. one class) cannot judge: the rule is
    skipped and the reason says so.
    """
    version = str(version)
    old = current_champion(client, name)
    old_value: float | None = None
    if old is None or old == version:
        alias, reason = CHAMPION, "first version" if old is None else "already champion"
    else:
        old_value = evaluate(f"models:/{name}/{old}")
        if old_value is None:
            alias, reason = CHAMPION, f"champion v{old} cannot be evaluated on the current features"
        elif _better(new_value, old_value, greater_is_better=greater_is_better, min_delta=min_delta):
            alias, reason = CHAMPION, f"{metric} {new_value:.4f} beats champion v{old} {old_value:.4f} on the same validation data"
        else:
            alias, reason = CHALLENGER, f"{metric} {new_value:.4f} does not beat champion v{old} {old_value:.4f} on the same validation data"
    if baseline_value is not None and math.isnan(baseline_value):
        reason += f"; the baseline's {metric} is undefined on these validation rows (too few to judge)"
    elif baseline_value is not None and not _better(new_value, baseline_value, greater_is_better=greater_is_better,
                                                    min_delta=min_delta):
        alias = CHALLENGER
        reason = f"{metric} {new_value:.4f} does not beat the baseline's {baseline_value:.4f} on the same validation data"
    client.set_registered_model_alias(name, alias, version)
    if alias == CHAMPION:
        # a challenger alias left on the new champion would name it twice
        try:
            if str(client.get_model_version_by_alias(name, CHALLENGER).version) == version:
                client.delete_registered_model_alias(name, CHALLENGER)
        except MlflowException:
            pass
    client.set_model_version_tag(name, version, "validation_metric", metric)
    client.set_model_version_tag(name, version, f"validation_{metric}", f"{new_value:.6f}")
    if baseline_value is not None:
        client.set_model_version_tag(name, version, f"baseline_{metric}_same_data", f"{baseline_value:.6f}")
    if old_value is not None:
        client.set_model_version_tag(name, version, f"champion_v{old}_{metric}_same_data", f"{old_value:.6f}")
    client.set_model_version_tag(name, version, "promotion", f"{alias}: {reason}")
    return Promotion(name, version, alias, metric, new_value, old, old_value, reason)


def prepare_tracking(tracking_uri: str, experiment: str, *, artifact_root: str | Path | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (also the registry) and return the experiment id.

    A sqlite store gets its folder created; a new experiment's artifacts go to
    ``artifact_root/<experiment>`` when given (never ./mlruns of the working directory).
    """
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = str(found.experiment_id)
    else:
        location = None
        if artifact_root is not None:
            location = (Path(artifact_root).resolve() / experiment).as_uri()
        experiment_id = str(client.create_experiment(experiment, artifact_location=location))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def default_artifact_root(tracking_uri: str) -> Path | None:
    """Artifacts beside a sqlite store (``<dir of mlflow.db>/artifacts``); None for a server,
    which decides (``--artifacts-destination``)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///"):]).resolve().parent / "artifacts"
    return None
