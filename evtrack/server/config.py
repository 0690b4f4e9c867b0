"""The settings of one tracking server, passed to every worker process."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import orjson

CONFIG_ENV = "EVTRACK_SERVER_CONFIG"

DEFAULT_MAX_REQUEST_BYTES = 16 << 20  # JSON bodies of the REST API and UI forms
DEFAULT_MAX_ARTIFACT_BYTES = 5 << 30  # one proxied artifact upload
DEFAULT_MAX_CONCURRENT_REQUESTS = 256
DEFAULT_BODY_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerConfig:
    """What ``evtrack server`` / ``evtrack ui`` were started with."""

    tracking_uri: str
    default_artifact_root: str | None = None
    serve_artifacts: bool = True
    auth_file: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    compact_every: float | None = 60.0
    sql_timeout: float | None = 30.0  # one query of the SQL page (evtrack.query.limits)
    max_concurrent_requests: int | None = DEFAULT_MAX_CONCURRENT_REQUESTS  # per process (server.admission)
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT  # seconds to receive a JSON or form body
    write_check_ttl: float = 1.0  # seconds a run is known writable before a write re-checks it

    def to_env(self) -> None:
        """Publish the settings for uvicorn worker processes (see :meth:`from_env`)."""
        os.environ[CONFIG_ENV] = orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_env(cls) -> ServerConfig:
        """The settings published by :meth:`to_env` in the parent process."""
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV} is not set: start workers with 'evtrack server'")
        return cls(**orjson.loads(raw))
