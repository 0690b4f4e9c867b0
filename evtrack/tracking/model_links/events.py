"""Events that link MLflow 3's logged models to runs: metrics of a model, and a run's model
inputs and outputs.

They concern one logged model each (``model_id``) and name the run by ``source_run_id``, not
``run_id``: readers and the compactor send events with a ``run_id`` to run partitions, and
these belong to the single-partition state of their own domain (``model_links.fold``), so a
logged model's metrics, and the models of a page of runs, are read without scanning every
run partition. The run's own metric point is the ordinary ``metric`` event, written beside
``logged_model_metric`` as MLflow records it in both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from evtrack.eventlog.events import Event, register


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelLinkEvent(Event):
    """Base of the events linking a logged model and a run."""

    model_id: str
    source_run_id: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelMetric(ModelLinkEvent):
    """A metric point logged for a model (``log_metric(..., model_id=…)``), possibly on a dataset."""

    type: ClassVar[str] = "logged_model_metric"
    experiment_id: str
    key: str
    value: float
    step: int
    timestamp: int
    dataset_name: str | None = None
    dataset_digest: str | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInputLogged(ModelLinkEvent):
    """A run used a logged model (``log_inputs(models=…)``): ``run.inputs.model_inputs``."""

    type: ClassVar[str] = "model_input"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOutputLogged(ModelLinkEvent):
    """A run produced a logged model at a step (``log_outputs``): ``run.outputs.model_outputs``."""

    type: ClassVar[str] = "model_output"
    step: int
