"""The ASGI application of ``evtrack server`` / ``evtrack ui``: REST API, web UI, static files.

Request flow::

    uvicorn ─▶ Admission ─▶ Auth (optional) ─▶ route (bodies read through read_body: size-limited)
                                                ├─ /api/2.0/mlflow/…            REST handlers (rest/)
                                                ├─ /api/2.0/mlflow-artifacts/…  proxied artifacts
                                                ├─ /health, /version
                                                └─ /, /experiments/…, /runs/…   UI pages (ui/)
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from evtrack.errors import EvtrackError
from evtrack.server.auth import Authenticator
from evtrack.server.config import ServerConfig
from evtrack.version import __version__
from evtrack.server.rest import protocol as p
from evtrack.server.rest.protocol import check_access

log = logging.getLogger("evtrack.server")

ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts/"
# Paths anyone may read, even with authentication on (load balancers probe them).
PUBLIC_PATHS = frozenset({"/health", "/version"})


def _api_endpoint(ep: p.Endpoint):
    from starlette.concurrency import run_in_threadpool

    def call(ctx: p.ApiContext, params: p.Params) -> Any:
        result = ep.fn(ctx, params)
        if ep.write:
            ctx.client.flush()  # acknowledged means stored; concurrent requests share the flush
        return result

    async def endpoint(request):
        state = request.app.state
        try:
            principal = check_access(request, write=ep.write)
            if request.method == "GET":
                data = p.query_params(request)
            else:
                body = await p.read_body(request, state.config.max_request_bytes)
                if body.strip() and not _is_json(request):
                    raise EvtrackError("Requests with a body must send Content-Type: application/json", "BAD_REQUEST")
                data = p.parse_json_body(body)
            data.update(request.path_params)  # e.g. logged-models/{model_id}
            ctx = p.ApiContext(
                state.client, state.config, principal.name if principal else None, str(request.base_url).rstrip("/")
            )
            result = await run_in_threadpool(call, ctx, p.Params(data))
            return result if _is_response(result) else p.json_response(result)
        except EvtrackError as exc:
            return p.error_response(exc)
        except Exception:  # noqa: BLE001 - one clear 500, the traceback goes to the server log
            log.exception("evtrack server: unexpected error in %s %s", request.method, request.url.path)
            return p.error_response(
                EvtrackError(f"Internal error while handling {request.url.path}; see the server log")
            )

    return endpoint


def _is_json(request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _is_response(value: Any) -> bool:
    from starlette.responses import Response

    return isinstance(value, Response)


class AuthMiddleware:
    """Answers 401 unless the request carries valid credentials (when any are configured)."""

    def __init__(self, app, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.authenticator.enabled or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        principal = self.authenticator.authenticate(raw.decode("latin-1") if raw else None)
        if principal is None:
            await p.send_error(
                send,
                401,
                "UNAUTHENTICATED",
                "You are not authenticated. Please see the evtrack "
                "server docs on authentication (basic credentials or a bearer token).",
                ((b"www-authenticate", b'Basic realm="evtrack"'),),
            )
            return
        scope["evtrack.principal"] = principal
        await self.app(scope, receive, send)


def build_app(config: ServerConfig):
    """The Starlette application serving one tracking store."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from evtrack.server import rest, ui
    from evtrack.server.background import PeriodicCompaction, warm_up
    from evtrack.server.ui.render import compile_templates
    from evtrack.client import EvtrackClient

    authenticator = Authenticator.load(config.auth_file)
    client = EvtrackClient(config.tracking_uri)
    # another worker or process may delete a run this worker is writing to: re-check within this
    client._backend.writable_ttl = config.write_check_ttl

    def health(request):
        return PlainTextResponse("OK")

    def version(request):
        return PlainTextResponse(__version__)

    routes = [Route("/health", health), Route("/version", version)]
    for ep in rest.endpoints():
        routes.append(Route(ep.path, _api_endpoint(ep), methods=list(ep.methods)))
        if ep.path.startswith("/api/2.0/mlflow/"):  # MLflow's web UI calls the same handlers here
            routes.append(Route("/ajax-api" + ep.path[4:], _api_endpoint(ep), methods=list(ep.methods)))
    routes += rest.extra_routes(config)
    routes += ui.routes()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        compaction = PeriodicCompaction(client.store, config.compact_every)
        compaction.start()
        warm_up(client, compile_templates)
        try:
            yield
        finally:
            compaction.stop()
            client.flush()

    from evtrack.server.admission import AdmissionMiddleware

    middleware = [
        Middleware(AdmissionMiddleware, limit=config.max_concurrent_requests),
        Middleware(AuthMiddleware, authenticator=authenticator),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.config = config
    app.state.client = client
    app.state.auth = authenticator
    return app


def app_from_env():
    """App factory for uvicorn worker processes (settings from ``EVTRACK_SERVER_CONFIG``)."""
    return build_app(ServerConfig.from_env())


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    Authenticator.load(config.auth_file)  # a bad auth file fails here, once, with a clear message
    if workers > 1:
        config.to_env()
        uvicorn.run(
            "evtrack.server.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info"
        )
        return
    uvicorn.run(build_app(config), host=host, port=port, log_level="info")
