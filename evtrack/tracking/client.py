"""``EvtrackClient``: MLflow's ``MlflowClient`` API over the event log.

Writes validate, encode and append events to the backend's buffer (no network);
reads flush this process's buffer and answer from the folded log.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Callable, Sequence

from evtrack.eventlog import catalog
from evtrack.eventlog import events as ev
from evtrack.eventlog import validation as v
from evtrack.read.artifact_uris import parse_runs_uri, register_scheme
from evtrack.read.client_base import StoreClient, current_user
from evtrack.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    MetricHistory,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from evtrack.eventlog.events import now_ms
from evtrack.errors import InvalidParameterError, InvalidStateError, ResourceAlreadyExistsError, ResourceNotFoundError
from evtrack.state.fold import State
from evtrack.query import search
from evtrack.read import views
from evtrack.tracking import artifacts
from evtrack.tracking.inputs import InputsMixin
from evtrack.tracking.model_links.client import ModelLinksMixin
from evtrack.tracking.rich_artifacts import RichArtifactsMixin
from evtrack.tracking.names import random_run_name

_time = time.time
_monotonic = time.monotonic
_validate_metric = v.validate_metric

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"


class TrackingClient(StoreClient, artifacts.ArtifactsMixin, RichArtifactsMixin, InputsMixin, ModelLinksMixin):
    """Experiments and runs, with the methods and signatures of MLflow's ``MlflowClient``
    (``evtrack.MlflowClient`` adds the registry's)."""

    @classmethod
    def _remote_client(cls, uri: str) -> Any:
        from evtrack.tracking.remote_client import RemoteTrackingClient

        return RemoteTrackingClient(uri)

    # -- plumbing -------------------------------------------------------------

    def _state(self, max_age: float | None = None) -> State:
        """Every experiment, fresh (this process's buffer flushed first; the store listed unless it
        was less than ``max_age`` seconds ago, default ``EVTRACK_READ_FRESHNESS``)."""
        self._backend.refresh(max_age)
        return self._backend.reader.experiments()

    def _run_view(self, run_id: str, listed_within: float | None = None) -> State:
        """A fresh state holding ``run_id`` (if it exists) and every experiment. A run not found
        within the freshness window is looked for again after listing the store. With
        ``listed_within``, a listing of the store younger than that is used as it is, even where the
        store could tell that it changed since (see ``StoreReader.refresh``)."""
        backend = self._backend
        listed = backend.refresh() if listed_within is None else backend.refresh(listed_within, exact=False)
        state = backend.reader.run(run_id)
        if not listed:
            st = state.runs.get(run_id)
            if st is None or not st.exists:
                backend.refresh(max_age=0)
                state = backend.reader.run(run_id)
        return state

    # -- experiments ----------------------------------------------------------

    def _artifact_root(self, experiment_id: str) -> str:
        return f"{self.store.uri}/artifacts/{experiment_id}"

    def _create_claimed(
        self, experiment_id: str, name: str, artifact_location: str | None, tags: dict[str, str]
    ) -> None:
        self._emit(
            ev.ExperimentCreated(
                eid=self._eid(),
                ts=now_ms(),
                experiment_id=experiment_id,
                name=name,
                artifact_location=artifact_location or self._artifact_root(experiment_id),
                tags=tags,
            )
        )
        self.flush()

    def _ensure_experiment_event(self, claim: dict[str, Any]) -> None:
        """Repair a claim whose creator died before its experiment_created event landed."""
        state = self._state(max_age=0)  # another process's event: list, do not trust the window
        exp = state.experiments.get(claim["experiment_id"])
        if exp is None or not exp.exists:
            self._create_claimed(
                claim["experiment_id"], claim["name"], claim.get("artifact_location"), claim.get("tags") or {}
            )

    def _ensure_default_experiment(self) -> None:
        key = catalog.name_key(catalog.EXPERIMENT_NAMES, DEFAULT_EXPERIMENT_NAME)
        if self._backend.default_experiment_ready:
            return
        payload = {"name": DEFAULT_EXPERIMENT_NAME, "experiment_id": DEFAULT_EXPERIMENT_ID, "nonce": uuid.uuid4().hex}
        won, winner = catalog.claim(self.store, key, payload)
        if won:
            self._create_claimed(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None, {})
        elif winner["experiment_id"] == DEFAULT_EXPERIMENT_ID:
            self._ensure_experiment_event(winner)
        self._backend.default_experiment_ready = True

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
        *,
        artifact_root: str | None = None,
    ) -> str:
        """Create an experiment; returns its id. The name is claimed with put-if-absent.

        Without ``artifact_location`` the experiment's artifacts go to
        ``<artifact_root>/<id>`` (the store's ``artifacts`` directory by default). A relative
        path is made absolute against the working directory, as MLflow's stores do.
        """
        name = v.validate_experiment_name(name)
        if artifact_location and "://" not in artifact_location and ":" not in artifact_location.split("/")[0]:
            artifact_location = os.path.abspath(os.path.expanduser(artifact_location))
        clean_tags = {k: v.validate_experiment_tag(k, val) for k, val in (tags or {}).items()}
        self._ensure_default_experiment()
        key = catalog.name_key(catalog.EXPERIMENT_NAMES, name)
        existing = catalog.read_claim(self.store, key)
        if existing is not None:
            self._ensure_experiment_event(existing)
            raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.")
        number = catalog.claim_next_number(self.store, catalog.EXPERIMENT_IDS, {"name": name})
        experiment_id = str(number)
        if artifact_location is None and artifact_root:
            artifact_location = f"{artifact_root.rstrip('/')}/{experiment_id}"
        payload = {
            "name": name,
            "experiment_id": experiment_id,
            "artifact_location": artifact_location,
            "tags": clean_tags,
        }
        won, winner = catalog.claim(self.store, key, payload)
        if not won:
            catalog.release(self.store, f"{catalog.EXPERIMENT_IDS}{number:010d}.json")
            self._ensure_experiment_event(winner)
            raise ResourceAlreadyExistsError(f"Experiment(name={name}) already exists.")
        self._create_claimed(experiment_id, name, artifact_location, clean_tags)
        return experiment_id

    def _experiment_state(self, experiment_id: str, state: State | None = None):
        st = (state or self._state()).experiments.get(str(experiment_id))
        if (st is None or not st.exists) and state is None:  # created within the window elsewhere?
            st = self._state(max_age=0).experiments.get(str(experiment_id))
        if st is None or not st.exists:
            raise ResourceNotFoundError(f"No Experiment with id={experiment_id} exists")
        return st

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; ``ResourceNotFoundError`` when there is none."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            self._ensure_default_experiment()
        return views.experiment(self._experiment_state(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this name, or None."""
        if name == DEFAULT_EXPERIMENT_NAME:
            self._ensure_default_experiment()
        claim = catalog.read_claim(self.store, catalog.name_key(catalog.EXPERIMENT_NAMES, name))
        if claim is None:
            return None
        state = self._state()
        exp = state.experiments.get(claim["experiment_id"])
        if exp is None or not exp.exists:
            self._ensure_experiment_event(claim)
            exp = self._experiment_state(claim["experiment_id"])
        if exp.name != name:  # renamed away and the old claim not yet released
            return None
        return views.experiment(exp)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Experiments matching MLflow's experiment filter grammar, one page at a time."""
        self._ensure_default_experiment()
        return search.search_experiments(self._state(), view_type, max_results, filter_string, order_by, page_token)

    def _experiment_event(self, experiment_id: str, event_type: Callable[..., ev.Event], **fields: Any) -> None:
        self._experiment_state(experiment_id)
        self._emit(event_type(eid=self._eid(), ts=now_ms(), experiment_id=str(experiment_id), **fields))

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment (and so its runs) deleted."""
        exp = self._experiment_state(experiment_id)
        if exp.lifecycle_stage == LifecycleStage.DELETED:
            raise InvalidStateError(f"Cannot delete an already deleted experiment: {experiment_id}")
        self._experiment_event(experiment_id, ev.ExperimentDeleted)
        self._backend.writable_runs.clear()  # its runs are deleted too: re-check before writing
        self._backend.active_experiments.pop(str(experiment_id), None)

    def restore_experiment(self, experiment_id: str) -> None:
        """Bring a deleted experiment back."""
        exp = self._experiment_state(experiment_id)
        if exp.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidStateError(f"Cannot restore an active experiment: {experiment_id}")
        self._experiment_event(experiment_id, ev.ExperimentRestored)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new (unclaimed) name."""
        new_name = v.validate_experiment_name(new_name)
        exp = self._experiment_state(experiment_id)
        if exp.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidStateError(f"Cannot rename a non-active experiment: {experiment_id}")
        if new_name == exp.name:
            return
        payload = {"name": new_name, "experiment_id": str(experiment_id)}
        won, winner = catalog.claim(self.store, catalog.name_key(catalog.EXPERIMENT_NAMES, new_name), payload)
        if not won and winner.get("experiment_id") != str(experiment_id):
            raise ResourceAlreadyExistsError(f"Experiment(name={new_name}) already exists.")
        old_name = exp.name  # the state folds the rename once it is read again
        self._experiment_event(experiment_id, ev.ExperimentRenamed, name=new_name)
        self.flush()
        catalog.release(self.store, catalog.name_key(catalog.EXPERIMENT_NAMES, old_name))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        v.validate_key(key, "tag")
        value = v.validate_experiment_tag(key, value)
        self._experiment_event(experiment_id, ev.ExperimentTagSet, key=key, value=value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        exp = self._experiment_state(experiment_id)
        if key not in {k for k, s in exp.tags.items() if s.value is not None}:
            raise ResourceNotFoundError(f"No tag with name: {key} in experiment {experiment_id}.")
        self._experiment_event(experiment_id, ev.ExperimentTagDeleted, key=key)

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
        """Create a RUNNING run in an experiment; returns it (``user_id`` defaults to the
        ``mlflow.user`` tag, then the current user)."""
        experiment_id = str(experiment_id)
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            self._ensure_default_experiment()
        b = self._backend
        artifact_location = b.active_experiments.get(experiment_id)
        if artifact_location is None:  # not seen active by this process yet: look it up once
            exp = self._experiment_state(experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidStateError(
                    f"The experiment {experiment_id} must be in the 'active' state. "
                    f"Current state is {exp.lifecycle_stage}."
                )
            artifact_location = b.active_experiments[experiment_id] = exp.artifact_location
        clean = {k: v.validate_tag(v.validate_key(k, "tag"), val) for k, val in (tags or {}).items()}
        if run_name is None:
            run_name = clean.get(RUN_NAME_TAG) or random_run_name()
        elif RUN_NAME_TAG in clean and clean[RUN_NAME_TAG] != run_name:
            raise InvalidParameterError(
                f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with "
                f"different values (run_name='{run_name}', {RUN_NAME_TAG}='{clean[RUN_NAME_TAG]}')."
            )
        clean[RUN_NAME_TAG] = run_name
        user = user_id or clean.get("mlflow.user") or current_user()
        run_id = uuid.uuid4().hex
        start = start_time if start_time is not None else now_ms()
        artifact_uri = f"{artifact_location}/{run_id}/artifacts"
        event = ev.RunCreated(
            eid=self._eid(),
            ts=now_ms(),
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=run_name,
            user_id=user,
            start_time=start,
            artifact_uri=artifact_uri,
            parent_run_id=clean.get(PARENT_RUN_TAG),
            tags=clean,
        )
        self._emit(event)
        b.writable_runs[run_id] = _monotonic()
        b.known_params[run_id] = {}
        b.artifact_uris[run_id] = artifact_uri
        b.run_experiments[run_id] = experiment_id
        return views.new_run(event)

    def _run_state(self, run_id: str, state: State | None = None):
        st = (state or self._run_view(run_id)).runs.get(run_id)
        if st is None or not st.exists:
            raise ResourceNotFoundError(f"Run with id={run_id} not found")  # MLflow's SQL store's words
        return st

    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics and tags."""
        state = self._run_view(run_id)
        return views.run(state, self._run_state(run_id, state))

    def _check_writable(self, run_id: str) -> None:
        b = self._backend
        checked = b.writable_runs.get(run_id)
        if checked is not None and (b.writable_ttl is None or _monotonic() - checked < b.writable_ttl):
            return
        v.validate_run_id(run_id)
        if b.writable_ttl is None:
            state, seen_at = self._run_view(run_id), _monotonic()
        else:
            # A check stands for the TTL from the listing it read, so it may use a listing up to
            # half that old: a server writing to many runs lists for their checks about twice a
            # TTL, not once a run, and a deletion elsewhere is still refused within the TTL.
            state = self._run_view(run_id, listed_within=b.writable_ttl / 2)
            seen_at = b.reader.listed_at if b.reader.listed_at is not None else _monotonic()
        run = self._run_state(run_id, state)
        stage = views.run_lifecycle(state, run)
        if stage != LifecycleStage.ACTIVE:
            raise InvalidStateError(f"The run {run_id} must be in the 'active' state. Current state is {stage}.")
        b.known_params[run_id] = {**state.live_params(run_id), **b.known_params.get(run_id, {})}
        b.artifact_uris[run_id] = run.artifact_uri
        b.run_experiments[run_id] = run.experiment_id
        b.writable_runs[run_id] = seen_at

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Change a run's status and/or name."""
        self._check_writable(run_id)
        if status is not None:
            status = v.validate_run_status(status)
        end_time = now_ms() if status and RunStatus.is_terminated(status) else None
        self._emit(
            ev.RunUpdated(eid=self._eid(), ts=now_ms(), run_id=run_id, status=status, end_time=end_time, run_name=name)
        )
        if name is not None:
            self._emit(ev.TagSet(eid=self._eid(), ts=now_ms(), run_id=run_id, key=RUN_NAME_TAG, value=name))

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run: FINISHED by default, with ``end_time`` now unless given."""
        self._check_writable(run_id)
        status = v.validate_run_status(status or RunStatus.FINISHED)
        self._emit(
            ev.RunUpdated(
                eid=self._eid(),
                ts=now_ms(),
                run_id=run_id,
                status=status,
                end_time=end_time if end_time is not None else now_ms(),
            )
        )
        self._backend.writer.request_flush()  # a run's end ships at once (end_run does this)

    def _resume(self, run_id: str) -> None:
        """Set a run back to RUNNING (``start_run(run_id=...)``)."""
        self._check_writable(run_id)
        self._emit(ev.RunUpdated(eid=self._eid(), ts=now_ms(), run_id=run_id, status=RunStatus.RUNNING))

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted."""
        run = self._run_state(run_id)
        if run.lifecycle_stage == LifecycleStage.DELETED:
            raise InvalidStateError(f"The run {run_id} is already deleted.")
        self._emit(ev.RunDeleted(eid=self._eid(), ts=now_ms(), run_id=run_id))
        self._backend.writable_runs.pop(run_id, None)

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back."""
        run = self._run_state(run_id)
        if run.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidStateError(f"The run {run_id} must be in the 'deleted' state to be restored.")
        self._emit(ev.RunRestored(eid=self._eid(), ts=now_ms(), run_id=run_id))

    # -- logging --------------------------------------------------------------

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> None:
        """Log one metric point (step 0 and now by default); with ``model_id`` (MLflow 3) it is
        also one of that logged model's metrics, measured on the named dataset if given.

        The hot path: the same event ``log_batch`` would write, encoded without
        building intermediate objects so a training loop pays microseconds.
        """
        if model_id is not None or dataset_name is not None or dataset_digest is not None:
            stamp = now_ms() if timestamp is None else timestamp
            point = Metric(key, value, stamp, step or 0, None, model_id, dataset_name, dataset_digest)
            self.log_batch(run_id, metrics=[point], synchronous=synchronous)
            return
        b = self._backend
        checked = b.writable_runs.get(run_id)
        if checked is None or (b.writable_ttl is not None and _monotonic() - checked >= b.writable_ttl):
            self._check_writable(run_id)
        ts = int(_time() * 1000)
        value, timestamp, step = _validate_metric(
            key, value, ts if timestamp is None else timestamp, 0 if step is None else step
        )
        b.writer.append_metric(ts, run_id, key, value, step, timestamp)
        if synchronous:
            self.flush()

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """Log a parameter (immutable); returns the value."""
        self.log_batch(run_id, params=[Param(key, value)], synchronous=synchronous)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        """Set a tag on a run (last write wins)."""
        self.log_batch(run_id, tags=[RunTag(key, value)], synchronous=synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        self._check_writable(run_id)
        if key not in self._run_view(run_id).live_tags(run_id):
            raise ResourceNotFoundError(f"No tag with name: {key} in run with id {run_id}")
        self._emit(ev.TagDeleted(eid=self._eid(), ts=now_ms(), run_id=run_id, key=key))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Log metrics, params and tags at once: the one write primitive, with MLflow's limits."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        v.validate_batch(metrics, params, tags)
        self._check_writable(run_id)
        known = self._backend.known_params.setdefault(run_id, {})
        ts = now_ms()
        eid, metric_item = self._eid, self._backend.writer.metric_item
        lines: list = []  # encoded lines, and metric points as buffer items (encoded when cut)
        new_params = v.new_params(run_id, params, known)
        for key, value in new_params.items():
            lines.append(ev.encode(ev.ParamLogged(eid=eid(), ts=ts, run_id=run_id, key=key, value=value)))
        linked = []
        for m in metrics:
            key = v.validate_key(m.key, "metric")
            number, timestamp, step = v.validate_metric(
                key, m.value, ts if m.timestamp is None else m.timestamp, m.step or 0
            )
            lines.append(metric_item(ts, run_id, key, number, step, timestamp))
            plain = m.__class__ is Metric and m.model_id is None and m.dataset_name is None and m.dataset_digest is None
            if not plain and v.metric_names_a_model(m):
                linked.append((m, key, number, timestamp, step))
        if linked:
            lines += self._model_metric_lines(run_id, ts, linked)
        for t in tags:
            key = v.validate_key(t.key, "tag")
            value = v.validate_tag(key, t.value)
            lines.append(ev.encode(ev.TagSet(eid=eid(), ts=ts, run_id=run_id, key=key, value=value)))
            if key == RUN_NAME_TAG:
                lines.append(ev.encode(ev.RunUpdated(eid=eid(), ts=ts, run_id=run_id, run_name=value)))
        known.update(new_params)
        self._backend.writer.append_many(lines)
        if synchronous:
            self.flush()

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        """Every point of a metric, ordered by step, then timestamp (a read-only list of ``Metric``)."""
        self._run_state(run_id)
        return MetricHistory(key, run_id, self._backend.reader.metric_history(run_id, key))

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """One page of runs matching MLflow's filter grammar; ``.token`` fetches the next page."""
        from evtrack.query.search import search_runs

        return search_runs(
            self._backend, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )

    def _search_runs_points(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[PagedList, dict[str, dict[str, tuple[int, int]]]]:
        """``search_runs`` and, by run id, the (step, timestamp) of each latest metric value (what
        MLflow's REST answers carry), from one snapshot."""
        from evtrack.query.search import search_runs

        points: dict[str, dict[str, tuple[int, int]]] = {}
        found = search_runs(
            self._backend,
            experiment_ids,
            filter_string,
            run_view_type,
            max_results,
            order_by,
            page_token,
            points=points,
        )
        return found, points


def _resolve_runs_uri(uri: str, tracking_uri: str | None) -> str:
    run_id, path = parse_runs_uri(uri)
    return TrackingClient(tracking_uri).get_artifact_uri(run_id, path)


register_scheme("runs", _resolve_runs_uri)
