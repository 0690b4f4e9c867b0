"""Artifacts: files stored under a run's artifact root, each recorded by an event.

A run's artifact root is ``<experiment artifact_location>/<run_id>/artifacts``,
itself an object-store URI. Uploads are synchronous (as in MLflow) and go
through the store's ``put_file`` (multipart for large files on S3); each file
then gets an ``artifact_logged`` event with its size and sha256 digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

from evtrack.eventlog import events as ev
from evtrack.eventlog import validation as v
from evtrack.entities import FileInfo
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.store import ObjectStore, artifact_store, open_store  # noqa: F401  (artifact_store: its old home)


def file_digest(path: str | os.PathLike) -> tuple[int, str]:
    """(size, "sha256:<hex>") of a local file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, f"sha256:{h.hexdigest()}"


class ArtifactsMixin:
    """The artifact methods of the tracking client."""

    def _artifact_root_of(self, run_id: str) -> str:
        b = self._backend
        if run_id not in b.artifact_uris:
            b.artifact_uris[run_id] = self._run_state(run_id).artifact_uri
        return b.artifact_uris[run_id]

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        """The URI of a run's artifact root, or of a path inside it."""
        root = self._artifact_root_of(run_id)
        rel = v.validate_artifact_path(artifact_path)
        return f"{root}/{rel}" if rel else root

    def _upload(self, run_id: str, local_file: str, rel_path: str) -> None:
        size, digest = file_digest(local_file)
        artifact_store(self._artifact_root_of(run_id)).put_file(rel_path, local_file)
        self._emit(
            ev.ArtifactLogged(eid=self._eid(), ts=ev.now_ms(), run_id=run_id, path=rel_path, size=size, digest=digest)
        )

    def _record_artifacts_deleted(self, run_id: str, paths: list[str]) -> None:
        """Record that files under the run's artifact root are being deleted (one event each),
        flushed before their bytes go, so views and listings never show a file that is gone."""
        ts = ev.now_ms()
        for path in paths:
            self._emit(ev.ArtifactDeleted(eid=self._eid(), ts=ts, run_id=run_id, path=path))
        self.flush()

    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload one local file into the run's artifacts (under ``artifact_path``)."""
        self._check_writable(run_id)
        local = Path(local_path)
        if not local.is_file():
            raise InvalidParameterError(f"Cannot log artifact: {str(local_path)!r} is not a file")
        base = v.validate_artifact_path(artifact_path)
        rel = v.validate_artifact_path(posixpath.join(base, local.name) if base else local.name)
        self._upload(run_id, str(local), rel)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload a local directory's files recursively, keeping their relative paths."""
        self._check_writable(run_id)
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidParameterError(f"Cannot log artifacts: {str(local_dir)!r} is not a directory")
        base = v.validate_artifact_path(artifact_path)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            self._upload(run_id, str(path), v.validate_artifact_path(posixpath.join(base, rel) if base else rel))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store a string as a text artifact."""
        self._log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: dict[str, Any], artifact_file: str) -> None:
        """Store a dict as JSON, or YAML when the file name ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False).encode()
        else:
            data = json.dumps(dictionary, indent=2, default=str).encode()
        self._log_bytes(run_id, data, artifact_file)

    def _log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        self._check_writable(run_id)
        rel = v.validate_artifact_path(artifact_file)
        if not rel:
            raise InvalidParameterError("artifact_file must name a file inside the run's artifacts")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, posixpath.basename(rel))
            with open(path, "wb") as fh:
                fh.write(data)
            self._upload(run_id, path, rel)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly under ``path`` in the run's artifacts."""
        self._backend.wait_background()  # this process's own uploads first (read-your-writes)
        rel = v.validate_artifact_path(path)
        store = artifact_store(self._artifact_root_of(run_id))
        prefix = f"{rel}/" if rel else ""
        entries: dict[str, FileInfo] = {}
        for info in store.list(prefix):
            rest = info.key[len(prefix) :]
            head, sep, _ = rest.partition("/")
            child = f"{prefix}{head}"
            if sep:
                entries.setdefault(child, FileInfo(child, True, None))
            else:
                entries[child] = FileInfo(child, False, info.size)
        if not entries and rel and store.head(rel) is not None:
            return []  # a file, not a directory: MLflow lists nothing
        return [entries[k] for k in sorted(entries)]

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Download a file or directory of the run's artifacts; returns the local path."""
        self._backend.wait_background()
        rel = v.validate_artifact_path(path)
        store = artifact_store(self._artifact_root_of(run_id))
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="evtrack-artifacts-"))
        if rel and store.head(rel) is not None:
            target = dst / posixpath.basename(rel)
            store.get_file(rel, str(target))
            return str(target)
        prefix = f"{rel}/" if rel else ""
        found = False
        base = dst / posixpath.basename(rel) if rel else dst
        for info in store.list(prefix):
            found = True
            store.get_file(info.key, str(base / info.key[len(prefix) :]))
        if not found and rel:
            raise ResourceNotFoundError(f"No artifact at {path!r} in run {run_id}")
        base.mkdir(parents=True, exist_ok=True)
        return str(base)
