"""The artifact routes MLflow's web UI calls outside the proxied artifact service.

    GET  /get-artifact?run_id=<id>&path=<rel>                      a run's file (``run_uuid`` too)
    GET  /model-versions/get-artifact?name=&version=&path=         a file of a registered version
    GET  /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=<rel>
    POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=<id>&path=<rel>   (body: the file, ≤ 10 MB)

Each resolves to an artifact root and a path inside it (:class:`~.artifacts.Target`) and
streams or stores the file as the proxied service does, with MLflow's parameter checks and
messages. An upload is recorded with its ``artifact_logged`` event like any other.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from typing import Any

from evtrack.eventlog import validation as v
from evtrack.errors import EvtrackError, InvalidParameterError
from evtrack.server.rest import artifacts as a

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # MLflow's limit for the UI's uploads


class BadRequestError(InvalidParameterError):
    """MLflow's ``BAD_REQUEST`` (a 400 like ``INVALID_PARAMETER_VALUE``, another code)."""

    error_code = "BAD_REQUEST"


def _safe(path: str | None) -> str:
    """A relative artifact path that cannot leave its root (MLflow's ``validate_path_is_safe``)."""
    try:
        a._split(path)
        return v.validate_artifact_path(path) or ""
    except EvtrackError:
        raise InvalidParameterError("Invalid path") from None  # MLflow's words


def _required(query: Any, name: str, message: str, error: type[EvtrackError] = InvalidParameterError) -> str:
    value = query.get(name)
    if not value:
        raise error(message)
    return value


def run_target(client: Any, query: Any) -> a.Target:
    run_id = query.get("run_id") or query.get("run_uuid")
    if not run_id:
        raise InvalidParameterError("Request must specify run_id.")
    path = _safe(_required(query, "path", "Request must specify path."))
    client.get_run(run_id)  # an unknown run is MLflow's RESOURCE_DOES_NOT_EXIST
    return a.Target(a.run_root(client, run_id)[1], path, run_id=run_id)


def version_target(client: Any, query: Any) -> a.Target:
    name = _required(query, "name", "Request must specify name.")
    version = _required(query, "version", "Request must specify version.")
    path = _safe(_required(query, "path", "Request must specify path."))
    return a.Target(client.get_model_version_download_uri(name, version).rstrip("/"), path)


def logged_model_target(client: Any, model_id: str, query: Any) -> a.Target:
    message = 'Request must include the "artifact_file_path" query parameter.'
    path = _safe(_required(query, "artifact_file_path", message, BadRequestError))
    return a.Target(a.model_root(client, model_id)[1], path, model_id=model_id)


async def _get_run_file(request):
    from starlette.concurrency import run_in_threadpool

    target = await run_in_threadpool(run_target, a._client(request), request.query_params)
    return await run_in_threadpool(a._download_response, target)


async def _get_version_file(request):
    from starlette.concurrency import run_in_threadpool

    target = await run_in_threadpool(version_target, a._client(request), request.query_params)
    return await run_in_threadpool(a._download_response, target)


async def _get_logged_model_file(request):
    from starlette.concurrency import run_in_threadpool

    model_id = request.path_params["model_id"]
    target = await run_in_threadpool(logged_model_target, a._client(request), model_id, request.query_params)
    return await run_in_threadpool(a._download_response, target)


async def _upload(request):
    from starlette.concurrency import run_in_threadpool

    client, query = a._client(request), request.query_params
    run_id = _required(query, "run_uuid", "Request must specify run_uuid.")
    path = _safe(_required(query, "path", "Request must specify path."))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise InvalidParameterError("Artifact size is too large. Max size is 10MB.")
    with tempfile.TemporaryDirectory(prefix="evtrack-upload-") as tmp:
        local = os.path.join(tmp, posixpath.basename(path) or "upload")
        try:
            await a._receive_to_file(request, MAX_UPLOAD_BYTES, local)
        except a.p.RequestTooLargeError:
            raise InvalidParameterError("Artifact size is too large. Max size is 10MB.") from None
        if os.path.getsize(local) == 0:
            raise InvalidParameterError("Request must specify data.")
        await run_in_threadpool(client.get_run, run_id)
        target = a.Target(a.run_root(client, run_id)[1], path, run_id=run_id)
        await run_in_threadpool(a._store_upload, client, target, local)
    from starlette.responses import Response

    return Response(status_code=200)  # an empty body, as MLflow's


def routes(config: Any) -> list:
    """The four routes (the three reads need artifact serving only to be useful, not to exist)."""
    from starlette.routing import Route

    def endpoint(handler, write: bool):
        async def call(request):
            return await a._guarded(request, write, handler)

        return call

    return [
        Route("/get-artifact", endpoint(_get_run_file, False), methods=["GET"]),
        Route("/model-versions/get-artifact", endpoint(_get_version_file, False), methods=["GET"]),
        Route(
            "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
            endpoint(_get_logged_model_file, False),
            methods=["GET"],
        ),
        Route("/ajax-api/2.0/mlflow/upload-artifact", endpoint(_upload, True), methods=["POST"]),
    ]
