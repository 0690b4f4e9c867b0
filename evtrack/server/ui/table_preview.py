"""Tables shown in an artifact's preview: CSV/TSV files and MLflow's table JSON.

MLflow's ``log_table`` writes ``{"columns": [...], "data": [[...], ...]}`` (pandas'
``orient="split"`` without index); an image cell is ``{"type": "image", "filepath": ...,
"compressed_filepath": ...}`` and is shown as its thumbnail. A preview holds at most
``PREVIEW_ROWS`` rows and says how many there are. Cells are plain text here; the template
escapes them.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from typing import Any

from evtrack.errors import InvalidParameterError
from evtrack.eventlog import validation as v

PREVIEW_ROWS = 500


def _text(value: Any) -> dict[str, str]:
    return {"text": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)}


def _cell(value: Any) -> dict[str, str]:
    """A table cell: text, or the thumbnail of an image cell (its path checked like any artifact path)."""
    if isinstance(value, dict) and value.get("type") == "image":
        path = value.get("compressed_filepath") or value.get("filepath")
        try:
            rel = v.validate_artifact_path(path) if isinstance(path, str) else ""
        except InvalidParameterError:
            rel = ""
        if rel:
            return {"image": urllib.parse.urlencode({"path": rel}), "title": value.get("filepath") or rel}
    return _text(value)


def is_mlflow_table(obj: Any) -> bool:
    """True for MLflow's table layout: a list of column names and a list of rows."""
    return (
        isinstance(obj, dict)
        and set(obj) in ({"columns", "data"}, {"columns", "data", "index"})
        and isinstance(obj["columns"], list)
        and isinstance(obj["data"], list)
        and all(isinstance(row, list) for row in obj["data"])
    )


def mlflow_table(obj: dict[str, Any]) -> dict[str, Any]:
    """The preview of a parsed MLflow table."""
    rows = obj["data"]
    return {
        "table_id": "table-preview",
        "header": [str(c) for c in obj["columns"]],
        "rows": [[_cell(c) for c in row] for row in rows[:PREVIEW_ROWS]],
        "total_rows": len(rows),
        "total_exact": True,
    }


def csv_table(text: str, truncated: bool) -> dict[str, Any] | None:
    """The preview of CSV (or TSV, by its first line) text; None when there are no rows."""
    dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    header = next(reader, None)
    if header is None:
        return None
    rows, total = [], 0
    for row in reader:
        total += 1
        if total <= PREVIEW_ROWS:
            rows.append([{"text": c} for c in row])
    return {
        "table_id": "csv-preview",
        "header": header,
        "rows": rows,
        "total_rows": total,
        "total_exact": not truncated,
    }
