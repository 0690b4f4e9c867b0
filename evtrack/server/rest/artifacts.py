"""MLflow's artifact endpoints: ``artifacts/list`` and the proxied artifact service.

With ``serve_artifacts`` on, MLflow's client reaches artifacts through the server
(``mlflow-artifacts:/…`` URIs) at ``/api/2.0/mlflow-artifacts/artifacts/<path>``:
GET downloads a file, PUT uploads one, DELETE removes a file or directory, and
GET on ``/api/2.0/mlflow-artifacts/artifacts?path=<dir>`` lists a directory.
A proxied path names one run's or one logged model's artifacts::

    <experiment_id>/<run_id>/artifacts/<rel>                 a run's artifacts
    <experiment_id>/models/<model_id>/artifacts/<rel>        a logged model's (MLflow 3)

and is resolved to that run's (or model's) real artifact root, wherever it is
stored; anything else is refused (400 for paths that could escape, 404 for paths
naming no run or model). An upload is streamed to a temporary file (413 past
``max_artifact_bytes``) and stored through the tracking client, so a run's file
gets its ``artifact_logged`` event with size and sha256 like any other.
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import tempfile
from dataclasses import dataclass
from typing import Any

from evtrack.eventlog import validation as v
from evtrack.errors import EvtrackError, InvalidParameterError, ResourceNotFoundError
from evtrack.server.rest import convert
from evtrack.server.rest import protocol as p
from evtrack.server.rest.protocol import ApiContext, Params, api, check_access

log = logging.getLogger("evtrack.server")

ROUTE = "/api/2.0/mlflow-artifacts/artifacts"
_CHUNK = 1 << 20


# -- stored URIs as clients see them ------------------------------------------------------


def client_uri(client: Any, config: Any, stored_uri: str | None) -> str | None:
    """A stored location as reported to MLflow's client: ``mlflow-artifacts:/<path>`` when the
    server proxies artifacts and ``<path>`` (relative to the store's ``artifacts`` directory)
    resolves back to exactly this location (see :func:`resolve`); otherwise as stored."""
    if not stored_uri or not config.serve_artifacts:
        return stored_uri
    root = convert.store_artifacts_root(config)
    if not stored_uri.startswith(root + "/"):
        return stored_uri
    relative = stored_uri[len(root) + 1 :].rstrip("/")
    try:
        target = resolve(client, relative)
    except EvtrackError:
        return stored_uri
    return f"{convert.PROXIED_SCHEME}/{relative}" if target.uri == stored_uri.rstrip("/") else stored_uri


# -- proxied paths --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a proxied path points: an artifact root (stored URI) and a path inside it."""

    root: str
    rel: str
    run_id: str | None = None
    model_id: str | None = None

    @property
    def uri(self) -> str:
        """The stored URI of the file or directory."""
        return f"{self.root}/{self.rel}" if self.rel else self.root


@functools.lru_cache(maxsize=4096)
def run_root(client: Any, run_id: str) -> tuple[str, str]:
    """(experiment_id, stored artifact root) of a run; both never change once it exists."""
    state = client._run_state(run_id)
    return state.experiment_id, state.artifact_uri


@functools.lru_cache(maxsize=4096)
def model_root(client: Any, model_id: str) -> tuple[str, str]:
    """(experiment_id, stored artifact location) of a logged model, deleted or not (its files
    stay until garbage collection); both never change."""
    from evtrack.tracking.logged_models import LoggedModelStore

    model = LoggedModelStore(client.store).get(model_id, allow_deleted=True)
    return model.experiment_id, model.artifact_location


def _split(path: str | None) -> list[str]:
    """The segments of a proxied path, refused when it could leave the artifacts root."""
    path = path or ""
    if path.startswith("/") or "\\" in path or "\x00" in path or "://" in path:
        raise InvalidParameterError(f"Invalid path: '{path}'")
    parts = path.rstrip("/").split("/") if path.strip("/") else []
    if any(s in ("", ".", "..") for s in parts):
        raise InvalidParameterError(f"Invalid path: '{path}'")
    return parts


def resolve(client: Any, path: str | None) -> Target:
    """The run or logged-model artifacts a proxied path names (see the module docstring)."""
    parts = _split(path)
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == convert.ARTIFACTS_DIR:
        experiment_id, location = model_root(client, parts[2])
        if experiment_id != parts[0]:
            raise ResourceNotFoundError(f"No such artifact: '{path}'")
        return Target(location, "/".join(parts[4:]), model_id=parts[2])
    if len(parts) >= 3 and parts[2] == convert.ARTIFACTS_DIR:
        try:
            v.validate_run_id(parts[1])
            experiment_id, root = run_root(client, parts[1])
        except EvtrackError:
            raise ResourceNotFoundError(f"No such artifact: '{path}'") from None
        if experiment_id != parts[0]:
            raise ResourceNotFoundError(f"No such artifact: '{path}'")
        return Target(root, "/".join(parts[3:]), run_id=parts[1])
    raise ResourceNotFoundError(
        f"No such artifact: '{path}'. Proxied artifact paths are "
        "'<experiment_id>/<run_id>/artifacts/<path>' or '<experiment_id>/models/<model_id>/artifacts/<path>'"
    )


def _artifact_store(uri: str):
    from evtrack.tracking.artifacts import artifact_store

    return artifact_store(uri)


def list_files(target: Target) -> list[dict[str, Any]]:
    """The entries directly under a target directory as MLflow's FileInfo JSON (paths relative
    to the listed directory); a file or a missing directory lists nothing."""
    store = _artifact_store(target.root)
    prefix = f"{target.rel}/" if target.rel else ""
    entries: dict[str, dict[str, Any]] = {}
    for info in store.list(prefix):
        head, sep, _ = info.key[len(prefix) :].partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": info.size}
    return [entries[k] for k in sorted(entries)]


# -- artifacts/list -------------------------------------------------------------------------


@api("artifacts/list", methods=("GET",))
def list_artifacts(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """A run's artifacts directly under ``path`` → ``{"root_uri", "files"}`` (one page: all of them)."""
    run_id = params.str("run_id") or params.str("run_uuid") or params.str("run_id", required=True)
    path = params.str("path")
    if path:
        try:
            v.validate_artifact_path(path)
        except InvalidParameterError:
            raise InvalidParameterError("Invalid path") from None
    run = ctx.client.get_run(run_id)
    files = []
    for info in ctx.client.list_artifacts(run_id, path or None):
        entry: dict[str, Any] = {"path": info.path, "is_dir": info.is_dir}
        if info.file_size is not None:
            entry["file_size"] = info.file_size
        files.append(entry)
    root = convert.client_artifact_uri(ctx.config, run.info.artifact_uri, run.info.experiment_id, run_id)
    out: dict[str, Any] = {"root_uri": root}
    if files:
        out["files"] = files
    return out


# -- the proxied artifact service (Starlette endpoints) ----------------------------------------


def _client(request) -> Any:
    return request.app.state.client


async def _guarded(request, write: bool, handler):
    try:
        check_access(request, write=write)
        return await handler(request)
    except EvtrackError as exc:
        return p.error_response(exc)
    except Exception:  # one clear 500, the traceback goes to the server log
        log.exception("evtrack server: unexpected error in %s %s", request.method, request.url.path)
        return p.error_response(EvtrackError(f"Internal error while handling {request.url.path}; see the server log"))


def _download_response(target: Target):
    """The file at a target streamed as an attachment (a directory: 400, a missing file: 404)."""
    import mimetypes
    import urllib.parse
    from email.utils import formatdate

    from starlette.responses import StreamingResponse

    from evtrack.store.base import open_chunks

    store = _artifact_store(target.root)
    info = store.head(target.rel) if target.rel else None
    if info is None:
        if target.rel and any(True for _ in store.list(target.rel + "/")):
            raise InvalidParameterError(f"Artifact path refers to a directory, not a file: '{target.rel}'")
        raise ResourceNotFoundError(f"No such artifact: '{target.rel}'")
    name = posixpath.basename(target.rel)
    quoted = urllib.parse.quote(name)  # a plain name as is, any other percent-encoded (RFC 6266)
    disposition = f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": disposition,
        "Content-Length": str(info.size),
        "Last-Modified": formatdate(info.mtime, usegmt=True),
    }
    media_type = mimetypes.guess_type(name)[0] or "text/plain"
    return StreamingResponse(open_chunks(store, target.rel, _CHUNK), media_type=media_type, headers=headers)


async def _download(request):
    from starlette.concurrency import run_in_threadpool

    path = request.path_params["path"]
    target = await run_in_threadpool(resolve, _client(request), path)
    return await run_in_threadpool(_download_response, target)


async def _receive_to_file(request, limit: int, dst: str) -> None:
    """Stream the request body into ``dst``; 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise p.RequestTooLargeError(
            f"Artifact of {int(declared):,} bytes is over the server's limit of {limit:,} bytes"
        )
    import anyio

    size, buffer = 0, bytearray()
    async with await anyio.open_file(dst, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise p.RequestTooLargeError(f"Artifact is over the server's limit of {limit:,} bytes")
            buffer += chunk
            if len(buffer) >= _CHUNK:
                await fh.write(bytes(buffer))
                buffer.clear()
        await fh.write(bytes(buffer))


def _store_upload(client: Any, target: Target, local: str) -> None:
    if target.run_id is not None:
        client._upload(target.run_id, local, target.rel)  # records artifact_logged (size, sha256)
        client.flush()
    else:
        _artifact_store(target.root).put_file(target.rel, local)


async def _upload(request):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    client, config = _client(request), request.app.state.config
    target = await run_in_threadpool(resolve, client, request.path_params["path"])
    if not target.rel:
        raise InvalidParameterError("An upload must name a file inside the artifacts directory")
    v.validate_artifact_path(target.rel)
    with tempfile.TemporaryDirectory(prefix="evtrack-upload-") as tmp:
        local = os.path.join(tmp, posixpath.basename(target.rel))
        await _receive_to_file(request, config.max_artifact_bytes, local)
        await run_in_threadpool(_store_upload, client, target, local)
    return Response(status_code=200)


def _delete_target(client: Any, target: Target) -> None:
    """Delete a file or a directory; a run's deletions are recorded as events first."""
    store = _artifact_store(target.root)
    if target.rel and store.head(target.rel) is not None:
        keys = [target.rel]
    else:
        prefix = f"{target.rel}/" if target.rel else ""
        keys = [info.key for info in store.list(prefix)]
    if target.run_id is not None and keys:
        client._record_artifacts_deleted(target.run_id, keys)
    for key in keys:
        store.delete(key)


async def _delete(request):
    from starlette.concurrency import run_in_threadpool

    client = _client(request)
    target = await run_in_threadpool(resolve, client, request.path_params["path"])
    await run_in_threadpool(_delete_target, client, target)
    return p.json_response({})


async def _list(request):
    from starlette.concurrency import run_in_threadpool

    target = await run_in_threadpool(resolve, _client(request), request.query_params.get("path"))
    files = await run_in_threadpool(list_files, target)
    return p.json_response({"files": files} if files else {})


def proxied_artifact_routes(config) -> list:
    """The routes of MLflow's proxied artifact service (none unless ``serve_artifacts``)."""
    if not config.serve_artifacts:
        return []
    from starlette.routing import Route

    def endpoint(handler, write: bool):
        async def call(request):
            return await _guarded(request, write, handler)

        return call

    return [
        Route(ROUTE, endpoint(_list, False), methods=["GET"]),
        Route(ROUTE + "/{path:path}", endpoint(_download, False), methods=["GET"]),
        Route(ROUTE + "/{path:path}", endpoint(_upload, True), methods=["PUT"]),
        Route(ROUTE + "/{path:path}", endpoint(_delete, True), methods=["DELETE"]),
    ]
