"""MLflow's REST API (``/api/2.0/mlflow/…``) over the event log.

Each module registers its handlers with :func:`evtrack.server.rest.protocol.api`;
:func:`endpoints` imports them all once.
"""

from __future__ import annotations

import importlib

from evtrack.server.rest.protocol import ENDPOINTS, Endpoint

_MODULES = ("experiments", "runs", "ajax", "artifacts", "registry", "logged_models")


def endpoints() -> list[Endpoint]:
    """Every registered REST endpoint."""
    for name in _MODULES:
        importlib.import_module(f"evtrack.server.rest.{name}")
    return list(ENDPOINTS)


def extra_routes(config) -> list:
    """Routes that are not JSON-in/JSON-out: the proxied artifact upload and download, and the
    artifact routes of MLflow's web UI."""
    from evtrack.server.rest import artifact_files
    from evtrack.server.rest.artifacts import proxied_artifact_routes

    return proxied_artifact_routes(config) + artifact_files.routes(config)
