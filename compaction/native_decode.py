"""Native decoding of metric lines: Arrow's C++ JSON reader, strict, off the GIL.

Metric events are the bulk of every inbox. ``metric_columns`` parses a block of
JSON lines that should all be metric events straight into the columns the
compactor writes (``eid, ts, run_id, key, value, step, timestamp``), with no
Python object per event, and releases the GIL while it parses, so the inbox
threads decode on every core.

It accepts a block only when every line is an event the Python decoder
(``evtrack.events.from_wire``) would accept as a metric with the same values;
otherwise it returns None and the caller decodes the block in Python, which
names and quarantines what is wrong. Arrow's reader is stricter than needed in
places (a duplicate key, a ``1.0`` step, a metric value ``"NaN"`` sent as a
string) — those blocks simply take the Python path — and more lenient in a
few, which are checked here:

* ``NaN`` / ``Infinity`` literals (not JSON): every value must be finite;
* a bare ``-0`` value: Python reads the integer 0 (so +0.0), Arrow -0.0;
* a UTF-8 byte-order mark, invalid UTF-8, two objects on one line, a missing
  field or a ``null``: refused before or after parsing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

METRIC_COLUMNS = ["eid", "ts", "run_id", "key", "value", "step", "timestamp"]
_BOM = b"\xef\xbb\xbf"
_options: tuple | None = None


def _json_options() -> tuple:
    """(schema, parse options) of metric lines, built once (pyarrow is imported lazily)."""
    global _options
    if _options is None:
        import pyarrow as pa
        import pyarrow.json as pj

        schema = pa.schema([("v", pa.int64()), ("eid", pa.string()), ("type", pa.string()), ("ts", pa.int64()),
                            ("run_id", pa.string()), ("key", pa.string()), ("value", pa.float64()),
                            ("step", pa.int64()), ("timestamp", pa.int64())])
        parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error",
                                newlines_in_values=False)
        _options = (schema, parse)
    return _options


def metric_columns(data: bytes) -> "pa.Table | None":
    """The metric events of ``data`` (newline-terminated JSON lines) as METRIC_COLUMNS; None if any line is not one."""
    import pyarrow as pa
    import pyarrow.json as pj

    lines = data.count(b"\n")
    if not lines or not data.endswith(b"\n") or data.startswith(_BOM):
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")  # Arrow's reader does not check UTF-8; orjson does
        except UnicodeDecodeError:
            return None
    _, parse = _json_options()
    read = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)  # one block: one parse
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=read, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != lines or not _well_formed(table):
        return None
    return table.select(METRIC_COLUMNS).combine_chunks()


def _well_formed(table: "pa.Table") -> bool:
    """Every field present and non-null, ``v`` 1, type metric, a non-empty eid, a finite value that is not -0."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if any(col.null_count for col in table.columns):
        return False
    value = table.column("value")
    if not (pc.all(pc.equal(table.column("v"), 1)).as_py()
            and pc.all(pc.equal(table.column("type"), "metric")).as_py()
            and pc.min(pc.binary_length(table.column("eid"))).as_py() > 0
            and pc.all(pc.is_finite(value)).as_py()):
        return False
    zeros = pc.filter(value, pc.equal(value, 0.0))
    return not len(zeros) or not pc.any(pc.less(pc.divide(pa.scalar(1.0), zeros), 0.0)).as_py()
