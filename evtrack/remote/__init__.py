"""evtrack's client over HTTP: ``http://`` and ``https://`` tracking URIs speak MLflow's REST API.

``transport`` sends one request (auth, TLS, retries, server errors as evtrack's error
classes); ``sender`` batches ``log_*`` calls into ``runs/log-batch`` requests on a
background thread and parks what it cannot send in the spool; ``backend`` is the
per-URI object a process shares, as ``evtrack.read.backend.Backend`` is for a store.
"""

SCHEMES = ("http", "https")


def is_remote_uri(uri: object) -> bool:
    """Whether a tracking URI names a server (``http://`` or ``https://``)."""
    return isinstance(uri, str) and uri.lower().startswith(("http://", "https://"))
