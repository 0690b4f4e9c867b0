"""Object stores: the ``ObjectStore`` protocol, its two implementations and ``open_store``."""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from typing import Callable

from evtrack.errors import InvalidUriError
from evtrack.store.base import ObjectInfo, ObjectStore
from evtrack.store.local import LocalStore

__all__ = ["ObjectInfo", "ObjectStore", "LocalStore", "artifact_store", "open_store"]

SUPPORTED_FORMS = "s3://bucket[/prefix], file:///absolute/path, or a plain filesystem path"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


def __getattr__(name: str) -> object:
    """Import ``S3Store`` (and with it boto3) only when asked for."""
    if name == "S3Store":
        from evtrack.store.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# URI prefix -> the function opening such a URI, registered by the layer that knows it
# (``evtrack.read.backend`` registers ``mlflow-artifacts:``, which needs the tracking URI in force)
_OPENERS: dict[str, Callable[[str], ObjectStore]] = {}


def register_opener(prefix: str, opener: Callable[[str], ObjectStore]) -> None:
    """Open URIs starting with ``prefix`` with ``opener`` (they are not cached by ``artifact_store``)."""
    _OPENERS[prefix] = opener


def _invalid(uri: str, why: str) -> InvalidUriError:
    return InvalidUriError(f"invalid store URI {uri!r}: {why}; expected {SUPPORTED_FORMS}")


def open_store(uri: str) -> ObjectStore:
    """Open the store a URI names: ``s3://bucket[/prefix]``, ``file:///abs/path`` or a path."""
    if not isinstance(uri, (str, os.PathLike)) or not os.fspath(uri):
        raise _invalid(str(uri), "it is empty")
    uri = os.fspath(uri)
    if "\x00" in uri:
        raise _invalid(uri, "it contains a NUL character")
    from evtrack.store.uris import refuse_database_uri

    refuse_database_uri(uri)
    for prefix, opener in _OPENERS.items():  # e.g. mlflow-artifacts: (a server's artifact proxy)
        if uri.startswith(prefix):
            return opener(uri)
    match = _SCHEME.match(uri)
    if match is None:
        return LocalStore(os.path.abspath(os.path.expanduser(uri)))
    scheme, rest = match.group(1).lower(), uri[match.end() :]
    if scheme == "file":
        if not rest.startswith("/"):
            raise _invalid(uri, "a file URI must hold an absolute path (file:///abs/path)")
        return LocalStore(rest)
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise _invalid(uri, f"{bucket!r} is not a valid bucket name")
        if "?" in prefix or "#" in prefix:
            raise _invalid(uri, "query strings and fragments are not supported")
        from evtrack.store.s3 import S3Store

        return S3Store(bucket, prefix)
    raise _invalid(uri, f"the scheme {scheme!r} is not supported")


_store_lock = threading.Lock()


@lru_cache(maxsize=64)
def _cached_store(uri: str) -> ObjectStore:
    return open_store(uri)


def artifact_store(uri: str) -> ObjectStore:
    """The object store rooted at an artifact URI (cached: S3 clients are costly to build; an
    URI of a registered opener, such as ``mlflow-artifacts:/``, is not: it may name the tracking
    server in force)."""
    if any(uri.startswith(prefix) for prefix in _OPENERS):
        return open_store(uri)
    with _store_lock:
        return _cached_store(uri)
