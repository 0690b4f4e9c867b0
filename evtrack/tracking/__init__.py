"""The tracking API: the client, the fluent functions, artifacts and run context."""
