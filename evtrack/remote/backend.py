"""The per-URI object a process shares for an ``http(s)://`` tracking URI.

It stands where ``evtrack.read.backend.Backend`` stands for a store: one transport
(connection pool, credentials), one :class:`~evtrack.remote.sender.BatchSender` (its
``writer``: flushed by ``evtrack.flush()``, closed at interpreter exit, reset after
``fork``) and what this process knows about the runs it writes to.
"""

from __future__ import annotations

import threading
from typing import Callable

from evtrack.eventlog.writer import FlushResult
from evtrack.store.uploads import BackgroundUploads
from evtrack.remote.sender import BatchSender
from evtrack.remote.transport import Transport


class RemoteStoreRef:
    """``backend.store`` of a remote backend: only its ``uri`` (the server has the store)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri


class RemoteBackend:
    """A server's transport and this process's sender for it."""

    remote = True

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.store = RemoteStoreRef(self.uri)
        self.transport = Transport(self.uri)
        self.writer = BatchSender(self.transport)
        self.writable_runs: set[str] = set()
        self.known_params: dict[str, dict[str, str]] = {}
        self.artifact_uris: dict[str, str] = {}
        self.uploads = BackgroundUploads()
        self.lock = threading.RLock()

    def flush(self) -> FlushResult:
        """Finish background uploads, then send every queued write."""
        self.wait_background()
        return self.writer.flush()

    def refresh(self, max_age: float | None = None, exact: bool = True) -> bool:
        """Before a read: the server sees every write made before it (``max_age`` and ``exact`` do
        not apply: the server reads the store)."""
        self.flush()
        return True

    def run_in_background(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this backend's upload thread (small captured artifacts at start_run)."""
        self.uploads.submit(fn)

    def wait_background(self) -> None:
        """Wait for every background upload (their own errors are reported by them)."""
        self.uploads.wait()

    def reset_after_fork(self) -> None:
        self.uploads.reset_after_fork()
        self.transport.reset()
        self.writer.reset_after_fork()
        self.lock = threading.RLock()
