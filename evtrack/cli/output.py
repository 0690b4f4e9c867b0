"""Printing results: aligned text tables for people, exact CSV and JSON for programs.

Every command that prints rows hands ``(columns, rows)`` to :func:`emit`. Cells are
plain Python values (str, int, float, None, and whatever DuckDB returns: Decimal,
datetime, list, dict, bytes). Non-finite floats print as ``NaN``, ``Infinity``
and ``-Infinity`` in every format, so the JSON stays valid.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
from typing import Any, Iterable, Sequence

import click

FORMATS = ("table", "csv", "json")


def format_option(f):
    """``--format table|csv|json`` (default: table)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS, case_sensitive=False),
        default="table",
        show_default=True,
        help="Output format: an aligned table for people, or exact CSV / JSON.",
    )(f)


# -- cells ------------------------------------------------------------------------------------


def _float_text(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _decimal_value(d: decimal.Decimal) -> int | float | str:
    """A Decimal as the closest JSON number that keeps every digit (else its text)."""
    if d == d.to_integral_value():
        return int(d)
    f = float(d)
    return f if decimal.Decimal(repr(f)) == d else str(d)


def json_value(value: Any) -> Any:
    """``value`` made JSON-safe: non-finite floats as strings, dates as ISO text, bytes as base64."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _float_text(value)
    if isinstance(value, decimal.Decimal):
        return _decimal_value(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def cell_text(value: Any) -> str:
    """The text of one cell in CSV and tables (None is empty; floats exact)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (dict, list, tuple)):
        return dumps(value, indent=None)
    if isinstance(value, (str, int, decimal.Decimal)):
        return str(value)
    return str(json_value(value))


def dumps(value: Any, indent: int | None = 2) -> str:
    """Valid JSON text of ``value`` (see :func:`json_value`)."""
    return json.dumps(json_value(value), indent=indent, ensure_ascii=False, allow_nan=False)


def ms_to_local(ms: int | None) -> str:
    """A millisecond timestamp as local ``YYYY-MM-DD HH:MM:SS`` (empty for None)."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


# -- whole results ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An aligned plain-text table: header, dashes, rows; numeric columns right-aligned."""
    rows = [list(r) for r in rows]
    texts = [[cell_text(v).replace("\r", "\\r").replace("\n", "\\n") for v in r] for r in rows]
    widths = [len(c) for c in columns]
    for r in texts:
        widths = [max(w, len(t)) for w, t in zip(widths, r)]
    numeric = [bool(rows) and all(r[i] is None or _is_number(r[i]) for r in rows) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        parts = [t.rjust(w) if num else t.ljust(w) for t, w, num in zip(cells, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in texts)
    return "\n".join(out)


def format_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with a header row; lines end with ``\\n``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([cell_text(v) for v in r])
    return buf.getvalue()


def format_json(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A JSON list with one object per row."""
    return dumps([dict(zip(columns, r)) for r in rows])


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table") -> str:
    """The text of a result in ``fmt`` (table, csv or json)."""
    fmt = fmt.lower()
    if fmt == "csv":
        return format_csv(columns, rows)
    if fmt == "json":
        return format_json(columns, rows) + "\n"
    return format_table(columns, rows) + "\n"


def emit(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table") -> None:
    """Print a result to stdout."""
    click.echo(render(columns, rows, fmt), nl=False)


def flush_or_warn(client: Any) -> None:
    """Send a command's writes now; say on stderr when some could only be parked in the spool."""
    result = client.flush()
    if not result.durable:
        click.echo(
            f"Warning: {result.pending_segments} segment(s) not sent yet ({result.error}); "
            "they are kept in the local spool and sent by the next evtrack process",
            err=True,
        )
