"""MLflow's own package on evtrack's event log: tracking and model-registry store plugins.

MLflow finds third-party stores through the entry point groups ``mlflow.tracking_store``
and ``mlflow.model_registry_store``; ``pyproject.toml`` registers the two builders below (named apart from the
modules ``tracking_store`` and ``registry_store``, which would shadow them once imported)
for the URI schemes ``evtrack`` and ``evtrack+s3`` (see :mod:`evtrack.mlflow_plugin.uris`
for the forms). With ``pip install "evtrack[mlflow]"``, unchanged ``import mlflow`` code —
autologging, every flavor's ``log_model``, the registry, ``mlflow server`` and its UI —
writes evtrack's events::

    mlflow.set_tracking_uri("evtrack+s3://ml-bucket/tracking")
    mlflow server --backend-store-uri evtrack:///srv/tracking

MLflow is imported only when MLflow asks for a store, never by ``import evtrack``.
"""

from __future__ import annotations

from typing import Any


def make_tracking_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    """MLflow's tracking store for an ``evtrack:`` or ``evtrack+s3:`` URI (the entry point's builder)."""
    from evtrack.mlflow_plugin.tracking_store import EvtrackTrackingStore

    return EvtrackTrackingStore(store_uri, artifact_uri)


def make_registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """MLflow's model-registry store for an ``evtrack:`` or ``evtrack+s3:`` URI (the entry point's builder)."""
    from evtrack.mlflow_plugin.registry_store import EvtrackRegistryStore

    return EvtrackRegistryStore(store_uri, tracking_uri)
