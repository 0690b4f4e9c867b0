"""The store URIs MLflow passes to the plugin, and the evtrack store each one names.

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
"""

from __future__ import annotations

import os
import urllib.parse

from evtrack.errors import InvalidUriError

SCHEMES = ("evtrack", "evtrack+s3")
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
