"""The tracking server: MLflow's REST API and the web UI over one event log.

``evtrack server`` (shared, usually on S3) and ``evtrack ui`` (local, the embedded
store) both serve :func:`evtrack.server.app.build_app`. The server holds no state
of its own: writes become events through the same client and writer as a
training job, reads go through the same reader and query engine.
"""

from evtrack.server.config import ServerConfig

__all__ = ["ServerConfig"]
