"""Rendering of UI pages: the Jinja environment (autoescaped), value formatting, error pages.

Every template is rendered with autoescaping on, so a string from the store
(experiment and run names, params, tags, artifact names, error messages) can
never become markup; only our own chart SVG is marked safe, in the templates.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evtrack.errors import EvtrackError
from evtrack.server.rest.protocol import check_access
from evtrack.version import __version__

log = logging.getLogger("evtrack.server")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
TRUNCATE_AT = 60  # characters of a long value shown in a table cell


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja environment of the UI templates (autoescape on for every template)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms_time=format_time,
        duration=format_duration,
        num=format_number,
        short=shorten,
        size=format_size,
        value=format_value,
        svg_width=svg_width,
    )
    env.globals["version"] = _version()
    return env


def compile_templates() -> None:
    """Load and compile every template now (at server start: the first page served under load
    would otherwise pay it, about a second with the GIL shared by many request threads)."""
    env = environment()
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)


def _version() -> str:
    return __version__


def format_time(ms: int | None) -> str:
    """A millisecond epoch timestamp as UTC ``YYYY-MM-DD HH:MM:SS`` ('' when unknown)."""
    if ms is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def format_duration(start: int | None, end: int | None = None) -> str:
    """How long a run took (``1h 02m``, ``3.4s``); '' when it has not ended."""
    if start is None or end is None or end < start:
        return ""
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24:02d}h"


def format_number(value: Any) -> str:
    """A metric value with up to 6 significant digits ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def format_value(value: Any) -> str:
    """Any cell value as text: numbers as :func:`format_number`, None as ''."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value)
    return "" if value is None else str(value)


def shorten(text: Any, limit: int = TRUNCATE_AT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (the full text goes in a title)."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_size(size: int | None) -> str:
    """A byte count for people (``1.2 MiB``)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


_VIEWBOX = re.compile(r'<svg[^>]*\sviewBox="0 0 ([0-9.]+) ')


def svg_width(svg: str) -> int:
    """The natural width of one of our charts (from its viewBox), to size its figure."""
    match = _VIEWBOX.search(svg[:1000])
    return int(float(match.group(1))) if match else 640


def render(request, template: str, status: int = 200, **context: Any):
    """The HTML response of a template, with the request's user in the context."""
    from starlette.responses import HTMLResponse

    principal = request.scope.get("evtrack.principal")
    html = (
        environment()
        .get_template(template)
        .render(request=request, user=principal.name if principal else None, **context)
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


# No page of ours needs anything from another origin; scripts only from /static.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def error_page(request, exc: EvtrackError):
    """The page shown for an evtrack error, with MLflow's HTTP status for its code."""
    from evtrack.server.rest.protocol import RequestTooLargeError, http_status

    status = 413 if isinstance(exc, RequestTooLargeError) else http_status(exc.error_code)
    return render(
        request,
        "error.html",
        status=status,
        error_code=exc.error_code,
        error_message=exc.message,
        title=_ERROR_TITLES.get(status, "Error"),
    )


_ERROR_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    413: "Request too large",
    500: "Internal error",
    503: "Store unavailable",
}


async def answer(request, produce: Callable[[], Any]):
    """``await produce()``; an :class:`EvtrackError` becomes its error page, anything else a plain 500."""
    try:
        return await produce()
    except EvtrackError as exc:
        return error_page(request, exc)
    except Exception:
        log.exception("evtrack ui: unexpected error in %s %s", request.method, request.url.path)
        return error_page(
            request, EvtrackError(f"Internal error while handling {request.url.path}; see the server log")
        )


def page(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An endpoint from a blocking ``fn(request) -> Response``: run on the thread pool, read
    access checked, an :class:`EvtrackError` shown as an error page, anything else a plain 500."""
    from starlette.concurrency import run_in_threadpool

    @functools.wraps(fn)
    async def endpoint(request):
        async def produce():
            check_access(request, write=False)
            return await run_in_threadpool(fn, request)

        return await answer(request, produce)

    return endpoint
