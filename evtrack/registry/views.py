"""Registry state -> the entities users see, and MLflow's registry searches over them.

Only live entities are shown: a version of a deleted model, a deleted version
and an alias pointing at a deleted version are hidden, whatever order their
events were folded in. Searches run in memory (the registry is small) with the
filter grammar of ``evtrack.query.search_grammar`` and MLflow's orders.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from evtrack.entities import PagedList
from evtrack.errors import InvalidParameterError
from evtrack.query import search_grammar as grammar
from evtrack.query.matching import evaluate_comparison
from evtrack.registry.entities import ALL_STAGES, ModelVersion, RegisteredModel
from evtrack.registry.fold import ModelVersionState, RegisteredModelState, RegistryState
from evtrack.read.views import decode_page_token, encode_page_token

SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT = 100
SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD = 1000
SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT = 10000
SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD = 200_000
_DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


def live_versions(reg: RegistryState, model_id: str) -> list[ModelVersionState]:
    """The live versions of a model, by number."""
    return [v for v in reg.versions_of(model_id) if v.live]


def version_aliases(model: RegisteredModelState, reg: RegistryState) -> dict[str, int]:
    """alias -> version for the aliases of ``model`` that point at a live version."""
    out = {}
    for alias, target in sorted(model.aliases.items()):
        if target.version is not None:
            v = reg.versions.get((model.model_id, target.version))
            if v is not None and v.live:
                out[alias] = target.version
    return out


def model_version(
    model: RegisteredModelState, v: ModelVersionState, reg: RegistryState, with_aliases: bool = True
) -> ModelVersion:
    """The ``ModelVersion`` entity of a folded version (its model's current name and aliases)."""
    aliases = [a for a, n in version_aliases(model, reg).items() if n == v.version] if with_aliases else []
    return ModelVersion(
        name=model.name,
        version=v.version,
        creation_timestamp=v.creation_timestamp,
        last_updated_timestamp=v.last_updated_timestamp,
        description=v.description,
        user_id=v.user_id,
        current_stage=v.stage,
        source=v.source,
        run_id=v.run_id,
        status=v.status,
        status_message=v.status_message,
        tags=v.live_tags(),
        run_link=v.run_link,
        aliases=aliases,
    )


def latest_versions(
    model: RegisteredModelState, reg: RegistryState, stages: Sequence[str] = ALL_STAGES, with_aliases: bool = True
) -> list[ModelVersion]:
    """The highest live version in each of ``stages``, as MLflow's latest_versions: the stages in the
    order their lowest-numbered version comes (MLflow's SQL store fills a dict by version)."""
    latest: dict[str, ModelVersionState] = {}
    for v in live_versions(reg, model.model_id):
        latest[v.stage] = v  # versions come by number: the last one wins, the stage keeps its place
    return [model_version(model, v, reg, with_aliases) for stage, v in latest.items() if stage in stages]


def registered_model(model: RegisteredModelState, reg: RegistryState) -> RegisteredModel:
    """The ``RegisteredModel`` entity of a folded model."""
    return RegisteredModel(
        name=model.name,
        creation_timestamp=model.creation_timestamp,
        last_updated_timestamp=model.last_updated_timestamp,
        description=model.description,
        latest_versions=latest_versions(model, reg, with_aliases=False),  # MLflow's carry no aliases
        tags=model.live_tags(),
        aliases=version_aliases(model, reg),
    )


# -- searches -------------------------------------------------------------------


def _check_max_results(max_results: Any, threshold: int) -> int:
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
        raise InvalidParameterError(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > threshold:
        raise InvalidParameterError(
            "Invalid value for request parameter max_results. It must be at most "
            f"{threshold}, but got value {max_results}"
        )
    return max_results


def _page(items: list, max_results: int, page_token: str | None) -> PagedList:
    start = decode_page_token(page_token)
    nxt = start + max_results
    return PagedList(items[start:nxt], encode_page_token(nxt) if nxt < len(items) else None)


def _orders(order_by: Sequence[str] | None, kind: str, ties: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    if isinstance(order_by, str):
        order_by = [order_by]
    parsed = grammar.parse_order_by(list(order_by or ()), kind=kind)  # type: ignore[arg-type]
    keys = [o.key for o in parsed]
    if len(set(keys)) != len(keys):
        raise InvalidParameterError(f"`order_by` contains duplicate fields: {list(order_by or ())}")
    out = [(o.key, o.ascending) for o in parsed]
    return out + [(k, asc) for k, asc in ties if k not in keys]


def _sort(items: list, orders: list[tuple[str, bool]], value: Callable[[Any, str], Any]) -> list:
    def compare(a: Any, b: Any) -> int:
        for key, ascending in orders:
            x, y = value(a, key), value(b, key)
            if x == y:
                continue
            if x is None or y is None:  # missing values last, in both directions
                return 1 if x is None else -1
            return (-1 if x < y else 1) * (1 if ascending else -1)
        return 0

    return sorted(items, key=functools.cmp_to_key(compare))


def _matches(clauses: list, attributes: dict[str, Any], tags: dict[str, str]) -> bool:
    for c in clauses:
        lhs = attributes[c.key] if c.entity == "attribute" else tags.get(c.key)
        if not evaluate_comparison(c.op, lhs, c.value):
            return False
    return True


def search_registered_models(
    reg: RegistryState,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> PagedList:
    """Live registered models matching MLflow's registered-model filter; default order name ASC."""
    limit = _check_max_results(max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD)
    clauses = grammar.parse_registered_model_filter(filter_string)
    orders = _orders(order_by, "registered_model", [("name", True)])
    found = [m for m in reg.models.values() if m.live and _matches(clauses, {"name": m.name}, m.live_tags())]
    found = _sort(found, orders, lambda m, k: getattr(m, k))
    result = _page(found, limit, page_token)
    return PagedList([registered_model(m, reg) for m in result], result.token)


def search_model_versions(
    reg: RegistryState,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> PagedList:
    """Live versions of live models matching MLflow's model-version filter, in MLflow's order
    (default: last_updated_timestamp DESC, name ASC, version_number DESC)."""
    limit = _check_max_results(max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD)
    clauses = grammar.parse_model_version_filter(filter_string)
    for c in clauses:
        if c.key == "version_number" and not isinstance(c.value, int):
            raise InvalidParameterError(f"Invalid value for numeric attribute 'version_number': {c.value!r}")
    orders = _orders(order_by or _DEFAULT_VERSION_ORDER, "model_version", [("name", True), ("version_number", False)])
    found: list[tuple[RegisteredModelState, ModelVersionState]] = []
    for v in reg.versions.values():
        model = reg.models.get(v.model_id)
        if model is None or not model.live or not v.live:
            continue
        attributes = {"name": model.name, "version_number": v.version, "run_id": v.run_id, "source_path": v.source}
        if _matches(clauses, attributes, v.live_tags()):
            found.append((model, v))
    columns = {
        "name": lambda mv: mv[0].name,
        "version_number": lambda mv: mv[1].version,
        "creation_timestamp": lambda mv: mv[1].creation_timestamp,
        "last_updated_timestamp": lambda mv: mv[1].last_updated_timestamp,
    }
    found = _sort(found, orders, lambda mv, k: columns[k](mv))
    result = _page(found, limit, page_token)
    return PagedList([model_version(m, v, reg) for m, v in result], result.token)
