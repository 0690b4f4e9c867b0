"""Options and value types shared by the commands."""

from __future__ import annotations

import re

import click

from evtrack.read.backend import get_tracking_uri

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``90s``, ``5m``, ``1d2h3m4s`` (a bare number means seconds)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not text or m is None or not any(m.groups()):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 5m, 2h or 1d2h3m4s")
    d, h, mins, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mins or 0) * 60 + float(s or 0)


class Duration(click.ParamType):
    """A click type for durations."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def tracking_uri_option(f):
    """``--tracking-uri`` (default: EVTRACK_TRACKING_URI, else ./evtrack-store)."""
    return click.option(
        "--tracking-uri",
        "tracking_uri",
        default=None,
        metavar="URI",
        help="Store to use: a directory, file:// or s3:// URI (default: $EVTRACK_TRACKING_URI or ./evtrack-store).",
    )(f)


def resolve_uri(uri: str | None) -> str:
    """The URI a command works on."""
    return uri or get_tracking_uri()


def view_option(f):
    """``--view active_only|deleted_only|all`` (MLflow's ViewType), passed on as an int."""
    from evtrack.entities import ViewType

    def to_view_type(ctx, param, value: str) -> int:
        return ViewType.from_string(value)

    return click.option(
        "--view",
        "view_type",
        type=click.Choice(["active_only", "deleted_only", "all"], case_sensitive=False),
        default="active_only",
        show_default=True,
        callback=to_view_type,
        help="Which lifecycle stages to show.",
    )(f)


def open_client(uri: str | None):
    """An ``evtrack.EvtrackClient`` on the ``--tracking-uri`` of a command."""
    from evtrack.client import EvtrackClient

    return EvtrackClient(resolve_uri(uri))
