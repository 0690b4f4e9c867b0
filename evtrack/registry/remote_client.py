"""``RemoteRegistryClient``: the registry client's methods over MLflow's REST API (``http(s)://``).

Every call is one synchronous request to the server (``evtrack server`` or MLflow's);
the queued run writes of this process are sent first, so a version registered from a run
just logged sees that run. The server's answers become evtrack's registry entities, and
its errors evtrack's error classes with the server's message.
"""

from __future__ import annotations

from typing import Any

from evtrack.entities import PagedList
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.read.backend import get_remote_backend
from evtrack.registry import uris
from evtrack.registry.entities import ModelVersion, RegisteredModel, canonical_stage
from evtrack.remote.transport import Transport


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _tags(items: Any) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or ()}


def model_version(data: dict[str, Any]) -> ModelVersion:
    """A ``ModelVersion`` from MLflow's JSON (its version is a string there)."""
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        creation_timestamp=_int(data.get("creation_timestamp")),
        last_updated_timestamp=_int(data.get("last_updated_timestamp")),
        description=data.get("description") or None,
        user_id=data.get("user_id") or None,
        current_stage=data.get("current_stage") or "None",
        source=data.get("source"),
        run_id=data.get("run_id") or None,
        status=data.get("status") or "READY",
        status_message=data.get("status_message") or None,
        tags=_tags(data.get("tags")),
        run_link=data.get("run_link") or None,
        aliases=list(data.get("aliases") or ()),
    )


def registered_model(data: dict[str, Any]) -> RegisteredModel:
    """A ``RegisteredModel`` from MLflow's JSON."""
    return RegisteredModel(
        name=data["name"],
        creation_timestamp=_int(data.get("creation_timestamp")),
        last_updated_timestamp=_int(data.get("last_updated_timestamp")),
        description=data.get("description") or None,
        latest_versions=[model_version(v) for v in data.get("latest_versions") or ()],
        tags=_tags(data.get("tags")),
        aliases={a["alias"]: int(a["version"]) for a in data.get("aliases") or ()},
    )


def _version(version: str | int) -> str:
    text = str(version).strip()
    if not text.isdigit():
        raise InvalidParameterError(f"Model version must be an integer, got {version!r}")
    return text


class RemoteRegistryClient:
    """Registered models, versions, stages, aliases and tags on a tracking server."""

    remote = True

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._backend = get_remote_backend(tracking_uri)
        self.tracking_uri: str = self._backend.uri
        self._http: Transport = self._backend.transport

    def _post(self, endpoint: str, payload: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        self._backend.refresh()  # this process's queued run writes first
        return self._http.call(endpoint, payload, method=method)

    def _get(self, endpoint: str, **query: Any) -> dict[str, Any]:
        self._backend.refresh()
        return self._http.call(endpoint, {k: x for k, x in query.items() if x is not None}, method="GET")

    # -- registered models ----------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        deployment_job_id: str | None = None,
    ) -> RegisteredModel:
        payload: dict[str, Any] = {"name": name, "tags": [{"key": k, "value": str(x)} for k, x in (tags or {}).items()]}
        if description is not None:
            payload["description"] = description
        return registered_model(self._post("registered-models/create", payload)["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return registered_model(self._get("registered-models/get", name=name)["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        out = self._post("registered-models/rename", {"name": name, "new_name": new_name})
        return registered_model(out["registered_model"])

    def update_registered_model(
        self, name: str, description: str | None = None, deployment_job_id: str | None = None
    ) -> RegisteredModel:
        out = self._post("registered-models/update", {"name": name, "description": description or ""}, "PATCH")
        return registered_model(out["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        self._post("registered-models/delete", {"name": name}, "DELETE")

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        out = self._get(
            "registered-models/search",
            filter=filter_string or None,
            max_results=max_results,
            order_by=list(order_by or []) or None,
            page_token=page_token,
        )
        models = [registered_model(m) for m in out.get("registered_models") or ()]
        return PagedList(models, out.get("next_page_token") or None)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        payload: dict[str, Any] = {"name": name}
        if stages:
            payload["stages"] = list(stages)
        out = self._post("registered-models/get-latest-versions", payload)
        return [model_version(v) for v in out.get("model_versions") or ()]

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._post("registered-models/set-tag", {"name": name, "key": key, "value": str(value)})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._post("registered-models/delete-tag", {"name": name, "key": key}, "DELETE")

    # -- model versions -------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
        model_id: str | None = None,
        *,
        storage_location: str | None = None,
    ) -> ModelVersion:
        """Register ``source`` as the next version of ``name``; a ``runs:/`` source is resolved
        to the run's artifact URI first, as MLflow's client does."""
        from evtrack.read import artifact_uris

        if artifact_uris.is_runs_uri(source):
            source_run, _ = artifact_uris.parse_runs_uri(source)
            run_id = run_id or source_run
            source = artifact_uris.resolve(source, self.tracking_uri)
        payload: dict[str, Any] = {
            "name": name,
            "source": source,
            "tags": [{"key": k, "value": str(x)} for k, x in (tags or {}).items()],
        }
        for key, value in (("run_id", run_id), ("run_link", run_link), ("description", description)):
            if value is not None:
                payload[key] = value
        if model_id is not None:
            payload["model_id"] = model_id
        return model_version(self._post("model-versions/create", payload)["model_version"])

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return model_version(self._get("model-versions/get", name=name, version=_version(version))["model_version"])

    def update_model_version(self, name: str, version: str | int, description: str | None = None) -> ModelVersion:
        payload = {"name": name, "version": _version(version), "description": description or ""}
        return model_version(self._post("model-versions/update", payload, "PATCH")["model_version"])

    def transition_model_version_stage(
        self, name: str, version: str | int, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        payload = {
            "name": name,
            "version": _version(version),
            "stage": canonical_stage(stage),
            "archive_existing_versions": bool(archive_existing_versions),
        }
        return model_version(self._post("model-versions/transition-stage", payload)["model_version"])

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._post("model-versions/delete", {"name": name, "version": _version(version)}, "DELETE")

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        return self._get("model-versions/get-download-uri", name=name, version=_version(version))["artifact_uri"]

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        out = self._get(
            "model-versions/search",
            filter=filter_string or None,
            max_results=max_results,
            order_by=list(order_by or []) or None,
            page_token=page_token,
        )
        versions = [model_version(v) for v in out.get("model_versions") or ()]
        return PagedList(versions, out.get("next_page_token") or None)

    def _version_or_stage(self, name: str, version: str | int | None, stage: str | None) -> str:
        if (version is None) == (stage is None):
            raise InvalidParameterError("Exactly one of version or stage must be given")
        if version is not None:
            return _version(version)
        latest = self.get_latest_versions(name, [canonical_stage(stage)])
        if not latest:
            raise ResourceNotFoundError(f"No versions of model with name '{name}' and stage '{stage}' found")
        return str(max(v.version for v in latest))

    def set_model_version_tag(
        self,
        name: str,
        version: str | int | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        payload = {
            "name": name,
            "version": self._version_or_stage(name, version, stage),
            "key": key,
            "value": str(value),
        }
        self._post("model-versions/set-tag", payload)

    def delete_model_version_tag(
        self, name: str, version: str | int | None = None, key: str | None = None, stage: str | None = None
    ) -> None:
        payload = {"name": name, "version": self._version_or_stage(name, version, stage), "key": key}
        self._post("model-versions/delete-tag", payload, "DELETE")

    # -- aliases --------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self._post("registered-models/alias", {"name": name, "alias": alias, "version": _version(version)})

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._post("registered-models/alias", {"name": name, "alias": alias}, "DELETE")

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return model_version(self._get("registered-models/alias", name=name, alias=alias)["model_version"])

    def _version_for_models_uri(self, uri: str) -> ModelVersion:
        return uris.version_named(self, uri)

    def flush(self) -> Any:
        return self._backend.flush()
