"""The ``MLproject`` file: a project's name, environment and entry points, as MLflow reads it.

    name: taxi-regression
    python_env: python_env.yaml          # or conda_env: conda.yaml, or docker_env: {image: …}
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.1}
          data: path                     # no default: required
        command: "python train.py --alpha {alpha} --data {data}"

Parameter types: ``string``, ``float``, ``int``, ``path`` (an existing local path,
made absolute; URIs are passed through) and ``uri`` (must have a scheme or be an
absolute path). Values are shell-quoted into the command; parameters that the
entry point does not declare are appended as ``--key value``. An entry point that
is not declared but names a ``.py`` or ``.sh`` file runs that file.
"""

from __future__ import annotations

import os
import shlex
import string
from dataclasses import dataclass, field
from typing import Any, Mapping

from evtrack.errors import EvtrackError

MLPROJECT = "mlproject"
PARAM_TYPES = ("string", "float", "int", "path", "uri")
ENV_FIELDS = ("python_env", "conda_env", "docker_env")
DEFAULT_PYTHON_ENV = "python_env.yaml"
DEFAULT_CONDA_ENV = "conda.yaml"


class ExecutionError(EvtrackError):
    """A project cannot be run: a bad MLproject, parameter, entry point, source or environment."""

    error_code = "INVALID_PARAMETER_VALUE"


def _invalid(message: str) -> ExecutionError:
    return ExecutionError(f"Project configuration (MLproject file) was invalid: {message}")


def _format_default(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class Parameter:
    """A declared parameter of an entry point: its name, type and default (None: required)."""

    name: str
    type: str = "string"
    default: str | None = None

    @classmethod
    def parse(cls, entry_point: str, name: Any, spec: Any) -> "Parameter":
        """A parameter from its MLproject form: ``type`` or ``{type: …, default: …}``."""
        where = f"parameter {name!r} of entry point {entry_point!r}"
        if not isinstance(name, str) or not name:
            raise _invalid(f"entry point {entry_point!r} has a parameter with an invalid name {name!r}")
        if isinstance(spec, str):
            ptype, default = spec, None
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"type", "default"}
            if unknown:
                raise _invalid(f"{where} has unknown fields {sorted(unknown)} (expected type, default)")
            ptype, default = spec.get("type", "string"), spec.get("default")
        elif spec is None:
            ptype, default = "string", None
        else:
            raise _invalid(f"{where} must be a type name or a mapping with type and default")
        if ptype not in PARAM_TYPES:
            raise _invalid(f"{where} has unknown type {ptype!r}; valid types are {list(PARAM_TYPES)}")
        param = cls(name, ptype, _format_default(default))
        if param.default is not None and ptype in ("float", "int"):
            param.convert(param.default, entry_point, where_from="default")
        return param

    def convert(self, value: Any, entry_point: str, bases: tuple[str, ...] = (), where_from: str = "value") -> str:
        """The value as passed to the command, checked against the type; ``ExecutionError`` if wrong."""
        text = _format_default(value) or ""
        bad = ExecutionError(
            f"Invalid {where_from} {text!r} for parameter '{self.name}' of entry point '{entry_point}': "
            f"expected {'an' if self.type in ('int', 'uri') else 'a'} {self.type}"
        )
        if self.type == "float":
            try:
                float(text)
            except ValueError:
                raise bad from None
        elif self.type == "int":
            try:
                int(text)
            except ValueError:
                raise bad from None
        elif self.type == "uri":
            if "://" not in text and not os.path.isabs(text):
                raise ExecutionError(
                    f"Expected URI for parameter '{self.name}' of entry point '{entry_point}' but got {text!r}"
                )
        elif self.type == "path" and "://" not in text:
            expanded = os.path.expanduser(text)
            for base in bases or (os.getcwd(),):
                path = os.path.join(base, expanded)
                if os.path.exists(path):
                    return os.path.abspath(path)
            raise ExecutionError(
                f"Got value {text!r} for parameter '{self.name}' of entry point '{entry_point}', "
                "but no such file or directory was found."
            )
        return text


@dataclass(frozen=True)
class EntryPoint:
    """An entry point: a command template and its declared parameters (in declaration order)."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: Any, spec: Any) -> "EntryPoint":
        """An entry point from its MLproject mapping (``parameters``, ``command``)."""
        if not isinstance(spec, Mapping):
            raise _invalid(f"entry point {name!r} must be a mapping with a command")
        unknown = set(spec) - {"parameters", "command"}
        if unknown:
            raise _invalid(f"entry point {name!r} has unknown fields {sorted(unknown)} (expected parameters, command)")
        command = spec.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _invalid(f"entry point {name!r} has no command")
        raw = spec.get("parameters") or {}
        if not isinstance(raw, Mapping):
            raise _invalid(f"the parameters of entry point {name!r} must be a mapping")
        params = {str(k): Parameter.parse(str(name), k, v) for k, v in raw.items()}
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(command) if f is not None]
        except ValueError as exc:
            raise _invalid(f"the command of entry point {name!r} is not a valid template: {exc}") from None
        for f in fields:
            if f not in params:
                raise _invalid(
                    f"the command of entry point {name!r} uses {{{f}}}, which is not one of its "
                    f"parameters {sorted(params)}"
                )
        return cls(str(name), command, params)

    def logged_parameters(self, user: Mapping[str, Any] | None) -> dict[str, str]:
        """The values a run records: declared ones (given, else default) then undeclared ones,
        as written (a path is not made absolute); missing values fail."""
        user = {str(k): v for k, v in (user or {}).items()}
        missing = [n for n, p in self.parameters.items() if n not in user and p.default is None]
        if missing:
            raise ExecutionError("No value given for missing parameters: " + ", ".join(f"'{n}'" for n in missing))
        values = {n: _format_default(user[n]) if n in user else p.default for n, p in self.parameters.items()}
        values.update({k: _format_default(v) or "" for k, v in user.items() if k not in self.parameters})
        return values  # type: ignore[return-value]

    def compute_parameters(
        self, user: Mapping[str, Any] | None, project_dir: str | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(declared parameter values, undeclared ones), checked; missing values fail.

        A ``path`` given by the user is looked up from the current directory, then the project's;
        a default ``path`` from the project's.
        """
        values = self.logged_parameters(user)
        given = {str(k) for k in (user or {})}
        here = (os.getcwd(), project_dir) if project_dir else (os.getcwd(),)
        final = {
            n: p.convert(values[n], self.name, here if n in given else (project_dir or os.getcwd(),))
            for n, p in self.parameters.items()
        }
        extra = {k: v for k, v in values.items() if k not in self.parameters}
        return final, extra

    def compute_command(self, user: Mapping[str, Any] | None, project_dir: str | None = None) -> str:
        """The shell command with every value quoted; undeclared parameters appended as ``--key value``."""
        final, extra = self.compute_parameters(user, project_dir)
        command = self.command.format(**{k: shlex.quote(v) for k, v in final.items()})
        return " ".join([command] + [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()])


@dataclass(frozen=True)
class Project:
    """A parsed project directory."""

    directory: str
    name: str | None
    env_type: str | None  # "python_env", "conda_env", "docker_env", or None (no environment file)
    env_file: str | None  # python_env.yaml / conda.yaml path
    docker_env: dict[str, Any] | None
    entry_points: dict[str, EntryPoint]

    def get_entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, or a ``.py``/``.sh`` file of the project run directly."""
        if name in self.entry_points:
            return self.entry_points[name]
        ext = os.path.splitext(name)[1]
        runners = {".py": "python", ".sh": os.environ.get("SHELL") or "bash"}
        if ext in runners:
            if not os.path.isfile(os.path.join(self.directory, name)):
                raise ExecutionError(
                    f"Entry point {name!r} is not declared and there is no file {name!r} in {self.directory}"
                )
            return EntryPoint(name, f"{runners[ext]} {shlex.quote(name)}", {})
        raise ExecutionError(
            f"Could not find {name} among entry points {sorted(self.entry_points)} or interpret {name} as a "
            f"runnable script. Supported script file extensions: {list(runners)}"
        )


def find_mlproject(directory: str) -> str | None:
    """The MLproject file of a directory (any case), or None."""
    for entry in sorted(os.listdir(directory)):
        if entry.lower() == MLPROJECT and os.path.isfile(os.path.join(directory, entry)):
            return os.path.join(directory, entry)
    return None


def _env_file(directory: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{field_name} must name a file of the project")
    path = os.path.join(directory, value)
    if not os.path.isfile(path):
        raise ExecutionError(f"Project specified {field_name} file {path}, but no such file was found.")
    return path


def load_project(directory: str) -> Project:
    """Parse the MLproject file of a directory (a directory without one has no entry points)."""
    import yaml

    if not os.path.isdir(directory):
        raise ExecutionError(f"Project directory {directory!r} does not exist")
    path = find_mlproject(directory)
    doc: Any = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise _invalid(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, Mapping):
        raise _invalid("the top level must be a mapping")
    envs = [f for f in ENV_FIELDS if f in doc]
    if len(envs) > 1:
        raise ExecutionError(f"Project cannot contain multiple environment fields: {envs}")
    raw_eps = doc.get("entry_points") or {}
    if not isinstance(raw_eps, Mapping):
        raise _invalid("entry_points must be a mapping of names to entry points")
    entry_points = {str(k): EntryPoint.parse(k, v) for k, v in raw_eps.items()}
    name = doc.get("name")
    env_type = env_file = docker = None
    if "docker_env" in doc:
        docker = doc["docker_env"]
        if not isinstance(docker, Mapping) or not docker.get("image"):
            raise _invalid("Docker environment specified but no image attribute found.")
        env_type, docker = "docker_env", dict(docker)
    elif "python_env" in doc:
        env_type, env_file = "python_env", _env_file(directory, "python_env", doc["python_env"])
    elif "conda_env" in doc:
        env_type, env_file = "conda_env", _env_file(directory, "conda_env", doc["conda_env"])
    elif os.path.isfile(os.path.join(directory, DEFAULT_PYTHON_ENV)):
        env_type, env_file = "python_env", os.path.join(directory, DEFAULT_PYTHON_ENV)
    elif os.path.isfile(os.path.join(directory, DEFAULT_CONDA_ENV)):
        env_type, env_file = "conda_env", os.path.join(directory, DEFAULT_CONDA_ENV)
    return Project(
        os.path.abspath(directory), str(name) if name is not None else None, env_type, env_file, docker, entry_points
    )
