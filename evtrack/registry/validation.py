"""MLflow's rules for registry names, versions, tags and aliases (``mlflow.utils.validation``).

Every check raises :class:`~evtrack.errors.InvalidParameterError` with MLflow's wording.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from evtrack.eventlog import validation as v
from evtrack.errors import InvalidParameterError

MAX_ALIAS_LENGTH = 255
# fullmatch: MLflow's ``re.match(r"^[\w\-]*$")`` would also take a trailing newline.
_ALIAS = re.compile(r"[\w\-]*")
_VERSION_ALIAS = re.compile(r"[vV]\d+")
LATEST_ALIAS = "latest"


def _missing(path: str) -> InvalidParameterError:
    return InvalidParameterError(f"Missing value for required parameter '{path}'.")


def validate_model_name(name: Any, path: str = "name") -> str:
    """A registered model name: non-blank, no '/' or ':', unchanged by path normalisation."""
    if name is None or (isinstance(name, str) and name.strip() == ""):
        raise _missing(path)
    if not isinstance(name, str):
        raise InvalidParameterError(f"Invalid model name {name!r}: names must be strings.")
    if "/" in name or ":" in name:
        raise InvalidParameterError(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(".."):
        raise InvalidParameterError(
            f"Invalid value {json.dumps(name)} for parameter '{path}' supplied: Names may be treated as "
            "files in certain cases, and must not resolve to other names when treated as such. "
            f"This name would resolve to {norm!r}"
        )
    return name


def validate_version(version: Any) -> int:
    """A version number given as int or string ("3"); returned as int."""
    if isinstance(version, bool):
        raise InvalidParameterError(f"Parameter 'version' must be an integer, got '{version}'.")
    try:
        return int(version)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"Parameter 'version' must be an integer, got '{version}'.") from None


def validate_tag(key: Any, value: Any) -> str:
    """A registry tag: MLflow's key rules, value ≤ 100,000 characters; returns the value as str
    (``str(value)``, as MLflow's client does: None becomes "None")."""
    v.validate_key(key, "tag")
    text = str(value)
    if len(text) > v.MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH:
        raise InvalidParameterError(
            f"'value' exceeds the maximum length of {v.MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH} characters"
        )
    return text


def validate_tags(tags: Any) -> dict[str, str]:
    """A tags argument: a dict (or None), each tag checked; values become str."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidParameterError(f"tags must be a dict of str to str, got {type(tags).__name__}")
    return {k: validate_tag(k, val) for k, val in tags.items()}


def validate_optional_str(value: Any, path: str) -> str | None:
    """An optional string argument (run_id, run_link)."""
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"Invalid value {value!r} for parameter '{path}': expected a string")
    return value


def validate_alias(alias: Any) -> str:
    """An alias name: ``[\\w\\-]*``, not empty, at most 255 characters."""
    if alias is None or alias == "":
        raise InvalidParameterError("Registered model alias name cannot be empty.")
    if not isinstance(alias, str) or _ALIAS.fullmatch(alias) is None:
        raise InvalidParameterError(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameterError(
            f"'Registered model alias name' exceeds the maximum length of {MAX_ALIAS_LENGTH} characters"
        )
    return alias


def validate_alias_not_reserved(alias: str) -> str:
    """Refuse ``latest`` (any case) and ``v<digits>``, which name versions in model URIs."""
    if alias.lower() == LATEST_ALIAS:
        raise InvalidParameterError("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS.fullmatch(alias):
        raise InvalidParameterError(f"Version alias name '{alias}' is reserved.")
    return alias


def validate_description(description: Any) -> str | None:
    """A description: a string or None."""
    if description is not None and not isinstance(description, str):
        raise InvalidParameterError(f"description must be a string, got {type(description).__name__}")
    return description
