"""What a run records about where it ran, captured when it starts.

System tags with MLflow's keys: ``mlflow.user``, ``mlflow.source.name``,
``mlflow.source.type`` and, when the entry script (else the working directory)
is in a git work tree, ``mlflow.source.git.commit`` / ``.branch`` / ``.repoURL``
/ ``.dirty``. When the tree is dirty, ``git diff HEAD`` becomes the artifact
``evtrack/git_diff.patch``.

The environment: ``evtrack.python.version``, ``evtrack.host``, the installed
distributions as the artifact ``evtrack/requirements.txt`` and their digest as
``evtrack.env.digest`` (runs with equal digests ran with the same packages).
The package list is read once per process.

Each part is switched by a ``start_run`` argument, else by ``EVTRACK_CAPTURE_GIT``
/ ``EVTRACK_CAPTURE_ENV`` (``false``, ``0``, ``no`` or ``off`` turn it off).
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import platform
import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from evtrack.tracking import gitinfo
from evtrack.read.client_base import current_user

SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
USER = "mlflow.user"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO_URL = "mlflow.source.git.repoURL"
GIT_DIRTY = "mlflow.source.git.dirty"
PYTHON_VERSION = "evtrack.python.version"
HOST = "evtrack.host"
ENV_DIGEST = "evtrack.env.digest"
GIT_DIFF_ARTIFACT = "evtrack/git_diff.patch"
REQUIREMENTS_ARTIFACT = "evtrack/requirements.txt"
CAPTURE_GIT_ENV = "EVTRACK_CAPTURE_GIT"
CAPTURE_ENV_ENV = "EVTRACK_CAPTURE_ENV"
_OFF = ("0", "false", "no", "off")
_DIST_INFO = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._]*?)-([^-]+)\.dist-info$")


def capture_enabled(argument: bool | None, variable: str) -> bool:
    """An explicit argument wins; else the environment variable; else on."""
    if argument is not None:
        return bool(argument)
    return os.environ.get(variable, "").strip().lower() not in _OFF


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
    """The commit checked out in the git work tree holding ``path``, read from ``.git`` (no git
    binary needed), or None."""
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
    """The tags every new run gets: user and source (as MLflow's default context provider)."""
    return {USER: current_user(), SOURCE_NAME: entry_point(), SOURCE_TYPE: "LOCAL"}


@dataclass
class Captured:
    """Tags for a new run and the artifacts (path → bytes) to store with it."""

    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)


_GIT_TTL_S = 10.0
_git_cache: dict[tuple[str, bool], tuple[float, "Captured"]] = {}


def git_tags(path: str, with_diff: bool = True) -> Captured:
    """The git tags of the work tree holding ``path`` (and the diff when it is dirty).

    Cached for 10 seconds per path, so a sweep that starts many runs in a loop
    runs git once rather than per run.
    """
    key = (path, with_diff)
    hit = _git_cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _GIT_TTL_S:
        return Captured(dict(hit[1].tags), dict(hit[1].artifacts))
    out = _git_tags(path, with_diff)
    _git_cache[key] = (now, out)
    return Captured(dict(out.tags), dict(out.artifacts))


def _git_tags(path: str, with_diff: bool) -> Captured:
    out = Captured()
    info = gitinfo.git_info(path)
    if info is None:  # no git binary or no repository: the commit may still be in .git
        commit = git_commit(path)
        if commit:
            out.tags[GIT_COMMIT] = commit
        return out
    if info.commit:
        out.tags[GIT_COMMIT] = info.commit
    if info.branch:
        out.tags[GIT_BRANCH] = info.branch
    if info.repo_url:
        out.tags[GIT_REPO_URL] = info.repo_url
    out.tags[GIT_DIRTY] = str(info.dirty).lower()
    if info.dirty and with_diff:
        diff = gitinfo.diff_head(info.folder)
        if diff:
            out.artifacts[GIT_DIFF_ARTIFACT] = diff
    return out


@dataclass(frozen=True)
class Environment:
    """The interpreter and installed distributions of this process."""

    python_version: str
    requirements: str  # requirements.txt text: a header comment, then name==version lines
    digest: str


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """This process's environment (computed once: reading every distribution takes ~50 ms)."""
    from importlib import metadata

    packages: dict[str, str] = {}
    for dist in metadata.distributions():  # in sys.path order: the first of a name is the one imported
        folder = getattr(dist, "_path", None)
        match = _DIST_INFO.match(folder.name) if folder is not None else None
        if match:  # name and version from the folder name: no METADATA parsing (10x faster)
            name, version = match.groups()
        else:
            try:
                name, version = dist.metadata["Name"], dist.version
            except Exception:  # noqa: BLE001 - a broken dist-info must not stop a run
                continue
        if name:
            packages.setdefault(name.lower().replace("_", "-").replace(".", "-"), f"{name}=={version}")
    lines = [packages[k] for k in sorted(packages)]
    python = platform.python_version()
    identity = f"python=={python} ({platform.python_implementation()})\n" + "\n".join(lines) + "\n"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    header = f"# Python {python} ({platform.python_implementation()}, {sys.platform}); evtrack.env.digest {digest}\n"
    return Environment(python, header + "\n".join(lines) + "\n", digest)


def env_tags() -> Captured:
    """Python version, host, environment digest, and the requirements artifact."""
    env = environment()
    return Captured(
        {PYTHON_VERSION: env.python_version, HOST: socket.gethostname(), ENV_DIGEST: env.digest},
        {REQUIREMENTS_ARTIFACT: env.requirements.encode()},
    )


def capture(git: bool, env: bool, existing: dict[str, str] | None = None) -> Captured:
    """What a run records about its code and environment; parts ``existing`` tags already
    hold (a run joined through ``EVTRACK_RUN_ID``) are left out."""
    existing = existing or {}
    out = Captured()
    if git and GIT_COMMIT not in existing:
        source = entry_point()
        part = git_tags(source if os.path.isfile(source) else os.getcwd())
        out.tags.update(part.tags)
        out.artifacts.update(part.artifacts)
    if env and ENV_DIGEST not in existing:
        part = env_tags()
        out.tags.update(part.tags)
        out.artifacts.update(part.artifacts)
    return out
