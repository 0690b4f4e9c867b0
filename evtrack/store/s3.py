"""``S3Store``: the ``ObjectStore`` protocol on any S3 API (AWS S3, MinIO, moto server) via boto3.

boto3 is imported only when an ``S3Store`` is created, so importing evtrack stays cheap.
Put-if-absent is ``PutObject`` with ``If-None-Match: *``; its 412/409 answers become
``CommitConflictError``. Every other botocore failure becomes a one-line ``StoreError``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evtrack.errors import CommitConflictError, EvtrackError, InvalidParameterError, ObjectNotFoundError, StoreError
from evtrack.store.base import CHUNK_SIZE, ObjectInfo
from evtrack.store.local import validate_chunk_size, validate_key, validate_prefix, validate_range

MiB = 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MULTIPART_THRESHOLD = 64 * MiB
DEFAULT_MULTIPART_CHUNKSIZE = 16 * MiB
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_BAD_RANGE_CODES = {"InvalidRange", "416"}
# Environment that decides what a boto3 session resolves (credentials, profile, region).
_SESSION_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_sessions: dict[tuple[str | None, ...], Any] = {}
_sessions_lock = threading.Lock()


def _create_client(**kwargs: Any) -> Any:
    """Create an S3 client from a boto3 session shared per AWS environment (sessions are slow)."""
    import boto3.session

    env = tuple(os.environ.get(name) for name in _SESSION_ENV)
    with _sessions_lock:  # boto3 sessions are not thread-safe; their clients are
        session = _sessions.get(env)
        if session is None:
            session = _sessions[env] = boto3.session.Session()
        return session.client("s3", **kwargs)


def _reset_sessions_after_fork() -> None:
    global _sessions_lock
    _sessions.clear()  # a session (or its lock) may have been mid-use in another thread at fork
    _sessions_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_sessions_after_fork)


def _env_number(name: str, default: float, cast: type = float) -> Any:
    """Read a numeric setting from the environment, with a clear error when malformed."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise InvalidParameterError(f"{name}={raw!r} is not a valid number") from None


def _client_error_code(exc: BaseException) -> tuple[str, int | None]:
    """The (error code, HTTP status) of a botocore ``ClientError``, or ("", None)."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code, status


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong, from a ``ClientError`` or any other boto failure."""
    code, status = _client_error_code(exc)
    if code:
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).strip()
        detail = f"{code} (HTTP {status})" + (f": {message}" if message else "")
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return " ".join(detail.split())


class S3Store:
    """An ``ObjectStore`` on an S3 bucket, optionally below a key prefix."""

    DELETE_BATCH = 1000  # keys per DeleteObjects request (S3's limit)
    DELETE_REQUESTS = 16  # DeleteObjects requests in flight at once

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        max_attempts: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunksize: int = DEFAULT_MULTIPART_CHUNKSIZE,
    ) -> None:
        if not bucket:
            raise InvalidParameterError("S3Store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_prefix(self.prefix)
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = (
            endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        )
        self.max_attempts = int(
            max_attempts
            if max_attempts is not None
            else _env_number("EVTRACK_S3_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, int)
        )
        self.connect_timeout = (
            connect_timeout
            if connect_timeout is not None
            else _env_number("EVTRACK_S3_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        )
        self.read_timeout = (
            read_timeout if read_timeout is not None else _env_number("EVTRACK_S3_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)
        )
        self._sizes = (multipart_threshold, max(multipart_chunksize, 5 * MiB))
        self._own_client, self._transfer_config = self._make_client(*self._sizes)
        self._pid = os.getpid()

    @property
    def _client(self) -> Any:
        """This process's client: a forked child builds its own (never shares pooled connections)."""
        if self._pid != os.getpid():
            self._own_client, self._transfer_config = self._make_client(*self._sizes)
            self._pid = os.getpid()
        return self._own_client

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    def _make_client(self, threshold: int, chunksize: int) -> tuple[Any, Any]:
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        config = Config(
            retries={"mode": "adaptive", "max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=32,
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            user_agent_extra="evtrack",
        )
        client = _create_client(endpoint_url=self.endpoint_url, config=config)
        transfer = TransferConfig(multipart_threshold=threshold, multipart_chunksize=chunksize, max_concurrency=8)
        return client, transfer

    # -- keys and errors ----------------------------------------------------------------

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    @contextlib.contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        """Turn any boto failure inside the block into a one-line ``StoreError``."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.exceptions import RetriesExceededError

        try:
            yield
        except EvtrackError:
            raise
        except (ClientError, BotoCoreError, Boto3Error, RetriesExceededError) as exc:
            detail = _describe(exc)
            where = f"s3://{self.bucket}/{self._base()}{key}"
            endpoint = f" via {self.endpoint_url}" if self.endpoint_url else ""
            raise StoreError(f"S3 {op} of {where}{endpoint} failed: {detail}") from exc

    def _not_found(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"object not found: {key!r} in {self.uri}")

    # -- ObjectStore --------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Return the object's bytes; ``ObjectNotFoundError`` when absent."""
        full = self._key(key)
        with self._errors("get", key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=full)
            except self._client.exceptions.NoSuchKey:
                raise self._not_found(key) from None
            with contextlib.closing(response["Body"]) as body:
                return body.read()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` (fewer at the end, none past it); errors as ``get``."""
        from botocore.exceptions import ClientError

        full = self._key(key)
        validate_range(start, length)
        if length == 0:  # no HTTP range is empty: just check that the object exists
            if self.head(key) is None:
                raise self._not_found(key)
            return b""
        with self._errors("read_range", key):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes={start}-{start + length - 1}"
                )
            except self._client.exceptions.NoSuchKey:
                raise self._not_found(key) from None
            except ClientError as exc:
                code, status = _client_error_code(exc)
                if code in _BAD_RANGE_CODES or status == 416:  # starts at or past the end
                    return b""
                raise
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        if not response.get("ContentRange"):  # the server ignored the range: whole object
            return data[start : start + length]
        return data[:length]

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The whole object in chunks of at most ``chunk_size`` (one streamed ``GetObject``);
        errors as ``get``, by the first chunk."""
        full = self._key(key)
        validate_chunk_size(chunk_size)
        return self._chunks(full, key, chunk_size)

    def _chunks(self, full: str, key: str, chunk_size: int) -> Iterator[bytes]:
        with self._errors("iter_chunks", key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=full)
            except self._client.exceptions.NoSuchKey:
                raise self._not_found(key) from None
            with contextlib.closing(response["Body"]) as body:
                yield from body.iter_chunks(chunk_size)

    def put(self, key: str, data: bytes) -> None:
        """Create or replace the object (S3 puts are atomic)."""
        full = self._key(key)
        with self._errors("put", key):
            self._client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create the object only when the key is free; ``CommitConflictError`` otherwise."""
        from botocore.exceptions import ClientError

        full = self._key(key)
        with self._errors("put_if_absent", key):
            try:
                self._client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                code, status = _client_error_code(exc)
                if code in _CONFLICT_CODES or status in (409, 412):
                    raise CommitConflictError(f"object already exists: {key!r} in {self.uri} ({code})") from None
                raise

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Yield objects whose key starts with ``prefix``, in key order, after ``start_after``."""
        validate_prefix(prefix)
        return self._list(prefix, start_after)

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        base = self._base()
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base + prefix}
        if start_after is not None:
            kwargs["StartAfter"] = base + start_after
        with self._errors("list", prefix):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(**kwargs):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"][len(base) :], size=int(item["Size"]), mtime=item["LastModified"].timestamp()
                    )

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when absent."""
        from botocore.exceptions import ClientError

        full = self._key(key)
        with self._errors("head", key):
            try:
                response = self._client.head_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if _client_error_code(exc)[0] in _MISSING_CODES:
                    return None
                raise
        return ObjectInfo(key=key, size=int(response["ContentLength"]), mtime=response["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        full = self._key(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def delete_many(self, keys: list[str]) -> None:
        """Remove the objects (missing keys are fine) with DeleteObjects requests, several at a time.

        Each request takes up to ``DELETE_BATCH`` keys; a large delete is cut into
        ``DELETE_REQUESTS`` requests at least, all of them in flight at once.
        """
        if not keys:
            return
        size = min(self.DELETE_BATCH, -(-len(keys) // self.DELETE_REQUESTS))
        batches = [keys[start : start + size] for start in range(0, len(keys), size)]
        if len(batches) == 1:
            self._delete_batch(batches[0])
            return
        with ThreadPoolExecutor(
            min(self.DELETE_REQUESTS, len(batches)), thread_name_prefix="evtrack-s3-delete"
        ) as pool:
            for _ in pool.map(self._delete_batch, batches):
                pass

    def _delete_batch(self, batch: list[str]) -> None:
        objects = [{"Key": self._key(key)} for key in batch]
        with self._errors(f"delete of {len(batch)} objects, the first", batch[0]):
            response = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StoreError(
                f"S3 delete of s3://{self.bucket}/{first.get('Key')} failed: "
                f"{first.get('Code')}: {first.get('Message')} ({len(errors)} of {len(batch)} "
                "keys not deleted)"
            )

    def put_file(self, key: str, path: str) -> None:
        """Upload a local file, in parts above the multipart threshold."""
        full = self._key(key)
        if not os.path.isfile(path):
            raise InvalidParameterError(f"cannot upload {path!r} to {key!r}: no such file")
        with self._errors("put_file", key):
            self._client.upload_file(path, self.bucket, full, Config=self._transfer_config)

    def get_file(self, key: str, path: str) -> None:
        """Download the object into a local file, creating parent directories."""
        from botocore.exceptions import ClientError

        full = self._key(key)
        parent = os.path.dirname(os.path.abspath(path))
        with self._errors("get_file", key):
            os.makedirs(parent, exist_ok=True)
            try:
                self._client.download_file(self.bucket, full, path, Config=self._transfer_config)
            except ClientError as exc:
                if _client_error_code(exc)[0] in _MISSING_CODES:
                    raise self._not_found(key) from None
                raise
