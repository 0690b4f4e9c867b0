"""Projects (issue 6, part 3): MLproject parsing, parameters, and ``evtrack run`` end to end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import evtrack
from evtrack.cli import cli
from evtrack.projects import ExecutionError, load_project
from evtrack.projects import run as run_project

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "taxi-regression"
CLI = "from evtrack.cli import main; main()"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]


def _project(tmp_path: Path, mlproject: str | None, files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    if mlproject is not None:
        (folder / "MLproject").write_text(textwrap.dedent(mlproject))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


# -- parsing -----------------------------------------------------------------------------------

FULL = """
name: demo
python_env: env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
      epochs: {type: int, default: 10}
      data: path
      out: {type: uri, default: "s3://bucket/out"}
      note: string
      flag: {default: true}
    command: "python train.py {alpha} {epochs} {data} {out} {note} {flag}"
  other:
    command: "echo hi"
"""


def test_a_full_spec(tmp_path: Path) -> None:
    project = load_project(str(_project(tmp_path, FULL, {"env.yaml": "dependencies: []\n"})))
    assert (project.name, project.env_type) == ("demo", "python_env")
    assert project.env_file == str(tmp_path / "proj" / "env.yaml")
    main = project.get_entry_point("main")
    assert {n: (p.type, p.default) for n, p in main.parameters.items()} == {
        "alpha": ("float", "0.1"),
        "epochs": ("int", "10"),
        "data": ("path", None),
        "out": ("uri", "s3://bucket/out"),
        "note": ("string", None),
        "flag": ("string", "true"),
    }
    assert list(main.parameters) == ["alpha", "epochs", "data", "out", "note", "flag"]
    assert project.get_entry_point("other").parameters == {}


@pytest.mark.parametrize(
    "mlproject, files, env_type",
    [
        (None, {}, None),  # no MLproject: scripts only
        ("entry_points: {}\n", {"python_env.yaml": "dependencies: []\n"}, "python_env"),  # default file
        ("conda_env: conda.yaml\n", {"conda.yaml": "name: x\n"}, "conda_env"),
        ("docker_env: {image: python:3.11}\n", {}, "docker_env"),
        ("name: x\nentry_points:\n  main:\n    parameters: {p: float}\n    command: python a.py {p}\n", {}, None),
    ],
)
def test_accepted_specs(tmp_path: Path, mlproject: str | None, files: dict, env_type: str | None) -> None:
    assert load_project(str(_project(tmp_path, mlproject, files))).env_type == env_type


@pytest.mark.parametrize(
    "mlproject, files, message",
    [
        ("python_env: a.yaml\nconda_env: b.yaml\n", {"a.yaml": "", "b.yaml": ""}, "multiple environment fields"),
        ("python_env: missing.yaml\n", {}, "python_env file .*missing.yaml, but no such file was found"),
        ("docker_env: {volumes: []}\n", {}, "no image attribute found"),
        ("entry_points:\n  main:\n    parameters: {p: double}\n    command: x {p}\n", {}, "unknown type 'double'"),
        ("entry_points:\n  main:\n    command: python a.py {beta}\n", {}, r"uses \{beta\}, which is not one of"),
        ("entry_points:\n  main:\n    parameters: {p: float}\n", {}, "entry point 'main' has no command"),
        (
            "entry_points:\n  main:\n    parameters: {p: {type: float, default: abc}}\n    command: x {p}\n",
            {},
            "Invalid default 'abc' for parameter 'p' of entry point 'main': expected a float",
        ),
        (
            "entry_points:\n  main:\n    parameters: {p: {type: int, dflt: 1}}\n    command: x {p}\n",
            {},
            r"unknown fields \['dflt'\]",
        ),
        ("entry_points: [main]\n", {}, "entry_points must be a mapping"),
        ("name: [unclosed\n", {}, "not valid YAML"),
        ("- a list\n", {}, "top level must be a mapping"),
    ],
)
def test_rejected_specs(tmp_path: Path, mlproject: str, files: dict, message: str) -> None:
    with pytest.raises(ExecutionError, match=message):
        load_project(str(_project(tmp_path, mlproject, files)))


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    folder = _project(tmp_path, FULL, {"env.yaml": "dependencies: []\n", "data.csv": "x\n", "run.sh": "echo"})
    return load_project(str(folder))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"note": "n"}, "No value given for missing parameters: 'data'"),
        ({}, "No value given for missing parameters: 'data', 'note'"),
        (
            {"data": "data.csv", "note": "n", "alpha": "fast"},
            "Invalid value 'fast' for parameter 'alpha' .* expected a float",
        ),
        (
            {"data": "data.csv", "note": "n", "epochs": "2.5"},
            "Invalid value '2.5' for parameter 'epochs' .* expected an int",
        ),
        ({"data": "data.csv", "note": "n", "out": "relative/dir"}, "Expected URI for parameter 'out'"),
        (
            {"data": "no-such.csv", "note": "n"},
            "Got value 'no-such.csv' for parameter 'data'.*no such file or directory",
        ),
    ],
)
def test_rejected_parameters(demo: Any, params: dict, message: str) -> None:
    with pytest.raises(ExecutionError, match=message):
        demo.get_entry_point("main").compute_command(params, demo.directory)


def test_commands_quote_values_and_append_undeclared_parameters(demo: Any) -> None:
    main = demo.get_entry_point("main")
    command = main.compute_command(
        {"data": "data.csv", "note": "it's; rm -rf /", "epochs": 3, "extra key": "a b"}, demo.directory
    )
    data = os.path.join(demo.directory, "data.csv")
    assert command == (f"python train.py 0.1 3 {data} s3://bucket/out 'it'\"'\"'s; rm -rf /' true --'extra key' 'a b'")
    assert main.logged_parameters({"data": "data.csv", "note": "n", "z": 1}) == {
        "alpha": "0.1",
        "epochs": "10",
        "data": "data.csv",
        "out": "s3://bucket/out",
        "note": "n",
        "flag": "true",
        "z": "1",
    }


def test_scripts_run_directly_and_unknown_entry_points_fail(demo: Any) -> None:
    assert demo.get_entry_point("run.sh").command.endswith(" run.sh")
    with pytest.raises(ExecutionError, match="Could not find nope among entry points \\['main', 'other'\\]"):
        demo.get_entry_point("nope")
    with pytest.raises(ExecutionError, match="there is no file 'missing.py'"):
        demo.get_entry_point("missing.py")


def test_the_example_project_parses() -> None:
    project = load_project(str(EXAMPLE))
    assert project.name == "taxi-regression" and project.env_type == "python_env"
    assert set(project.entry_points) == {"main", "fail"}
    assert project.get_entry_point("main").parameters["alpha"].type == "float"


# -- running -----------------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example project (outside any git repository)."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "taxi-regression"))


@pytest.fixture
def env(fresh_evtrack: None, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("EVTRACK_ENV_CACHE", str(tmp_path / "envs"))
    monkeypatch.delenv("EVTRACK_CAPTURE_ENV", raising=False)  # the command's start_run records its environment
    return dict(os.environ)


def evtrack_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def _only_run(store: str, experiment: str) -> Any:
    (run,) = evtrack.search_runs(experiment_names=[experiment], output_format="list")
    return evtrack.MlflowClient(store).get_run(run.info.run_id)


def test_evtrack_run_of_the_example(example: Path, local_uri: str, env: dict[str, str]) -> None:
    proc = evtrack_cli(
        "run",
        str(example),
        "-P",
        "alpha=0.5",
        "-P",
        "epochs=5",
        "--env-manager",
        "local",
        "--experiment-name",
        "taxi",
        "--run-name",
        "first",
        "--tracking-uri",
        local_uri,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    evtrack.set_tracking_uri(local_uri)
    run = _only_run(local_uri, "taxi")
    assert (run.info.status, run.info.run_name) == ("FINISHED", "first")
    assert run.data.params == {"alpha": "0.5", "l1_ratio": "0.5", "epochs": "5", "n_trips": "2000", "seed": "42"}
    assert {"rmse", "mae", "train_rmse"} <= set(run.data.metrics)  # logged by the command, in the same run
    history = evtrack.MlflowClient(local_uri).get_metric_history(run.info.run_id, "train_rmse")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    tags = run.data.tags
    assert (tags["mlflow.source.type"], tags["mlflow.project.entryPoint"], tags["mlflow.project.env"]) == (
        "PROJECT",
        "main",
        "local",
    )
    assert tags["mlflow.source.name"] == str(example)
    assert "evtrack.env.digest" in tags  # recorded by the command's start_run
    (data,) = run.inputs.dataset_inputs
    assert (data.dataset.name, data.context) == ("taxi-trips-train", "training")
    assert f"run {run.info.run_id} FINISHED" in proc.stderr


def test_a_failing_entry_point(example: Path, local_uri: str, env: dict[str, str]) -> None:
    proc = evtrack_cli(
        "run",
        str(example),
        "-e",
        "fail",
        "--env-manager",
        "local",
        "--experiment-name",
        "taxi",
        "--tracking-uri",
        local_uri,
        env=env,
    )
    assert proc.returncode != 0 and "failing on purpose" in proc.stderr
    evtrack.set_tracking_uri(local_uri)
    run = _only_run(local_uri, "taxi")
    assert run.info.status == "FAILED" and run.data.params == {"fail_after": "2"}
    assert [m.step for m in evtrack.MlflowClient(local_uri).get_metric_history(run.info.run_id, "train_rmse")] == [0, 1]
    with pytest.raises(
        ExecutionError, match=r"Run \(ID '[0-9a-f]{32}'\) failed: .* exited with status 1; the run is FAILED"
    ):
        run_project(
            str(example),
            entry_point="fail",
            parameters={"fail_after": 0},
            env_manager="local",
            tracking_uri=local_uri,
            stream_output=False,
        )


def test_usage_errors(example: Path, local_uri: str, env: dict[str, str]) -> None:
    runner = CliRunner()
    base = ["run", str(example), "--env-manager", "local", "--tracking-uri", local_uri]
    result = runner.invoke(cli, [*base, "-e", "nope"])
    assert result.exit_code == 1 and "Error: Could not find nope among entry points" in result.output
    result = runner.invoke(cli, [*base, "-P", "alpha=fast"])
    assert result.exit_code == 1 and "Invalid value 'fast' for parameter 'alpha'" in result.output
    result = runner.invoke(cli, [*base, "-P", "alpha"])
    assert result.exit_code == 2 and "is not of the form key=value" in result.output
    result = runner.invoke(cli, ["run", str(example / "nope"), "--tracking-uri", local_uri])
    assert result.exit_code == 1 and "neither a local directory nor a git URI" in result.output
    evtrack.set_tracking_uri(local_uri)
    assert evtrack.search_runs(search_all_experiments=True, output_format="list") == []  # no run was created


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_a_git_uri_with_a_subdirectory(tmp_path: Path, local_uri: str, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(EXAMPLE, repo / "projects" / "taxi")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "taxi")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "projects" / "taxi" / "MLproject").write_text("name: broken\n")  # a later commit breaks it
    _git(repo, "commit", "-q", "-am", "break")
    evtrack.set_tracking_uri(local_uri)
    for version in (first, "main"):
        submitted = run_project(
            f"file://{repo}#projects/taxi",
            entry_point="main" if version == first else "train.py",
            version=version,
            parameters={"epochs": 2} if version == first else None,
            env_manager="local",
            experiment_name="git",
            tracking_uri=local_uri,
            stream_output=False,
        )
        run = evtrack.get_run(submitted.run_id)
        assert run.info.status == "FINISHED" == submitted.get_status()
        assert run.data.tags["mlflow.source.name"] == f"{repo}#projects/taxi"
        assert run.data.tags["mlflow.source.git.commit"] == _git(repo, "rev-parse", version)
        assert run.data.tags["mlflow.source.git.dirty"] == "false"
    assert (
        "mlflow.source.git.branch"
        not in evtrack.get_run(
            run_project(
                f"file://{repo}#projects/taxi",
                entry_point="train.py",
                version=first,
                env_manager="local",
                tracking_uri=local_uri,
                stream_output=False,
            ).run_id
        ).data.tags
    )  # a commit: detached, no branch
    assert run.data.tags["mlflow.source.git.branch"] == "main" and run.data.params == {}
    with pytest.raises(ExecutionError, match="Unable to checkout version 'nope'"):
        run_project(f"file://{repo}#projects/taxi", version="nope", tracking_uri=local_uri)
    with pytest.raises(ExecutionError, match="Could not find subdirectory missing"):
        run_project(f"file://{repo}#missing", version="main", tracking_uri=local_uri)
    with pytest.raises(ExecutionError, match="Invalid project subdirectory"):
        run_project(f"file://{repo}#../etc", tracking_uri=local_uri)


def test_a_virtualenv_run(tmp_path: Path, local_uri: str, env: dict[str, str]) -> None:
    """Offline: a python_env.yaml without dependencies, so nothing is downloaded."""
    folder = _project(
        tmp_path,
        """
        name: isolated
        python_env: python_env.yaml
        entry_points:
          main:
            parameters: {x: {type: float, default: 1.5}}
            command: "python step.py {x}"
        """,
        {
            "python_env.yaml": "build_dependencies: []\ndependencies: []\n",
            "step.py": textwrap.dedent("""
        import importlib.util, sys, evtrack
        with evtrack.start_run():
            evtrack.log_metric("x", float(sys.argv[1]))
            evtrack.set_tags({"prefix": sys.prefix,
                              "numpy": str(importlib.util.find_spec("numpy") is not None)})
        """),
        },
    )
    evtrack.set_tracking_uri(local_uri)
    prefixes = []
    for x in ("2.5", "3.5"):  # the second run reuses the environment
        submitted = run_project(str(folder), parameters={"x": x}, tracking_uri=local_uri, stream_output=False)
        run = evtrack.get_run(submitted.run_id)
        assert run.info.status == "FINISHED" and run.data.metrics == {"x": float(x)}
        assert run.data.tags["mlflow.project.env"] == "virtualenv"  # python_env projects default to it
        assert run.data.tags["numpy"] == "False"  # isolated: only evtrack and its dependencies are added
        prefixes.append(run.data.tags["prefix"])
    assert prefixes[0] == prefixes[1] and prefixes[0].startswith(str(tmp_path / "envs"))
    assert prefixes[0] != sys.prefix
    assert run.data.tags["evtrack.env.digest"] != evtrack.tracking.context.environment().digest


def test_sigterm_and_cancel_end_the_run_killed(tmp_path: Path, local_uri: str, env: dict[str, str]) -> None:
    marker = tmp_path / "started"
    folder = _project(
        tmp_path,
        None,
        {
            "sleep.py": textwrap.dedent(f"""
        import pathlib, time, evtrack
        with evtrack.start_run():
            evtrack.log_metric("alive", 1)
            evtrack.flush()
            pathlib.Path({str(marker)!r}).write_text("x")
            time.sleep(60)
        """)
        },
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "run",
            str(folder),
            "-e",
            "sleep.py",
            "--experiment-name",
            "k",
            "--tracking-uri",
            local_uri,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KILLED" in err
    evtrack.set_tracking_uri(local_uri)
    run = _only_run(local_uri, "k")
    assert run.info.status == "KILLED" and run.data.metrics == {"alive": 1.0}
    marker.unlink()
    submitted = run_project(
        str(folder), entry_point="sleep.py", synchronous=False, tracking_uri=local_uri, stream_output=False
    )
    while not marker.exists() and time.monotonic() < deadline + 30:
        time.sleep(0.05)
    assert submitted.get_status() == "RUNNING"
    submitted.cancel()
    assert submitted.get_status() == "KILLED" == evtrack.get_run(submitted.run_id).info.status
