"""A model's environment: ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``.

Requirements are pinned to the installed versions (``scikit-learn==1.5.2``): the
packages of the modules the serialized model refers to (see
:mod:`evtrack.models.serialization`), the flavor's own packages, and evtrack
(the loader module lives there), evtrack first as MLflow puts mlflow first.
``pip_requirements`` replaces the inferred list; ``extra_pip_requirements`` adds
to it; either may be a list of requirement strings or the path of a
requirements file.
"""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

from evtrack.errors import InvalidParameterError

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"
_IGNORED_MODULES = {"__main__", "builtins", "__builtin__", "copyreg", "_codecs"}


@lru_cache(maxsize=1)
def _distributions_of_modules() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def installed_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def pinned(dist: str) -> str | None:
    """``dist==<installed version>``, or None when it is not installed."""
    version = installed_version(dist)
    return f"{dist}=={version}" if version else None


def distributions_for(modules: Iterable[str]) -> set[str]:
    """The installed distributions that provide these top-level modules (stdlib left out)."""
    mapping = _distributions_of_modules()
    out: set[str] = set()
    for module in modules:
        if module in _IGNORED_MODULES or module in sys.stdlib_module_names:
            continue
        out.update(mapping.get(module, ()))
    return out


def infer_requirements(modules: Iterable[str], flavor_packages: Sequence[str] = ()) -> list[str]:
    """Pinned requirements: evtrack first, then the flavor's and the model's packages, sorted."""
    dists = distributions_for(modules) | {d for d in flavor_packages if installed_version(d)}
    dists.discard("evtrack")
    first = [r for r in [pinned("evtrack")] if r]
    return first + sorted((r for r in map(pinned, dists) if r), key=str.lower)


def _as_list(value: str | os.PathLike | Sequence[str], what: str) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise InvalidParameterError(
                f"{what} must be a list of requirements or the path of a file; {str(value)!r} is not a file"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not all(isinstance(r, str) for r in value):
        raise InvalidParameterError(f"{what} must hold strings only")
    return [r.strip() for r in value if r.strip()]


def resolve_requirements(
    inferred: list[str],
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
) -> list[str]:
    """The final requirements: ``pip_requirements`` if given, else inferred plus extras."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidParameterError("Only one of `pip_requirements` and `extra_pip_requirements` can be specified")
    if pip_requirements is not None:
        return _as_list(pip_requirements, "pip_requirements")
    extras = _as_list(extra_pip_requirements, "extra_pip_requirements") if extra_pip_requirements else []
    return inferred + [r for r in extras if r not in inferred]


def _build_dependencies() -> list[str]:
    return [pinned(d) or d for d in ("pip", "setuptools", "wheel")]


def write_environment(model_dir: str | os.PathLike, requirements: list[str]) -> dict[str, str]:
    """Write the three environment files; returns the ``env`` entry of the python_function flavor."""
    import yaml

    model_dir = Path(model_dir)
    python = platform.python_version()
    (model_dir / REQUIREMENTS_FILE).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    python_env = {
        "python": python,
        "build_dependencies": _build_dependencies(),
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    (model_dir / PYTHON_ENV_FILE).write_text(yaml.safe_dump(python_env, sort_keys=False), encoding="utf-8")
    pip_version = installed_version("pip")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={python}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": list(requirements)},
        ],
        "name": "evtrack-env",
    }
    (model_dir / CONDA_ENV_FILE).write_text(yaml.safe_dump(conda, default_flow_style=False), encoding="utf-8")
    return {"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE}


def read_requirements(model_dir: str | os.PathLike) -> list[str]:
    """The requirements recorded in a model directory (empty when there is no file)."""
    path = Path(model_dir) / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    return [
        ln.strip()
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
