"""The registry's compacted tables: columns, and conversion to and from ``State.registry``.

Single-partition (``all``) state tables, like the experiment tables, registered with
the core as the registry's state domain (``evtrack.registry.domain``). Every
model and version the fold knows is written, deleted ones and not-yet-created
placeholders included, with the (ts, eid) of what set each value, so that
folding more events onto the loaded tables equals folding everything at once.
The DuckDB views (``evtrack.query.engine``) show only live rows, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evtrack.registry.fold import AliasTarget, registry_of
from evtrack.state import tables
from evtrack.state.fold import Stamped, State

if TYPE_CHECKING:
    import pyarrow as pa

REGISTRY_TABLES = (
    "registered_models",
    "registered_model_tags",
    "registered_model_aliases",
    "model_versions",
    "model_version_tags",
)

_S, _I = "string", "int64"
_ORDER = lambda prefix: [(f"{prefix}_ts", _I, False), (f"{prefix}_eid", _S, False)]  # noqa: E731
_STAMP = [("ts", _I, False), ("eid", _S, False)]

REGISTRY_COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    # (name, type, nullable)
    "registered_models": [
        ("model_id", _S, False),
        ("name", _S, False),
        ("description", _S, True),
        ("creation_timestamp", _I, True),
        ("last_updated_timestamp", _I, True),
        *_ORDER("created"),
        *_ORDER("name"),
        *_ORDER("description"),
        *_ORDER("deleted"),
    ],
    "registered_model_tags": [("model_id", _S, False), ("key", _S, False), ("value", _S, True), *_STAMP],
    "registered_model_aliases": [("model_id", _S, False), ("alias", _S, False), ("version", _I, True), *_STAMP],
    "model_versions": [
        ("model_id", _S, False),
        ("version", _I, False),
        ("creation_timestamp", _I, True),
        ("last_updated_timestamp", _I, True),
        ("source", _S, True),
        ("storage_location", _S, True),
        ("run_id", _S, True),
        ("run_link", _S, True),
        ("user_id", _S, True),
        ("status", _S, False),
        ("status_message", _S, True),
        ("description", _S, True),
        ("current_stage", _S, False),
        *_ORDER("created"),
        *_ORDER("description"),
        *_ORDER("stage"),
        *_ORDER("deleted"),
    ],
    "model_version_tags": [
        ("model_id", _S, False),
        ("version", _I, False),
        ("key", _S, False),
        ("value", _S, True),
        *_STAMP,
    ],
}


# The registry as MLflow shows it: live models and versions by name, live aliases and tags.
REGISTRY_VIEWS = (
    """CREATE OR REPLACE VIEW registered_models AS SELECT name, creation_timestamp, last_updated_timestamp,
       description, model_id FROM base_registered_models
       WHERE created_ts >= 0 AND deleted_ts < 0""",
    """CREATE OR REPLACE VIEW registered_model_tags AS SELECT m.name, t.key, t.value
       FROM base_registered_model_tags t JOIN registered_models m USING (model_id)
       WHERE t.value IS NOT NULL""",
    """CREATE OR REPLACE VIEW model_versions AS SELECT m.name, v.version, v.creation_timestamp,
       v.last_updated_timestamp, v.current_stage, v.description, v.source, v.run_id,
       v.run_link, v.status, v.status_message, v.user_id, v.model_id
       FROM base_model_versions v JOIN registered_models m USING (model_id)
       WHERE v.created_ts >= 0 AND v.deleted_ts < 0""",
    """CREATE OR REPLACE VIEW model_version_tags AS SELECT v.name, t.version, t.key, t.value
       FROM base_model_version_tags t JOIN model_versions v USING (model_id, version)
       WHERE t.value IS NOT NULL""",
    """CREATE OR REPLACE VIEW registered_model_aliases AS SELECT v.name, a.alias, a.version
       FROM base_registered_model_aliases a JOIN model_versions v USING (model_id, version)""",
)


def registry_tables(state: State) -> dict[str, "pa.Table"]:
    """The registry tables of everything in ``state.registry``, sorted by model id and version."""
    out: dict[str, dict[str, list[Any]]] = {t: {c: [] for c in tables.column_names(t)} for t in REGISTRY_TABLES}
    reg = registry_of(state)
    for model_id in sorted(reg.models):
        m = reg.models[model_id]
        _add(
            out["registered_models"],
            model_id=model_id,
            name=m.name,
            description=m.description,
            creation_timestamp=m.creation_timestamp,
            last_updated_timestamp=m.last_updated_timestamp,
            **_order("created", m.created),
            **_order("name", m.name_order),
            **_order("description", m.description_order),
            **_order("deleted", m.deleted),
        )
        for key, s in sorted(m.tags.items()):
            _add(out["registered_model_tags"], model_id=model_id, key=key, value=s.value, ts=s.order[0], eid=s.order[1])
        for alias, a in sorted(m.aliases.items()):
            _add(
                out["registered_model_aliases"],
                model_id=model_id,
                alias=alias,
                version=a.version,
                ts=a.order[0],
                eid=a.order[1],
            )
    for model_id, version in sorted(reg.versions):
        v = reg.versions[(model_id, version)]
        _add(
            out["model_versions"],
            model_id=model_id,
            version=version,
            creation_timestamp=v.creation_timestamp,
            last_updated_timestamp=v.last_updated_timestamp,
            source=v.source,
            storage_location=v.storage_location,
            run_id=v.run_id,
            run_link=v.run_link,
            user_id=v.user_id,
            status=v.status,
            status_message=v.status_message,
            description=v.description,
            current_stage=v.stage,
            **_order("created", v.created),
            **_order("description", v.description_order),
            **_order("stage", v.stage_order),
            **_order("deleted", v.deleted),
        )
        for key, s in sorted(v.tags.items()):
            _add(
                out["model_version_tags"],
                model_id=model_id,
                version=version,
                key=key,
                value=s.value,
                ts=s.order[0],
                eid=s.order[1],
            )
    import pyarrow as pa

    return {name: pa.table(rows, schema=tables.schema(name)) for name, rows in out.items()}


def _order(prefix: str, order: tuple[int, str]) -> dict[str, Any]:
    return {f"{prefix}_ts": order[0], f"{prefix}_eid": order[1]}


def _add(rows: dict[str, list[Any]], **values: Any) -> None:
    for name, value in values.items():
        rows[name].append(value)


def load_registry(data: dict[str, "pa.Table"], state: State) -> State:
    """Fold-compatible ``state.registry`` from registry tables (any subset of them)."""
    reg = registry_of(state)
    if "registered_models" in data:
        for r in data["registered_models"].to_pylist():
            m = reg.model(r["model_id"])
            m.name, m.description = r["name"], r["description"]
            m.creation_timestamp, m.last_updated_timestamp = r["creation_timestamp"], r["last_updated_timestamp"]
            m.created = (r["created_ts"], r["created_eid"])
            m.name_order = (r["name_ts"], r["name_eid"])
            m.description_order = (r["description_ts"], r["description_eid"])
            m.deleted = (r["deleted_ts"], r["deleted_eid"])
    if "registered_model_tags" in data:
        for r in data["registered_model_tags"].to_pylist():
            reg.model(r["model_id"]).tags[r["key"]] = Stamped(r["value"], (r["ts"], r["eid"]))
    if "registered_model_aliases" in data:
        for r in data["registered_model_aliases"].to_pylist():
            reg.model(r["model_id"]).aliases[r["alias"]] = AliasTarget(r["version"], (r["ts"], r["eid"]))
    if "model_versions" in data:
        for r in data["model_versions"].to_pylist():
            v = reg.version(r["model_id"], r["version"])
            v.creation_timestamp, v.last_updated_timestamp = r["creation_timestamp"], r["last_updated_timestamp"]
            v.source, v.storage_location, v.run_id = r["source"], r["storage_location"], r["run_id"]
            v.run_link, v.user_id, v.status = r["run_link"], r["user_id"], r["status"]
            v.status_message, v.description, v.stage = r["status_message"], r["description"], r["current_stage"]
            v.created = (r["created_ts"], r["created_eid"])
            v.description_order = (r["description_ts"], r["description_eid"])
            v.stage_order = (r["stage_ts"], r["stage_eid"])
            v.deleted = (r["deleted_ts"], r["deleted_eid"])
    if "model_version_tags" in data:
        for r in data["model_version_tags"].to_pylist():
            reg.version(r["model_id"], r["version"]).tags[r["key"]] = Stamped(r["value"], (r["ts"], r["eid"]))
    return state
