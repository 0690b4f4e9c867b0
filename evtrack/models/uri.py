"""Model URIs: where a model is, and getting its directory onto this machine.

Accepted forms (MLflow's)::

    /local/dir  ./dir  file:///abs/dir      a model directory, used in place
    runs:/<run_id>/<path>                  a model logged in a run
    models:/<name>/<version>               a registered model version
    models:/<name>@<alias>                 the version an alias points to
    models:/<name>/<stage>                 the newest version in a stage (Staging, Production…)
    models:/<name>/latest                  the newest version of any stage
    s3://bucket/prefix/dir                 a model directory in object storage

``runs:/`` and ``models:/`` are resolved through the core's table of schemes
(``evtrack.read.artifact_uris``, filled by the tracking and registry features) into the
storage URI of the model directory; a local one is used in place, a remote one is downloaded.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from evtrack.errors import ResourceNotFoundError
from evtrack.read import artifact_uris
from evtrack.store import artifact_store

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def resolve(model_uri: str, tracking_uri: str | None = None) -> str:
    """The storage URI (path, ``file://``, ``s3://``) of the model directory ``model_uri`` names."""
    return artifact_uris.resolve(model_uri, tracking_uri)


def _scheme(uri: str) -> str | None:
    m = _SCHEME.match(uri)
    if m is None or (len(m.group(1)) == 1 and os.name == "nt"):  # C:\ is a path
        return None
    return m.group(1).lower()


def local_path(uri: str | os.PathLike) -> Path | None:
    """The local directory a path or ``file://`` URI names; None for remote URIs."""
    text = os.fspath(uri)
    scheme = _scheme(text)
    if scheme is None:
        return Path(text).expanduser()
    if scheme == "file":
        return Path(text[len("file://") :] if text.startswith("file://") else text[len("file:") :])
    return None


def _download_store_dir(uri: str, dst: Path) -> Path:
    store = artifact_store(uri.rstrip("/"))
    found = False
    for info in store.list(""):
        found = True
        store.get_file(info.key, str(dst / info.key))
    if not found:
        raise ResourceNotFoundError(f"No model files at {uri}")
    return dst


def download_artifact(uri: str | os.PathLike, dst_dir: str | os.PathLike, tracking_uri: str | None = None) -> Path:
    """Copy the file or directory at ``uri`` (path, ``file://``, ``runs:/``, ``s3://``) into ``dst_dir``."""
    import shutil

    text = resolve(os.fspath(uri), tracking_uri)
    dst_dir = Path(dst_dir)
    dst_dir.mkdir(parents=True, exist_ok=True)
    path = local_path(text)
    if path is not None:
        if not path.exists():
            raise ResourceNotFoundError(f"No file or directory at {text!r}")
        target = dst_dir / path.resolve().name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        return target
    from evtrack.store import open_store

    parent, _, name = text.rstrip("/").rpartition("/")
    store = open_store(parent)
    if store.head(name) is not None:
        store.get_file(name, str(dst_dir / name))
        return dst_dir / name
    return _download_store_dir(text, dst_dir / name)


def download_model(
    model_uri: str | os.PathLike, dst_path: str | os.PathLike | None = None, tracking_uri: str | None = None
) -> Path:
    """A local directory holding the model at ``model_uri``.

    A model already on this machine (a path, ``file://``, or ``runs:/``/``models:/``
    in a local store) is used in place unless ``dst_path`` asks for a copy.
    """
    uri = resolve(os.fspath(model_uri), tracking_uri)
    path = local_path(uri)
    if path is not None:
        if path.name == "MLmodel" and path.is_file():
            path = path.parent
        if not path.is_dir():
            raise ResourceNotFoundError(f"No model directory at {os.fspath(model_uri)!r}")
        if dst_path is None:
            return path
        import shutil

        target = Path(dst_path) / path.name
        shutil.copytree(path, target, dirs_exist_ok=True)
        return target
    dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="evtrack-model-"))
    return _download_store_dir(uri, dst)
