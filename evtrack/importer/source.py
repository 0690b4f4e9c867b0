"""The MLflow side: open a source tracking URI with MLflow's client and page through it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

from evtrack.errors import EvtrackError

_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql", "http", "https", "file")
PAGE = 1000


class ImportSourceError(EvtrackError):
    """The import source is not an MLflow tracking store that can be read."""

    error_code = "INVALID_PARAMETER_VALUE"


def normalize_source(source: str) -> str:
    """The source URI MLflow is given: a plain path becomes an absolute ``file://`` URI."""
    scheme = source.partition("://")[0].split("+")[0].lower() if "://" in source else ""
    if scheme and scheme not in _SCHEMES:
        raise ImportSourceError(
            f"cannot import from {source!r}: the scheme {scheme!r} is not an MLflow tracking URI "
            "(expected sqlite:///…, postgresql://…, mysql://…, http(s)://… or an mlruns directory)"
        )
    if scheme in ("", "file"):
        path = Path(source[len("file://") :] if scheme == "file" else source).expanduser().resolve()
        if not path.is_dir():
            raise ImportSourceError(f"cannot import from {source!r}: no such directory (an MLflow mlruns folder)")
        if not (path / "0").is_dir() and not any((path / d / "meta.yaml").is_file() for d in os.listdir(path)):
            raise ImportSourceError(f"cannot import from {source!r}: {path} is not an MLflow mlruns directory")
        # MLflow 3 refuses to open its file store unless told to; reading one to move off it is the point.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return path.as_uri()
    if scheme in ("http", "https"):
        _reachable(source)
    if scheme == "sqlite":
        db = source.split(":///", 1)[-1]
        if db and db != ":memory:" and not Path(db).is_file():
            raise ImportSourceError(f"cannot import from {source!r}: the database file {db} does not exist")
    return source


def _reachable(url: str) -> None:
    """Fail at once (MLflow's client would retry for minutes) when nothing listens at ``url``."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=10):
            pass
    except (OSError, ValueError) as exc:
        raise ImportSourceError(f"cannot import from {url!r}: no server answers there ({exc})") from None


def source_key(uri: str) -> str:
    """A short stable name of a source, used in event ids and import markers."""
    return hashlib.sha256(uri.encode()).hexdigest()[:12]


def mlflow_client(uri: str) -> Any:
    """MLflow's ``MlflowClient`` on the source (tracking and registry), checked by one request."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportSourceError(
            "`evtrack import` reads the source with MLflow's client: pip install 'evtrack[import]'"
        ) from None
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises its own classes, sqlalchemy's and requests' alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportSourceError(f"cannot read the MLflow store {uri!r}: {first[:300]}") from None
    return client


def paged(call: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged MLflow search (``page_token`` until exhausted)."""
    token = None
    while True:
        page = call(*args, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def experiments(client: Any) -> list[Any]:
    """Every experiment, active and deleted, by id."""
    from mlflow.entities import ViewType

    found = list(paged(client.search_experiments, view_type=ViewType.ALL, max_results=PAGE))
    return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))


def runs(client: Any, experiment_id: str) -> Iterator[Any]:
    """Every run of an experiment (active and deleted), oldest first."""
    from mlflow.entities import ViewType

    yield from paged(
        client.search_runs,
        [experiment_id],
        run_view_type=ViewType.ALL,
        max_results=PAGE,
        order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
    )


def artifact_files(client: Any, run_id: str, path: str | None = None) -> Iterator[Any]:
    """Every file (not directory) under a run's artifact root, depth first."""
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from artifact_files(client, run_id, info.path)
        else:
            yield info


def not_carried(client: Any, experiment_ids: list[str]) -> dict[str, int]:
    """Counts of what the import does not copy (traces, logged models, prompts); -1 when unknown."""
    out: dict[str, int] = {}
    probes = {
        "traces": lambda: client.search_traces(locations=experiment_ids, max_results=PAGE, include_spans=False),
        "logged models": lambda: client.search_logged_models(experiment_ids=experiment_ids, max_results=PAGE),
        "prompts": lambda: client.search_prompts(max_results=PAGE),
    }
    for name, probe in probes.items():
        try:
            out[name] = len(probe()) if experiment_ids or name == "prompts" else 0
        except Exception:
            out[name] = -1
    return out
