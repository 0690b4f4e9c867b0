"""evtrack's entities as MLflow's (``mlflow.entities``), and MLflow's back as evtrack's.

Runs carry their latest metric points as ``Metric`` objects with step and timestamp (what
``MlflowClient.get_run`` returns), their dataset inputs and the logged models they output.
Registry entities are typed as MLflow's SQL store types them (version numbers as ints,
tags and aliases as lists), with a version's ``model_id`` when its source is a logged model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from mlflow import entities as mle
from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModel as MlflowRegisteredModel
from mlflow.entities.model_registry import RegisteredModelAlias, RegisteredModelTag

from evtrack import entities as et
from evtrack.registry import entities as reg
from evtrack.tracking.logged_models import LoggedModel

# a version's files are a logged model's when its source is models:/<model_id> or that model's directory
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})/?$|/models/(m-[0-9a-f]{32})/artifacts/?$")
Latest = Mapping[str, tuple[int, int]]  # metric key -> (step, timestamp) of its latest value


# -- tracking ---------------------------------------------------------------------------------


def experiment(e: et.Experiment) -> mle.Experiment:
    return mle.Experiment(
        experiment_id=e.experiment_id,
        name=e.name,
        artifact_location=e.artifact_location,
        lifecycle_stage=e.lifecycle_stage,
        tags=[mle.ExperimentTag(k, v) for k, v in e.tags.items()],
        creation_time=e.creation_time,
        last_update_time=e.last_update_time,
    )


def run_info(info: et.RunInfo) -> mle.RunInfo:
    return mle.RunInfo(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        user_id=info.user_id,
        status=info.status,
        start_time=info.start_time,
        end_time=info.end_time,
        lifecycle_stage=info.lifecycle_stage,
        artifact_uri=info.artifact_uri,
        run_name=info.run_name,
    )


def run(
    r: et.Run, latest: Latest | None = None, outputs: Iterable[tuple[str, int]] = (), model_inputs: Iterable[str] = ()
) -> mle.Run:
    """A run; ``latest`` gives the step and timestamp of each latest metric value (0 when unknown),
    ``outputs`` the (model id, step) of the logged models it produced, ``model_inputs`` those it used."""
    latest = latest or {}
    metrics = []
    for key, value in r.data.metrics.items():
        step, timestamp = latest.get(key, (0, 0))
        metrics.append(mle.Metric(key, value, timestamp, step))
    inputs = mle.RunInputs(
        dataset_inputs=[dataset_input(d) for d in r.inputs.dataset_inputs],
        model_inputs=[mle.LoggedModelInput(m) for m in model_inputs],
    )
    run_outputs = mle.RunOutputs(model_outputs=[mle.LoggedModelOutput(m, s) for m, s in outputs])
    return mle.Run(run_info(r.info), _run_data(metrics, r.data), run_inputs=inputs, run_outputs=run_outputs)


def _keeps_dicts() -> bool:
    data = mle.RunData(params=[mle.Param("k", "v")], tags=[mle.RunTag("t", "v")])
    return data.__dict__.get("_params") == {"k": "v"} and data.__dict__.get("_tags") == {"t": "v"}


# MLflow's RunData keeps params and tags as dicts built from lists of entities; a search page of
# 10,000 runs spends a third of its conversion building those lists. Where RunData is laid out
# so (checked once, here), the run's own dicts are handed over; otherwise the public constructor.
_FAST_RUN_DATA = _keeps_dicts()


def _run_data(metrics: list[mle.Metric], data: et.RunData) -> mle.RunData:
    if _FAST_RUN_DATA:
        out = mle.RunData(metrics=metrics)
        out._params, out._tags = dict(data.params), dict(data.tags)
        return out
    return mle.RunData(
        metrics=metrics,
        params=[mle.Param(k, v) for k, v in data.params.items()],
        tags=[mle.RunTag(k, v) for k, v in data.tags.items()],
    )


def dataset_input(d: et.DatasetInput) -> mle.DatasetInput:
    ds = d.dataset
    return mle.DatasetInput(
        dataset=mle.Dataset(ds.name, ds.digest, ds.source_type, ds.source, ds.schema, ds.profile),
        tags=[mle.InputTag(t.key, t.value) for t in d.tags],
    )


def to_dataset_input(d: mle.DatasetInput) -> et.DatasetInput:
    ds = d.dataset
    return et.DatasetInput(
        et.Dataset(ds.name, ds.digest, ds.source_type, ds.source, ds.schema, ds.profile),
        [et.InputTag(t.key, t.value) for t in d.tags or []],
    )


def metric_point(m: et.Metric) -> mle.Metric:
    return mle.Metric(
        m.key,
        m.value,
        m.timestamp,
        m.step,
        run_id=m.run_id,
        model_id=m.model_id,
        dataset_name=m.dataset_name,
        dataset_digest=m.dataset_digest,
    )


# -- logged models ------------------------------------------------------------------------------


def logged_model(m: LoggedModel, metrics: Iterable[et.Metric] = ()) -> mle.LoggedModel:
    return mle.LoggedModel(
        experiment_id=m.experiment_id,
        model_id=m.model_id,
        name=m.name,
        artifact_location=m.artifact_location,
        creation_timestamp=m.creation_timestamp_ms,
        last_updated_timestamp=m.last_updated_timestamp_ms,
        model_type=m.model_type,
        source_run_id=m.source_run_id,
        status=mle.LoggedModelStatus(m.status),
        status_message=m.status_message,
        tags=dict(m.tags),
        params=dict(m.params),
        metrics=[metric_point(p) for p in metrics] or None,
    )


# -- registry ---------------------------------------------------------------------------------


def logged_model_id_of(source: str | None) -> str | None:
    """The id of the logged model a version's source names, if it names one."""
    match = _LOGGED_MODEL_SOURCE.search(source or "")
    return (match.group(1) or match.group(2)) if match else None


def model_version(mv: reg.ModelVersion) -> MlflowModelVersion:
    return MlflowModelVersion(
        name=mv.name,
        version=mv.version,
        creation_timestamp=mv.creation_timestamp or 0,
        last_updated_timestamp=mv.last_updated_timestamp,
        description=mv.description,
        user_id=mv.user_id,
        current_stage=mv.current_stage,
        source=mv.source,
        run_id=mv.run_id,
        status=mv.status,
        status_message=mv.status_message,
        tags=[ModelVersionTag(k, v) for k, v in mv.tags.items()],
        run_link=mv.run_link,
        aliases=list(mv.aliases),
        model_id=logged_model_id_of(mv.source),
    )


def registered_model(m: reg.RegisteredModel) -> MlflowRegisteredModel:
    return MlflowRegisteredModel(
        name=m.name,
        creation_timestamp=m.creation_timestamp,
        last_updated_timestamp=m.last_updated_timestamp,
        description=m.description,
        latest_versions=[model_version(v) for v in m.latest_versions],
        tags=[RegisteredModelTag(k, v) for k, v in m.tags.items()],
        aliases=[RegisteredModelAlias(a, v) for a, v in m.aliases.items()],
    )
