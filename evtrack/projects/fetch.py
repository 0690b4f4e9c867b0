"""Where a project's files come from: a local directory, or a git repository cloned with ``git``.

``URI#subdir`` selects a sub-directory. A local directory (a path or ``file://``
URI) is used in place; with a ``version`` it must be a git repository and is
cloned and checked out at that commit, branch or tag. Any other URI
(``https://…``, ``git@host:…``, ``ssh://…``) is cloned.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from evtrack.projects.spec import ExecutionError
from evtrack.tracking import gitinfo

CLONE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Fetched:
    """A project's working directory, and what the run records about its origin."""

    work_dir: str
    source_name: str  # mlflow.source.name: the repository URL, else the path or URI
    is_local: bool
    cloned_to: str | None = None  # a temporary clone, removed by the caller when done


def split_subdirectory(uri: str) -> tuple[str, str]:
    """(uri, subdirectory) from ``uri#subdir``; a subdirectory may not leave the project."""
    uri = uri.strip().strip("'\"")
    base, _, sub = uri.partition("#")
    sub = sub.strip("/")
    if sub and (os.path.isabs(sub) or ".." in sub.split("/")):
        raise ExecutionError(f"Invalid project subdirectory {sub!r}: it must be a relative path inside the project")
    return base, sub


def local_path(uri: str) -> str | None:
    """The local directory a URI names (a path or ``file://`` URI), or None."""
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        path = unquote(parts.netloc + parts.path)
    elif "://" in uri or (":" in uri and "@" in uri.split(":", 1)[0]):
        return None  # a remote URL, or scp-like git@host:path
    else:
        path = os.path.expanduser(uri)
    return os.path.abspath(path) if os.path.isdir(path) else None


def _git(args: list[str], cwd: str | None = None) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            timeout=CLONE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ExecutionError("Running a project from git needs the git command, which was not found") from None
    except subprocess.TimeoutExpired:
        raise ExecutionError(f"git {args[0]} did not finish within {CLONE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ExecutionError(f"git {' '.join(args[:1])} failed: {detail[-1] if detail else proc.returncode}")


def clone(uri: str, version: str | None) -> str:
    """Clone ``uri`` into a new temporary directory, at ``version`` when given; returns it."""
    dst = tempfile.mkdtemp(prefix="evtrack-project-")
    if version is None:
        _git(["clone", "--quiet", "--recurse-submodules", "--", uri, dst])
        return dst
    _git(["clone", "--quiet", "--no-checkout", "--", uri, dst])
    try:
        _git(["checkout", "--quiet", version], cwd=dst)
    except ExecutionError as exc:
        raise ExecutionError(
            f"Unable to checkout version '{version}' of git repo {uri}: please ensure that the "
            f"version exists in the repo ({exc.message})"
        ) from None
    _git(["submodule", "--quiet", "update", "--init", "--recursive"], cwd=dst)
    return dst


def fetch_project(uri: str, version: str | None = None) -> Fetched:
    """The working directory of a project URI (cloning when needed)."""
    base, sub = split_subdirectory(uri)
    local = local_path(base)
    cloned = None
    if local is not None and version is None:
        root, is_local = local, True
        info = gitinfo.git_info(local)
        source = info.repo_url if info is not None and info.repo_url else local
    else:
        if local is None and ("://" not in base and "@" not in base):
            raise ExecutionError(f"Project {base!r} is neither a local directory nor a git URI")
        if local is not None and gitinfo.git_info(local) is None:
            raise ExecutionError("Setting a version is only supported for Git project URIs")
        root = cloned = clone(local if local is not None else base, version)
        is_local = local is not None
        source = base if local is None else (gitinfo.remote_url(local) or local)
    work_dir = os.path.abspath(os.path.join(root, sub))
    if not os.path.isdir(work_dir):
        raise ExecutionError(f"Could not find subdirectory {sub} of {base}")
    return Fetched(work_dir, source + (f"#{sub}" if sub else ""), is_local, cloned)
