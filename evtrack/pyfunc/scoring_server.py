"""The REST scoring server behind ``evtrack models serve``, with MLflow's contract.

Routes::

    GET  /ping, /health   200 when the model is loaded; 404 (with the reason) when it failed to load
    GET  /version         the evtrack version
    POST /invocations     JSON (dataframe_split | dataframe_records | instances | inputs, + params)
                          or text/csv  ->  {"predictions": ...}

Errors are JSON ``{"error_code", "message"}``: 400 for a bad body or an input
that does not fit the signature (the message names the column), 415 for an
unsupported content type, 503 from /invocations when the model did not load.
Starlette and uvicorn come with ``pip install "evtrack[serve]"``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import traceback
from typing import Any

from evtrack.errors import EvtrackError, InvalidParameterError

MODEL_URI_ENV = "EVTRACK_SERVING_MODEL_URI"
TRACKING_URI_ENV = "EVTRACK_TRACKING_URI"
_log = logging.getLogger("evtrack.serving")


def _require_serving_packages() -> None:
    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise InvalidParameterError(
            f'Serving models needs starlette and uvicorn ({", ".join(missing)} missing): pip install "evtrack[serve]"'
        )


def _error(status: int, error_code: str, message: str) -> Any:
    from starlette.responses import Response

    return Response(
        json.dumps({"error_code": error_code, "message": message}), status_code=status, media_type="application/json"
    )


class _LoadedModel:
    """The served model, or why it could not be loaded."""

    def __init__(self, model_uri: str | None, model: Any = None, tracking_uri: str | None = None) -> None:
        self.model = model
        self.error: str | None = None
        if model is None and model_uri is not None:
            try:
                from evtrack.pyfunc import load_model

                self.model = load_model(model_uri, tracking_uri=tracking_uri)
            except Exception as exc:  # noqa: BLE001 - reported by /ping and /invocations
                self.error = f"Failed to load the model from {model_uri}: {type(exc).__name__}: {exc}"
                _log.error("%s", self.error)

    @property
    def input_schema(self) -> Any:
        return self.model.metadata.get_input_schema() if self.model is not None else None


def invocations(loaded: _LoadedModel, body: bytes, content_type: str | None) -> tuple[int, str, str]:
    """``(status, body, media type)`` for one scoring request (synchronous: run it in a thread)."""
    from evtrack.models.serving_io import UnsupportedContentTypeError, parse_request, predictions_json

    def err(status: int, code: str, message: str) -> tuple[int, str, str]:
        return status, json.dumps({"error_code": code, "message": message}), "application/json"

    if loaded.model is None:
        return err(503, "TEMPORARILY_UNAVAILABLE", loaded.error or "No model is loaded")
    try:
        data, params = parse_request(body, content_type, loaded.input_schema)
    except UnsupportedContentTypeError as exc:
        return 415, exc.message, "text/plain"
    except EvtrackError as exc:
        return err(400, exc.error_code, exc.message)
    try:
        predictions = loaded.model.predict(data, params=params)
    except EvtrackError as exc:
        return err(400, exc.error_code, f"Failed to predict: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - the model's own failure, reported like MLflow does
        _log.debug("%s", traceback.format_exc())
        return err(
            400,
            "BAD_REQUEST",
            "Encountered an unexpected error while evaluating the model. Verify that the input is "
            f"compatible with the model for inference. Error: {type(exc).__name__}: {exc}",
        )
    try:
        return 200, predictions_json(predictions), "application/json"
    except (TypeError, ValueError) as exc:
        return err(500, "INTERNAL_ERROR", f"The model's predictions cannot be written as JSON: {exc}")


def build_app(model_uri: str | None = None, model: Any = None, tracking_uri: str | None = None) -> Any:
    """The Starlette app serving a model (loaded here from ``model_uri`` unless ``model`` is given)."""
    _require_serving_packages()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from evtrack.models.model import installed_evtrack_version

    loaded = _LoadedModel(model_uri, model, tracking_uri)

    async def ping(request: Request) -> Response:
        if loaded.model is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", loaded.error or "No model is loaded")
        return Response("\n", status_code=200, media_type="application/json")

    async def version(request: Request) -> Response:
        return PlainTextResponse(installed_evtrack_version())

    async def invoke(request: Request) -> Response:
        body = await request.body()
        status, text, media = await run_in_threadpool(invocations, loaded, body, request.headers.get("content-type"))
        return Response(text, status_code=status, media_type=media)

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", invoke, methods=["POST"]),
        ]
    )
    app.state.loaded = loaded
    return app


def app_from_env() -> Any:
    """App factory for uvicorn workers: the model URI comes from ``EVTRACK_SERVING_MODEL_URI``."""
    return build_app(os.environ.get(MODEL_URI_ENV), tracking_uri=os.environ.get(TRACKING_URI_ENV) or None)


def serve(
    model_uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1, tracking_uri: str | None = None
) -> None:
    """Serve a model until interrupted (blocking)."""
    _require_serving_packages()
    import uvicorn

    if workers > 1:
        os.environ[MODEL_URI_ENV] = model_uri
        if tracking_uri:
            os.environ[TRACKING_URI_ENV] = tracking_uri
        uvicorn.run(
            "evtrack.pyfunc.scoring_server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
        return
    uvicorn.run(build_app(model_uri, tracking_uri=tracking_uri), host=host, port=port, log_level="info")
