"""The one error hierarchy of evtrack.

Every error a user can see is an :class:`EvtrackError`.  Each subclass carries an
MLflow-compatible ``error_code`` so the REST layer and users switching from
MLflow see the codes they know.
"""

from __future__ import annotations


class EvtrackError(Exception):
    """Base class of every error raised by evtrack."""

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code


class InvalidParameterError(EvtrackError):
    """An argument breaks one of MLflow's rules (name, limit, type, immutability)."""

    error_code = "INVALID_PARAMETER_VALUE"


class ResourceNotFoundError(EvtrackError):
    """The experiment, run, artifact or model asked for does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceAlreadyExistsError(EvtrackError):
    """A name that must be unique (experiment, registered model) is taken."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidStateError(EvtrackError):
    """The operation is not allowed in the entity's current state (e.g. a deleted run)."""

    error_code = "INVALID_STATE"


class StoreError(EvtrackError):
    """The object store failed or could not be reached."""

    error_code = "TEMPORARILY_UNAVAILABLE"


class ObjectNotFoundError(StoreError):
    """An object key does not exist in the store."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class CommitConflictError(StoreError):
    """A put-if-absent lost: the key was already created by someone else."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class EventDecodeError(EvtrackError):
    """A line of the event log is malformed, of an unknown type or an unknown version."""

    error_code = "BAD_REQUEST"


class InvalidUriError(EvtrackError):
    """A tracking, artifact or model URI cannot be understood."""

    error_code = "INVALID_PARAMETER_VALUE"


# MLflow's name for the base error, so ``except mlflow.MlflowException`` keeps working after
# ``import evtrack as mlflow`` (every evtrack error carries MLflow's ``error_code``).
MlflowException = EvtrackError
