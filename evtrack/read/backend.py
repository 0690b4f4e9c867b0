"""One backend per tracking URI and process: the store, its writer and its reader.

Clients and the fluent API share the backend of a URI, so events from both land in
one buffer and a read in this process sees every write made before it.
Also resolves the tracking URI (explicit > ``EVTRACK_TRACKING_URI`` > ``MLFLOW_TRACKING_URI``
> default; ``evtrack:`` forms are read as the store they name, database URIs refused)
and keeps the writers correct across ``fork`` and interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, Callable

from evtrack import settings
from evtrack.errors import InvalidUriError
from evtrack.read.reader import StoreReader
from evtrack.store import ObjectStore, open_store, register_opener
from evtrack.store.uploads import BackgroundUploads
from evtrack.store.uris import is_evtrack_uri, refuse_database_uri, store_location
from evtrack.eventlog.writer import FlushResult, SegmentWriter
from evtrack.remote import is_remote_uri

DEFAULT_TRACKING_URI = "./evtrack-store"
_explicit_uri: str | None = None


def checked_uri(uri: str) -> str:
    """``uri`` as a tracking URI: ``evtrack:`` forms read as the store they name, databases refused,
    ``http(s)://`` a tracking server (``evtrack server`` or MLflow's)."""
    if is_remote_uri(uri):
        return uri.rstrip("/")
    refuse_database_uri(uri)
    return store_location(uri) if is_evtrack_uri(uri) else uri


def set_tracking_uri(uri: str | os.PathLike) -> None:
    """Set the tracking URI for this process: a path, ``file://``, ``s3://`` or ``evtrack:`` URI
    (a database URI is refused here, with what to use instead)."""
    global _explicit_uri
    _explicit_uri = checked_uri(os.fspath(uri))


def get_tracking_uri() -> str:
    """The tracking URI in force: explicit > ``EVTRACK_TRACKING_URI`` > ``MLFLOW_TRACKING_URI`` >
    ``./evtrack-store``."""
    if _explicit_uri is not None:
        return _explicit_uri
    from_env = settings.get("EVTRACK_TRACKING_URI")
    if not from_env:
        return DEFAULT_TRACKING_URI
    try:
        return checked_uri(from_env)
    except InvalidUriError as exc:
        raise InvalidUriError(f"${settings.source_of('EVTRACK_TRACKING_URI')}: {exc.message}") from None


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI was set explicitly or by the environment (not the default)."""
    return _explicit_uri is not None or settings.get("EVTRACK_TRACKING_URI") is not None


def reset_tracking_uri() -> None:
    """Forget an explicit tracking URI (the environment and default apply again)."""
    global _explicit_uri
    _explicit_uri = None


class Backend:
    """The store of one tracking URI with this process's writer and inbox reader."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.writer = SegmentWriter(store)
        self.reader = StoreReader(store)
        self.writer.on_segment = self.reader.note_own_segment  # own writes are read without a listing
        # What this process knows for sure about runs it wrote to: run_id -> params.
        self.known_params: dict[str, dict[str, str]] = {}
        # Runs this process knows to be writable (active lifecycle stage): run_id -> time.monotonic()
        # of the check. With ``writable_ttl`` set (the server), a check older than that is made
        # again, so a run deleted by another process stops taking writes here within the TTL.
        self.writable_runs: dict[str, float] = {}
        self.writable_ttl: float | None = None
        self.artifact_uris: dict[str, str] = {}
        self.run_experiments: dict[str, str] = {}  # run id -> its experiment (runs checked or created here)
        # Experiments this process saw active: id -> artifact location (runs are created without a read).
        self.active_experiments: dict[str, str] = {}
        self.default_experiment_ready = False
        self.engine = None  # the DuckDB query engine, created on first query
        self.uploads = BackgroundUploads()
        self.lock = threading.RLock()

    def refresh(self, max_age: float | None = None, exact: bool = True) -> bool:
        """Flush this process's events, then catch the reader up with the store (listing it unless
        it was listed less than ``max_age`` seconds ago, default ``EVTRACK_READ_FRESHNESS``; see
        ``StoreReader.refresh`` for ``exact``); returns whether it listed."""
        self.flush()
        return self.reader.refresh(max_age, exact)

    def flush(self) -> FlushResult:
        """Finish background uploads, then send every buffered event."""
        self.wait_background()
        return self.writer.flush()

    def run_in_background(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this backend's upload thread (small captured artifacts at start_run)."""
        self.uploads.submit(fn)

    def wait_background(self) -> None:
        """Wait for every background upload (their own errors are reported by them)."""
        self.uploads.wait()

    def reset_after_fork(self) -> None:
        """Give the child process its own writer id and an empty buffer."""
        self.uploads.reset_after_fork()
        self.writer.reset_after_fork()
        self.lock = threading.RLock()
        self.reader._lock = threading.RLock()


_backends: dict[str, Any] = {}  # Backend, or RemoteBackend for an http(s):// URI
_backends_lock = threading.Lock()


def _normalize(uri: str) -> str:
    if "://" in uri:
        return uri.rstrip("/")
    return os.path.abspath(os.path.expanduser(uri))


def get_backend(uri: str | None = None) -> Backend:
    """The shared backend of a tracking URI (the current one when None)."""
    key = _normalize(uri or get_tracking_uri())
    backend = _backends.get(key)
    if backend is None:
        with _backends_lock:
            backend = _backends.get(key)
            if backend is None:
                backend = _backends[key] = Backend(open_store(key))
    return backend


def get_remote_backend(uri: str | None = None) -> Any:
    """The shared ``RemoteBackend`` of an ``http(s)://`` tracking URI (the current one when None)."""
    key = (uri or get_tracking_uri()).rstrip("/")
    backend = _backends.get(key)
    if backend is None:
        with _backends_lock:
            backend = _backends.get(key)
            if backend is None:
                from evtrack.remote.backend import RemoteBackend

                backend = _backends[key] = RemoteBackend(key)
    return backend


def open_proxied(uri: str, tracking_uri: str | None = None) -> ObjectStore:
    """The store of an ``mlflow-artifacts:`` URI: files behind the server it names, else behind
    the tracking server in force, through that server's shared transport."""
    from evtrack.remote.artifact_proxy import ProxiedArtifactStore, split_proxied_uri

    base, root = split_proxied_uri(uri, tracking_uri or get_tracking_uri())
    return ProxiedArtifactStore(uri, base, root, get_remote_backend(base).transport)  # type: ignore[return-value]


register_opener("mlflow-artifacts:", open_proxied)


def flush_all() -> dict[str, FlushResult]:
    """Flush the writer of every backend of this process."""
    return {uri: b.flush() for uri, b in list(_backends.items())}


_exit_hooks: list[Callable[[], None]] = []


def on_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit, before the writers' final flush."""
    _exit_hooks.append(hook)


def _at_exit() -> None:
    for hook in _exit_hooks:
        try:
            hook()
        except Exception as exc:  # never block the final flush
            print(f"evtrack: exit hook failed: {exc}", file=sys.stderr)
    for uri, backend in list(_backends.items()):
        try:
            backend.wait_background()
        except Exception as exc:
            print(f"evtrack: background upload failed: {exc}", file=sys.stderr)
        result = backend.writer.close()
        if not result.durable:
            print(
                f"evtrack: {result.pending_segments} segment(s) for {uri} could not be sent "
                f"({result.error}); they are kept in {backend.writer.spool.dir} and will be "
                "sent by the next process that writes to this store",
                file=sys.stderr,
            )


def _before_fork() -> None:
    """Ship the buffers before forking, so a forked worker sees the runs its parent created.

    The child starts with an empty buffer (nothing is sent twice); a store known to be
    down is not waited for: the segment is parked in the spool instead.
    """
    for backend in list(_backends.values()):
        try:
            backend.writer._drain()
        except Exception:  # noqa: BLE001 - never prevent a fork
            pass


def _after_fork_in_child() -> None:
    global _backends_lock
    _backends_lock = threading.Lock()
    for backend in _backends.values():
        backend.reset_after_fork()
    if "multiprocessing" in sys.modules:
        # multiprocessing children leave through os._exit, which skips atexit, and clear
        # the finalizers they inherited as they start: register the exit flush from
        # multiprocessing's own after-fork hooks, which run after that.
        from multiprocessing import util

        util.register_after_fork(_mp_exit_flush, _mp_exit_flush)


class _MultiprocessingExitFlush:
    """Flushes every writer when a multiprocessing child exits (registered in the child)."""

    def __call__(self, _obj: object = None) -> None:
        from multiprocessing import util

        util.Finalize(None, flush_all, exitpriority=100)


_mp_exit_flush = _MultiprocessingExitFlush()


atexit.register(_at_exit)
os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
