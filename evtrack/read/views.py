"""Turn folded state into the entities users see (``Run``, ``Experiment``) and page them."""

from __future__ import annotations

import base64
from typing import Iterable

import orjson

from evtrack.eventlog import events as ev
from evtrack.state import fold
from evtrack.entities import (
    DATASET_CONTEXT_TAG,
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LifecycleStage,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
)
from evtrack.errors import InvalidParameterError
from evtrack.state.fold import ExperimentState, RunState, State

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000


def experiment(st: ExperimentState) -> Experiment:
    """The ``Experiment`` entity of a folded experiment."""
    return Experiment(
        experiment_id=st.experiment_id,
        name=st.name,
        artifact_location=st.artifact_location,
        lifecycle_stage=st.lifecycle_stage,
        tags={k: s.value for k, s in st.tags.items() if s.value is not None},
        creation_time=st.creation_time,
        last_update_time=st.last_update_time,
    )


def run_lifecycle(state: State, run: RunState) -> str:
    """A run is deleted when it, or its experiment, is."""
    exp = state.experiments.get(run.experiment_id)
    if exp is not None and exp.lifecycle_stage == LifecycleStage.DELETED:
        return LifecycleStage.DELETED
    return run.lifecycle_stage


def run(state: State, st: RunState) -> Run:
    """The ``Run`` entity of a folded run."""
    info = RunInfo(
        run_id=st.run_id,
        experiment_id=st.experiment_id,
        run_name=st.run_name,
        user_id=st.user_id,
        status=st.status,
        start_time=st.start_time,
        end_time=st.end_time,
        artifact_uri=st.artifact_uri,
        lifecycle_stage=run_lifecycle(state, st),
    )
    data = RunData(
        metrics=state.latest_metrics(st.run_id), params=state.live_params(st.run_id), tags=state.live_tags(st.run_id)
    )
    return Run(info, data, RunInputs(dataset_inputs(state.inputs.get(st.run_id, {}).values())))


def dataset_inputs(inputs: Iterable[fold.DatasetInput]) -> list[DatasetInput]:
    """A run's folded inputs as MLflow's ``DatasetInput`` entities, in the order they were logged."""
    out = []
    for d in sorted(inputs, key=lambda d: d.order):
        tags = [InputTag(k, v) for k, v in sorted(d.tags.items()) if k != DATASET_CONTEXT_TAG]
        if d.context is not None:
            tags.append(InputTag(DATASET_CONTEXT_TAG, d.context))
        out.append(DatasetInput(Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile), tags))
    return out


def new_run(event: ev.RunCreated) -> Run:
    """The ``Run`` a client just created, without a round trip to the store."""
    info = RunInfo(
        run_id=event.run_id,
        experiment_id=event.experiment_id,
        run_name=event.run_name,
        user_id=event.user_id,
        status=RunStatus.RUNNING,
        start_time=event.start_time,
        end_time=None,
        artifact_uri=event.artifact_uri,
        lifecycle_stage=LifecycleStage.ACTIVE,
    )
    return Run(info, RunData(tags=dict(event.tags)))


def encode_page_token(offset: int) -> str:
    """An opaque token for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def decode_page_token(token: str | None) -> int:
    """The offset inside a page token; a clear error when the token is not ours."""
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise InvalidParameterError(f"Invalid page token, could not base64-decode: {token!r}") from None


def check_max_results(max_results: int | None, default: int = SEARCH_MAX_RESULTS_DEFAULT) -> int:
    """MLflow's bounds on ``max_results``."""
    if max_results is None:
        return default
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results <= 0:
        raise InvalidParameterError(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise InvalidParameterError(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            f"It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return max_results


def page(items: list, max_results: int, page_token: str | None) -> PagedList:
    """One page of ``items`` with the token of the next page."""
    start = decode_page_token(page_token)
    chunk = items[start : start + max_results]
    nxt = start + max_results
    return PagedList(chunk, encode_page_token(nxt) if nxt < len(items) else None)
