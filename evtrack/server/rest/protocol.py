"""The REST conventions of MLflow's API: how requests are read, answered and refused.

Handlers are plain synchronous functions ``fn(ctx, params) -> dict`` registered
with :func:`api`; the wrapper reads the query string (GET) or the JSON body
(other methods), runs the handler on the thread pool, turns an
:class:`~evtrack.errors.EvtrackError` into MLflow's ``{"error_code", "message"}``
with the matching HTTP status, and for write endpoints flushes the writer before
answering, so an acknowledged write is in the store (concurrent requests share
one flush).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from evtrack.errors import EvtrackError, InvalidParameterError

log = logging.getLogger("evtrack.server")

# MLflow's mapping of error codes to HTTP statuses (mlflow/protos/databricks.proto users).
_STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "MALFORMED_REQUEST": 400,
    "INVALID_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}


def http_status(error_code: str) -> int:
    """The HTTP status MLflow answers with for an error code."""
    return _STATUS.get(error_code, 500)


class PermissionDeniedError(EvtrackError):
    """The caller is authenticated but its role may not do this (e.g. a write as read-only)."""

    error_code = "PERMISSION_DENIED"


class RequestTooLargeError(EvtrackError):
    """The request body is over the server's size limit."""

    error_code = "BAD_REQUEST"


class RequestTimeoutError(EvtrackError):
    """The client did not send its request body within the server's body timeout (answered 408)."""

    error_code = "BAD_REQUEST"


def error_body(error_code: str, message: str) -> bytes:
    """MLflow's JSON error document."""
    return orjson.dumps({"error_code": error_code, "message": message})


async def send_error(send, status: int, error_code: str, message: str, headers: tuple = ()) -> None:
    """Answer an ASGI request with MLflow's JSON error document (for middleware, before routing)."""
    body = error_body(error_code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_response(exc: EvtrackError):
    """The HTTP response for an evtrack error, as MLflow's server would answer it."""
    from starlette.responses import Response

    if isinstance(exc, (RequestTooLargeError, RequestTimeoutError)):
        status = 413 if isinstance(exc, RequestTooLargeError) else 408
    else:
        status = http_status(exc.error_code)
    return Response(error_body(exc.error_code, exc.message), status_code=status, media_type="application/json")


def json_response(payload: Any, status: int = 200):
    """A JSON response encoded with orjson (int64 fields stay JSON numbers, as MLflow's)."""
    from starlette.responses import Response

    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type="application/json"
    )


class Params:
    """The parameters of one request: the JSON body, or the query string of a GET.

    Query-string values arrive as strings (repeated keys as lists); the typed
    getters accept both, so one handler serves GET and POST.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __contains__(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def _missing(self, name: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"Missing value for required parameter '{name}'. See the API docs for more information "
            f"about request parameters."
        )

    def str(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        """A string parameter (the last one if repeated in a query string)."""
        value = self.data.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is None or (required and value == ""):
            if required:
                raise self._missing(name)
            return default
        if isinstance(value, (dict, list)):
            raise InvalidParameterError(
                f"Invalid value {orjson.dumps(value).decode()} for parameter '{name}' supplied: expected a string"
            )
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def _scalar(self, name: str, required: bool, default, convert, expected: str):
        value = self.data.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is None or value == "":
            if required:
                raise self._missing(name)
            return default
        if isinstance(value, bool):
            raise InvalidParameterError(f"Invalid value {value!r} for parameter '{name}': expected {expected}")
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"Invalid value {value!r} for parameter '{name}' supplied: expected {expected}"
            ) from None

    def int(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        """An integer parameter (int64 fields may arrive as JSON strings, as protobuf allows)."""
        return self._scalar(name, required, default, int, "an integer")

    def float(self, name: str, required: bool = False, default: float | None = None) -> float | None:
        """A double parameter; "NaN", "Infinity" and "-Infinity" as protobuf's JSON spells them."""
        return self._scalar(name, required, default, float, "a number")

    def bool(self, name: str, default: bool = False) -> bool:
        """A boolean parameter ("true"/"false" in a query string)."""
        value = self.data.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise InvalidParameterError(f"Invalid value {value!r} for parameter '{name}': expected true or false")

    def list(self, name: str) -> list[Any]:
        """A repeated parameter (a JSON array, or a query-string key given several times)."""
        value = self.data.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [value]


@dataclass
class ApiContext:
    """What a handler may use: the tracking client, the settings and the caller."""

    client: Any  # evtrack.EvtrackClient of the server's tracking URI
    config: Any  # evtrack.server.ServerConfig
    user: str | None = None
    base_url: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One REST endpoint: full path, HTTP methods, handler, and whether it writes."""

    path: str
    methods: tuple[str, ...]
    fn: Callable[[ApiContext, Params], dict]
    write: bool


ENDPOINTS: list[Endpoint] = []


def api(path: str, methods: Iterable[str] = ("POST",), write: bool = False):
    """Register a handler for ``path`` (relative to ``/api/2.0/mlflow`` unless it starts with /api)."""
    full = path if path.startswith("/api/") else f"/api/2.0/mlflow/{path.lstrip('/')}"

    def register(fn: Callable[[ApiContext, Params], dict]):
        from evtrack.server.rest import schema

        checks = {m: schema.schema_for(full, m) for m in methods}
        if any(checks.values()):

            def checked(ctx: ApiContext, params: Params) -> dict:
                query = isinstance(params.data, QueryDict)
                found = checks.get("GET" if query else next((m for m in methods if m != "GET"), "POST"))
                if found:
                    schema.check(found, params.data, query)
                return fn(ctx, params)

            checked.__doc__, checked.__name__ = fn.__doc__, fn.__name__
            ENDPOINTS.append(Endpoint(full, tuple(methods), checked, write))
        else:
            ENDPOINTS.append(Endpoint(full, tuple(methods), fn, write))
        return fn

    return register


async def read_body(request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes, and with 408 when it
    has not all arrived within the server's ``body_timeout`` (a slow client holds no worker)."""
    import asyncio

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"Request body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    config = getattr(request.app.state, "config", None)
    seconds = getattr(config, "body_timeout", None)
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLargeError(f"Request body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"The request body did not arrive within {seconds:g} s ({size:,} bytes received); "
            "the server's --body-timeout"
        ) from None
    return b"".join(chunks)


class QueryDict(dict):
    """The parameters of a GET (string values), told apart from a JSON body's."""


def query_params(request) -> dict[str, Any]:
    """A GET's query string as a dict; keys given several times become lists."""
    data: dict[str, Any] = QueryDict()
    for key, value in request.query_params.multi_items():
        if key in data:
            prior = data[key]
            data[key] = prior + [value] if isinstance(prior, list) else [prior, value]
        else:
            data[key] = value
    return data


def parse_json_body(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body (empty means no parameters)."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EvtrackError(f"Malformed JSON in request body: {exc}", "MALFORMED_REQUEST") from None
    if not isinstance(data, dict):
        raise EvtrackError("The request body must be a JSON object", "MALFORMED_REQUEST")
    return data


def check_access(request, write: bool):
    """The caller of a request, refused with PERMISSION_DENIED when it may not write."""
    principal = request.scope.get("evtrack.principal")
    if write and principal is not None and not principal.can_write:
        raise PermissionDeniedError(f"User '{principal.name}' has read-only access")
    return principal
