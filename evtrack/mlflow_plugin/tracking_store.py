"""MLflow's tracking store (``mlflow.store.tracking.AbstractStore``) on evtrack's event log.

Each call maps onto evtrack's own client, so what MLflow logs here is exactly what
``evtrack.log_*`` would have written: the same events, the same folds, visible to
``evtrack.search_runs``, ``evtrack.sql``, ``evtrack ui`` and ``evtrack compact``, and the
other way round. MLflow's rules hold as evtrack keeps them (params immutable, MLflow's
limits and messages, lifecycle stages, system tags); errors reach MLflow as
``MlflowException`` with MLflow's error codes.

Writes never wait on the network: ``log_metric``, ``log_param``, ``set_tag`` and
``log_batch`` hand events to evtrack's background writer and return; the events are
sent when the writer's window fills, when a run ends (``update_run_info`` with a
terminal status), on ``mlflow.flush_async_logging()`` and at exit. MLflow's store API
does not pass ``synchronous=True`` down to the store, so it cannot make a call wait:
``mlflow.flush_async_logging()`` (or ending the run) is the durability point.

``search_runs`` is answered by evtrack's search engine (DuckDB over the compacted tables
and the inbox tail); only the page asked for becomes MLflow entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlflow.entities import ViewType as MlflowViewType
from mlflow.entities.run_status import RunStatus as MlflowRunStatus
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore

from evtrack import entities as et
from evtrack.client import MlflowClient as EvtrackClient
from evtrack.mlflow_plugin import convert
from evtrack.mlflow_plugin.errors import feature_disabled, mlflow_errors, refuse_unsupported, translate_errors
from evtrack.mlflow_plugin.logged_model_methods import LoggedModelMethods
from evtrack.store.uris import store_location
from evtrack.models.run_logging import LOG_MODEL_HISTORY_TAG, history_with
from evtrack.read.views import decode_page_token, encode_page_token


@translate_errors
class EvtrackTrackingStore(LoggedModelMethods, AbstractStore):
    """MLflow's tracking store for ``evtrack:`` and ``evtrack+s3:`` URIs."""

    def __init__(self, store_uri: str, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.store_uri = store_uri
        with mlflow_errors():
            self.tracking_uri = store_location(store_uri)
        self.artifact_root_uri = artifact_uri.rstrip("/") if artifact_uri else None
        self._client = EvtrackClient(self.tracking_uri)

    # -- experiments ----------------------------------------------------------------------

    def search_experiments(
        self,
        view_type: int = MlflowViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """One page of experiments matching MLflow's experiment filter and ordering."""
        page = self._client.search_experiments(view_type, max_results, filter_string, order_by, page_token)
        return PagedList([convert.experiment(e) for e in page], page.token)

    def create_experiment(self, name: str, artifact_location: str | None = None, tags: Sequence[Any] = ()) -> str:
        """A new experiment; its artifacts go to ``artifact_location``, else under the store's
        (or the server's default) artifact root."""
        return self._client.create_experiment(
            name, artifact_location or None, {t.key: t.value for t in tags or ()}, artifact_root=self.artifact_root_uri
        )

    def get_experiment(self, experiment_id: str) -> Any:
        """The experiment with this id (RESOURCE_DOES_NOT_EXIST when there is none)."""
        return convert.experiment(self._client.get_experiment(str(experiment_id)))

    def get_experiment_by_name(self, experiment_name: str) -> Any:
        """The experiment with this name, or None."""
        found = self._client.get_experiment_by_name(experiment_name)
        return convert.experiment(found) if found is not None else None

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment (and so its runs) deleted."""
        self._client.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        """Bring a deleted experiment back."""
        self._client.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an active experiment a new, unclaimed name."""
        self._client.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        """Set a tag on an experiment."""
        self._client.set_experiment_tag(str(experiment_id), tag.key, tag.value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        self._client.delete_experiment_tag(str(experiment_id), key)

    # -- runs -----------------------------------------------------------------------------

    def _latest_of(self, run_id: str) -> dict[str, tuple[int, int]]:
        state = self._client._run_view(run_id)
        return {k: (s.latest[0], s.latest[1]) for k, s in state.metrics.get(run_id, {}).items() if s.latest}

    def get_run(self, run_id: str) -> Any:
        """The run with its latest metric points, params, tags, dataset and model inputs and model outputs."""
        run = self._client.get_run(run_id)
        inputs, outputs = self._client.model_links_of_runs(run_id)
        return convert.run(run, self._latest_of(run_id), outputs.get(run_id, ()), inputs.get(run_id, ()))

    def create_run(
        self, experiment_id: str, user_id: str, start_time: int, tags: Sequence[Any], run_name: str | None
    ) -> Any:
        """A RUNNING run in an active experiment."""
        run = self._client.create_run(
            str(experiment_id),
            start_time=start_time,
            tags={t.key: t.value for t in tags or ()},
            run_name=run_name or None,
            user_id=user_id or None,
        )
        return convert.run(run)

    def update_run_info(self, run_id: str, run_status: int | None, end_time: int | None, run_name: str | None) -> Any:
        """Change a run's status, end time or name; a terminal status ships the run's events at once."""
        status = MlflowRunStatus.to_string(run_status) if run_status is not None else None
        if status is not None and et.RunStatus.is_terminated(status):
            self._client.set_terminated(run_id, status, end_time)
            if run_name:
                self._client.update_run(run_id, name=run_name)
        elif status is not None or run_name:
            self._client.update_run(run_id, status=status, name=run_name or None)
        return convert.run_info(self._client.get_run(run_id).info)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted."""
        self._client.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back."""
        self._client.restore_run(run_id)

    # -- logging --------------------------------------------------------------------------

    def log_metric(self, run_id: str, metric: Any) -> None:
        """Log one metric point (queued for the background writer); with a ``model_id``, also one of
        that logged model's metrics."""
        self._client.log_metric(
            run_id,
            metric.key,
            metric.value,
            metric.timestamp,
            metric.step,
            model_id=getattr(metric, "model_id", None),
            dataset_name=getattr(metric, "dataset_name", None),
            dataset_digest=getattr(metric, "dataset_digest", None),
        )

    def log_param(self, run_id: str, param: Any) -> None:
        """Log one param (immutable: another value for the key is refused)."""
        self._client.log_batch(run_id, params=[et.Param(param.key, param.value)])

    def set_tag(self, run_id: str, tag: Any) -> None:
        """Set a tag on a run."""
        self._client.log_batch(run_id, tags=[et.RunTag(tag.key, tag.value)])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        self._client.delete_tag(run_id, key)

    def log_batch(self, run_id: str, metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any]) -> None:
        """Log metrics, params and tags at once, within MLflow's batch limits (MLflow's entities go to
        evtrack's writer as they are: both have ``key``, ``value``, ``timestamp`` and ``step``)."""
        self._client.log_batch(run_id, metrics=metrics or (), params=params or (), tags=tags or ())

    def flush_async_logging(self) -> None:
        """Send everything queued (MLflow's async queue, then evtrack's writer) and wait for it."""
        super().flush_async_logging()
        self._client.flush()

    def log_inputs(
        self, run_id: str, datasets: Sequence[Any] | None = None, models: Sequence[Any] | None = None
    ) -> None:
        """Record the datasets and the logged models a run used."""
        if datasets or models:
            self._client.log_inputs(
                run_id, datasets=[convert.to_dataset_input(d) for d in datasets or ()], models=models or ()
            )

    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        """Append a model to the run's ``mlflow.log-model.history`` tag (MLflow 2's record)."""
        current = self._client.get_run(run_id).data.tags.get(LOG_MODEL_HISTORY_TAG)
        entry = mlflow_model.get_tags_dict()
        self._client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, history_with(current, entry))

    # -- reading metrics and searching ----------------------------------------------------------

    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList:
        """Every point of a metric by step then timestamp; ``max_results`` pages it."""
        history = self._client.get_metric_history(run_id, metric_key)
        start = decode_page_token(page_token) if page_token else 0
        end = len(history) if max_results is None else start + max(0, int(max_results))
        points = [convert.metric_point(m) for m in history[start:end]]
        return PagedList(points, encode_page_token(end) if end < len(history) else None)

    def _search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> tuple[list[Any], str | None]:
        page, latest = self._client._search_runs_points(
            [str(e) for e in experiment_ids],
            filter_string or "",
            run_view_type,
            max_results,
            list(order_by or []),
            page_token,
        )
        # as MLflow's SQL store: a search gives the runs' model outputs, not their model inputs
        outputs = self._client.model_links_of_runs()[1] if page else {}
        return [convert.run(r, latest.get(r.info.run_id), outputs.get(r.info.run_id, ())) for r in page], page.token

    def _search_datasets(self, experiment_ids: Sequence[str]) -> list[Any]:
        """The distinct datasets the runs of these experiments used (the UI's dataset filter; at most
        1,000, as MLflow's SQL store)."""
        from mlflow.entities import _DatasetSummary as DatasetSummary  # what the SQL store returns here

        from evtrack.query.search import engine_of

        snap = engine_of(self._client._backend).snapshot()
        found = snap.rows(
            "SELECT DISTINCT r.experiment_id, i.name, i.digest, i.context FROM inputs i JOIN runs r USING (run_id) "
            "WHERE r.experiment_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1, 2, 3, 4 LIMIT 1000",
            [[str(e) for e in experiment_ids]],
        )
        return [DatasetSummary(experiment_id=e, name=n, digest=d, context=c) for e, n, d, c in found]

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        """Traces are not kept by the evtrack store."""
        raise feature_disabled("Traces")


refuse_unsupported(EvtrackTrackingStore, AbstractStore)
