"""The tracking API: the client, the fluent functions, artifacts and run context."""

from evtrack.tracking import model_links as _model_links  # noqa: F401  (registers the model links' state domain)
