"""URIs that name things in the log — ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` —
resolved to the storage URI (path, ``file://``, ``s3://``) of what they name.

The core owns the table of schemes; each feature registers the scheme it knows when it is
imported (tracking: ``runs``, the model registry: ``models``), so a model loader
(``evtrack.models.uri``) or the registry resolves any of them without importing the others.
A resolver may answer another such URI (a version whose source is ``runs:/…``); it is
resolved in turn.
"""

from __future__ import annotations

import urllib.parse
from typing import Callable

from evtrack.errors import InvalidUriError

# (uri, tracking URI or None for the one in force) -> the URI it names
Resolver = Callable[[str, str | None], str]

_RESOLVERS: dict[str, Resolver] = {}
_MAX_HOPS = 8
_RUNS_FORM = "Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"


def register_scheme(scheme: str, resolver: Resolver) -> None:
    """Resolve URIs of ``scheme`` with ``resolver`` (once per scheme)."""
    if scheme in _RESOLVERS:
        raise RuntimeError(f"URI scheme {scheme!r} registered twice")
    _RESOLVERS[scheme] = resolver


def scheme_of(uri: str) -> str:
    """The scheme of a URI ('' for a plain path)."""
    return urllib.parse.urlparse(uri).scheme if isinstance(uri, str) else ""


def is_log_uri(uri: str) -> bool:
    """True for a URI of a registered scheme (``runs:/``, ``models:/``)."""
    return scheme_of(uri) in _RESOLVERS


def resolve(uri: str, tracking_uri: str | None = None) -> str:
    """The storage URI ``uri`` names; a URI of no registered scheme is returned as it is."""
    for _ in range(_MAX_HOPS):
        resolver = _RESOLVERS.get(scheme_of(uri))
        if resolver is None:
            return uri
        uri = resolver(uri, tracking_uri)
    raise InvalidUriError(f"The URI {uri!r} still names another after {_MAX_HOPS} resolutions")


def is_runs_uri(uri: str) -> bool:
    """True for a ``runs:/`` URI."""
    return scheme_of(uri) == "runs"


def parse_runs_uri(uri: str) -> tuple[str, str | None]:
    """(run_id, artifact path or None) of ``runs:/<run_id>/<path>``."""
    parsed = urllib.parse.urlparse(uri)
    path = parsed.path
    if parsed.scheme != "runs" or not path.startswith("/") or len(path) <= 1:
        raise InvalidUriError(f"Not a proper runs:/ URI: {uri}. {_RUNS_FORM}")
    run_id, _, rest = path[1:].partition("/")
    if not run_id:
        raise InvalidUriError(f"Not a proper runs:/ URI: {uri}. {_RUNS_FORM}")
    return run_id, (rest.strip("/") or None)
