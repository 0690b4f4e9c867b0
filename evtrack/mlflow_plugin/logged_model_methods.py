"""MLflow 3's logged models on the tracking store: what ``mlflow.<flavor>.log_model`` calls.

The models are kept by :mod:`evtrack.tracking.logged_models` (the documents the server
keeps too), so a model logged through the plugin is the same model ``evtrack server``
shows. Its files go under ``<experiment artifact location>/models/<model_id>/artifacts``
and are written by MLflow's own artifact repositories.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlflow.entities import LoggedModelStatus
from mlflow.store.entities.paged_list import PagedList

from evtrack.entities import LifecycleStage
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.mlflow_plugin import convert
from evtrack.mlflow_plugin.errors import translate_errors
from evtrack.tracking.logged_models import LoggedModel, LoggedModelStore

_FINAL = {LoggedModelStatus.READY: "READY", LoggedModelStatus.FAILED: "FAILED"}


@translate_errors
class LoggedModelMethods:
    """The logged-model methods of :class:`~evtrack.mlflow_plugin.tracking_store.EvtrackTrackingStore`."""

    _client: Any

    @property
    def _models(self) -> LoggedModelStore:
        return LoggedModelStore(self._client.store)

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: list[Any] | None = None,
        params: list[Any] | None = None,
        model_type: str | None = None,
    ) -> Any:
        """A new PENDING model in an active experiment."""
        experiment = self._client.get_experiment(str(experiment_id))
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidParameterError(
                f"The experiment {experiment_id} must be in the 'active' state. "
                f"Current state is {experiment.lifecycle_stage}."
            )
        model = self._models.create(
            str(experiment_id),
            experiment.artifact_location,
            name=name or None,
            model_type=model_type,
            source_run_id=source_run_id,
            tags={t.key: t.value for t in tags or ()},
            params={p.key: p.value for p in params or ()},
        )
        return convert.logged_model(model)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        """One model with its metrics (RESOURCE_DOES_NOT_EXIST for an unknown or deleted one)."""
        model = self._models.get(model_id, allow_deleted=allow_deleted)
        return convert.logged_model(model, self._client.logged_model_metrics(model_id))

    def finalize_logged_model(self, model_id: str, status: Any) -> Any:
        """Set a model's final status (READY or FAILED)."""
        final = _FINAL.get(LoggedModelStatus(status) if not isinstance(status, LoggedModelStatus) else status)
        if final is None:
            raise InvalidParameterError(f"Invalid final status {status!r} for a logged model: expected READY or FAILED")
        model = self._models.update(model_id, lambda m: replace(m, status=final))
        return convert.logged_model(model, self._client.logged_model_metrics(model_id))

    def delete_logged_model(self, model_id: str) -> None:
        """Mark a model deleted (its files stay until garbage collection)."""
        self._models.update(model_id, lambda m: replace(m, deleted=True))

    def set_logged_model_tags(self, model_id: str, tags: list[Any]) -> None:
        """Set (or overwrite) tags on a model."""
        new = {t.key: t.value for t in tags}
        self._models.update(model_id, lambda m: replace(m, tags={**m.tags, **new}))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove one tag (RESOURCE_DOES_NOT_EXIST when the model has no such tag)."""

        def drop(m: LoggedModel) -> LoggedModel:
            if key not in m.tags:
                raise ResourceNotFoundError(f"No tag with key {key!r} found for model with ID {model_id!r}.")
            return replace(m, tags={k: v for k, v in m.tags.items() if k != key})

        self._models.update(model_id, drop)

    def log_logged_model_params(self, model_id: str, params: list[Any]) -> None:
        """Add params to a model."""
        new = {p.key: p.value for p in params}
        self._models.update(model_id, lambda m: replace(m, params={**m.params, **new}))

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Models of ``experiment_ids`` matching MLflow's logged-model filter, one page at a time."""
        metrics = self._client.logged_model_metrics_by_model()
        page, token = self._models.search(
            [str(e) for e in experiment_ids],
            filter_string,
            list(order_by or ()),
            max_results or 100,
            page_token,
            datasets=list(datasets or ()) or None,
            metrics=metrics,
        )
        return PagedList([convert.logged_model(m, metrics.get(m.model_id, ())) for m in page], token)

    def log_outputs(self, run_id: str, models: list[Any]) -> None:
        """Record that a run produced these logged models (``run.outputs.model_outputs``)."""
        self._client.log_outputs(run_id, models)
