"""Running a project: create the run, start its command with the run attached, record the outcome.

    fetch (dir or git clone) ─▶ parse MLproject ─▶ check parameters ─▶ create run
      (params, project and git tags) ─▶ build/reuse the environment ─▶ ``bash -c command``
      with EVTRACK_RUN_ID / EVTRACK_TRACKING_URI / EVTRACK_EXPERIMENT_ID set ─▶ exit status
      ─▶ FINISHED (0), KILLED (SIGINT/SIGTERM), else FAILED

The command's own ``evtrack.start_run()`` joins the run (and records its Python
environment there); whatever it logs lands in the same run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Mapping

from evtrack.entities import RunStatus
from evtrack.projects import envs
from evtrack.projects.fetch import Fetched, fetch_project
from evtrack.projects.spec import EntryPoint, ExecutionError, Project, load_project
from evtrack.tracking import context

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
ENV_TAG = "mlflow.project.env"
BACKEND_TAG = "mlflow.project.backend"
ENV_MANAGERS = ("local", "virtualenv")
_KILL_CODES = (-signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM)


class SubmittedRun:
    """A project run in progress (MLflow's ``SubmittedRun``): ``run_id``, ``wait()``, ``get_status()``,
    ``cancel()``."""

    def __init__(self, run_id: str, process: subprocess.Popen, client: Any, cleanup: str | None = None) -> None:
        self.run_id = run_id
        self.command_proc = process
        self._client = client
        self._cleanup = cleanup
        self._status: str | None = None
        self._cancelled = False
        self._lock = threading.Lock()

    def wait(self) -> bool:
        """Wait for the command; record and return whether it succeeded."""
        code = self.command_proc.wait()
        with self._lock:
            if self._status is None:
                if code == 0:
                    status = RunStatus.FINISHED
                elif self._cancelled or code in _KILL_CODES:
                    status = RunStatus.KILLED
                else:
                    status = RunStatus.FAILED
                time.sleep(0.002)  # our end event sorts after anything the command wrote (same clock)
                self._client.set_terminated(self.run_id, status)
                self._client.flush()
                self._status = status
                if self._cleanup:
                    shutil.rmtree(self._cleanup, ignore_errors=True)
        return self._status == RunStatus.FINISHED

    def get_status(self) -> str:
        """RUNNING while the command runs, then its recorded status."""
        if self._status is None and self.command_proc.poll() is not None:
            self.wait()
        return self._status or RunStatus.RUNNING

    @property
    def returncode(self) -> int | None:
        """The command's exit status once it ended."""
        return self.command_proc.returncode

    def cancel(self) -> None:
        """Stop the command (SIGTERM to its process group, SIGKILL after 10 s); the run becomes KILLED."""
        self._cancelled = True
        if self.command_proc.poll() is None:
            _signal_group(self.command_proc, signal.SIGTERM)
            try:
                self.command_proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(self.command_proc, signal.SIGKILL)
        self.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _experiment_id(client: Any, experiment_name: str | None, experiment_id: str | None) -> str:
    if experiment_name is not None and experiment_id is not None:
        raise ExecutionError("Specify only one of experiment_name and experiment_id")
    if experiment_id is not None:
        return client.get_experiment(str(experiment_id)).experiment_id
    name = experiment_name or os.environ.get("EVTRACK_EXPERIMENT_NAME")
    if name:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            from evtrack.errors import ResourceAlreadyExistsError

            try:
                return client.create_experiment(name)
            except ResourceAlreadyExistsError:
                exp = client.get_experiment_by_name(name)
        return exp.experiment_id
    return os.environ.get("EVTRACK_EXPERIMENT_ID") or "0"


def _choose_env_manager(project: Project, env_manager: str | None) -> str:
    if env_manager is not None and env_manager not in ENV_MANAGERS:
        raise ExecutionError(
            f"Invalid env manager {env_manager!r}: expected one of {list(ENV_MANAGERS)} "
            "(conda and docker are not supported)"
        )
    if project.env_type == "docker_env" and env_manager != "local":
        raise ExecutionError(
            "docker_env projects are not supported; run with --env-manager local to use the current environment"
        )
    if project.env_type == "conda_env":
        if env_manager is None or env_manager == "virtualenv":
            raise ExecutionError(
                "conda_env projects are not supported: run with --env-manager local, or "
                "describe the environment in a python_env.yaml"
            )
    if env_manager is None:
        return "virtualenv" if project.env_type == "python_env" else "local"
    return env_manager


def _run_tags(
    fetched: Fetched, entry_point: str, env_manager: str, run_name: str | None
) -> tuple[dict[str, str], dict[str, bytes]]:
    """MLflow's project tags, plus the git state of the working directory (branch only when a
    branch is checked out, so not for ``--version <commit>``)."""
    captured = context.git_tags(fetched.work_dir)
    tags = {
        context.USER: context.current_user(),
        context.SOURCE_NAME: fetched.source_name,
        context.SOURCE_TYPE: "PROJECT",
        ENTRY_POINT_TAG: entry_point,
        ENV_TAG: env_manager,
        BACKEND_TAG: "local",
        **captured.tags,
    }
    if run_name:
        tags["mlflow.runName"] = run_name
    return tags, captured.artifacts


def _child_env(client: Any, run_id: str, experiment_id: str, env_dir: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {"EVTRACK_RUN_ID": run_id, "EVTRACK_TRACKING_URI": client.tracking_uri, "EVTRACK_EXPERIMENT_ID": experiment_id}
    )
    env.pop("EVTRACK_EXPERIMENT_NAME", None)
    if env_dir is not None:  # the venv's python comes first
        env["VIRTUAL_ENV"] = str(env_dir)
        env["PATH"] = os.pathsep.join([str(envs.venv_python(env_dir).parent), env.get("PATH", "")])
        env.pop("PYTHONHOME", None)
    else:  # "python" is this interpreter's, so the command can import evtrack
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def run(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    synchronous: bool = True,
    tracking_uri: str | None = None,
    stream_output: bool = True,
) -> SubmittedRun:
    """Run a project (MLflow's ``mlflow.projects.run``); returns the ``SubmittedRun``.

    With ``synchronous`` (the default) it waits for the command and raises ``ExecutionError``
    when it fails; otherwise call ``wait()`` on the result.
    """
    from evtrack.entities import Param
    from evtrack.tracking.client import TrackingClient

    fetched = fetch_project(uri, version)
    try:
        project = load_project(fetched.work_dir)
        ep: EntryPoint = project.get_entry_point(entry_point)
        command = ep.compute_command(parameters, fetched.work_dir)  # every check before the run exists
        logged = ep.logged_parameters(parameters)
        manager = _choose_env_manager(project, env_manager)
        client = TrackingClient(tracking_uri)
        exp_id = _experiment_id(client, experiment_name, experiment_id)
        tags, artifacts = _run_tags(fetched, entry_point, manager, run_name)
        run_id = client.create_run(exp_id, tags=tags, run_name=run_name).info.run_id
        items = list(logged.items())
        for i in range(0, len(items), 100):
            client.log_batch(run_id, params=[Param(k, v) for k, v in items[i : i + 100]])
        for path, data in artifacts.items():
            client._log_bytes(run_id, data, path)
        try:
            env_dir = envs.get_or_create_virtualenv(project.env_file) if manager == "virtualenv" else None
        except ExecutionError:
            client.set_terminated(run_id, RunStatus.FAILED)
            client.flush()
            raise
        client.flush()  # the child reads the run it joins
        out = None if stream_output else subprocess.DEVNULL
        print(f"evtrack: running {command!r} in {fetched.work_dir} (run {run_id})", file=sys.stderr)
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=fetched.work_dir,
            env=_child_env(client, run_id, exp_id, env_dir),
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
    except BaseException:
        if fetched.cloned_to:
            shutil.rmtree(fetched.cloned_to, ignore_errors=True)
        raise
    submitted = SubmittedRun(run_id, proc, client, fetched.cloned_to)
    if synchronous:
        with _forward_signals(submitted):
            ok = submitted.wait()
        if not ok:
            raise ExecutionError(
                f"Run (ID '{run_id}') failed: {command!r} exited with status "
                f"{proc.returncode}; the run is {submitted.get_status()}"
            )
    return submitted


class _forward_signals:
    """While waiting in the main thread: SIGINT/SIGTERM stop the command and end the run KILLED."""

    def __init__(self, submitted: SubmittedRun) -> None:
        self.submitted = submitted
        self.saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.submitted._cancelled = True
        _signal_group(self.submitted.command_proc, signum)

    def __enter__(self) -> "_forward_signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
