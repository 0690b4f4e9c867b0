"""``mlflow-artifacts:`` URIs: a run's artifacts behind a tracking server's artifact proxy.

MLflow's server (``--serve-artifacts``) and ``evtrack server`` hand out artifact URIs of the
form ``mlflow-artifacts:/<path>`` (the server is the tracking URI in force) or
``mlflow-artifacts://<host>:<port>/<path>``, and serve them under
``/api/2.0/mlflow-artifacts/artifacts/<path>`` (GET a file, PUT one, DELETE, and
``GET …/artifacts?path=<dir>`` to list a directory). :class:`ProxiedArtifactStore` is the
``ObjectStore`` of such a URI, so model loading, ``download_artifacts`` and uploads work
the same as on a directory or S3. Files stream to and from disk in chunks.
"""

from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import quote, urlencode, urlsplit

from evtrack.errors import InvalidUriError, ObjectNotFoundError, ResourceNotFoundError
from evtrack.remote.transport import Transport
from evtrack.store.base import CHUNK_SIZE, ObjectInfo

SCHEME = "mlflow-artifacts:"
ROUTE = "/api/2.0/mlflow-artifacts/artifacts"


def is_proxied_uri(uri: object) -> bool:
    return isinstance(uri, str) and uri.startswith(SCHEME)


def split_proxied_uri(uri: str, tracking_uri: str) -> tuple[str, str]:
    """(server base URL, path inside the proxy) of an ``mlflow-artifacts:`` URI; the server is
    the one the URI names (``mlflow-artifacts://host:port/…``), else ``tracking_uri``."""
    from evtrack.remote import is_remote_uri

    rest = uri[len(SCHEME) :]
    if rest.startswith("//"):
        parts = urlsplit("http:" + rest)
        if parts.netloc:
            scheme = "https" if tracking_uri.startswith("https://") else "http"
            return f"{scheme}://{parts.netloc}", parts.path.strip("/")
        rest = parts.path
    if not is_remote_uri(tracking_uri):
        raise InvalidUriError(
            f"{uri!r} is an artifact of a tracking server's proxy, but the tracking URI is {tracking_uri!r}: "
            "set the tracking URI to that server (http://host:port)"
        )
    return tracking_uri.rstrip("/"), rest.strip("/")


class ProxiedArtifactStore:
    """The files under one ``mlflow-artifacts:`` URI, through the server's HTTP routes."""

    def __init__(self, uri: str, base: str, root: str, transport: Transport) -> None:
        self.uri, self.base, self.root, self.http = uri.rstrip("/"), base, root, transport

    def _path(self, key: str) -> str:
        key = key.strip("/")
        return f"{self.root}/{key}" if self.root and key else (self.root or key)

    def _url(self, key: str) -> str:
        return f"{self.base}{ROUTE}/{quote(self._path(key))}"

    def _get(self, key: str):
        try:
            return self.http.raw("GET", self._url(key), preload=False)
        except ResourceNotFoundError:
            raise ObjectNotFoundError(f"no artifact {self._path(key)!r} at {self.base}") from None

    def get(self, key: str) -> bytes:
        response = self._get(key)
        try:
            return response.read()
        finally:
            response.release_conn()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        return self.get(key)[start : start + length]

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        response = self._get(key)
        try:
            yield from response.stream(chunk_size)
        finally:
            response.release_conn()

    def put(self, key: str, data: bytes) -> None:
        self.http.raw("PUT", self._url(key), body=data, headers={"Content-Type": "application/octet-stream"})

    def put_if_absent(self, key: str, data: bytes) -> None:
        from evtrack.errors import StoreError

        raise StoreError(
            f"{self.uri} is a tracking server's artifact proxy: it holds a run's files, and has no "
            "put-if-absent (an evtrack store is a directory or s3://…)"
        )

    def put_file(self, key: str, path: str) -> None:
        with open(path, "rb") as fh:
            self.http.raw("PUT", self._url(key), body=fh, headers={"Content-Type": "application/octet-stream"})

    def get_file(self, key: str, path: str) -> None:
        import os

        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as fh:
            for chunk in self.iter_chunks(key):
                fh.write(chunk)

    def list_dir(self, key: str = "") -> list[dict]:
        """The entries directly under ``key`` (``path`` relative to it, ``is_dir``, ``file_size``)."""
        url = f"{self.base}{ROUTE}?" + urlencode({"path": self._path(key)})
        return json.loads(self.http.raw("GET", url).data or b"{}").get("files") or []

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every file whose key starts with ``prefix``, in key order (walked directory by directory)."""
        directory = prefix.rstrip("/").rpartition("/")[0] if not prefix.endswith("/") else prefix.rstrip("/")
        found: list[ObjectInfo] = []
        pending = [directory]
        while pending:
            current = pending.pop()
            for entry in self.list_dir(current):
                name = entry["path"].rpartition("/")[2]
                key = f"{current}/{name}" if current else name
                if entry.get("is_dir"):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append(key)
                elif key.startswith(prefix):
                    found.append(ObjectInfo(key, int(entry.get("file_size") or 0), 0.0))
        for info in sorted(found, key=lambda i: i.key):
            if start_after is None or info.key > start_after:
                yield info

    def head(self, key: str) -> ObjectInfo | None:
        parent, _, name = key.strip("/").rpartition("/")
        for entry in self.list_dir(parent):
            if entry["path"].rpartition("/")[2] == name and not entry.get("is_dir"):
                return ObjectInfo(key, int(entry.get("file_size") or 0), 0.0)
        return None

    def delete(self, key: str) -> None:
        self.http.raw("DELETE", self._url(key))

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)
