"""Write forms of the UI: who may post them, from where, and how their bodies are read."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable
from typing import Any

from evtrack.errors import EvtrackError
from evtrack.server.rest.protocol import PermissionDeniedError, check_access, read_body
from evtrack.server.ui.render import answer


class CrossSiteRequestError(PermissionDeniedError):
    """A form was posted from a page of another origin."""


def check_same_origin(request) -> None:
    """Refuse a post whose ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another site.

    The origin must name the host the browser talked to: the ``Host`` header, or the
    ``X-Forwarded-Host`` a reverse proxy sets (a cross-site page cannot set either).
    """
    origin = request.headers.get("origin")
    if origin is not None:
        hosts = {request.headers.get("host", "").lower()}
        forwarded = request.headers.get("x-forwarded-host")
        if forwarded:
            hosts.add(forwarded.split(",")[0].strip().lower())
        parsed = urllib.parse.urlsplit(origin)
        if origin == "null" or parsed.scheme not in ("http", "https") or parsed.netloc.lower() not in hosts:
            raise CrossSiteRequestError(f"Refusing a form posted from another origin ({origin!r})")
    elif request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise CrossSiteRequestError("Refusing a form posted from another site")


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of repeated keys)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EvtrackError("The form body is not valid UTF-8", "BAD_REQUEST") from None
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def write_form(fn: Callable[[Any, dict[str, str]], Any]) -> Callable[..., Any]:
    """An endpoint from a blocking ``fn(request, form) -> Response`` that writes: the caller
    must have write access and post from our own origin; the body is read within the
    server's size limit; the writer is flushed before answering."""
    from starlette.concurrency import run_in_threadpool

    @functools.wraps(fn)
    async def endpoint(request):
        async def produce():
            check_access(request, write=True)
            check_same_origin(request)
            form = parse_form(await read_body(request, request.app.state.config.max_request_bytes))

            def call():
                response = fn(request, form)
                request.app.state.client.flush()
                return response

            return await run_in_threadpool(call)

        return await answer(request, produce)

    return endpoint
