"""Runs through the fluent API and the client: lifecycle, names, nesting, logging rules, validation."""

from __future__ import annotations

import getpass
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import evtrack
from evtrack import Metric, Param, RunTag
from evtrack.errors import EvtrackError, InvalidParameterError, InvalidStateError, ResourceNotFoundError
from evtrack.state.fold import fold
from evtrack.store import open_store
from evtrack.eventlog.validation import TruncatedValueWarning

RUN_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")


@pytest.fixture
def client(tracking_uri: str) -> evtrack.EvtrackClient:
    return evtrack.EvtrackClient(tracking_uri)


@pytest.fixture
def local_tracking(local_uri: str, fresh_evtrack: None) -> str:
    evtrack.set_tracking_uri(local_uri)
    return local_uri


def _python(code: str, *args: str, env: dict[str, str] | None = None, cwd: Any = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- starting and ending runs ------------------------------------------------------------------


def test_runs_get_random_readable_names(tracking_uri: str) -> None:
    names = []
    for _ in range(4):
        with evtrack.start_run() as run:
            names.append(run.info.run_name)
            assert run.data.tags["mlflow.runName"] == run.info.run_name
    assert all(RUN_NAME.match(n) for n in names), names
    assert len(set(names)) > 1
    assert evtrack.get_run(run.info.run_id).info.run_name == names[-1]


def test_run_name_and_tags_and_description(tracking_uri: str) -> None:
    exp_id = evtrack.create_experiment("named")
    with evtrack.start_run(
        run_name="lasso-0.01", experiment_id=exp_id, tags={"team": "ml"}, description="first try"
    ) as run:
        pass
    got = evtrack.get_run(run.info.run_id)
    assert (got.info.run_name, got.info.experiment_id) == ("lasso-0.01", exp_id)
    assert got.data.tags["mlflow.runName"] == "lasso-0.01"
    assert got.data.tags["team"] == "ml" and got.data.tags["mlflow.note.content"] == "first try"
    assert len(got.info.run_id) == 32 and int(got.info.run_id, 16) >= 0
    assert got.info.artifact_uri.endswith(f"/artifacts/{exp_id}/{got.info.run_id}/artifacts")


def test_context_manager_finishes_or_fails_the_run(tracking_uri: str) -> None:
    with evtrack.start_run() as ok:
        assert evtrack.active_run().info.run_id == ok.info.run_id
        assert evtrack.get_run(ok.info.run_id).info.status == "RUNNING"
    assert evtrack.active_run() is None
    finished = evtrack.get_run(ok.info.run_id).info
    assert finished.status == "FINISHED" and finished.end_time >= finished.start_time

    with pytest.raises(ValueError, match="boom"):
        with evtrack.start_run() as bad:
            raise ValueError("boom")
    assert evtrack.active_run() is None
    failed = evtrack.get_run(bad.info.run_id).info
    assert failed.status == "FAILED" and failed.end_time is not None


def test_end_run_with_a_status(tracking_uri: str) -> None:
    run = evtrack.start_run()
    evtrack.end_run("KILLED")
    assert evtrack.get_run(run.info.run_id).info.status == "KILLED"
    evtrack.end_run()  # no active run: nothing happens


def test_active_run_and_last_active_run(tracking_uri: str) -> None:
    assert evtrack.active_run() is None and evtrack.last_active_run() is None
    run = evtrack.start_run()
    assert evtrack.active_run() is run and evtrack.last_active_run() is run
    evtrack.end_run()
    assert evtrack.active_run() is None
    last = evtrack.last_active_run()
    assert last.info.run_id == run.info.run_id and last.info.status == "FINISHED"


def test_logging_without_an_active_run_starts_one(tracking_uri: str) -> None:
    evtrack.log_metric("m", 1.0)
    run = evtrack.active_run()
    assert run is not None
    evtrack.log_param("p", "v")
    evtrack.end_run()
    got = evtrack.get_run(run.info.run_id)
    assert (got.data.metrics, got.data.params, got.info.status) == ({"m": 1.0}, {"p": "v"}, "FINISHED")


def test_a_second_active_run_needs_nested(local_tracking: str) -> None:
    """The run stack is client-side: local store only."""
    with evtrack.start_run() as first:
        with pytest.raises(EvtrackError, match=rf"Run with UUID {first.info.run_id} is already active.*nested=True"):
            evtrack.start_run()
        assert evtrack.active_run() is first


def test_nested_runs_record_their_parent(tracking_uri: str) -> None:
    with evtrack.start_run(run_name="parent") as parent:
        with evtrack.start_run(nested=True, run_name="child") as child:
            assert evtrack.active_run() is child
            with evtrack.start_run(nested=True) as grandchild:
                pass
        assert evtrack.active_run() is parent
    pid, cid = parent.info.run_id, child.info.run_id
    assert evtrack.get_run(cid).data.tags["mlflow.parentRunId"] == pid
    assert evtrack.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == cid
    assert "mlflow.parentRunId" not in evtrack.get_run(pid).data.tags
    assert {evtrack.get_run(r).info.status for r in (pid, cid, grandchild.info.run_id)} == {"FINISHED"}


def test_parent_run_id(tracking_uri: str) -> None:
    with evtrack.start_run() as parent:
        pass
    with evtrack.start_run(parent_run_id=parent.info.run_id) as child:  # no active run: allowed
        with pytest.raises(
            InvalidParameterError,
            match=rf"Current run with UUID {child.info.run_id} does not match the specified "
            rf"parent_run_id {parent.info.run_id}",
        ):
            evtrack.start_run(nested=True, parent_run_id=parent.info.run_id)
        with evtrack.start_run(nested=True, parent_run_id=child.info.run_id) as grandchild:
            pass
    assert evtrack.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert evtrack.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    with pytest.raises(ResourceNotFoundError):
        evtrack.start_run(parent_run_id="0" * 32)
    assert evtrack.active_run() is None


def test_run_id_resumes_a_run(tracking_uri: str) -> None:
    with evtrack.start_run() as run:
        evtrack.log_param("alpha", 1)
    run_id = run.info.run_id
    assert evtrack.get_run(run_id).info.status == "FINISHED"
    with evtrack.start_run(run_id=run_id) as resumed:
        assert resumed.info.run_id == run_id
        assert evtrack.get_run(run_id).info.status == "RUNNING"
        evtrack.log_param("alpha", 1)  # the same value again is fine
        with pytest.raises(InvalidParameterError, match="Changing param values is not allowed"):
            evtrack.log_param("alpha", 2)
        evtrack.log_metric("after_resume", 3.0)
    got = evtrack.get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.metrics == {"after_resume": 3.0}
    with pytest.raises(ResourceNotFoundError):
        evtrack.start_run(run_id="f" * 32)
    assert evtrack.active_run() is None


def test_evtrack_run_id_attaches_a_process_to_a_run(
    tracking_uri: str, client: evtrack.EvtrackClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "0")  # on S3, read the other process's points at once
    run_id = client.create_run("0", run_name="distributed").info.run_id
    client.log_param(run_id, "workers", 2)
    client.set_terminated(run_id)
    assert client.flush().durable
    out = _python(
        """
        import json, sys, evtrack
        evtrack.set_tracking_uri(sys.argv[1])
        with evtrack.start_run() as run:
            status = evtrack.get_run(run.info.run_id).info.status
            evtrack.log_metric("from_worker", 7.0, step=3)
            evtrack.log_param("workers", 2)
        print(json.dumps([run.info.run_id, run.info.run_name, status]))
        """,
        tracking_uri,
        env={"EVTRACK_RUN_ID": run_id},
    )
    assert json.loads(out) == [run_id, "distributed", "RUNNING"]
    got = client.get_run(run_id)
    assert got.data.metrics == {"from_worker": 7.0} and got.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "from_worker")] == [(3, 7.0)]


# -- system tags -------------------------------------------------------------------------------


def test_system_tags(tracking_uri: str) -> None:
    with evtrack.start_run() as run:
        pass
    tags = evtrack.get_run(run.info.run_id).data.tags
    assert tags["mlflow.user"] == getpass.getuser() == run.info.user_id
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == os.path.abspath(sys.argv[0])
    assert tags["mlflow.runName"] == run.info.run_name


def test_git_commit_of_the_entry_script(local_uri: str, fresh_evtrack: None, tmp_path: Path) -> None:
    """Store-independent (tags are computed before anything is written): local store only."""
    repo = tmp_path / "project"
    (repo / "src").mkdir(parents=True)
    script = repo / "src" / "train.py"
    script.write_text(
        textwrap.dedent(
            """
        import json, sys, evtrack
        evtrack.set_tracking_uri(sys.argv[1])
        with evtrack.start_run() as run:
            pass
        print(json.dumps(evtrack.get_run(run.info.run_id).data.tags))
        """
        )
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "one"]):
        subprocess.run([*git, *cmd], cwd=repo, check=True, capture_output=True)
    (repo / "README").write_text("two")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "two"], cwd=repo, check=True)
    subprocess.run([*git, "pack-refs", "--all"], cwd=repo, check=True)  # refs in packed-refs too
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()

    proc = subprocess.run(
        [sys.executable, str(script), local_uri], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    tags = json.loads(proc.stdout)
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.name"] == str(script)
    assert tags["mlflow.source.type"] == "LOCAL"


# -- params ------------------------------------------------------------------------------------


def test_params_are_immutable(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    with evtrack.start_run() as run:
        assert evtrack.log_param("alpha", 0.01) == 0.01
        evtrack.log_params({"model": "lasso", "n": 3})
        evtrack.log_param("alpha", 0.01)  # same value: fine
        evtrack.log_params({"alpha": "0.01"})  # same string: fine
        with pytest.raises(InvalidParameterError) as info:
            evtrack.log_param("alpha", 0.5)
    message = str(info.value)
    run_id = run.info.run_id
    for part in ("key='alpha'", "value='0.01'", f"run ID='{run_id}'", "new value '0.5'"):
        assert part in message
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"alpha": "0.01", "model": "lasso", "n": "3"}
    with pytest.raises(InvalidParameterError, match="Changing param values"):
        client.log_batch(run_id, params=[Param("new", "1"), Param("model", "ridge")])
    assert "new" not in client.get_run(run_id).data.params  # the whole batch was refused


def test_duplicate_param_keys_in_one_batch_are_rejected(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0").info.run_id
    with pytest.raises(InvalidParameterError, match=r"Duplicate parameter keys have been submitted: \['a'\]"):
        client.log_batch(run_id, params=[Param("a", "1"), Param("b", "2"), Param("a", "1")])
    assert client.get_run(run_id).data.params == {}


# -- metrics -----------------------------------------------------------------------------------


def test_metric_step_and_timestamp_defaults(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    before = int(time.time() * 1000)
    with evtrack.start_run() as run:
        evtrack.log_metric("loss", 0.9)
        evtrack.log_metric("loss", 0.5, step=10, timestamp=123)
        evtrack.log_metrics({"rmse": 7.1, "r2": 0.41})
        evtrack.log_metrics({"rmse": 6.0}, step=2, timestamp=456)
    after = int(time.time() * 1000)
    run_id = run.info.run_id
    loss = client.get_metric_history(run_id, "loss")
    assert [(m.key, m.step, m.value, m.run_id) for m in loss] == [("loss", 0, 0.9, run_id), ("loss", 10, 0.5, run_id)]
    assert before <= loss[0].timestamp <= after and loss[1].timestamp == 123
    rmse = client.get_metric_history(run_id, "rmse")
    assert [(m.step, m.value) for m in rmse] == [(0, 7.1), (2, 6.0)] and rmse[1].timestamp == 456
    assert before <= rmse[0].timestamp <= after
    assert client.get_run(run_id).data.metrics == {"loss": 0.5, "rmse": 6.0, "r2": 0.41}


def test_metric_history_of_a_long_loop(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0").info.run_id
    for step in range(1000):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_metric(run_id, "loss", 1.0, step=0, timestamp=0)  # a duplicate step at another time
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == 1001 and history[-1].step == 999
    assert client.get_run(run_id).data.metrics["loss"] == pytest.approx(1 / 1000)
    with pytest.raises(ResourceNotFoundError):
        client.get_metric_history("0" * 32, "loss")
    assert client.get_metric_history(run_id, "never-logged") == []


def test_synchronous_logging_is_durable_at_once(
    tracking_uri: str, client: evtrack.EvtrackClient, monkeypatch: Any, inbox: Any
) -> None:
    monkeypatch.setenv("EVTRACK_FLUSH_INTERVAL", "60")
    evtrack.set_tracking_uri(tracking_uri)
    with evtrack.start_run() as run:
        evtrack.log_metric("m", 1.0, synchronous=True)
        evtrack.log_param("p", "v", synchronous=True)
        state = fold(inbox(tracking_uri))  # read behind the writer's back
        assert state.latest_metrics(run.info.run_id) == {"m": 1.0}
        assert state.live_params(run.info.run_id) == {"p": "v"}


# -- log_batch limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics, params, tags, message",
    [
        (1001, 0, 0, r"at most 1000 metrics\. Got 1001 metrics"),
        (0, 101, 0, r"at most 100 params\. Got 101 params"),
        (0, 0, 101, r"at most 100 tags\. Got 101 tags"),
        (1000, 1, 0, r"at most 1000 metrics, params, and tags\. Got 1001"),
    ],
    ids=["metrics", "params", "tags", "entities"],
)
def test_log_batch_limits(local_tracking: str, metrics: int, params: int, tags: int, message: str) -> None:
    """Batches are checked before anything is buffered: local store only."""
    client = evtrack.EvtrackClient(local_tracking)
    run_id = client.create_run("0").info.run_id
    with pytest.raises(InvalidParameterError, match=message):
        client.log_batch(
            run_id,
            metrics=[Metric(f"m{i}", 1.0, 0, 0) for i in range(metrics)],
            params=[Param(f"p{i}", "v") for i in range(params)],
            tags=[RunTag(f"t{i}", "v") for i in range(tags)],
        )
    data = client.get_run(run_id).data
    assert data.metrics == {} and data.params == {} and set(data.tags) == {"mlflow.runName"}


def test_log_batch_at_the_limits_is_accepted(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, metrics=[Metric("m", float(i), 0, i) for i in range(1000)])
    client.log_batch(
        run_id, params=[Param(f"p{i}", i) for i in range(100)], tags=[RunTag(f"t{i}", i) for i in range(100)]
    )
    run = client.get_run(run_id)
    assert len(client.get_metric_history(run_id, "m")) == 1000 and run.data.metrics["m"] == 999.0
    assert len(run.data.params) == 100 and run.data.params["p7"] == "7"
    assert run.data.tags["t99"] == "99"


# -- tags --------------------------------------------------------------------------------------


def test_set_tags_and_delete_tag(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    with evtrack.start_run() as run:
        evtrack.set_tag("developer", "ahmad")
        evtrack.set_tags({"stage": "dev", "n": 1})
        evtrack.set_tag("developer", "sam")  # last write wins
        evtrack.delete_tag("stage")
        with pytest.raises(ResourceNotFoundError, match="No tag with name: stage"):
            evtrack.delete_tag("stage")
        evtrack.set_tag("mlflow.runName", "renamed-by-tag")
    got = client.get_run(run.info.run_id)
    assert {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")} == {"developer": "sam", "n": "1"}
    assert got.info.run_name == "renamed-by-tag"
    client.update_run(run.info.run_id, name="renamed-by-update")
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == got.data.tags["mlflow.runName"] == "renamed-by-update"


# -- run lifecycle through the client ----------------------------------------------------------


def test_set_terminated_and_update_run(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0", start_time=1000).info.run_id
    client.set_terminated(run_id)
    info = client.get_run(run_id).info
    assert (info.status, info.start_time) == ("FINISHED", 1000) and info.end_time > 1000
    client.set_terminated(run_id, "KILLED", end_time=5000)
    info = client.get_run(run_id).info
    assert (info.status, info.end_time) == ("KILLED", 5000)
    with pytest.raises(InvalidParameterError, match="Invalid run status: 'DONE'"):
        client.set_terminated(run_id, "DONE")
    client.update_run(run_id, status="RUNNING")
    assert client.get_run(run_id).info.status == "RUNNING"


def test_delete_and_restore_run(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)
    evtrack.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    for write in (
        lambda: client.log_metric(run_id, "m", 2.0),
        lambda: client.log_param(run_id, "p", "v"),
        lambda: client.set_tag(run_id, "t", "v"),
        lambda: client.log_batch(run_id, metrics=[Metric("m", 3.0, 0, 0)]),
        lambda: evtrack.log_metric("m", 4.0, run_id=run_id),
        lambda: client.set_terminated(run_id),
    ):
        with pytest.raises(InvalidStateError, match=f"The run {run_id} must be in the 'active' state"):
            write()
    with pytest.raises(InvalidStateError, match="already deleted"):
        client.delete_run(run_id)
    with pytest.raises(InvalidStateError):
        evtrack.start_run(run_id=run_id)
    assert evtrack.active_run() is None
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    with pytest.raises(InvalidStateError, match="must be in the 'deleted' state to be restored"):
        client.restore_run(run_id)
    client.log_metric(run_id, "m", 5.0, step=1)
    assert [m.value for m in client.get_metric_history(run_id, "m")] == [1.0, 5.0]
    with pytest.raises(ResourceNotFoundError, match="not found"):
        client.delete_run("0" * 32)


# -- reading -----------------------------------------------------------------------------------


def test_get_run_works_before_any_compaction(tracking_uri: str) -> None:
    with evtrack.start_run(run_name="lasso") as run:
        evtrack.set_tag("developer", "ahmad")
        evtrack.log_param("alpha", 0.01)
        for step in range(100):
            evtrack.log_metric("loss", 1.0 - step / 100, step=step)
    assert list(open_store(tracking_uri).list("_manifests/")) == []
    got = evtrack.get_run(run.info.run_id)
    assert got.info.run_name == "lasso" and got.info.lifecycle_stage == "active"
    assert got.data.params == {"alpha": "0.01"} and got.data.metrics == {"loss": pytest.approx(0.01)}
    assert got.data.tags["developer"] == "ahmad"
    with pytest.raises(ResourceNotFoundError, match="Run with id=0000 not found"):
        evtrack.get_run("0000")


def test_read_your_writes_from_another_process(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0", run_name="shared").info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 0.5, 10, 1), Metric("loss", math.inf, 11, 2)],
        params=[Param("alpha", "0.01")],
        tags=[RunTag("team", "ml")],
    )
    deleted_id = client.create_run("0").info.run_id
    client.delete_run(deleted_id)
    assert evtrack.flush().durable  # after flush() returns, any process sees it
    out = _python(
        """
        import json, sys, evtrack
        from evtrack.errors import InvalidParameterError, InvalidStateError
        client = evtrack.EvtrackClient(sys.argv[1])
        run = client.get_run(sys.argv[2])
        history = [(m.step, m.value) for m in client.get_metric_history(sys.argv[2], "loss")]
        errors = []
        try:
            client.log_param(sys.argv[2], "alpha", "0.02")
        except InvalidParameterError as exc:
            errors.append(str(exc))
        try:
            client.log_metric(sys.argv[3], "m", 1.0)
        except InvalidStateError as exc:
            errors.append(str(exc))
        print(json.dumps({"run": run.to_dictionary(), "history": history, "errors": errors}))
        """,
        tracking_uri,
        run_id,
        deleted_id,
    )
    seen = json.loads(out)
    mine = client.get_run(run_id).to_dictionary()
    mine["data"]["metrics"] = {"loss": "Infinity"}
    seen["run"]["data"]["metrics"] = {
        "loss": "Infinity"
        if seen["run"]["data"]["metrics"]["loss"] == math.inf
        else seen["run"]["data"]["metrics"]["loss"]
    }
    assert seen["run"] == mine
    assert seen["history"] == [[1, 0.5], [2, math.inf]]
    assert "value='0.01'" in seen["errors"][0] and "'0.02'" in seen["errors"][0]
    assert "must be in the 'active' state" in seen["errors"][1]
    assert client.get_run(run_id).data.params == {"alpha": "0.01"}


# -- validation errors through the public API --------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: evtrack.log_metric("k" * 251, 1.0),
            r"Metric name 'k+'\.\.\. had length 251, which exceeded length limit of 250",
        ),
        (lambda: evtrack.log_param("p" * 251, 1), r"Parameter name .* had length 251"),
        (lambda: evtrack.set_tag("t" * 251, 1), r"Tag name .* had length 251"),
        (lambda: evtrack.log_metric("bad*key", 1.0), r"Invalid metric name: 'bad\*key'\. Names may only contain"),
        (lambda: evtrack.log_param("new\nline", 1), r"Invalid parameter name: 'new\\nline'\. Names may only contain"),
        (lambda: evtrack.set_tag("semi;colon", 1), r"Invalid tag name: 'semi;colon'"),
        (lambda: evtrack.log_metric("../up", 1.0), r"Invalid metric name: '\.\./up'.*must not resolve to other names"),
        (lambda: evtrack.log_metric("/abs", 1.0), r"Invalid metric name: '/abs'"),
        (lambda: evtrack.log_metric("a//b", 1.0), r"would resolve to 'a/b'"),
        (lambda: evtrack.log_metric("", 1.0), r"Invalid metric name: ''"),
        (lambda: evtrack.log_metric("m", True), r"Got invalid value True for metric 'm'.*valid double"),
        (lambda: evtrack.log_metric("m", "0.5"), r"Got invalid value '0\.5' for metric 'm'"),
        (lambda: evtrack.log_metric("m", None), r"Got invalid value None for metric 'm'"),
        (lambda: evtrack.log_metrics({"m": False}), r"Got invalid value False for metric 'm'"),
        (lambda: evtrack.log_metric("m", 1.0, step=1.5), r"Got invalid step 1\.5 for metric 'm'"),
        (lambda: evtrack.log_metric("m", 1.0, timestamp=-1), r"Got invalid timestamp -1 for metric 'm'"),
        (lambda: evtrack.log_metric("m", 1.0, run_id="not a run id!"), r"Invalid run ID: 'not a run id!'"),
    ],
    ids=[
        "metric-key-too-long",
        "param-key-too-long",
        "tag-key-too-long",
        "metric-bad-char",
        "param-newline",
        "tag-semicolon",
        "dotdot",
        "absolute",
        "not-normalized",
        "empty",
        "bool-value",
        "str-value",
        "none-value",
        "bool-in-log_metrics",
        "float-step",
        "negative-timestamp",
        "bad-run-id",
    ],
)
def test_validation_errors_name_the_problem(local_tracking: str, call: Any, message: str) -> None:
    """Validation happens before anything reaches a store: checked on the local store only."""
    run = evtrack.start_run()
    with pytest.raises(InvalidParameterError, match=message):
        call()
    evtrack.end_run()
    got = evtrack.get_run(run.info.run_id)
    assert got.data.metrics == {} and got.data.params == {}  # nothing half-written


def test_numbers_of_other_types_are_accepted_as_metric_values(local_tracking: str) -> None:
    np = pytest.importorskip("numpy")
    with evtrack.start_run() as run:
        evtrack.log_metric("np_float", np.float32(0.5))
        evtrack.log_metric("np_int", np.int64(3))
        evtrack.log_metric("array", np.array([2.5]))
        evtrack.log_metric("int", 7)
    assert evtrack.get_run(run.info.run_id).data.metrics == {"np_float": 0.5, "np_int": 3.0, "array": 2.5, "int": 7.0}


def test_too_long_values_are_truncated_with_a_warning(tracking_uri: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("EVTRACK_TRUNCATE_LONG_VALUES", raising=False)
    monkeypatch.delenv("MLFLOW_TRUNCATE_LONG_VALUES", raising=False)
    with evtrack.start_run() as run:
        with pytest.warns(
            TruncatedValueWarning, match=r"Param value for key 'long'.*6001 characters.*truncated to 6000"
        ):
            evtrack.log_param("long", "x" * 6001)
        with pytest.warns(TruncatedValueWarning, match=r"Tag value for key 'long'.*truncated to 8000"):
            evtrack.set_tag("long", "y" * 9000)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            evtrack.log_param("exact", "z" * 6000)  # at the limit: no warning
    got = evtrack.get_run(run.info.run_id).data
    assert got.params["long"] == "x" * 6000 and got.params["exact"] == "z" * 6000
    assert got.tags["long"] == "y" * 8000

    monkeypatch.setenv("EVTRACK_TRUNCATE_LONG_VALUES", "false")
    with evtrack.start_run():
        with pytest.raises(InvalidParameterError, match=r"had length 6001, which exceeded length limit of 6000"):
            evtrack.log_param("long", "x" * 6001)
