"""What every client on a store root shares: its backend, writing events, flushing, the user.

The tracking client (``evtrack.tracking.client``) and the registry client
(``evtrack.registry.client``) are both built on :class:`StoreClient`;
``evtrack.client.MlflowClient`` combines the two on one backend.
"""

from __future__ import annotations

import getpass
import os

from evtrack.eventlog import events as ev
from evtrack.eventlog.writer import FlushResult
from evtrack.read.backend import Backend, get_backend
from evtrack.store.base import ObjectStore


def current_user() -> str:
    """The user name recorded on runs (``mlflow.user``) and model versions."""
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


class StoreClient:
    """A client of one store root: the process's backend for its tracking URI.

    On an ``http(s)://`` tracking URI (given, or the one in force) the constructor answers
    the class's client over MLflow's REST API instead (``_remote_client``), so every caller
    (the fluent API, ``MlflowClient(uri)``, URI resolution) works against a server alike.
    """

    def __new__(cls, tracking_uri: str | None = None, *args: object, backend: Backend | None = None, **kwargs: object):
        if backend is None:
            from evtrack.read.backend import get_tracking_uri
            from evtrack.remote import is_remote_uri

            uri = tracking_uri if tracking_uri is not None else get_tracking_uri()
            if is_remote_uri(os.fspath(uri)):
                return cls._remote_client(os.fspath(uri))
        return super().__new__(cls)

    @classmethod
    def _remote_client(cls, uri: str) -> object:
        """This client's counterpart over HTTP (each client class names its own)."""
        from evtrack.errors import InvalidUriError

        raise InvalidUriError(f"{cls.__name__} works on a store, not on a tracking server ({uri})")

    def __init__(self, tracking_uri: str | None = None, *, backend: Backend | None = None) -> None:
        self._backend: Backend = backend if backend is not None else get_backend(tracking_uri)
        self.tracking_uri = self._backend.store.uri

    @property
    def store(self) -> ObjectStore:
        """The object store behind this client."""
        return self._backend.store

    def _emit(self, event: ev.Event) -> None:
        self._backend.writer.append(ev.encode(event))

    def _eid(self) -> str:
        return self._backend.writer.next_eid()

    def flush(self) -> FlushResult:
        """Send everything buffered by this process to the store; returns a ``FlushResult``."""
        return self._backend.flush()
