"""The artifacts browser of a run: directory listings, previews, and raw downloads.

Paths are relative to the run's artifact root and checked like every artifact
path (no ``..``, no absolute paths, no URIs), so nothing outside the run can be
named. Downloads are never active content in our origin: HTML, SVG and anything
unknown are sent with ``Content-Security-Policy: sandbox``, and only raster
images and SVG are shown inline (SVG only through ``<img>``, where it cannot
run script). An HTML file (a plotly figure from ``log_figure``) is shown in a
sandboxed frame: its scripts run, but in an opaque origin of their own, never ours.
Tables (CSV, MLflow's table JSON) are shown as HTML tables (``table_preview``).
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from typing import Any

from evtrack.eventlog import validation as v
from evtrack.errors import ResourceNotFoundError
from evtrack.server.ui import table_preview
from evtrack.server.ui.render import page, render
from evtrack.store.base import open_chunks
from evtrack.tracking.artifacts import artifact_store

PREVIEW_BYTES = 1 << 20
HTML_EXTENSIONS = (".html", ".htm")
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}
TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "Dockerfile", "LICENSE"}
TEXT_EXTENSIONS = {
    ".txt",
    ".log",
    ".json",
    ".yaml",
    ".yml",
    ".csv",
    ".tsv",
    ".md",
    ".py",
    ".cfg",
    ".ini",
    ".toml",
    ".xml",
    ".html",
    ".htm",
    ".sh",
    ".sql",
    ".r",
    ".ipynb",
    ".jsonl",
    ".js",
    ".css",
}
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
# an HTML artifact shown in the UI: scripts allowed, but no same-origin (so no access to ours)
HTML_FRAME_CSP = "sandbox allow-scripts"


def _run_and_path(request, param: str = "path") -> tuple[Any, str]:
    client = request.app.state.client
    run = client.get_run(request.path_params["run_id"])
    return run, v.validate_artifact_path(request.query_params.get(param) or "")


def _breadcrumbs(run_id: str, path: str) -> list[tuple[str, str]]:
    """(label, URL) of the root and each directory above ``path``."""
    crumbs = [("artifacts", f"/runs/{run_id}/artifacts")]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        sub = "/".join(parts[: i + 1])
        crumbs.append((part, f"/runs/{run_id}/artifacts?" + urllib.parse.urlencode({"path": sub})))
    return crumbs


def _kind(path: str) -> str:
    """How a file is previewed: image, html, csv, json, text or binary (decided again by content)."""
    name = posixpath.basename(path)
    ext = posixpath.splitext(name)[1].lower()
    if ext in IMAGE_TYPES:
        return "image"
    if ext in HTML_EXTENSIONS:
        return "html"
    if ext in (".csv", ".tsv"):
        return "csv"
    if ext == ".json":
        return "json"
    if name in TEXT_NAMES or ext in TEXT_EXTENSIONS:
        return "text"
    return "unknown"


@page
def artifacts_page(request):
    """``/runs/{run_id}/artifacts?path=dir``: one directory of the run's artifacts."""
    from starlette.responses import RedirectResponse

    client = request.app.state.client
    run, path = _run_and_path(request)
    entries = client.list_artifacts(run.info.run_id, path or None)
    if not entries and path:
        if artifact_store(run.info.artifact_uri).head(path) is not None:
            return RedirectResponse(
                f"/runs/{run.info.run_id}/artifacts/view?" + urllib.parse.urlencode({"path": path}), status_code=303
            )
        raise ResourceNotFoundError(f"No artifact at {path!r} in run {run.info.run_id}")
    rows = [
        {
            "name": posixpath.basename(e.path),
            "path": e.path,
            "is_dir": e.is_dir,
            "size": e.file_size,
            "query": urllib.parse.urlencode({"path": e.path}),
        }
        for e in entries
    ]
    return render(
        request,
        "artifacts.html",
        title=f"Artifacts · {run.info.run_name}",
        run=run,
        path=path,
        rows=rows,
        crumbs=_breadcrumbs(run.info.run_id, path),
    )


def _decode(data: bytes, truncated: bool) -> str | None:
    """The text of a file's first bytes, or None when it looks binary."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 4:  # a character cut by the size cap
            return data[: exc.start].decode("utf-8")
        return None


def _preview(kind: str, text: str, truncated: bool) -> dict[str, Any]:
    if kind == "json" and not truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            if table_preview.is_mlflow_table(parsed):
                return table_preview.mlflow_table(parsed)
            return {"text": json.dumps(parsed, indent=2, ensure_ascii=False)}
    if kind == "csv":
        table = table_preview.csv_table(text, truncated)
        if table is not None:
            return table
    return {"text": text}


def _artifact_file(request, action: str):
    """(run, path, store, object info) of the file named by ``?path=``; 404 when there is none."""
    run, path = _run_and_path(request)
    if not path:
        raise ResourceNotFoundError(f"Give the artifact to {action} with ?path=")
    store = artifact_store(run.info.artifact_uri)
    info = store.head(path)
    if info is None:
        raise ResourceNotFoundError(f"No artifact file at {path!r} in run {run.info.run_id}")
    return run, path, store, info


@page
def view_page(request):
    """``/runs/{run_id}/artifacts/view?path=file``: a preview of one file."""
    run, path, store, info = _artifact_file(request, "preview")
    kind = _kind(path)
    query = urllib.parse.urlencode({"path": path})
    preview: dict[str, Any] = {}
    if kind not in ("image", "html"):
        data = store.read_range(path, 0, PREVIEW_BYTES)
        truncated = info.size > len(data)
        text = _decode(data, truncated)
        if text is None:
            kind = "binary"
        else:
            preview = _preview(kind, text, truncated)
        preview["truncated"] = truncated
    return render(
        request,
        "artifact_view.html",
        title=f"{posixpath.basename(path)} · {run.info.run_name}",
        run=run,
        path=path,
        size=info.size,
        kind=kind,
        preview=preview,
        query=query,
        crumbs=_breadcrumbs(run.info.run_id, posixpath.dirname(path)),
        name=posixpath.basename(path),
        preview_limit=PREVIEW_BYTES,
    )


@page
def raw_file(request):
    """``/runs/{run_id}/artifacts/raw?path=file``: the file itself (images inline, the rest as download)."""
    from starlette.responses import StreamingResponse

    run, path, store, info = _artifact_file(request, "download")
    name = posixpath.basename(path)
    ext = posixpath.splitext(name)[1].lower()
    media_type = IMAGE_TYPES.get(ext, "application/octet-stream")
    disposition = "inline" if ext in IMAGE_TYPES and request.query_params.get("download") != "1" else "attachment"
    policy = DOWNLOAD_HEADERS["Content-Security-Policy"]
    if ext in HTML_EXTENSIONS and request.query_params.get("inline") == "1":  # the preview's sandboxed frame
        media_type, disposition, policy = "text/html; charset=utf-8", "inline", HTML_FRAME_CSP
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Security-Policy": policy,
        "Content-Length": str(info.size),
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{urllib.parse.quote(name)}",
    }
    return StreamingResponse(open_chunks(store, path), media_type=media_type, headers=headers)


def routes() -> list:
    """The artifacts browser."""
    from starlette.routing import Route

    return [
        Route("/runs/{run_id}/artifacts", artifacts_page, methods=["GET"]),
        Route("/runs/{run_id}/artifacts/view", view_page, methods=["GET"]),
        Route("/runs/{run_id}/artifacts/raw", raw_file, methods=["GET"]),
    ]
