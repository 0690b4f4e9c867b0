"""``RemoteTrackingClient``: the tracking client's API over MLflow's REST API (``http(s)://`` URIs).

Writes that MLflow batches (metrics, params, tags) are validated here and queued in the
URI's :class:`~evtrack.remote.sender.BatchSender`, which ships them as ``runs/log-batch``
requests from a background thread: ``log_metric`` returns in microseconds. A run's end,
a deleted tag and other run updates are queued in their place among them, so the server
sees every run's writes in the order they were made. Creating experiments and runs and
every read are synchronous requests; a read first flushes the queue (read-your-writes).
Artifacts go through the server's proxy (``mlflow-artifacts:``). Errors the server
answers become evtrack's error classes with the server's message.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from evtrack.eventlog import validation as v
from evtrack.entities import Experiment, FileInfo, Metric, MetricHistory, PagedList, Param, Run, RunStatus, RunTag
from evtrack.entities import ViewType
from evtrack.errors import EvtrackError, InvalidParameterError, ResourceNotFoundError
from evtrack.read.backend import get_remote_backend
from evtrack.remote.transport import Transport
from evtrack.tracking import remote_json as js
from evtrack.tracking.names import random_run_name
from evtrack.tracking.rich_artifacts import RichArtifactsMixin

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
_VIEW_NAMES = {ViewType.ACTIVE_ONLY: "ACTIVE_ONLY", ViewType.DELETED_ONLY: "DELETED_ONLY", ViewType.ALL: "ALL"}
_time = time.time


def _view(view_type: Any) -> str:
    return view_type if isinstance(view_type, str) else _VIEW_NAMES.get(view_type, "ACTIVE_ONLY")


class RemoteTrackingClient(RichArtifactsMixin):
    """Experiments, runs and artifacts on a tracking server, with the tracking client's methods."""

    remote = True

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._backend = get_remote_backend(tracking_uri)
        self.tracking_uri: str = self._backend.uri
        self._http: Transport = self._backend.transport
        self._sender = self._backend.writer

    def _call(self, endpoint: str, payload: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
        return self._http.call(endpoint, payload, method=method)

    def _get(self, endpoint: str, **query: Any) -> dict[str, Any]:
        self._backend.refresh()  # this process's queued writes first
        return self._http.call(endpoint, query, method="GET")

    def flush(self):
        """Send every queued write now; the ``FlushResult`` says what the server has not acknowledged."""
        return self._backend.flush()

    # -- experiments ----------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Create an experiment on the server; returns its id."""
        name = v.validate_experiment_name(name)
        payload: dict[str, Any] = {"name": name, "tags": [{"key": k, "value": str(x)} for k, x in (tags or {}).items()]}
        if artifact_location:
            payload["artifact_location"] = artifact_location
        return str(self._call("experiments/create", payload)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return js.experiment(self._get("experiments/get", experiment_id=str(experiment_id))["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            return js.experiment(self._get("experiments/get-by-name", experiment_name=name)["experiment"])
        except ResourceNotFoundError:
            return None

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        payload = {
            "view_type": _view(view_type),
            "max_results": max_results or 1000,
            "filter": filter_string or None,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        self._backend.refresh()
        out = self._call("experiments/search", {k: x for k, x in payload.items() if x is not None})
        return PagedList([js.experiment(e) for e in out.get("experiments") or ()], out.get("next_page_token") or None)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("experiments/delete", {"experiment_id": str(experiment_id)})

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("experiments/restore", {"experiment_id": str(experiment_id)})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call("experiments/update", {"experiment_id": str(experiment_id), "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._call(
            "experiments/set-experiment-tag", {"experiment_id": str(experiment_id), "key": key, "value": str(value)}
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._call("experiments/delete-experiment-tag", {"experiment_id": str(experiment_id), "key": key})

    # -- runs -----------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        user_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run on the server (synchronous: the server gives it its id)."""
        clean = {k: v.validate_tag(v.validate_key(k, "tag"), x) for k, x in (tags or {}).items()}
        if run_name is None:
            run_name = clean.get(RUN_NAME_TAG) or random_run_name()
        elif RUN_NAME_TAG in clean and clean[RUN_NAME_TAG] != run_name:
            raise InvalidParameterError(
                f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different values "
                f"(run_name='{run_name}', {RUN_NAME_TAG}='{clean[RUN_NAME_TAG]}')."
            )
        clean[RUN_NAME_TAG] = run_name
        from evtrack.read.client_base import current_user

        payload = {
            "experiment_id": str(experiment_id),
            "start_time": start_time if start_time is not None else int(_time() * 1000),
            "tags": [{"key": k, "value": x} for k, x in clean.items()],
            "run_name": run_name,
            "user_id": user_id or clean.get("mlflow.user") or current_user(),
        }
        self._backend.refresh()  # an experiment created through the queue exists first
        run = js.run(self._call("runs/create", payload)["run"])
        b = self._backend
        b.writable_runs.add(run.info.run_id)
        b.known_params[run.info.run_id] = {}
        b.artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run

    def get_run(self, run_id: str) -> Run:
        run = js.run(self._get("runs/get", run_id=run_id)["run"])
        self._backend.artifact_uris[run_id] = run.info.artifact_uri
        return run

    def _check_writable(self, run_id: str) -> None:
        """A run this process did not create is looked up once (one request, no retries): a
        deleted run is refused at the call as MLflow refuses it. When the server cannot be
        reached the writes are queued anyway (logging never waits on an outage); the server
        refuses them later if the run is not active, and ``flush()`` reports it."""
        from evtrack.remote.transport import RemoteUnavailableError

        b = self._backend
        if run_id in b.writable_runs:
            return
        v.validate_run_id(run_id)
        try:
            run = js.run(self._http.call("runs/get", {"run_id": run_id}, method="GET", retries=0)["run"])
        except RemoteUnavailableError:
            b.writable_runs.add(run_id)  # not known now; the server decides when it answers
            return
        b.artifact_uris[run_id] = run.info.artifact_uri
        if run.info.lifecycle_stage != "active":
            from evtrack.errors import InvalidStateError

            raise InvalidStateError(
                f"The run {run_id} must be in the 'active' state. Current state is {run.info.lifecycle_stage}."
            )
        b.known_params[run_id] = {**run.data.params, **b.known_params.get(run_id, {})}
        b.writable_runs.add(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Change a run's status and/or name (queued in order with its logs)."""
        self._check_writable(run_id)
        payload: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id}
        if status is not None:
            payload["status"] = v.validate_run_status(status)
            if RunStatus.is_terminated(payload["status"]):
                payload["end_time"] = int(_time() * 1000)
        if name is not None:
            payload["run_name"] = name
        self._sender.add_call("POST", "runs/update", payload)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run: FINISHED by default; sent after everything it logged, at once."""
        self._check_writable(run_id)
        status = v.validate_run_status(status or RunStatus.FINISHED)
        payload = {
            "run_id": run_id,
            "run_uuid": run_id,
            "status": status,
            "end_time": end_time if end_time is not None else int(_time() * 1000),
        }
        self._sender.add_call("POST", "runs/update", payload)

    def _resume(self, run_id: str) -> None:
        self._check_writable(run_id)
        self._sender.add_call("POST", "runs/update", {"run_id": run_id, "run_uuid": run_id, "status": "RUNNING"})

    def delete_run(self, run_id: str) -> None:
        self._backend.refresh()
        self._call("runs/delete", {"run_id": run_id})
        self._backend.writable_runs.discard(run_id)

    def restore_run(self, run_id: str) -> None:
        self._call("runs/restore", {"run_id": run_id})

    # -- logging --------------------------------------------------------------

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Queue one metric point (returns at once; the sender ships it within the flush window)."""
        if run_id not in self._backend.writable_runs:
            self._check_writable(run_id)
        value, timestamp, step = v.validate_metric(
            key, value, int(_time() * 1000) if timestamp is None else timestamp, 0 if step is None else step
        )
        self._sender.add_metric(run_id, key, value, timestamp, step)
        if synchronous:
            self.flush()

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self.log_batch(run_id, params=[Param(key, value)], synchronous=synchronous)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self.log_batch(run_id, tags=[RunTag(key, value)], synchronous=synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._check_writable(run_id)
        self._sender.add_call("POST", "runs/delete-tag", {"run_id": run_id, "key": key})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Validate and queue metrics, params and tags (MLflow's limits and param immutability)."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        v.validate_batch(metrics, params, tags)
        self._check_writable(run_id)
        known = self._backend.known_params.setdefault(run_id, {})
        now = int(_time() * 1000)
        items: list[tuple] = []
        new = v.new_params(run_id, params, known)
        items += [("p", run_id, key, value) for key, value in new.items()]
        for m in metrics:
            key = v.validate_key(m.key, "metric")
            if any(getattr(m, name, None) is not None for name in ("model_id", "dataset_name", "dataset_digest")):
                raise InvalidParameterError(
                    f"Metric {key!r} names a logged model or dataset: evtrack's HTTP client sends plain run "
                    "metrics only; log model metrics with MLflow's client or a store URI"
                )
            number, timestamp, step = v.validate_metric(
                key, m.value, now if m.timestamp is None else m.timestamp, m.step or 0
            )
            items.append(("m", run_id, key, number, timestamp, step))
        for t in tags:
            key = v.validate_key(t.key, "tag")
            items.append(("t", run_id, key, v.validate_tag(key, t.value)))
        known.update(new)
        self._sender.add_items(items)
        if synchronous:
            self.flush()

    def log_inputs(self, run_id: str, datasets: Sequence[Any] | None = None, models: Any = None) -> None:
        """Record the dataset and logged-model inputs of a run (queued in order with its logs)."""
        from evtrack.tracking.inputs import validate_dataset_input

        self._check_writable(run_id)
        items = [validate_dataset_input(d).to_dictionary() for d in datasets or ()]
        payload = {
            "run_id": run_id,
            "datasets": [
                {"dataset": i["dataset"], "tags": [{"key": k, "value": x} for k, x in i["tags"].items()]} for i in items
            ],
        }
        if models:
            payload["models"] = [
                {"model_id": m if isinstance(m, str) else getattr(m, "model_id", None)} for m in models
            ]
        self._sender.add_call("POST", "runs/log-inputs", payload)

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        """Every point of a metric, read page by page, ordered by step then timestamp."""
        import pyarrow as pa

        points: list[Metric] = []
        token = None
        while True:
            out = self._get("metrics/get-history", run_id=run_id, metric_key=key, max_results=25000, page_token=token)
            points.extend(js.metric(m, run_id) for m in out.get("metrics") or ())
            token = out.get("next_page_token")
            if not token:
                break
        points.sort(key=lambda m: (m.step, m.timestamp))
        table = pa.table(
            {
                "step": pa.array([m.step for m in points], pa.int64()),
                "timestamp": pa.array([m.timestamp for m in points], pa.int64()),
                "value": pa.array([m.value for m in points], pa.float64()),
            }
        )
        return MetricHistory(key, run_id, table)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """One page of runs matching the filter; ``.token`` fetches the next page."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(i) for i in experiment_ids]
        payload = {
            "experiment_ids": ids,
            "filter": filter_string or "",
            "run_view_type": _view(run_view_type),
            "max_results": max_results,
            "order_by": list(order_by or []),
        }
        if page_token:
            payload["page_token"] = page_token
        self._backend.refresh()
        out = self._call("runs/search", payload)
        return PagedList([js.run(r) for r in out.get("runs") or ()], out.get("next_page_token") or None)

    # -- artifacts through the server's proxy ---------------------------------

    def _artifact_root_of(self, run_id: str) -> str:
        b = self._backend
        if run_id not in b.artifact_uris:
            b.artifact_uris[run_id] = self.get_run(run_id).info.artifact_uri
        return b.artifact_uris[run_id]

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        root = self._artifact_root_of(run_id)
        rel = v.validate_artifact_path(artifact_path)
        return f"{root}/{rel}" if rel else root

    def _proxy(self, run_id: str) -> Any:
        """The ``ObjectStore`` of the run's artifact root behind the server's proxy."""
        from evtrack.read.backend import open_proxied
        from evtrack.remote.artifact_proxy import is_proxied_uri

        root = self._artifact_root_of(run_id)
        if not is_proxied_uri(root):
            raise EvtrackError(
                f"Run {run_id}'s artifacts are at {root!r}, not behind {self.tracking_uri}'s artifact proxy: "
                "start the server with artifact serving (evtrack server serves them by default; mlflow server "
                "needs --serve-artifacts)"
            )
        return open_proxied(root, self.tracking_uri)

    def _upload(self, run_id: str, local_file: str, rel: str) -> None:
        self._proxy(run_id).put_file(rel, local_file)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload one local file into the run's artifacts (streamed through the proxy)."""
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            raise InvalidParameterError(f"{local!r} is not a file")
        prefix = v.validate_artifact_path(artifact_path)
        name = os.path.basename(local)
        self._upload(run_id, local, f"{prefix}/{name}" if prefix else name)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload a directory's files into the run's artifacts."""
        local = os.fspath(local_dir)
        if not os.path.isdir(local):
            raise InvalidParameterError(f"{local!r} is not a directory")
        prefix = v.validate_artifact_path(artifact_path)
        for folder, _, files in os.walk(local):
            for name in sorted(files):
                rel = os.path.relpath(os.path.join(folder, name), local).replace(os.sep, "/")
                self._upload(run_id, os.path.join(folder, name), f"{prefix}/{rel}" if prefix else rel)

    def _log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        rel = v.validate_artifact_path(artifact_file)
        if not rel:
            raise InvalidParameterError("artifact_file must name a file inside the run's artifacts")
        self._proxy(run_id).put(rel, data)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._log_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, dictionary: dict[str, Any], artifact_file: str) -> None:
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_dump(dictionary).encode()
        else:
            data = json.dumps(dictionary, indent=2).encode()
        self._log_bytes(run_id, data, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly under ``path`` in the run's artifacts."""
        self._backend.wait_background()
        rel = v.validate_artifact_path(path)
        files = []
        for f in self._proxy(run_id).list_dir(rel):
            name = f["path"].rpartition("/")[2]
            child = f"{rel}/{name}" if rel else name
            files.append(FileInfo(child, bool(f.get("is_dir")), int(f["file_size"]) if f.get("file_size") else None))
        return sorted(files, key=lambda f: f.path)

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Download a file or directory of the run's artifacts; returns the local path."""
        rel = v.validate_artifact_path(path)
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="evtrack-artifacts-"))
        entries = self.list_artifacts(run_id, rel) if rel else self.list_artifacts(run_id)
        if rel and not entries:  # a file (or nothing: the download says which)
            target = dst / posixpath.basename(rel)
            self._download(run_id, rel, target)
            return str(target)
        base = dst / posixpath.basename(rel) if rel else dst
        base.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            name = posixpath.basename(entry.path)
            if entry.is_dir:
                self.download_artifacts(run_id, entry.path, str(base))
            else:
                self._download(run_id, entry.path, base / name)
        return str(base)

    def _download(self, run_id: str, rel: str, target: Path) -> None:
        self._proxy(run_id).get_file(rel, str(target))
