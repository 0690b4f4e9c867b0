"""The registry entities users see, shaped like MLflow's (``mlflow.entities.model_registry``).

``ModelVersion.version`` is an ``int``, as MLflow's local stores (file, SQL) return
it; every API that takes a version also accepts its string form ("3").
``RegisteredModel.aliases`` maps alias -> version, ``ModelVersion.aliases`` lists
the aliases of that version, as in MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evtrack.errors import InvalidParameterError

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)  # the stages archive_existing_versions applies to
_CANONICAL = {s.lower(): s for s in ALL_STAGES}


def canonical_stage(stage: Any) -> str:
    """A stage name in MLflow's spelling (input is case-insensitive)."""
    key = stage.lower() if isinstance(stage, str) else None
    if key not in _CANONICAL:
        raise InvalidParameterError(
            f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ALL_STAGES)}."
        )
    return _CANONICAL[key]


class ModelVersionStatus:
    """Model version statuses, as in MLflow (evtrack versions are READY once created)."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


@dataclass(slots=True)
class ModelVersion:
    """A version of a registered model, as MLflow's ``ModelVersion``."""

    name: str
    version: int
    creation_timestamp: int | None
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    current_stage: str = STAGE_NONE
    source: str | None = None
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_link: str | None = None
    aliases: list[str] = field(default_factory=list)

    def to_dictionary(self) -> dict[str, Any]:
        """The version as a plain dict (MLflow's field names)."""
        return {name: _plain(getattr(self, name)) for name in ModelVersion.__slots__}


@dataclass(slots=True)
class RegisteredModel:
    """A registered model, as MLflow's ``RegisteredModel``."""

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dictionary(self) -> dict[str, Any]:
        """The model as a plain dict (latest versions as dicts)."""
        out = {name: _plain(getattr(self, name)) for name in RegisteredModel.__slots__}
        out["latest_versions"] = [v.to_dictionary() for v in self.latest_versions]
        return out


@dataclass(frozen=True, slots=True)
class RegisteredModelTag:
    """A tag on a registered model."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ModelVersionTag:
    """A tag on a model version."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RegisteredModelAlias:
    """An alias of a registered model and the version it points at."""

    alias: str
    version: int


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
