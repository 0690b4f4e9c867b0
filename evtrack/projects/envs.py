"""Environments a project command runs in: ``local`` (this interpreter's) or a cached ``virtualenv``.

``virtualenv`` builds a venv from ``python_env.yaml``::

    python: "3.11"                      # the interpreter: this one, or python3.11 on PATH
    build_dependencies: [pip]
    dependencies: [numpy>=1.24]

installs the build dependencies, then the dependencies, with pip, and keeps it
under ``$EVTRACK_ENV_CACHE`` (default ``~/.cache/evtrack/envs``) keyed by a hash of
the file's content and the interpreter version: the next run with the same file
reuses it. A venv with nothing to install is made without pip (fast, offline).

The project's command must be able to ``import evtrack``: the venv gets a
``.pth`` file naming a directory of links to evtrack and its runtime
dependencies as installed for *this* interpreter (nothing is downloaded), placed
after the venv's own site-packages so the project's pinned versions win.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from evtrack.projects.spec import ExecutionError

CACHE_ENV = "EVTRACK_ENV_CACHE"
READY = ".evtrack-ready"
PTH_NAME = "evtrack-runtime.pth"
PIP_TIMEOUT_S = 1800


def cache_root() -> Path:
    """Where built environments are kept."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evtrack" / "envs"


def read_python_env(path: str | None) -> dict[str, Any]:
    """The python, build_dependencies and dependencies of a ``python_env.yaml`` (empty when None)."""
    if path is None:
        return {"python": None, "build_dependencies": [], "dependencies": []}
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExecutionError(f"Cannot read {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ExecutionError(f"{path} must be a mapping with python, build_dependencies and dependencies")
    unknown = set(doc) - {"python", "build_dependencies", "dependencies"}
    if unknown:
        raise ExecutionError(f"{path} has unknown fields {sorted(unknown)}")
    out: dict[str, Any] = {"python": str(doc["python"]) if doc.get("python") is not None else None}
    for key in ("build_dependencies", "dependencies"):
        deps = doc.get(key) or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ExecutionError(f"{key} in {path} must be a list of requirement strings")
        out[key] = deps
    return out


def _version_of(python: str) -> str | None:
    try:
        proc = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_interpreter(wanted: str | None) -> tuple[str, str]:
    """(executable, version) of an interpreter matching ``wanted`` ("3.11", "3.11.7"), preferring this one."""
    import platform

    current = platform.python_version()
    if wanted is None or current == wanted or current.startswith(wanted + "."):
        return sys.executable, current
    parts = wanted.split(".")
    for name in (f"python{parts[0]}.{parts[1]}" if len(parts) > 1 else None, f"python{parts[0]}"):
        exe = shutil.which(name) if name else None
        version = _version_of(exe) if exe else None
        if exe and version and (version == wanted or version.startswith(wanted + ".")):
            return exe, version
    raise ExecutionError(
        f"python_env.yaml asks for Python {wanted}, but this is Python {current} and no "
        f"python{wanted} was found on PATH; install it or run with --env-manager local"
    )


def env_key(spec: dict[str, Any], python_version: str) -> str:
    """The cache key of an environment: its specification and the interpreter version."""
    text = repr((python_version, spec["build_dependencies"], spec["dependencies"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExecutionError(f"{what} failed: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ExecutionError(f"{what} failed (exit status {proc.returncode}):\n{tail}")


def venv_python(env_dir: Path) -> Path:
    """The interpreter of a venv."""
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _site_packages(python: Path) -> str:
    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise ExecutionError(f"Cannot find the site-packages of {python}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def get_or_create_virtualenv(env_file: str | None) -> Path:
    """The venv of a ``python_env.yaml`` (built on first use, then reused); returns its directory."""
    spec = read_python_env(env_file)
    python, version = find_interpreter(spec["python"])
    root = cache_root()
    env_dir = root / f"evtrack-{env_key(spec, version)}"
    with _locked(root / f"{env_dir.name}.lock"):
        if not (env_dir / READY).exists():
            if env_dir.exists():
                shutil.rmtree(env_dir)  # a build that died half-way
            deps = [d for group in ("build_dependencies", "dependencies") for d in spec[group]]
            cmd = [python, "-m", "venv", str(env_dir)] + ([] if deps else ["--without-pip"])
            _run(cmd, f"Creating a virtualenv in {env_dir}")
            for group in ("build_dependencies", "dependencies"):
                if spec[group]:
                    _run(
                        [
                            str(venv_python(env_dir)),
                            "-m",
                            "pip",
                            "install",
                            "--disable-pip-version-check",
                            *spec[group],
                        ],
                        f"Installing the {group} of {env_file}",
                    )
            (env_dir / READY).write_text(repr(spec) + "\n")
        _link_runtime(env_dir)
    return env_dir


# -- making evtrack importable in the venv -------------------------------------------------


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue  # an optional extra
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if match:
            names.append(match.group(1))
    return names


def _top_levels(dist: metadata.Distribution) -> set[str]:
    """The top-level entries (packages, modules, bundled .libs, the dist-info) a distribution installed."""
    tops: set[str] = set()
    for f in dist.files or []:
        head = f.parts[0] if f.parts else ""
        if head and head not in ("..", "__pycache__") and not head.endswith(".pth") and head != "bin":
            tops.add(head)
    return tops


def runtime_entries() -> dict[str, str]:
    """name → path of every top-level entry evtrack needs at run time (evtrack and its dependency
    closure, as installed for this interpreter)."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # evtrack/ (this is projects/envs.py)
    entries: dict[str, str] = {"evtrack": package_dir}
    seen: set[str] = set()
    todo = ["evtrack"]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for top in _top_levels(dist):
            if top in entries:
                continue
            path = str(dist.locate_file(top))
            if os.path.exists(path):
                entries[top] = os.path.abspath(path)
        todo.extend(_requirement_names(dist))
    return entries


def _link_runtime(env_dir: Path) -> None:
    """(Re)point the venv's ``.pth`` at a directory of links to evtrack and its dependencies."""
    entries = runtime_entries()
    key = hashlib.sha256(repr(sorted(entries.items())).encode()).hexdigest()[:16]
    runtime = cache_root() / f"runtime-{key}"
    if not runtime.exists():
        tmp = runtime.with_name(f"{runtime.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, path in entries.items():
            os.symlink(path, tmp / name)
        try:
            os.rename(tmp, runtime)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process made it first
    site = _site_packages(venv_python(env_dir))
    Path(site, PTH_NAME).write_text(str(runtime) + "\n")
