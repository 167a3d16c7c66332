"""Model registry: ``ucx_<model>`` names, champion/challenger aliases.

A new version takes the ``champion`` alias unless the current champion beats
it on data both can be judged on fairly (``Comparison``, supplied by training):
the same rows and split when both were trained on the same data (their logged
honest metrics), or the rows after the champion's data end, which it never saw.
When no fair comparison exists (no such rows, or the champion cannot read the
current features) the newer version replaces it and the reason says so. Ties
keep the champion. The version that is registered is already the winner of its
own run against the plain baseline (``train.py``).
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


@dataclass(frozen=True)
class Comparison:
    """The champion's and the new version's metric on the same rows, and what rows they are."""

    champion_value: float
    new_value: float
    basis: str


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    alias: str  # champion | challenger
    metric: str
    new_value: float
    champion_version: str | None  # the champion before this decision
    champion_value: float | None  # its metric on the rows of the comparison
    reason: str


def current_champion(client: MlflowClient, name: str) -> str | None:
    """The version holding the champion alias; None when the model or the alias does not exist.
    Any other failure of the store (locked, unreachable, damaged) is raised, not read as "none"."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def better(new: float, old: float, *, greater_is_better: bool, min_delta: float = 0.0) -> bool:
    """``new`` beats ``old`` (NaN never wins; anything beats NaN)."""
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
    compare: Callable[[str], Comparison | None],
    greater_is_better: bool = True,
    min_delta: float = 0.0,
) -> Promotion:
    """Set ``champion`` or ``challenger`` on ``name`` version ``version`` (see the module doc).

    ``compare(champion_version)`` returns the two versions' metric on rows both can be judged
    on, or None when there are none.
    """
    version = str(version)
    old = current_champion(client, name)
    old_value: float | None = None
    if old is None or old == version:
        alias, reason = CHAMPION, "first version" if old is None else "already champion"
    else:
        comparison = compare(old)
        if comparison is None:
            alias, reason = CHAMPION, (f"replaces champion v{old}: no rows both can be judged on fairly "
                                       "(same data, or data newer than the champion's)")
        else:
            old_value = comparison.champion_value
            new_here = comparison.new_value
            if better(new_here, old_value, greater_is_better=greater_is_better, min_delta=min_delta):
                alias = CHAMPION
                reason = f"{metric} {new_here:.4f} beats champion v{old} {old_value:.4f}, {comparison.basis}"
            else:
                alias = CHALLENGER
                reason = f"{metric} {new_here:.4f} does not beat champion v{old} {old_value:.4f}, {comparison.basis}"
    client.set_registered_model_alias(name, alias, version)
    if alias == CHAMPION:
        # a challenger alias left on the new champion would name it twice
        try:
            if str(client.get_model_version_by_alias(name, CHALLENGER).version) == version:
                client.delete_registered_model_alias(name, CHALLENGER)
        except MlflowException:
            pass
    client.set_model_version_tag(name, version, "validation_metric", metric)
    client.set_model_version_tag(name, version, f"validation_{metric}", repr(float(new_value)))  # exact: ties compare
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
