"""Shared fixtures: store URIs for both backends and a real S3 API (moto server) on loopback.

Set ``EVTRACK_TEST_S3_ENDPOINT`` (and ``EVTRACK_TEST_S3_BUCKET``, credentials in the
usual AWS variables) to run the S3 tests against a real endpoint instead of moto;
each test then works under its own unique prefix in that bucket and cleans up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from evtrack.store import ObjectStore, open_store

# -- a moto S3 server that can be stopped and restarted on the same port ------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _threaded_moto_server_class() -> type:
    """``ThreadedMotoServer`` made fit for outage tests (built lazily: moto loads only when used).

    Compared with moto's own: a bind failure raises instead of hanging ``start``,
    ``stop`` returns within ~50 ms instead of ~500 ms, and the connections it
    accepted are remembered so that ``stop`` can cut any still open (moto answers
    ``Connection: close`` today, but an outage must stay an outage if that changes).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    class OutageReadyMotoServer(ThreadedMotoServer):
        def __init__(self, port: int) -> None:
            super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
            self.start_error: BaseException | None = None
            self.connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()

        def _server_entry(self) -> None:
            try:
                app = DomainDispatcherApplication(create_backend_app)
                server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            except BaseException as exc:  # noqa: BLE001 - re-raised by MotoServer.start
                self.start_error = exc
                self._server_ready_event.set()
                return
            accept = server.get_request

            def get_request() -> tuple[socket.socket, Any]:
                conn, address = accept()
                self.connections.add(conn)
                return conn, address

            server.get_request = get_request  # type: ignore[method-assign]
            self._server = server
            self._server_ready_event.set()
            server.serve_forever(poll_interval=0.05)  # closes the listening socket on return

    return OutageReadyMotoServer


class MotoServer:
    """A moto S3 API on 127.0.0.1 that can be stopped (a real outage) and restarted on its port.

    moto's backends are module-global, so data survives a restart within the process.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None

    def start(self) -> MotoServer:
        """Start serving on ``self.port`` (again); raise when the port cannot be bound."""
        if self.running:
            return self
        server = _threaded_moto_server_class()(self.port)
        server.start()
        if server.start_error is not None:
            raise RuntimeError(f"moto server could not bind 127.0.0.1:{self.port}") from server.start_error
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and cut every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        for conn in list(server.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def moto_server_factory(aws_test_credentials: None) -> Iterator[Callable[..., MotoServer]]:
    """A function ``(port=None) -> MotoServer`` (started); every server is stopped at teardown."""
    servers: list[MotoServer] = []

    def make(port: int | None = None) -> MotoServer:
        server = MotoServer(port).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# -- S3 endpoint, buckets and prefixes ----------------------------------------------------

REAL_ENDPOINT = os.environ.get("EVTRACK_TEST_S3_ENDPOINT")
REAL_BUCKET = os.environ.get("EVTRACK_TEST_S3_BUCKET")
_MOTO_LOCK = threading.Lock()


@pytest.fixture(scope="session", autouse=True)
def _cache_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The table cache and search snapshots of the test session in a temporary directory, never
    ~/.cache (a test may point ``EVTRACK_CACHE_DIR`` elsewhere: the ``cache_dir`` fixture)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EVTRACK_CACHE_DIR", str(tmp_path_factory.mktemp("evtrack-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def aws_test_credentials() -> Iterator[None]:
    """Fake AWS credentials and region for moto (left alone when a real endpoint is used)."""
    if REAL_ENDPOINT:
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    mp.undo()


def _serialize_conditional_puts() -> None:
    """Make moto's conditional PutObject atomic, as it is on S3.

    moto checks If-None-Match and then stores, with no lock in between, so two
    server threads could both win; this never showed in 1,200 eight-way races but
    would make the contract tests flaky if it did.
    """
    from moto.s3.responses import S3Response

    if not hasattr(S3Response, "put_object") or hasattr(S3Response.put_object, "_evtrack_serialized"):
        return
    original = S3Response.put_object

    def put_object(self: Any) -> Any:
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            with _MOTO_LOCK:
                return original(self)
        return original(self)

    put_object._evtrack_serialized = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def s3_endpoint(aws_test_credentials: None) -> Iterator[str]:
    """The URL of an S3 API: a moto server on loopback, or ``EVTRACK_TEST_S3_ENDPOINT``."""
    mp = pytest.MonkeyPatch()
    if REAL_ENDPOINT:
        if not REAL_BUCKET:
            pytest.fail("EVTRACK_TEST_S3_ENDPOINT is set: EVTRACK_TEST_S3_BUCKET must name a bucket")
        mp.setenv("AWS_ENDPOINT_URL", REAL_ENDPOINT)
        yield REAL_ENDPOINT
        mp.undo()
        return
    _serialize_conditional_puts()
    server = MotoServer().start()
    mp.setenv("AWS_ENDPOINT_URL", server.url)
    yield server.url
    mp.undo()
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A raw boto3 S3 client on ``s3_endpoint``, for setup and checks behind the store's back."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_endpoint, config=Config(s3={"addressing_style": "path"}))


def _delete_prefix(client: Any, bucket: str, prefix: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for listing in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in listing.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@pytest.fixture
def s3_uri(s3_endpoint: str, s3_client: Any) -> Iterator[str]:
    """A fresh ``s3://bucket/prefix``: a new bucket per test on moto, a new prefix elsewhere."""
    token = uuid.uuid4().hex[:12]
    prefix = f"evtrack-test-{token}"
    if REAL_ENDPOINT:
        bucket = REAL_BUCKET
    else:
        bucket = f"evtrack-test-{token}"
        s3_client.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/{prefix}"
    _delete_prefix(s3_client, bucket, prefix + "/")
    if not REAL_ENDPOINT:
        _delete_prefix(s3_client, bucket, "")
        s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture
def local_uri(tmp_path: Any) -> str:
    """A fresh local store path (the directory does not exist yet)."""
    return str(tmp_path / "store")


@pytest.fixture(params=["local", "s3"], ids=["local", "s3"])
def store_uri(request: pytest.FixtureRequest) -> str:
    """The URI of a fresh store, once for each backend: the same test runs on both."""
    return request.getfixturevalue(f"{request.param}_uri")


@pytest.fixture
def object_store(store_uri: str) -> ObjectStore:
    """``open_store(store_uri)``: a fresh, empty store of each backend."""
    return open_store(store_uri)


# -- evtrack process-global state (tracking URI, backends, fluent run stack) ---------------

_EVTRACK_ENV = (
    "EVTRACK_TRACKING_URI",
    "EVTRACK_RUN_ID",
    "EVTRACK_EXPERIMENT_NAME",
    "EVTRACK_EXPERIMENT_ID",
    "EVTRACK_FLUSH_BYTES",
    "EVTRACK_FLUSH_INTERVAL",
    "EVTRACK_MAX_BUFFER_BYTES",
    "EVTRACK_READ_FRESHNESS",
)


def reset_evtrack_globals() -> None:
    """End this thread's active runs, close every writer and forget all cached backends."""
    from evtrack.read import backend
    import evtrack.store
    from evtrack.registry import fluent as registry_fluent
    from evtrack.tracking import fluent

    stack = fluent._stack()
    while stack:
        try:
            fluent.end_run()
        except Exception:  # noqa: BLE001 - the store may be gone (outage tests); keep resetting
            pass
    for b in list(backend._backends.values()):
        try:
            b.writer.close()
        except Exception:  # noqa: BLE001
            pass
    backend._backends.clear()
    fluent._clients.clear()
    fluent._active_experiment_id = None
    fluent._last_active_run_id = None
    backend.reset_tracking_uri()
    registry_fluent._registry_uri = None
    evtrack.store._cached_store.cache_clear()


@pytest.fixture
def spool_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``EVTRACK_SPOOL_DIR`` pointed at a fresh directory of this test (never ~/.cache)."""
    path = tmp_path / "spool"
    monkeypatch.setenv("EVTRACK_SPOOL_DIR", str(path))
    return path


@pytest.fixture
def fresh_evtrack(spool_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """evtrack's globals reset before and after the test; evtrack env variables unset."""
    for name in _EVTRACK_ENV:
        monkeypatch.delenv(name, raising=False)
    # A new run stores its environment as the artifact evtrack/requirements.txt (issue 6): off here,
    # so tests that count artifacts and events see only their own; tests/test_capture.py turns it on.
    monkeypatch.setenv("EVTRACK_CAPTURE_ENV", "false")
    reset_evtrack_globals()
    yield
    reset_evtrack_globals()


@pytest.fixture
def tracking_uri(store_uri: str, fresh_evtrack: None) -> str:
    """``evtrack.set_tracking_uri(store_uri)`` with isolated globals, once per backend."""
    import evtrack

    evtrack.set_tracking_uri(store_uri)
    return store_uri


def read_inbox(uri: str) -> list[Any]:
    """Every event in the inbox of the store at ``uri``, decoded straight from its segments."""
    from evtrack.eventlog.events import decode_segment

    store = open_store(uri)
    out: list[Any] = []
    for info in store.list("events/"):
        if info.key.endswith(".jsonl"):
            events, bad = decode_segment(store.get(info.key), info.key)
            assert not bad, f"undecodable lines in {info.key}: {bad}"
            out.extend(events)
    return out


@pytest.fixture
def inbox() -> Callable[[str], list[Any]]:
    """``inbox(uri)``: the events in a store's inbox, read behind the client's back."""
    return read_inbox


# -- compaction: segments written behind the client's back, tables read back -------------


@pytest.fixture
def cache_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``EVTRACK_CACHE_DIR`` (downloaded table files) pointed at a fresh directory of this test."""
    path = tmp_path / "table-cache"
    monkeypatch.setenv("EVTRACK_CACHE_DIR", str(path))
    return path


class DirectWriter:
    """Builds events (eids ``<writer>-<n>``) and puts them as inbox segments with well-formed keys.

    The keys are those of ``SegmentWriter``: ``events/<ms:013d>-<writer>-<seq:06d>.jsonl``.
    """

    def __init__(self, store: ObjectStore, writer: str | None = None, ms: int = 1_700_000_000_000) -> None:
        self.store = store
        self.writer = writer or uuid.uuid4().hex[:12]
        self.ms = ms
        self.next_eid = 0
        self.next_seq = 0

    def event(self, cls: type, ts: int | None = None, **fields: Any) -> Any:
        """A new event of ``cls`` with the next eid of this writer (ts defaults to a rising clock)."""
        self.next_eid += 1
        return cls(eid=f"{self.writer}-{self.next_eid}", ts=self.ms + self.next_eid if ts is None else ts, **fields)

    def key(self, seq: int | None = None, ms: int | None = None) -> str:
        """The inbox key of segment ``seq`` (the next one when None)."""
        if seq is None:
            self.next_seq += 1
            seq = self.next_seq
        return f"events/{self.ms if ms is None else ms:013d}-{self.writer}-{seq:06d}.jsonl"

    def put(self, events: list[Any], seq: int | None = None, ms: int | None = None, raw: bytes = b"") -> str:
        """Put one segment holding ``events`` (then ``raw`` bytes); returns its key."""
        from evtrack.eventlog.events import encode

        key = self.key(seq, ms)
        self.store.put(key, b"".join(encode(e) for e in events) + raw)
        return key


@pytest.fixture
def direct_writer() -> type[DirectWriter]:
    """The ``DirectWriter`` class: ``direct_writer(store, writer=None, ms=...)``."""
    return DirectWriter


def read_table_rows(store: ObjectStore, table: str, version: int | None = None) -> list[dict[str, Any]]:
    """Every row of ``table`` in manifest ``version`` (the newest when None), as dicts."""
    from evtrack.state import manifest, tables
    from evtrack.state.table_files import read_files

    m = manifest.load(store, version)
    paths = [f["path"] for f in m.files(table)]
    return read_files(store, paths, tables.schema(table)).to_pylist()


@pytest.fixture
def table_rows() -> Callable[..., list[dict[str, Any]]]:
    """``table_rows(store, table, version=None)``: the rows of a compacted table."""
    return read_table_rows


# -- a running evtrack tracking server (uvicorn on loopback, in a thread) -----------------


class RunningServer:
    """An ``evtrack server`` in this process: ``url`` to talk to, ``store_uri`` it serves."""

    def __init__(self, config: Any) -> None:
        import uvicorn

        from evtrack.server.app import build_app

        self.config = config
        self.store_uri = config.tracking_uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = build_app(config)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self._thread = threading.Thread(target=self._server.run, name="evtrack-test-server", daemon=True)

    def start(self) -> "RunningServer":
        import time

        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the evtrack test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def server_factory(tmp_path: Any, fresh_evtrack: None) -> Iterator[Callable[..., RunningServer]]:
    """Start evtrack servers on fresh local stores (``server_factory(auth_file=...)``); stopped after."""
    from evtrack.server.config import ServerConfig

    started: list[RunningServer] = []

    def start(**options: Any) -> RunningServer:
        options.setdefault("tracking_uri", str(tmp_path / f"server-store-{len(started)}"))
        options.setdefault("compact_every", None)
        server = RunningServer(ServerConfig(**options)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def evtrack_server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A running evtrack server on a fresh local store, without authentication."""
    return server_factory()


@pytest.fixture
def mlflow_client(evtrack_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """MLflow's own ``MlflowClient`` with ``MLFLOW_TRACKING_URI`` pointing at the evtrack server."""
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import fluent as mlflow_fluent

    def forget_mlflow_state() -> None:  # mlflow.set_experiment sets a global and an env variable
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow_fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)

    forget_mlflow_state()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", evtrack_server.url)
    mlflow.set_tracking_uri(evtrack_server.url)
    yield mlflow.MlflowClient(evtrack_server.url)
    forget_mlflow_state()
    mlflow.set_tracking_uri(None)


# the headless-Chromium fixtures of the web-UI tests (tests/ui_browser.py)
from ui_browser import browser, page, screenshot_dir, shoot  # noqa: E402, F401
