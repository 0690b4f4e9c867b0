"""``MlflowClient`` (also ``EvtrackClient``): the tracking and the registry client in one.

MLflow has one low-level client for runs and the model registry. Here the two are
separate features — ``evtrack.tracking.client.TrackingClient`` and
``evtrack.registry.client.RegistryClient``, both built on
``evtrack.read.client_base.StoreClient`` and neither importing the other — and this
module, the composition root of the public API, combines them on one backend.
"""

from __future__ import annotations

from typing import Any

from evtrack.registry.client import RegistryClient
from evtrack.registry.remote_client import RemoteRegistryClient
from evtrack.tracking.client import TrackingClient
from evtrack.tracking.remote_client import RemoteTrackingClient


class MlflowClient(TrackingClient, RegistryClient):
    """Low-level client with the methods and signatures of MLflow's ``MlflowClient``:
    experiments, runs and artifacts (``TrackingClient``) and the model registry
    (``RegistryClient``), on the backend of one tracking URI. On an ``http(s)://`` URI it is
    the same API over MLflow's REST API (``RemoteMlflowClient``)."""

    @classmethod
    def _remote_client(cls, uri: str) -> Any:
        return RemoteMlflowClient(uri)


class RemoteMlflowClient(RemoteTrackingClient, RemoteRegistryClient):
    """``MlflowClient`` on an ``http(s)://`` tracking URI: the tracking and the registry API
    over one server's REST API (``evtrack server`` or MLflow's)."""


EvtrackClient = MlflowClient
