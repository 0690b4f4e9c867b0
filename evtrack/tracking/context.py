"""System tags recorded when a run starts, with MLflow's keys.

``mlflow.user``, ``mlflow.source.name``, ``mlflow.source.type`` and, when the entry
script lives in a git work tree, ``mlflow.source.git.commit`` — read straight from
the ``.git`` directory (no subprocess, so starting a run stays fast).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from evtrack.tracking.client import current_user

SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
USER = "mlflow.user"
GIT_COMMIT = "mlflow.source.git.commit"


def entry_point() -> str:
    """The script or notebook the interpreter runs (``sys.argv[0]``), absolute when a file."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return argv0 or "<interactive>"


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktree or submodule: "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def git_commit(path: str) -> str | None:
    """The commit checked out in the git work tree holding ``path``, or None."""
    try:
        gdir = _git_dir(Path(path).resolve().parent if os.path.isfile(path) else Path(path).resolve())
        if gdir is None:
            return None
        head = (gdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = gdir
        if (gdir / "commondir").is_file():
            common = (gdir / (gdir / "commondir").read_text().strip()).resolve()
        for base in (gdir, common):
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def system_tags() -> dict[str, str]:
    """The tags every new run gets, as MLflow's context providers set them."""
    source = entry_point()
    tags = {USER: current_user(), SOURCE_NAME: source, SOURCE_TYPE: "LOCAL"}
    commit = git_commit(source if os.path.isfile(source) else os.getcwd())
    if commit:
        tags[GIT_COMMIT] = commit
    return tags
