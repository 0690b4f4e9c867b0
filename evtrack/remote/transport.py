"""One HTTP request to an MLflow-compatible server: auth, TLS, retries, errors.

Credentials and TLS follow MLflow's client (evtrack's own name wins when both are set):

=================================  ======================================  =====================
evtrack                            MLflow                                  meaning
=================================  ======================================  =====================
EVTRACK_TRACKING_USERNAME          MLFLOW_TRACKING_USERNAME                basic auth user
EVTRACK_TRACKING_PASSWORD          MLFLOW_TRACKING_PASSWORD                basic auth password
EVTRACK_TRACKING_TOKEN             MLFLOW_TRACKING_TOKEN                   bearer token
EVTRACK_TRACKING_INSECURE_TLS      MLFLOW_TRACKING_INSECURE_TLS            ``true``: no TLS check
EVTRACK_TRACKING_SERVER_CERT_PATH  MLFLOW_TRACKING_SERVER_CERT_PATH        CA bundle to trust
EVTRACK_HTTP_REQUEST_TIMEOUT       MLFLOW_HTTP_REQUEST_TIMEOUT             seconds per request
EVTRACK_HTTP_REQUEST_MAX_RETRIES   MLFLOW_HTTP_REQUEST_MAX_RETRIES         retries of a request
=================================  ======================================  =====================

5xx, 429 and connection errors are retried with exponential backoff and full jitter;
any other error answer becomes the evtrack error class of its ``error_code`` carrying the
server's message. urllib3 (already a dependency through boto3) is imported on first use.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from typing import Any

from evtrack import settings
from evtrack.errors import (
    EvtrackError,
    InvalidParameterError,
    InvalidStateError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    StoreError,
)

API = "/api/2.0/mlflow/"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ERROR_CLASSES: dict[str, type[EvtrackError]] = {
    "RESOURCE_DOES_NOT_EXIST": ResourceNotFoundError,
    "NOT_FOUND": ResourceNotFoundError,
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExistsError,
    "INVALID_PARAMETER_VALUE": InvalidParameterError,
    "BAD_REQUEST": InvalidParameterError,
    "INVALID_STATE": InvalidStateError,
    "TEMPORARILY_UNAVAILABLE": StoreError,
}


class RemoteUnavailableError(StoreError):
    """The server could not be reached, or kept answering 5xx/429, after every retry."""


class AuthenticationError(EvtrackError):
    """The server refused the credentials (401) or the caller's role (403)."""

    error_code = "UNAUTHENTICATED"


def _setting(name: str, default: str | None = None) -> str | None:
    value = settings.get(name)
    return value if value else default


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def error_from_response(status: int, body: bytes, what: str) -> EvtrackError:
    """The evtrack error of a non-2xx answer: its ``error_code``'s class, with the server's message."""
    try:
        payload = json.loads(body)
        code, message = payload.get("error_code"), payload.get("message")
    except (ValueError, AttributeError):
        code, message = None, None
    if not message:
        text = body.decode("utf-8", "replace").strip()[:500]
        message = f"{what} answered HTTP {status}" + (f": {text}" if text else "")
    if status in (401, 403) or code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        hint = " (check EVTRACK_/MLFLOW_TRACKING_USERNAME, _PASSWORD or _TOKEN)" if status == 401 else ""
        return AuthenticationError(
            f"{what}: {message}{hint}", code or ("UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED")
        )
    cls = _ERROR_CLASSES.get(code or "", ResourceNotFoundError if status == 404 else EvtrackError)
    return cls(message, code) if code else cls(message)


class Transport:
    """Requests to one server (``base`` = the tracking URI), shared by a process's clients."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.timeout = float(_setting("EVTRACK_HTTP_REQUEST_TIMEOUT", "120") or 120)
        self.max_retries = int(_setting("EVTRACK_HTTP_REQUEST_MAX_RETRIES", "7") or 7)
        self.backoff_factor = float(_setting("EVTRACK_HTTP_REQUEST_BACKOFF_FACTOR", "0.5") or 0.5)
        self.max_backoff = 30.0
        self._pool: Any = None
        self._lock = threading.Lock()

    # -- settings -------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Auth and content headers, read from the environment at each request (as MLflow's)."""
        out = {"User-Agent": "evtrack", "Accept": "application/json"}
        token = _setting("EVTRACK_TRACKING_TOKEN")
        user, password = _setting("EVTRACK_TRACKING_USERNAME"), _setting("EVTRACK_TRACKING_PASSWORD")
        if user is not None and password is not None:
            out["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif token:
            out["Authorization"] = f"Bearer {token}"
        return out

    def pool(self) -> Any:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    import urllib3

                    insecure = _truthy(_setting("EVTRACK_TRACKING_INSECURE_TLS"))
                    cert = _setting("EVTRACK_TRACKING_SERVER_CERT_PATH")
                    if insecure and cert:
                        raise InvalidParameterError(
                            "EVTRACK_/MLFLOW_TRACKING_INSECURE_TLS and _TRACKING_SERVER_CERT_PATH cannot both be set"
                        )
                    kwargs: dict[str, Any] = {"maxsize": 8, "retries": False}
                    if self.base.startswith("https"):
                        if insecure:
                            kwargs["cert_reqs"] = "CERT_NONE"
                            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
                        else:
                            kwargs["cert_reqs"] = "CERT_REQUIRED"
                            if cert:
                                kwargs["ca_certs"] = cert
                    self._pool = urllib3.PoolManager(**kwargs)
        return self._pool

    def reset(self) -> None:
        """Forget the connection pool (after ``fork``)."""
        self._pool, self._lock = None, threading.Lock()

    # -- requests -------------------------------------------------------------

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (1, 2, …): exponential, capped, with full jitter."""
        return random.uniform(0, min(self.max_backoff, self.backoff_factor * (2 ** (attempt - 1))))

    def raw(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        retries: int | None = None,
        preload: bool = True,
    ) -> Any:
        """A urllib3 response with a 2xx status; retries 5xx/429/connection errors, raises the rest."""
        import urllib3

        retries = self.max_retries if retries is None else retries
        all_headers = {**self.headers(), **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.pool().request(
                    method,
                    url,
                    body=body,
                    headers=all_headers,
                    timeout=urllib3.Timeout(connect=min(10.0, self.timeout), read=self.timeout),
                    preload_content=preload,
                    redirect=True,
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt > retries:
                    raise RemoteUnavailableError(f"{self.base} could not be reached ({method} {url}): {exc}") from None
                time.sleep(self.delay(attempt))
                continue
            if 200 <= response.status < 300:
                return response
            data = response.data if preload else response.read()
            if response.status in RETRY_STATUSES and attempt <= retries:
                wait = self.delay(attempt)
                after = response.headers.get("Retry-After")
                if after and after.isdigit():
                    wait = max(wait, min(float(after), self.max_backoff))
                time.sleep(wait)
                continue
            error = error_from_response(response.status, data, f"{self.base}")
            if response.status in RETRY_STATUSES:
                raise RemoteUnavailableError(error.message, error.error_code)
            raise error

    def call(
        self,
        endpoint: str,
        payload: dict[str, Any] | None = None,
        *,
        method: str = "POST",
        retries: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call ``/api/2.0/mlflow/<endpoint>`` with a JSON body (POST/PATCH/DELETE) or query (GET)."""
        url = f"{self.base}{API}{endpoint}"
        body = None
        extra = dict(headers or {})
        if method == "GET":
            if payload:
                from urllib.parse import urlencode

                query = {k: v for k, v in payload.items() if v is not None}
                url += "?" + urlencode(query, doseq=True)
        else:
            body = json.dumps(payload or {}, allow_nan=True).encode()
            extra["Content-Type"] = "application/json"
        response = self.raw(method, url, body=body, headers=extra, retries=retries)
        text = response.data
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError:
            raise EvtrackError(f"{self.base} answered {endpoint} with something that is not JSON") from None
