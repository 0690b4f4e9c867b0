"""The tracking client's part for model links: logging a logged model's metrics, a run's model
inputs and outputs as events, and reading them back (MLflow 3's ``LoggedModel.metrics``,
``run.inputs.model_inputs``, ``run.outputs.model_outputs``)."""

from __future__ import annotations

import math
import sys
from typing import Any, Sequence

from evtrack.entities import Metric
from evtrack.errors import InvalidParameterError
from evtrack.eventlog import events as ev
from evtrack.tracking.model_links.events import LoggedModelMetric, ModelInputLogged, ModelOutputLogged
from evtrack.tracking.model_links.fold import MODEL_LINKS_DOMAIN, ModelLinks, links_of


def _sanitized(value: float) -> float:
    """A model metric's value as MLflow's SQL store keeps it: NaN as 0, ±infinity as ±max float (the
    run's own metric point keeps the value as given)."""
    if math.isnan(value):
        return 0.0
    if math.isinf(value):
        return math.copysign(sys.float_info.max, value)
    return value


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _model_id(item: Any, path: str) -> str:
    model_id = item if isinstance(item, str) else _field(item, "model_id")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidParameterError(f"Missing value for required parameter '{path}.model_id'.")
    return model_id


class ModelLinksMixin:
    """Model metrics, inputs and outputs of the tracking client (MLflow 3's logged-model links)."""

    _backend: Any
    _eid: Any

    def _model_links(self, max_age: float | None = None) -> ModelLinks:
        """Every model link, fresh (the store listed unless it was less than ``max_age`` s ago)."""
        self._backend.refresh(max_age)
        # a copy: the reader folds new events into its own while a request reads this one
        return self._backend.reader.read_domain(MODEL_LINKS_DOMAIN, lambda st: links_of(st).copy())

    def _model_metric_lines(self, run_id: str, ts: int, points: list[tuple[Any, str, float, int, int]]) -> list[bytes]:
        """The ``logged_model_metric`` lines of checked points ``(metric, key, value, timestamp, step)``
        whose metric names a ``model_id``."""
        experiment_id = self._backend.run_experiments.get(run_id)  # set by the write check: no read
        if experiment_id is None:
            experiment_id = self._run_state(run_id).experiment_id  # type: ignore[attr-defined]
        return [
            ev.encode(
                LoggedModelMetric(
                    eid=self._eid(),
                    ts=ts,
                    model_id=str(_field(m, "model_id")),
                    source_run_id=run_id,
                    experiment_id=experiment_id,
                    key=key,
                    value=_sanitized(value),
                    step=step,
                    timestamp=timestamp,
                    dataset_name=_field(m, "dataset_name") or None,
                    dataset_digest=_field(m, "dataset_digest") or None,
                )
            )
            for m, key, value, timestamp, step in points
        ]

    def _model_input_lines(self, run_id: str, ts: int, models: Sequence[Any]) -> list[bytes]:
        """The ``model_input`` lines of ``log_inputs(models=…)`` (ids, dicts or ``LoggedModelInput``)."""
        ids = [_model_id(m, f"models[{i}]") for i, m in enumerate(models)]
        return [
            ev.encode(ModelInputLogged(eid=self._eid(), ts=ts, model_id=model_id, source_run_id=run_id))
            for model_id in dict.fromkeys(ids)
        ]

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        """Record that a run produced logged models (``LoggedModelOutput`` or ``{"model_id", "step"}``):
        ``run.outputs.model_outputs``, as MLflow's ``MlflowClient.log_outputs``."""
        outputs = []
        for i, item in enumerate(models):
            step = _field(item, "step")
            if step is None:
                step = 0
            if isinstance(step, bool) or not isinstance(step, int):
                raise InvalidParameterError(f"Invalid value {step!r} for parameter 'models[{i}].step' supplied.")
            outputs.append((_model_id(item, f"models[{i}]"), step))
        self._check_writable(run_id)  # type: ignore[attr-defined]
        ts = ev.now_ms()
        lines = [
            ev.encode(ModelOutputLogged(eid=self._eid(), ts=ts, model_id=m, source_run_id=run_id, step=s))
            for m, s in dict.fromkeys(outputs)
        ]
        self._backend.writer.append_many(lines)

    def logged_model_metrics(self, model_id: str) -> list[Metric]:
        """Every metric point logged for a model (by key, timestamp, step, run), each with its run,
        model and dataset, as MLflow's ``LoggedModel.metrics``."""
        return self._metrics_by_model(self._model_links(), model_id).get(model_id, [])

    def logged_model_metrics_by_model(self) -> dict[str, list[Metric]]:
        """Every logged model's metric points (as ``logged_model_metrics``), by model id."""
        return self._metrics_by_model(self._model_links())

    @staticmethod
    def _metrics_by_model(links: ModelLinks, only: str | None = None) -> dict[str, list[Metric]]:
        points = [(k, p) for k, p in links.metrics.items() if only is None or k[0] == only]
        points.sort(key=lambda kp: (kp[0][0], kp[0][2], kp[0][3], kp[0][4], kp[0][1]))
        out: dict[str, list[Metric]] = {}
        for (model_id, run_id, key, timestamp, step), p in points:
            out.setdefault(model_id, []).append(
                Metric(key, p.value, timestamp, step, run_id, model_id, p.dataset_name, p.dataset_digest)
            )
        return out

    def model_links_of_runs(
        self, run_id: str | None = None
    ) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, int]]]]:
        """Every run's (or one run's) model inputs (model ids) and outputs ((model id, step)), by run id."""
        links = self._model_links()
        return links.inputs_by_run(run_id), links.outputs_by_run(run_id)
