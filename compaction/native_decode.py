"""Native decoding of metric lines: the writers' own encoding, parsed column-wise.

Metric events are the bulk of every inbox, and writers encode them one way
(``evtrack.events.encode_metric_line``, orjson, no spaces)::

    {"v":1,"eid":"E","type":"metric","ts":T,"run_id":"R","key":"K","value":V,"step":S,"timestamp":TS}

``metric_tables`` parses many blocks of such lines at once with vectorized
numpy operations — no Python object per event, the GIL released in the heavy
loops — straight into the columns the compactor writes
(``eid, ts, run_id, key, value, step, timestamp``).

A block is accepted only when every line is byte for byte that layout: the 26
quotes of a line at their places and the constant text between them checked,
strings free of escapes and control characters (so their bytes are their
value) and valid UTF-8, integers in JSON's grammar and in int64, the value in
JSON's number grammar and finite. Such a line is one the Python decoder
(``evtrack.events.from_wire``) reads as a metric with the same values; for any
other block the result is None and the caller decodes it in Python, which
reads the other spellings of JSON and quarantines what is wrong. Without numpy
every block is None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pyarrow as pa

METRIC_COLUMNS = ["eid", "ts", "run_id", "key", "value", "step", "timestamp"]
NL, QUOTE, BACKSLASH, MINUS = 10, 34, 92, 45
QUOTES_PER_LINE = 26

# The constant text of a line: (text, index of the quote it starts at or -1 for the line
# start, offset from that quote). The quotes it holds are the next ones of the line.
_CONSTANTS = (
    (b'{"v":1,"eid":"', -1, 0),
    (b'","type":"metric","ts":', 5, 0),
    (b',"run_id":"', 12, -1),
    (b'","key":"', 15, 0),
    (b'","value":', 19, 0),
    (b',"step":', 22, -1),
    (b',"timestamp":', 24, -1),
)
# The variable fields: (name, quote index it starts after, offset, quote index it ends at, offset).
# A quote index of 26 stands for the line's newline, the end offset -1 for the closing "}".
_FIELDS = (
    ("eid", 4, 1, 5, 0), ("ts", 11, 2, 12, -1), ("run_id", 14, 1, 15, 0), ("key", 18, 1, 19, 0),
    ("value", 21, 2, 22, -1), ("step", 23, 2, 24, -1), ("timestamp", 25, 2, 26, -1),
)
INT_DIGITS = 19  # more digits never fit in int64
FLOAT_CHARS = 32  # longer numbers take the Python path (writers emit at most 24 characters)


def available() -> bool:
    """Whether the native decoder can run here (it needs numpy)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def metric_tables(blocks: Sequence[bytes]) -> list["pa.Table | None"]:
    """Each block (newline-terminated metric lines) as METRIC_COLUMNS, or None when a line is not plain."""
    out: list[Any] = [None] * len(blocks)
    usable = [i for i, b in enumerate(blocks) if b.endswith(b"\n") and _valid_utf8(b)]
    if not usable or not available():
        return out
    import numpy as np
    import pyarrow as pa

    buf = np.frombuffer(b"".join(blocks[i] for i in usable), np.uint8)
    newlines = np.flatnonzero(buf == NL)
    counts = np.array([blocks[i].count(b"\n") for i in usable])
    anchors, ok = _layout(buf, newlines)
    spans = {name: (anchors[:, a + 1] + da, anchors[:, b + 1] + db) for name, a, da, b, db in _FIELDS}
    numbers = {}
    for name in ("ts", "step", "timestamp", "value"):
        numbers[name], valid = (_floats if name == "value" else _ints)(buf, *spans[name])
        ok &= valid
    block_of_line = np.repeat(np.arange(len(usable)), counts)
    block_ok = np.bincount(block_of_line, weights=~ok, minlength=len(usable)) == 0
    keep = block_ok[block_of_line]
    columns = [_strings(buf, spans[name][0][keep], spans[name][1][keep]) if name not in numbers
               else pa.array(numbers[name][keep]) for name in METRIC_COLUMNS]
    table = pa.table(columns, names=METRIC_COLUMNS)
    start = 0
    for i, good, n in zip(usable, block_ok, counts):
        if good:
            out[i] = table.slice(start, n)
            start += n
    return out


def _valid_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _layout(buf: Any, newlines: Any) -> tuple[Any, Any]:
    """(anchors, ok): per line its start, its 26 quotes and its newline; whether it has the writers' layout.

    The layout: the constant text at its place, the fields non-empty (run_id and key
    may be), and no escape or control character in the line.
    """
    import numpy as np

    n = len(newlines)
    quotes = np.flatnonzero(buf == QUOTE)
    per_line = np.bincount(np.searchsorted(newlines, quotes), minlength=n)[:n]
    ok = per_line == QUOTES_PER_LINE
    if len(quotes) == QUOTES_PER_LINE * n and ok.all():
        grid = quotes.reshape(n, QUOTES_PER_LINE)
    else:
        first = np.where(ok, np.cumsum(per_line) - per_line, 0)
        grid = quotes[np.minimum(first[:, None] + np.arange(QUOTES_PER_LINE), max(len(quotes) - 1, 0))] \
            if len(quotes) else np.zeros((n, QUOTES_PER_LINE), np.int64)
        grid = np.where(ok[:, None], grid, 0)
    odd = np.flatnonzero(((buf < 0x20) & (buf != NL)) | (buf == BACKSLASH))
    ok[np.searchsorted(newlines, odd)] = False
    starts = np.concatenate(([0], newlines[:-1] + 1))
    anchors = np.column_stack([starts, grid, newlines])
    for text, at, offset in _CONSTANTS + ((b"}\n", QUOTES_PER_LINE, -1),):
        ok &= _matches(buf, anchors[:, at + 1] + offset, text)
    for name, a, da, b, db in _FIELDS:
        ok &= (anchors[:, b + 1] + db) - (anchors[:, a + 1] + da) >= (0 if name in ("run_id", "key") else 1)
    return anchors, ok


def _matches(buf: Any, pos: Any, text: bytes) -> Any:
    """Per line: ``text`` is at ``pos``."""
    import numpy as np

    want = np.frombuffer(text, np.uint8)
    idx = pos[:, None] + np.arange(len(want))
    inside = (idx >= 0) & (idx < len(buf))
    return (inside & (buf[np.clip(idx, 0, len(buf) - 1)] == want)).all(axis=1)


def _gather(buf: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """(offsets, bytes) of the slices buf[lo:hi], packed end to end."""
    import numpy as np

    length = np.maximum(hi - lo, 0)
    offsets = np.zeros(len(lo) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    index = np.repeat(lo - offsets[:-1], length) + np.arange(offsets[-1])
    return offsets, buf[index]


def _strings(buf: Any, lo: Any, hi: Any) -> "pa.Array":
    """The slices buf[lo:hi] as a string array (the caller checked UTF-8 and the absence of escapes)."""
    import numpy as np
    import pyarrow as pa

    offsets, data = _gather(buf, lo, hi)
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.string(), len(lo), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                            pa.py_buffer(data)])
    return pa.Array.from_buffers(pa.large_string(), len(lo), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
                                 ).cast(pa.string())


def _padded(buf: Any, lo: Any, hi: Any, width: int) -> tuple[Any, Any]:
    """(characters, in-token mask) of each token, as a (tokens, width) grid."""
    import numpy as np

    cols = np.arange(width)
    inside = cols < (hi - lo)[:, None]
    chars = buf[np.clip(lo[:, None] + cols, 0, len(buf) - 1)]
    return np.where(inside, chars, 0), inside


def _ints(buf: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """(int64 values, valid): JSON integers (``-?(0|[1-9][0-9]*)``) that fit in int64."""
    import numpy as np

    width = INT_DIGITS + 1
    length = hi - lo
    chars, inside = _padded(buf, lo, hi, width)
    negative = chars[:, 0] == MINUS
    digit_at = inside.copy()
    digit_at[:, 0] &= ~negative
    digits = digit_at.sum(axis=1)
    first = chars[np.arange(len(lo)), negative.astype(np.int64)]
    is_digit = (chars >= ord("0")) & (chars <= ord("9"))
    valid = ((is_digit | ~digit_at).all(axis=1) & (digits >= 1) & (digits <= INT_DIGITS) & (length <= width)
             & ((first != ord("0")) | (digits == 1)))
    power = np.clip(length[:, None] - 1 - np.arange(width), 0, INT_DIGITS - 1)
    pow10 = np.array([10**k for k in range(INT_DIGITS)], np.uint64)
    value = (np.where(digit_at & valid[:, None], (chars - ord("0")).astype(np.uint64), np.uint64(0))
             * pow10[power]).sum(axis=1, dtype=np.uint64)
    valid &= np.where(negative, value <= np.uint64(2**63), value <= np.uint64(2**63 - 1))
    signed = value.view(np.int64)
    return np.where(negative, -signed, signed), valid


# JSON's number grammar as a state machine over character classes.
_DIGIT0, _DIGIT, _MINUS, _PLUS, _DOT, _EXP, _OTHER = range(7)
_ACCEPT = (2, 3, 5, 8)  # after a lone 0, integer digits, fraction digits, exponent digits
_DEAD = 9
_NEXT = {  # state: {class: next state}; anything else leads to the dead state
    0: {_MINUS: 1, _DIGIT0: 2, _DIGIT: 3}, 1: {_DIGIT0: 2, _DIGIT: 3},
    2: {_DOT: 4, _EXP: 6}, 3: {_DIGIT0: 3, _DIGIT: 3, _DOT: 4, _EXP: 6},
    4: {_DIGIT0: 5, _DIGIT: 5}, 5: {_DIGIT0: 5, _DIGIT: 5, _EXP: 6},
    6: {_PLUS: 7, _MINUS: 7, _DIGIT0: 8, _DIGIT: 8}, 7: {_DIGIT0: 8, _DIGIT: 8}, 8: {_DIGIT0: 8, _DIGIT: 8},
}
_machine: tuple | None = None


def _number_machine() -> tuple:
    """(class of each byte, transition table) of the number grammar, built once."""
    global _machine
    if _machine is None:
        import numpy as np

        classes = np.full(256, _OTHER, np.int8)
        classes[ord("0")], classes[ord("1"):ord("9") + 1] = _DIGIT0, _DIGIT
        classes[ord("-")], classes[ord("+")], classes[ord(".")] = _MINUS, _PLUS, _DOT
        classes[ord("e")] = classes[ord("E")] = _EXP
        table = np.full((_DEAD + 1, _OTHER + 1), _DEAD, np.int8)
        for state, moves in _NEXT.items():
            for cls, nxt in moves.items():
                table[state, cls] = nxt
        _machine = (classes, table)
    return _machine


def _floats(buf: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """(float64 values, valid): finite JSON numbers, read as Python reads them ("-0" is the integer 0)."""
    import numpy as np
    import pyarrow as pa

    length = hi - lo
    width = int(min(max(length.max(initial=2), 2), FLOAT_CHARS))
    chars, inside = _padded(buf, lo, hi, width)
    classes, table = _number_machine()
    state = np.zeros(len(lo), np.int8)
    for col in range(width):
        state = np.where(inside[:, col], table[state, classes[chars[:, col]]], state)
    valid = np.isin(state, _ACCEPT) & (length <= FLOAT_CHARS)
    values = np.zeros(len(lo), np.float64)
    if valid.any():
        offsets, data = _gather(buf, lo[valid], hi[valid])
        text = pa.Array.from_buffers(pa.string(), int(valid.sum()),
                                     [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
        values[valid] = text.cast(pa.float64()).to_numpy(zero_copy_only=False)  # correctly rounded
    pass  # beyond float64: orjson refuses it
    minus_zero_int = (length == 2) & (chars[:, 0] == MINUS) & (chars[:, 1] == ord("0"))
    return np.where(minus_zero_int, 0.0, values), valid
