"""Tracking URI resolution and the experiment API (fluent and client), over both stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
import time
from typing import Any

import pytest

import evtrack
from evtrack import ViewType
from evtrack.read.backend import reset_tracking_uri
from evtrack.errors import InvalidParameterError, InvalidStateError, ResourceAlreadyExistsError, ResourceNotFoundError


@pytest.fixture
def client(tracking_uri: str) -> evtrack.EvtrackClient:
    return evtrack.EvtrackClient(tracking_uri)


# -- tracking URI ------------------------------------------------------------------------------


def test_tracking_uri_precedence_explicit_then_env_then_default(
    fresh_evtrack: None, monkeypatch: Any, tmp_path: Path
) -> None:
    reset_tracking_uri()
    assert evtrack.get_tracking_uri() == "./evtrack-store"
    monkeypatch.setenv("EVTRACK_TRACKING_URI", str(tmp_path / "from-env"))
    assert evtrack.get_tracking_uri() == str(tmp_path / "from-env")
    evtrack.set_tracking_uri(tmp_path / "explicit")  # PathLike accepted
    assert evtrack.get_tracking_uri() == str(tmp_path / "explicit")
    evtrack.create_experiment("lands-in-explicit")
    assert (tmp_path / "explicit" / "events").is_dir()
    assert not (tmp_path / "from-env").exists()


def test_the_environment_variable_picks_the_store(store_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_TRACKING_URI", store_uri)
    assert evtrack.get_tracking_uri() == store_uri
    exp_id = evtrack.create_experiment("via-env")
    assert evtrack.EvtrackClient(store_uri).get_experiment_by_name("via-env").experiment_id == exp_id


def test_the_default_store_is_evtrack_store_in_the_working_directory(
    fresh_evtrack: None, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with evtrack.start_run() as run:
        evtrack.log_metric("m", 1.0)
    assert (tmp_path / "evtrack-store" / "events").is_dir()
    assert any((tmp_path / "evtrack-store" / "events").iterdir())
    assert evtrack.EvtrackClient(str(tmp_path / "evtrack-store")).get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_the_default_store_in_a_fresh_process(fresh_evtrack: None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVTRACK_TRACKING_URI"}
    code = textwrap.dedent(
        """
        import evtrack
        print(evtrack.get_tracking_uri())
        with evtrack.start_run() as run:
            evtrack.log_param("p", 1)
        print(run.info.run_id)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    uri, run_id = proc.stdout.split()
    assert uri == "./evtrack-store"
    run = evtrack.EvtrackClient(str(tmp_path / "evtrack-store")).get_run(run_id)
    assert run.data.params == {"p": "1"} and run.info.status == "FINISHED"


# -- the Default experiment and set_experiment -------------------------------------------------


def test_the_default_experiment_exists(tracking_uri: str) -> None:
    default = evtrack.get_experiment("0")
    assert (default.experiment_id, default.name, default.lifecycle_stage) == ("0", "Default", "active")
    assert default.artifact_location.endswith("/artifacts/0")
    assert evtrack.get_experiment_by_name("Default").experiment_id == "0"
    assert [e.experiment_id for e in evtrack.search_experiments()] == ["0"]
    with evtrack.start_run() as run:
        pass
    assert run.info.experiment_id == "0"


def test_set_experiment_creates_then_reuses(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    assert client.get_experiment_by_name("nyc-taxi") is None
    exp = evtrack.set_experiment("nyc-taxi")
    assert exp.name == "nyc-taxi" and exp.lifecycle_stage == "active" and exp.experiment_id != "0"
    again = evtrack.set_experiment("nyc-taxi")
    assert again.experiment_id == exp.experiment_id
    assert [e.name for e in client.search_experiments(filter_string="name = 'nyc-taxi'")] == ["nyc-taxi"]
    with evtrack.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    assert evtrack.set_experiment(experiment_id=exp.experiment_id).name == "nyc-taxi"


def test_set_experiment_refuses_a_deleted_experiment(tracking_uri: str) -> None:
    exp_id = evtrack.create_experiment("gone")
    evtrack.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match=r"Cannot set a deleted experiment 'gone' as the active experiment"):
        evtrack.set_experiment("gone")
    with pytest.raises(InvalidStateError, match="deleted experiment"):
        evtrack.set_experiment(experiment_id=exp_id)


def test_set_experiment_argument_errors(tracking_uri: str) -> None:
    with pytest.raises(InvalidParameterError, match="exactly one of"):
        evtrack.set_experiment()
    with pytest.raises(InvalidParameterError, match="exactly one of"):
        evtrack.set_experiment("a", experiment_id="1")
    with pytest.raises(ResourceNotFoundError, match="Experiment with ID '999' does not exist"):
        evtrack.set_experiment(experiment_id="999")


# -- create / get / search ---------------------------------------------------------------------


def test_create_and_get_experiment(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    first = client.create_experiment("first", tags={"team": "ml", "n": 3})
    second = client.create_experiment("second", artifact_location="s3://elsewhere/art")
    assert int(second) > int(first) > 0
    exp = client.get_experiment(first)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == ("first", {"team": "ml", "n": "3"}, "active")
    assert exp.artifact_location == f"{client.store.uri}/artifacts/{first}"
    assert exp.creation_time and exp.last_update_time and exp.creation_time <= exp.last_update_time
    assert client.get_experiment(second).artifact_location == "s3://elsewhere/art"
    assert client.get_experiment_by_name("second").experiment_id == second
    assert client.get_experiment_by_name("nope") is None
    with pytest.raises(ResourceNotFoundError, match="No Experiment with id=12345 exists"):
        client.get_experiment("12345")
    with pytest.raises(ResourceAlreadyExistsError, match=r"Experiment\(name=first\) already exists"):
        client.create_experiment("first")


def test_experiment_names_are_validated(tracking_uri: str) -> None:
    assert evtrack.get_experiment(evtrack.create_experiment("x" * 500)).name == "x" * 500
    with pytest.raises(InvalidParameterError, match="exceeds the maximum length of 500 characters"):
        evtrack.create_experiment("y" * 501)
    with pytest.raises(InvalidParameterError, match="exceeds the maximum length of 500"):
        evtrack.set_experiment("z" * 501)
    with pytest.raises(InvalidParameterError, match="Invalid experiment name: ''"):
        evtrack.create_experiment("")
    with pytest.raises(InvalidParameterError, match="Expects a string"):
        evtrack.create_experiment(42)  # type: ignore[arg-type]
    assert [e.name for e in evtrack.search_experiments()] == ["x" * 500, "Default"]


def test_names_with_any_characters_are_fine(tracking_uri: str) -> None:
    name = "team/α 'quoted' \"double\" ; DROP TABLE x; --"
    exp_id = evtrack.create_experiment(name)
    assert evtrack.get_experiment_by_name(name).experiment_id == exp_id


def test_search_experiments_filter_order_view_and_pages(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    ids = {}
    for name, team in [("alpha", "a"), ("beta", "b"), ("gamma", "a"), ("delta", "b")]:
        ids[name] = client.create_experiment(name, tags={"team": team})
        time.sleep(0.003)  # distinct creation times: within one millisecond the tie-break is id ASC, as MLflow's
    client.delete_experiment(ids["delta"])

    def names(**kwargs: Any) -> list[str]:
        return [e.name for e in client.search_experiments(**kwargs)]

    assert names(order_by=["name ASC"]) == ["Default", "alpha", "beta", "gamma"]
    assert names(order_by=["name DESC"]) == ["gamma", "beta", "alpha", "Default"]
    assert names() == ["gamma", "beta", "alpha", "Default"]  # newest first by default
    assert names(filter_string="tags.team = 'a'", order_by=["name"]) == ["alpha", "gamma"]
    assert names(filter_string="name LIKE '%a' AND tags.team = 'b'") == ["beta"]
    assert names(view_type=ViewType.DELETED_ONLY) == ["delta"]
    assert sorted(names(view_type=ViewType.ALL)) == ["Default", "alpha", "beta", "delta", "gamma"]

    page1 = client.search_experiments(max_results=2, order_by=["name"])
    assert [e.name for e in page1] == ["Default", "alpha"] and page1.token
    page2 = client.search_experiments(max_results=2, order_by=["name"], page_token=page1.token)
    assert [e.name for e in page2] == ["beta", "gamma"] and page2.token is None
    assert [e.name for e in evtrack.search_experiments(order_by=["name"])] == ["Default", "alpha", "beta", "gamma"]
    with pytest.raises(InvalidParameterError, match="Invalid page token"):
        client.search_experiments(page_token="not-a-token")
    with pytest.raises(InvalidParameterError, match="max_results"):
        client.search_experiments(max_results=0)


# -- delete / restore / rename -----------------------------------------------------------------


def test_delete_and_restore_experiment(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    exp_id = client.create_experiment("doomed")
    run_id = client.create_run(exp_id).info.run_id
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"  # its runs go with it
    with pytest.raises(InvalidStateError, match="already deleted"):
        client.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match="must be in the 'active' state"):
        client.create_run(exp_id)
    with pytest.raises(ResourceAlreadyExistsError):
        client.create_experiment("doomed")  # the name stays taken while deleted
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    with pytest.raises(InvalidStateError, match="Cannot restore an active experiment"):
        client.restore_experiment(exp_id)
    with pytest.raises(ResourceNotFoundError):
        client.delete_experiment("4242")


def test_writes_to_runs_of_a_deleted_experiment_are_rejected(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    exp_id = client.create_experiment("soon-deleted")
    run_id = client.create_run(exp_id).info.run_id
    client.log_metric(run_id, "m", 1.0)
    client.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match="must be in the 'active' state"):
        client.log_metric(run_id, "m", 2.0)
    assert [m.value for m in client.get_metric_history(run_id, "m")] == [1.0]


def test_rename_frees_the_old_name_and_takes_the_new(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    exp_id = client.create_experiment("old-name")
    other = client.create_experiment("taken")
    client.rename_experiment(exp_id, "new-name")
    assert client.get_experiment(exp_id).name == "new-name"
    assert client.get_experiment_by_name("new-name").experiment_id == exp_id
    assert client.get_experiment_by_name("old-name") is None
    with pytest.raises(ResourceAlreadyExistsError, match=r"Experiment\(name=new-name\) already exists"):
        client.create_experiment("new-name")
    reused = client.create_experiment("old-name")  # the old name is free again
    assert reused not in (exp_id, other)
    with pytest.raises(ResourceAlreadyExistsError, match=r"name=taken"):
        client.rename_experiment(exp_id, "taken")
    assert client.get_experiment(exp_id).name == "new-name"
    client.delete_experiment(other)
    with pytest.raises(InvalidStateError, match="Cannot rename a non-active experiment"):
        client.rename_experiment(other, "whatever")
    with pytest.raises(InvalidParameterError, match="maximum length"):
        client.rename_experiment(exp_id, "n" * 501)
    # another process reading the store agrees
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, evtrack; c = evtrack.EvtrackClient(sys.argv[1]); "
            "print(c.get_experiment_by_name('new-name').experiment_id, c.get_experiment_by_name('old-name').experiment_id)",
            tracking_uri,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split() == [exp_id, reused]


# -- experiment tags ---------------------------------------------------------------------------


def test_experiment_tags(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    exp = evtrack.set_experiment("tagged")
    evtrack.set_experiment_tag("owner", "ahmad")
    evtrack.set_experiment_tags({"stage": "dev", "version": 2})
    client.set_experiment_tag(exp.experiment_id, "owner", "sam")  # last write wins
    assert client.get_experiment(exp.experiment_id).tags == {"owner": "sam", "stage": "dev", "version": "2"}
    client.delete_experiment_tag(exp.experiment_id, "stage")
    assert client.get_experiment(exp.experiment_id).tags == {"owner": "sam", "version": "2"}
    with pytest.raises(ResourceNotFoundError, match="No tag with name: stage"):
        client.delete_experiment_tag(exp.experiment_id, "stage")
    with pytest.raises(InvalidParameterError, match="exceeded length limit of 20000"):
        client.set_experiment_tag(exp.experiment_id, "big", "x" * 20001)
    with pytest.raises(InvalidParameterError, match="Invalid tag name"):
        client.set_experiment_tag(exp.experiment_id, "bad\nkey", "v")
    with pytest.raises(ResourceNotFoundError):
        client.set_experiment_tag("777", "k", "v")
