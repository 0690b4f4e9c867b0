"""MLflow's model registry endpoints (``registered-models/…``, ``model-versions/…``).

Handlers map onto the registry methods of ``EvtrackClient``. Sources of new model
versions are stored in a form evtrack itself can load (``evtrack.pyfunc.load_model(
"models:/<name>/<version>")`` on the store finds the files):

- ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>`` (what MLflow's client
  sends for ``runs:/`` models with files in the run) → the stored URI of those files;
- ``models:/<model_id>`` (an MLflow 3 logged model) → the stored URI of the model's
  artifact directory;
- ``runs:/<run_id>/<path>`` stays as it is (evtrack resolves it), unless the run has no
  files at ``<path>`` but logged a model of that name: then the model's directory;
- local paths must lie inside the artifact directory of ``run_id`` (as MLflow checks).

Reported back to MLflow's client, a stored location under the store's ``artifacts``
directory reads ``mlflow-artifacts:/…`` again and a logged model's directory reads
``models:/<model_id>``, so MLflow sees the source it sent (one difference: a
``runs:/`` source that was resolved to a logged model reads ``models:/<model_id>``).
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse
from dataclasses import replace
from typing import Any

from evtrack.errors import EvtrackError, InvalidParameterError, ResourceNotFoundError
from evtrack.query import search_grammar as grammar
from evtrack.registry.entities import ModelVersion, RegisteredModel
from evtrack.registry.prompt_filter import is_prompt, split_prompt_filter
from evtrack.tracking.logged_models import MODEL_ID, LoggedModel, LoggedModelStore
from evtrack.server.rest import artifacts, convert
from evtrack.server.rest.protocol import ApiContext, Params, api

MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it
_ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/"
_LOGGED_MODEL_DIR = re.compile(r"/models/(m-[0-9a-f]{32})/artifacts$")


# -- JSON -------------------------------------------------------------------------------------


def _logged_model_of(ctx: ApiContext, stored: str) -> str | None:
    """The id of the logged model whose artifact directory is ``stored``, if it is one."""
    match = _LOGGED_MODEL_DIR.search(stored)
    if match is None:
        return None
    try:
        _, location = artifacts.model_root(ctx.client, match.group(1))
    except EvtrackError:
        return None
    return match.group(1) if location == stored else None


def reported_source(ctx: ApiContext, source: str | None) -> str | None:
    """A version's stored source as MLflow's client should see it (see the module docstring)."""
    if not source or "://" not in source and not source.startswith("/"):
        return source  # runs:/…, models:/… and relative forms as given
    model_id = _logged_model_of(ctx, source)
    if model_id is not None:
        return f"models:/{model_id}"
    return artifacts.client_uri(ctx.client, ctx.config, source)


def model_version_json(ctx: ApiContext, mv: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message (the version number as a string)."""
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "user_id": mv.user_id,
        "current_stage": mv.current_stage,
        "description": mv.description or "",
        "source": reported_source(ctx, mv.source),
        "run_id": mv.run_id,
        "status": mv.status,
        "status_message": mv.status_message,
        "tags": convert.key_values(mv.tags),
        "run_link": mv.run_link or "",
        "aliases": list(mv.aliases),
    }
    return {k: v for k, v in out.items() if v is not None and v != []}


def registered_model_json(ctx: ApiContext, rm: RegisteredModel) -> dict[str, Any]:
    """A registered model as MLflow's ``RegisteredModel`` message."""
    out: dict[str, Any] = {
        "name": rm.name,
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
        "description": rm.description,
        "latest_versions": [model_version_json(ctx, mv) for mv in rm.latest_versions],
        "tags": convert.key_values(rm.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in rm.aliases.items()],
    }
    return {k: v for k, v in out.items() if v is not None and v != []}


def _tags(params: Params) -> dict[str, str]:
    return dict(convert.parse_key_values(params.data.get("tags"), "tags"))


# -- registered models ---------------------------------------------------------------------------


@api("registered-models/create", write=True)
def create_registered_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """A new registered model → ``{"registered_model"}``."""
    rm = ctx.client.create_registered_model(
        params.str("name", required=True), tags=_tags(params), description=params.str("description")
    )
    return {"registered_model": registered_model_json(ctx, rm)}


@api("registered-models/get", methods=("GET",))
def get_registered_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One registered model → ``{"registered_model"}``."""
    rm = ctx.client.get_registered_model(params.str("name", required=True))
    return {"registered_model": registered_model_json(ctx, rm)}


@api("registered-models/rename", write=True)
def rename_registered_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Rename a model → ``{"registered_model"}`` (under its new name)."""
    rm = ctx.client.rename_registered_model(params.str("name", required=True), params.str("new_name", required=True))
    return {"registered_model": registered_model_json(ctx, rm)}


@api("registered-models/update", methods=("PATCH",), write=True)
def update_registered_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a model's description → ``{"registered_model"}``."""
    rm = ctx.client.update_registered_model(params.str("name", required=True), description=params.str("description"))
    return {"registered_model": registered_model_json(ctx, rm)}


@api("registered-models/delete", methods=("DELETE",), write=True)
def delete_registered_model(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Delete a model and its versions → ``{}``."""
    ctx.client.delete_registered_model(params.str("name", required=True))
    return {}


@api("registered-models/search", methods=("GET",))
def search_registered_models(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Models matching ``filter`` → ``{"registered_models", "next_page_token"}``."""
    filter_string, prompts = split_prompt_filter(params.str("filter"), grammar.parse_registered_model_filter)
    page = ctx.client.search_registered_models(
        filter_string,
        max_results=params.int("max_results", default=100),
        order_by=[str(o) for o in params.list("order_by")] or None,
        page_token=params.str("page_token") or None,
    )
    out: dict[str, Any] = {
        "registered_models": [registered_model_json(ctx, rm) for rm in page if prompts or not is_prompt(rm.tags)]
    }
    if page.token:
        out["next_page_token"] = page.token
    return {k: v for k, v in out.items() if v != []}


@api("registered-models/get-latest-versions", methods=("POST", "GET"))
def get_latest_versions(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """The latest version per stage (all stages unless ``stages``) → ``{"model_versions"}``."""
    versions = ctx.client.get_latest_versions(
        params.str("name", required=True), stages=[str(s) for s in params.list("stages")] or None
    )
    return {"model_versions": [model_version_json(ctx, mv) for mv in versions]} if versions else {}


@api("registered-models/set-tag", write=True)
def set_registered_model_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a tag on a model → ``{}``."""
    ctx.client.set_registered_model_tag(
        params.str("name", required=True), params.str("key", required=True), params.str("value", default="")
    )
    return {}


@api("registered-models/delete-tag", methods=("DELETE",), write=True)
def delete_registered_model_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove a tag from a model → ``{}``."""
    ctx.client.delete_registered_model_tag(params.str("name", required=True), params.str("key", required=True))
    return {}


@api("registered-models/alias", write=True)
def set_registered_model_alias(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Point an alias at a version → ``{}``."""
    ctx.client.set_registered_model_alias(
        params.str("name", required=True), params.str("alias", required=True), params.str("version", required=True)
    )
    return {}


@api("registered-models/alias", methods=("DELETE",), write=True)
def delete_registered_model_alias(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove an alias → ``{}``."""
    ctx.client.delete_registered_model_alias(params.str("name", required=True), params.str("alias", required=True))
    return {}


@api("registered-models/alias", methods=("GET",))
def get_model_version_by_alias(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """The version an alias points at → ``{"model_version"}``."""
    mv = ctx.client.get_model_version_by_alias(params.str("name", required=True), params.str("alias", required=True))
    return {"model_version": model_version_json(ctx, mv)}


# -- model versions --------------------------------------------------------------------------------


@api("model-versions/create", write=True)
def create_model_version(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """The next version of a model from ``source`` → ``{"model_version"}``."""
    name = params.str("name", required=True)
    source = params.str("source", required=True)
    model_id = params.str("model_id") or None
    stored, run_id = stored_source(ctx, source, params.str("run_id") or None, model_id)
    if model_id and not run_id:
        run_id = _logged_model(ctx, model_id, source).source_run_id
    mv = ctx.client.create_model_version(
        name,
        stored,
        run_id=run_id,
        tags=_tags(params),
        run_link=params.str("run_link") or None,
        description=params.str("description"),
    )
    if model_id:
        _record_registration(ctx, model_id, mv)
    return {"model_version": model_version_json(ctx, mv)}


@api("model-versions/get", methods=("GET",))
def get_model_version(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """One version → ``{"model_version"}``."""
    mv = ctx.client.get_model_version(params.str("name", required=True), params.str("version", required=True))
    return {"model_version": model_version_json(ctx, mv)}


@api("model-versions/update", methods=("PATCH",), write=True)
def update_model_version(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a version's description → ``{"model_version"}``."""
    mv = ctx.client.update_model_version(
        params.str("name", required=True), params.str("version", required=True), description=params.str("description")
    )
    return {"model_version": model_version_json(ctx, mv)}


@api("model-versions/delete", methods=("DELETE",), write=True)
def delete_model_version(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Delete a version → ``{}``."""
    ctx.client.delete_model_version(params.str("name", required=True), params.str("version", required=True))
    return {}


@api("model-versions/transition-stage", write=True)
def transition_model_version_stage(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Move a version to a stage → ``{"model_version"}``."""
    mv = ctx.client.transition_model_version_stage(
        params.str("name", required=True),
        params.str("version", required=True),
        params.str("stage", required=True),
        archive_existing_versions=params.bool("archive_existing_versions"),
    )
    return {"model_version": model_version_json(ctx, mv)}


@api("model-versions/search", methods=("GET",))
def search_model_versions(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Versions matching ``filter`` → ``{"model_versions", "next_page_token"}``."""
    filter_string, prompts = split_prompt_filter(params.str("filter"), grammar.parse_model_version_filter)
    page = ctx.client.search_model_versions(
        filter_string,
        max_results=params.int("max_results", default=10000),
        order_by=[str(o) for o in params.list("order_by")] or None,
        page_token=params.str("page_token") or None,
    )
    versions = [mv for mv in page if prompts or not is_prompt(mv.tags)]
    # MLflow's SQL store names no aliases in a search's versions (a get of one version does)
    out: dict[str, Any] = {"model_versions": [model_version_json(ctx, replace(mv, aliases=[])) for mv in versions]}
    if page.token:
        out["next_page_token"] = page.token
    return {k: v for k, v in out.items() if v != []}


@api("model-versions/set-tag", write=True)
def set_model_version_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Set a tag on a version → ``{}``."""
    ctx.client.set_model_version_tag(
        params.str("name", required=True),
        params.str("version", required=True),
        params.str("key", required=True),
        params.str("value", default=""),
    )
    return {}


@api("model-versions/delete-tag", methods=("DELETE",), write=True)
def delete_model_version_tag(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Remove a tag from a version → ``{}``."""
    ctx.client.delete_model_version_tag(
        params.str("name", required=True), params.str("version", required=True), params.str("key", required=True)
    )
    return {}


@api("model-versions/get-download-uri", methods=("GET",))
def get_model_version_download_uri(ctx: ApiContext, params: Params) -> dict[str, Any]:
    """Where a version's files are → ``{"artifact_uri"}`` (a ``runs:/`` source as given, as MLflow)."""
    name, version = params.str("name", required=True), params.str("version", required=True)
    mv = ctx.client.get_model_version(name, version)
    if mv.source and mv.source.startswith("runs:/"):
        return {"artifact_uri": mv.source}
    uri = ctx.client.get_model_version_download_uri(name, version)
    return {"artifact_uri": artifacts.client_uri(ctx.client, ctx.config, uri)}


# -- sources ------------------------------------------------------------------------------------


def _invalid_source(source: str, field: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Invalid model version source: '{source}'. The {field} request parameter "
        "must identify the resource that contains the source."
    )


def _check_no_relative_parts(source: str) -> None:
    text = source
    while (unquoted := urllib.parse.unquote_plus(text)) != text:
        text = unquoted
    if "\x00" in text or ".." in text.split("/"):
        raise InvalidParameterError(
            f"Invalid model version source: '{source}'. If supplying a source as an http, https, local "
            "file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided "
            "without relative path references present. Please provide an absolute path."
        )


def _proxied_path(source: str) -> str | None:
    """The proxied artifact path a ``mlflow-artifacts:`` or server URL source names, if any."""
    relative = convert.proxied_relative_path(source)
    if relative is not None:
        return relative
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https") and _ARTIFACTS_ROUTE in parsed.path:
        return parsed.path.split(_ARTIFACTS_ROUTE, 1)[1].strip("/")
    return None


def _logged_model(ctx: ApiContext, model_id: str, source: str) -> LoggedModel:
    try:
        return LoggedModelStore(ctx.client.store).get(model_id)
    except ResourceNotFoundError:
        raise _invalid_source(source, "model_id") from None


def stored_source(ctx: ApiContext, source: str, run_id: str | None, model_id: str | None) -> tuple[str, str | None]:
    """(source to store, run_id) for a source sent by a client (see the module docstring),
    refused with INVALID_PARAMETER_VALUE as MLflow's server refuses it."""
    _check_no_relative_parts(source)
    proxied = _proxied_path(source)
    if proxied is not None:
        try:
            target = artifacts.resolve(ctx.client, proxied)
        except EvtrackError:
            raise _invalid_source(source, "model_id" if model_id else "run_id") from None
        if model_id and target.model_id != model_id:
            raise _invalid_source(source, "model_id")
        if not model_id and (not run_id or target.run_id != run_id):
            raise _invalid_source(source, "run_id")
        return target.uri, run_id
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models":
        return _models_source(ctx, source, parsed, run_id, model_id)
    if parsed.scheme == "runs":
        return _runs_source(ctx, source, parsed, run_id, model_id)
    if parsed.scheme in ("", "file"):
        _check_local_source(ctx, source, run_id, model_id)
    return source, run_id


def _models_source(
    ctx: ApiContext, source: str, parsed: Any, run_id: str | None, model_id: str | None
) -> tuple[str, str | None]:
    path = parsed.path.lstrip("/")
    if parsed.netloc:
        raise InvalidParameterError(
            f"Invalid model version source: '{source}'. Registered model sources must use the active model registry."
        )
    if "/" in path or "@" in path:  # models:/<name>/<version|stage|latest>, models:/<name>@<alias>
        return source, run_id
    if not model_id or path != model_id or not MODEL_ID.fullmatch(path):
        raise _invalid_source(source, "model_id")
    model = _logged_model(ctx, model_id, source)
    return model.artifact_location, run_id or model.source_run_id


def _runs_source(
    ctx: ApiContext, source: str, parsed: Any, run_id: str | None, model_id: str | None
) -> tuple[str, str | None]:
    if parsed.netloc or model_id:
        raise _invalid_source(source, "model_id" if model_id else "run_id")
    source_run, _, path = parsed.path.lstrip("/").partition("/")
    if not run_id or source_run != run_id:
        raise _invalid_source(source, "run_id")
    path = path.strip("/")
    try:
        if not path or ctx.client.list_artifacts(run_id, path):
            return source, run_id
    except ResourceNotFoundError:
        return source, run_id  # MLflow keeps a source it cannot resolve
    named = [m for m in LoggedModelStore(ctx.client.store).all() if m.source_run_id == run_id and m.name == path]
    if not named:
        return source, run_id  # MLflow keeps a source it cannot resolve
    return max(named, key=lambda m: m.creation_timestamp_ms).artifact_location, run_id


def _local_path(uri: str) -> pathlib.Path | None:
    parsed = urllib.parse.urlparse(uri)
    host = parsed.hostname
    if parsed.scheme == "file" and host and not (host == "." or host.startswith(("localhost", "127.0.0.1"))):
        raise InvalidParameterError(  # MLflow's words (it answers them as a 500; here the client's error)
            f"{uri} is not a valid remote uri. For remote access on windows, please consider using a "
            "different scheme such as SMB (e.g. smb://<hostname>/<path>)."
        )
    if parsed.scheme == "file":
        return pathlib.Path(urllib.parse.unquote(parsed.path)).resolve()
    if parsed.scheme == "":
        return pathlib.Path(uri).resolve()
    return None


def _check_local_source(ctx: ApiContext, source: str, run_id: str | None, model_id: str | None) -> None:
    """A local path must lie inside the artifact directory of the run (or logged model) given."""
    root = None
    if model_id:
        root = _logged_model(ctx, model_id, source).artifact_location
    elif run_id:
        try:
            root = artifacts.run_root(ctx.client, run_id)[1]
        except EvtrackError:
            raise _invalid_source(source, "run_id") from None
    root_path = _local_path(root) if root else None
    path = _local_path(source)
    if root_path is None or path is None or (path != root_path and root_path not in path.parents):
        raise InvalidParameterError(
            f"Invalid model version source: '{source}'. To use a local path as a model version source, the "
            f"{'model_id' if model_id else 'run_id'} request parameter has to be specified and the local "
            "path has to be contained within its artifact directory."
        )


def _record_registration(ctx: ApiContext, model_id: str, mv: ModelVersion) -> None:
    """Add the new version to the logged model's ``mlflow.modelVersions`` tag, as MLflow's server."""
    import json
    from dataclasses import replace

    entry = {"name": mv.name, "version": mv.version}

    def add(model: LoggedModel) -> LoggedModel:
        existing = json.loads(model.tags.get(MODEL_VERSIONS_TAG) or "[]")
        if entry in existing:
            return model
        return replace(model, tags={**model.tags, MODEL_VERSIONS_TAG: json.dumps([*existing, entry])})

    try:
        LoggedModelStore(ctx.client.store).update(model_id, add)
    except ResourceNotFoundError:
        pass  # deleted meanwhile: the version stays registered, as with MLflow's server
