"""``MlflowClient`` (also ``EvtrackClient``): the tracking and the registry client in one.

MLflow has one low-level client for runs and the model registry. Here the two are
separate features — ``evtrack.tracking.client.TrackingClient`` and
``evtrack.registry.client.RegistryClient``, both built on
``evtrack.read.client_base.StoreClient`` and neither importing the other — and this
module, the composition root of the public API, combines them on one backend.
"""

from __future__ import annotations

from evtrack.registry.client import RegistryClient
from evtrack.tracking.client import TrackingClient


class MlflowClient(TrackingClient, RegistryClient):
    """Low-level client with the methods and signatures of MLflow's ``MlflowClient``:
    experiments, runs and artifacts (``TrackingClient``) and the model registry
    (``RegistryClient``), on the backend of one tracking URI."""


EvtrackClient = MlflowClient
