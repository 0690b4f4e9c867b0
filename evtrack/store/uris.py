"""Tracking URIs that name an evtrack store in other forms, and the ones evtrack refuses.

``evtrack:`` URIs are the forms MLflow's package uses for evtrack's store plugin
(``mlflow.set_tracking_uri("evtrack+s3://…")``); evtrack itself accepts them too, so one
``MLFLOW_TRACKING_URI`` serves a team's ``import mlflow`` and ``import evtrack`` code:

=================================  ==========================================
MLflow tracking / registry URI     evtrack store
=================================  ==========================================
``evtrack:///abs/path``            the local directory ``/abs/path``
``evtrack:relative/path``          ``relative/path`` under the working directory
``evtrack+s3://bucket/prefix``     ``s3://bucket/prefix`` (AWS credential chain,
                                   ``AWS_ENDPOINT_URL`` for MinIO and others)
=================================  ==========================================

``evtrack://localhost/abs/path`` is accepted as ``evtrack:///abs/path`` (as ``file:``
URIs are); any other host is refused, as a store is a directory or a bucket, not a server.

Database URIs (MLflow's sqlite, PostgreSQL, MySQL and SQL Server stores) are refused with
:func:`refuse_database_uri`'s message, which says where evtrack keeps its data and how to
bring an MLflow database over.
"""

from __future__ import annotations

import os
import urllib.parse

from evtrack.errors import InvalidUriError

SCHEMES = ("evtrack", "evtrack+s3")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")
_FORMS = "evtrack:///abs/path, evtrack:relative/path or evtrack+s3://bucket/prefix"


def _invalid(uri: str, why: str) -> InvalidUriError:
    return InvalidUriError(f"Invalid evtrack store URI {uri!r}: {why}. Use {_FORMS}.")


def store_location(uri: str) -> str:
    """The evtrack tracking URI (a directory path or ``s3://…``) an ``evtrack:`` URI names."""
    if not isinstance(uri, str) or not uri:
        raise _invalid(str(uri), "it is empty")
    parsed = urllib.parse.urlparse(uri)
    if parsed.query or parsed.fragment:
        raise _invalid(uri, "query strings and fragments are not supported")
    if parsed.scheme == "evtrack+s3":
        if not parsed.netloc:
            raise _invalid(uri, "it names no bucket")
        return f"s3://{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme != "evtrack":
        raise _invalid(uri, f"the scheme {parsed.scheme!r} is not one of {', '.join(SCHEMES)}")
    if parsed.netloc not in ("", "localhost"):
        raise _invalid(uri, f"a store is a directory, not a host ({parsed.netloc!r})")
    path = urllib.parse.unquote(parsed.path)
    if not path:
        raise _invalid(uri, "it names no directory")
    return os.path.abspath(os.path.expanduser(path))


def is_evtrack_uri(uri: str) -> bool:
    """Whether ``uri`` is in one of the ``evtrack:`` forms."""
    return uri.startswith(("evtrack:", "evtrack+s3:"))


def refuse_database_uri(uri: str) -> None:
    """Raise a clear InvalidUriError when ``uri`` names a database (``sqlite:///mlflow.db`` …)."""
    scheme = uri.partition(":")[0].split("+")[0].lower() if ":" in uri else ""
    if scheme in DATABASE_SCHEMES:
        raise InvalidUriError(
            f"{uri!r} is a database URI: evtrack does not keep runs in a database. Its store is a "
            "directory (a path or file:///abs/path) or an S3 prefix (s3://bucket/prefix), which MLflow's "
            "clients reach through `evtrack server`. To bring an MLflow "
            f"{scheme} store over, run `evtrack import {uri} <store>`."
        )
