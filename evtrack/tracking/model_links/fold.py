"""The model links' state domain: logged-model metrics and run model inputs/outputs, folded.

Rules (pure and order-independent, as every fold):
- a logged-model metric is one point per (model, run, key, timestamp, step) — MLflow's key
  for these rows; when the same point is logged twice the earliest event by (ts, eid) gives
  its value and dataset (MLflow keeps the row written first);
- a model input is a (model, run) pair, a model output a (model, run, step) triple; logging
  one again changes nothing (the earliest event is kept, so the tables do not churn).

Single-partition tables (``logged_model_metrics``, ``logged_model_links``) keep each row's
(ts, eid), so folding more events onto loaded tables equals folding everything at once.
Registered with the core when the package is imported (``evtrack.tracking`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evtrack.state import tables
from evtrack.state.domains import Domain, register_domain
from evtrack.state.fold import Order, State, apply
from evtrack.tracking.model_links.events import LoggedModelMetric, ModelInputLogged, ModelLinkEvent, ModelOutputLogged

if TYPE_CHECKING:
    import pyarrow as pa

MODEL_LINKS_DOMAIN = "model_links"
INPUT, OUTPUT = "input", "output"

MetricKey = tuple[str, str, str, int, int]  # (model_id, run_id, key, timestamp, step)


@dataclass(slots=True)
class ModelMetricPoint:
    """One logged-model metric point's value, where it came from and the event that set it."""

    value: float
    experiment_id: str
    dataset_name: str | None
    dataset_digest: str | None
    order: Order


@dataclass(slots=True)
class ModelLinks:
    """Every logged-model metric point, model input and model output."""

    metrics: dict[MetricKey, ModelMetricPoint] = field(default_factory=dict)
    inputs: dict[tuple[str, str], Order] = field(default_factory=dict)  # (model_id, run_id)
    outputs: dict[tuple[str, str, int], Order] = field(default_factory=dict)  # (model_id, run_id, step)

    def copy(self) -> "ModelLinks":
        """A copy to read while this one goes on folding (the dicts are copied, their values immutable
        or replaced whole)."""
        return ModelLinks(dict(self.metrics), dict(self.inputs), dict(self.outputs))

    def inputs_by_run(self, only: str | None = None) -> dict[str, list[str]]:
        """Each run's (or one run's) input models (model ids, in the order they were logged)."""
        found = [(o, m, r) for (m, r), o in self.inputs.items() if only is None or r == only]
        out: dict[str, list[str]] = {}
        for _, model_id, run_id in sorted(found):
            out.setdefault(run_id, []).append(model_id)
        return out

    def outputs_by_run(self, only: str | None = None) -> dict[str, list[tuple[str, int]]]:
        """Each run's (or one run's) output models as (model id, step), in the order they were logged."""
        found = [(o, m, r, s) for (m, r, s), o in self.outputs.items() if only is None or r == only]
        out: dict[str, list[tuple[str, int]]] = {}
        for _, model_id, run_id, step in sorted(found):
            out.setdefault(run_id, []).append((model_id, step))
        return out


def links_of(state: State) -> ModelLinks:
    """The model links' part of a fold state."""
    return state.parts[MODEL_LINKS_DOMAIN]


def _keep_earliest(target: dict, key: Any, order: Order) -> None:
    current = target.get(key)
    if current is None or order < current:
        target[key] = order


@apply.register
def _(e: LoggedModelMetric, st: State) -> None:
    points = links_of(st).metrics
    key = (e.model_id, e.source_run_id, e.key, e.timestamp, e.step)
    current = points.get(key)
    if current is None or e.order < current.order:
        points[key] = ModelMetricPoint(e.value, e.experiment_id, e.dataset_name, e.dataset_digest, e.order)


@apply.register
def _(e: ModelInputLogged, st: State) -> None:
    _keep_earliest(links_of(st).inputs, (e.model_id, e.source_run_id), e.order)


@apply.register
def _(e: ModelOutputLogged, st: State) -> None:
    _keep_earliest(links_of(st).outputs, (e.model_id, e.source_run_id, e.step), e.order)


# -- tables --------------------------------------------------------------------------------

_S, _I, _F = "string", "int64", "float64"
_STAMP = [("ts", _I, False), ("eid", _S, False)]
COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    "logged_model_metrics": [
        ("model_id", _S, False),
        ("run_id", _S, False),
        ("key", _S, False),
        ("timestamp", _I, False),
        ("step", _I, False),
        ("value", _F, False),
        ("experiment_id", _S, False),
        ("dataset_name", _S, True),
        ("dataset_digest", _S, True),
        *_STAMP,
    ],
    "logged_model_links": [
        ("model_id", _S, False),
        ("run_id", _S, False),
        ("direction", _S, False),  # 'input' or 'output'
        ("step", _I, True),  # an output's step
        *_STAMP,
    ],
}

VIEWS = (
    """CREATE OR REPLACE VIEW logged_model_metrics AS SELECT model_id, run_id, experiment_id, key, value,
       step, timestamp, dataset_name, dataset_digest FROM base_logged_model_metrics""",
    """CREATE OR REPLACE VIEW model_inputs AS SELECT run_id, model_id FROM base_logged_model_links
       WHERE direction = 'input'""",
    """CREATE OR REPLACE VIEW model_outputs AS SELECT run_id, model_id, step FROM base_logged_model_links
       WHERE direction = 'output'""",
)


def to_tables(state: State) -> dict[str, "pa.Table"]:
    """The model links' tables, sorted by model, run and key."""
    import pyarrow as pa

    links = links_of(state)
    metric_rows = [
        (*k, p.value, p.experiment_id, p.dataset_name, p.dataset_digest, *p.order)
        for k, p in sorted(links.metrics.items(), key=lambda kp: kp[0])
    ]
    link_rows = [(m, r, INPUT, None, *o) for (m, r), o in sorted(links.inputs.items())]
    link_rows += [(m, r, OUTPUT, s, *o) for (m, r, s), o in sorted(links.outputs.items())]
    out = {}
    for name, rows in (("logged_model_metrics", metric_rows), ("logged_model_links", link_rows)):
        names = tables.column_names(name)
        out[name] = pa.table({c: [row[i] for row in rows] for i, c in enumerate(names)}, schema=tables.schema(name))
    return out


def load(data: dict[str, "pa.Table"], state: State) -> State:
    """Fold-compatible model links from their tables (any subset of them)."""
    links = links_of(state)
    if "logged_model_metrics" in data:
        for r in data["logged_model_metrics"].to_pylist():
            key = (r["model_id"], r["run_id"], r["key"], r["timestamp"], r["step"])
            links.metrics[key] = ModelMetricPoint(
                r["value"], r["experiment_id"], r["dataset_name"], r["dataset_digest"], (r["ts"], r["eid"])
            )
    if "logged_model_links" in data:
        for r in data["logged_model_links"].to_pylist():
            order = (r["ts"], r["eid"])
            if r["direction"] == INPUT:
                links.inputs[(r["model_id"], r["run_id"])] = order
            else:
                links.outputs[(r["model_id"], r["run_id"], r["step"])] = order
    return state


DOMAIN = register_domain(
    Domain(
        name=MODEL_LINKS_DOMAIN,
        event_base=ModelLinkEvent,
        new_part=ModelLinks,
        columns=COLUMNS,
        to_tables=to_tables,
        load=load,
        views=VIEWS,
    )
)
