"""The git state of a work tree, read with the ``git`` command (bounded by a timeout).

Never raises: no git binary, no repository, a hung command or a bare checkout
all give ``None`` fields. Remote URLs lose any embedded credentials
(``https://user:token@host/x`` → ``https://host/x``), as MLflow does.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

TIMEOUT_S = 5.0
MAX_DIFF_BYTES = 16 << 20  # a larger diff is cut (and says so)


@dataclass(frozen=True, slots=True)
class GitInfo:
    """Commit, branch (None when detached), remote URL and dirty flag of a work tree."""

    folder: str  # where git was asked (inside the work tree)
    commit: str | None
    branch: str | None
    repo_url: str | None
    dirty: bool


def _git(cwd: str, *args: str, timeout: float = TIMEOUT_S) -> str | None:
    """stdout of ``git args`` in ``cwd``, or None on any failure."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def strip_credentials(url: str) -> str:
    """A remote URL without user name or password (SSH ``git@host:x`` forms are kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def _folder(path: str) -> str:
    path = os.path.abspath(path)
    return path if os.path.isdir(path) else os.path.dirname(path)


def git_info(path: str) -> GitInfo | None:
    """The git state of the work tree holding ``path`` (a file or a directory), or None."""
    folder = _folder(path)
    if not os.path.isdir(folder):
        return None
    # One call for commit, branch and tracked changes (untracked files do not make a tree dirty:
    # they are not in `git diff HEAD` either).
    status = _git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return None
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = oid if oid != "(initial)" else None
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            branch = head if head != "(detached)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return GitInfo(folder, commit, branch, remote_url(folder), dirty)


def remote_url(folder: str) -> str | None:
    """The URL of ``origin`` (else of the first remote), credentials stripped, or None."""
    out = _git(folder, "config", "--get-regexp", r"^remote\..*\.url$")
    if not out:
        return None
    urls = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        urls[key[len("remote.") : -len(".url")]] = value.strip()
    url = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(url) if url else None


def diff_head(folder: str) -> bytes | None:
    """``git diff HEAD`` (staged and unstaged changes of tracked files), or None on failure."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "diff", "HEAD", "--no-color", "--no-ext-diff", "--binary"],
            cwd=folder,
            capture_output=True,
            timeout=TIMEOUT_S * 4,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    if len(proc.stdout) > MAX_DIFF_BYTES:
        return proc.stdout[:MAX_DIFF_BYTES] + b"\n# evtrack: diff truncated at %d bytes\n" % MAX_DIFF_BYTES
    return proc.stdout


def is_branch(folder: str, name: str) -> bool:
    """True when ``name`` is a local branch of the repository at ``folder``."""
    return _git(folder, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}") is not None
