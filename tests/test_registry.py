"""The model registry: MLflow's client API over registry events, claims, tables and SQL views."""

from __future__ import annotations

import random
import time
import warnings
from typing import Any, Callable

import pytest
from click.testing import CliRunner

import evtrack
from evtrack.eventlog import events as ev
from evtrack.errors import EvtrackError
from evtrack.state.fold import State, fold
from evtrack.registry import claims
from evtrack.registry import client_base as registry_plumbing
from evtrack.registry import events as rev
from evtrack.registry.tables import registry_tables
from evtrack.store import open_store

NOT_FOUND, EXISTS, INVALID = "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE"


def error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> EvtrackError:
    """The evtrack error ``fn(*args, **kwargs)`` raises."""
    with pytest.raises(EvtrackError) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.fixture
def client(tracking_uri: str, cache_dir: Any) -> evtrack.EvtrackClient:
    """A client on a fresh store, once per backend (local directory and S3)."""
    return evtrack.EvtrackClient(tracking_uri)


@pytest.fixture
def local(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> evtrack.EvtrackClient:
    """A client on a fresh local store (the tracking URI of the fluent API too)."""
    evtrack.set_tracking_uri(local_uri)
    return evtrack.EvtrackClient(local_uri)


def compact(uri: str) -> None:
    from compaction.compactor import compact as run

    run(open_store(uri), grace_seconds=0)


def sql(query: str) -> list[dict[str, Any]]:
    return evtrack.sql(query).to_pylist()


# -- registered models ------------------------------------------------------------------------


def test_create_get_update_and_delete_a_registered_model(client: evtrack.EvtrackClient) -> None:
    created = client.create_registered_model("churn", tags={"team": "growth", "n": 1}, description="v1 model")
    assert (created.name, created.description, created.tags) == ("churn", "v1 model", {"team": "growth", "n": "1"})
    assert created.latest_versions == [] and created.aliases == {}
    got = client.get_registered_model("churn")
    assert got.creation_timestamp == created.creation_timestamp
    assert (got.name, got.description, got.tags) == ("churn", "v1 model", {"team": "growth", "n": "1"})

    e = error(client.create_registered_model, "churn")
    assert (e.error_code, e.message) == (EXISTS, "Registered Model (name=churn) already exists.")

    time.sleep(0.002)
    updated = client.update_registered_model("churn", "second description")
    assert updated.description == "second description"
    assert updated.last_updated_timestamp > created.last_updated_timestamp
    assert client.update_registered_model("churn").description is None  # MLflow: None clears it

    client.delete_registered_model("churn")
    e = error(client.get_registered_model, "churn")
    assert (e.error_code, e.message) == (NOT_FOUND, "Registered Model with name=churn not found")
    assert error(client.delete_registered_model, "churn").error_code == NOT_FOUND
    assert client.search_registered_models() == []
    again = client.create_registered_model("churn")  # the name is free again, with a new history
    assert again.tags == {} and client.create_model_version("churn", "/m").version == 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Missing value for required parameter 'name'."),
        ("  ", "Missing value for required parameter 'name'."),
        (None, "Missing value for required parameter 'name'."),
        ("a/b", "Invalid model name 'a/b'. Names cannot contain '/' or ':'."),
        ("a:b", "Invalid model name 'a:b'. Names cannot contain '/' or ':'."),
        ("..", "This name would resolve to '..'"),
        (".", "This name would resolve to '.'"),
    ],
)
def test_invalid_model_names_are_rejected(local: evtrack.EvtrackClient, name: Any, message: str) -> None:
    e = error(local.create_registered_model, name)
    assert e.error_code == INVALID and message in e.message


def test_registered_model_tags(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("m", tags={"a": "1"})
    local.set_registered_model_tag("m", "b", 2)
    local.set_registered_model_tag("m", "a", "overwritten")
    assert local.get_registered_model("m").tags == {"a": "overwritten", "b": "2"}
    local.delete_registered_model_tag("m", "a")
    local.delete_registered_model_tag("m", "never-set")  # as MLflow: nothing happens
    assert local.get_registered_model("m").tags == {"b": "2"}
    assert error(local.set_registered_model_tag, "m", "bad/../key", "x").error_code == INVALID
    too_long = error(local.set_registered_model_tag, "m", "k", "x" * 100_001)
    assert "exceeds the maximum length of 100000" in too_long.message
    local.set_registered_model_tag("m", "k", "x" * 100_000)
    assert error(local.set_registered_model_tag, "nope", "k", "v").error_code == NOT_FOUND


def test_rename_moves_versions_and_frees_the_old_name(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("old")
    local.create_model_version("old", "/m1")
    local.create_model_version("old", "/m2")
    local.set_registered_model_alias("old", "champion", 2)
    renamed = local.rename_registered_model("old", "new")
    assert renamed.name == "new" and renamed.aliases == {"champion": 2}
    assert [v.name for v in renamed.latest_versions] == ["new"]
    assert local.get_model_version("new", 1).source == "/m1"
    assert error(local.get_registered_model, "old").error_code == NOT_FOUND
    assert error(local.get_model_version, "old", 1).error_code == NOT_FOUND
    assert local.create_model_version("new", "/m3").version == 3  # numbering follows the model

    local.create_registered_model("old")  # the old name is free: a new model, versions from 1
    assert local.create_model_version("old", "/other").version == 1
    e = error(local.rename_registered_model, "new", "old")
    assert (e.error_code, e.message) == (EXISTS, "Registered Model (name=old) already exists.")
    assert local.rename_registered_model("new", "new").name == "new"  # to itself: nothing changes
    assert error(local.rename_registered_model, "new", "").message == "Missing value for required parameter 'new_name'."
    assert error(local.rename_registered_model, "ghost", "x").error_code == NOT_FOUND


def test_a_model_can_be_renamed_back_and_forth(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("a")
    local.rename_registered_model("a", "b")
    local.rename_registered_model("b", "a")
    local.rename_registered_model("a", "b")
    assert [m.name for m in local.search_registered_models()] == ["b"]
    local.create_registered_model("a")
    assert [m.name for m in local.search_registered_models()] == ["a", "b"]


# -- model versions ---------------------------------------------------------------------------


def test_create_and_get_model_versions(client: evtrack.EvtrackClient) -> None:
    client.create_registered_model("m")
    run_id = client.create_run("0").info.run_id
    mv = client.create_model_version(
        "m", "s3://bucket/model", run_id=run_id, tags={"k": "v"}, run_link="http://x/run", description="first"
    )
    assert (mv.name, mv.version, mv.current_stage, mv.status) == ("m", 1, "None", "READY")
    assert (mv.source, mv.run_id, mv.run_link, mv.description, mv.tags) == (
        "s3://bucket/model",
        run_id,
        "http://x/run",
        "first",
        {"k": "v"},
    )
    assert mv.user_id and mv.creation_timestamp == mv.last_updated_timestamp
    assert [client.create_model_version("m", f"/m{i}").version for i in range(2, 4)] == [2, 3]
    got = client.get_model_version("m", "1")  # versions may be given as strings, as MLflow's REST API does
    assert (got.version, got.source, got.run_id, got.tags, got.aliases) == (
        1,
        "s3://bucket/model",
        run_id,
        {"k": "v"},
        [],
    )
    assert client.get_model_version_download_uri("m", 1) == "s3://bucket/model"

    e = error(client.get_model_version, "m", 9)
    assert (e.error_code, e.message) == (NOT_FOUND, "Model Version (name=m, version=9) not found")
    assert error(client.get_model_version, "m", "abc").message == "Parameter 'version' must be an integer, got 'abc'."
    assert error(client.create_model_version, "ghost", "/m").error_code == NOT_FOUND
    assert client.create_model_version("m", "/m", tags={"k": None}).tags == {"k": "None"}  # str(), as MLflow
    assert error(client.create_model_version, "m", "/m", run_id=7).error_code == INVALID
    assert error(client.create_model_version, "m", "").error_code == INVALID

    updated = client.update_model_version("m", 1, description="better")
    assert updated.description == "better" and updated.last_updated_timestamp >= mv.last_updated_timestamp
    assert client.get_model_version("m", 1).description == "better"


def test_model_version_tags_by_version_and_by_stage(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("m")
    local.create_model_version("m", "/a", tags={"x": "1"})
    local.set_model_version_tag("m", 1, "y", 2)
    local.transition_model_version_stage("m", 1, "Staging")
    with pytest.warns(FutureWarning):
        local.set_model_version_tag("m", key="z", value="3", stage="staging")
    assert local.get_model_version("m", 1).tags == {"x": "1", "y": "2", "z": "3"}
    local.delete_model_version_tag("m", 1, "x")
    with pytest.warns(FutureWarning):
        local.delete_model_version_tag("m", key="y", stage="Staging")
    assert local.get_model_version("m", 1).tags == {"z": "3"}
    assert error(local.set_model_version_tag, "m", 1, None, "v").error_code == INVALID
    assert error(local.set_model_version_tag, "m", key="k", value="v").message == "version or stage must be set"
    assert error(local.set_model_version_tag, "m", 1, "k", "v", stage="Staging").message == (
        "version and stage cannot be set together"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert error(local.set_model_version_tag, "m", key="k", value="v", stage="Production").error_code == NOT_FOUND
    assert error(local.set_model_version_tag, "m", 7, "k", "v").error_code == NOT_FOUND


def test_stage_transitions_with_archive_existing_versions(client: evtrack.EvtrackClient) -> None:
    client.create_registered_model("m")
    for i in range(4):
        client.create_model_version("m", f"/v{i + 1}")
    assert client.transition_model_version_stage("m", 1, "production").current_stage == "Production"  # any case
    client.transition_model_version_stage("m", 2, "STAGING")
    client.transition_model_version_stage("m", 3, "Production")  # without archiving: two in Production
    assert {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")} == {
        1: "Production",
        2: "Staging",
        3: "Production",
        4: "None",
    }

    moved = client.transition_model_version_stage("m", 4, "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")} == {
        1: "Archived",
        2: "Staging",
        3: "Archived",
        4: "Production",
    }  # Staging untouched
    # MLflow's SQL store's order: each stage where its lowest-numbered version puts it, whatever was asked
    assert [(v.version, v.current_stage) for v in client.get_latest_versions("m", ["Production", "staging"])] == [
        (2, "Staging"),
        (4, "Production"),
    ]
    assert [(v.version, v.current_stage) for v in client.get_latest_versions("m")] == [
        (3, "Archived"),
        (2, "Staging"),
        (4, "Production"),
    ]
    assert [v.version for v in client.get_registered_model("m").latest_versions] == [3, 2, 4]

    e = error(client.transition_model_version_stage, "m", 1, "None", archive_existing_versions=True)
    assert e.error_code == INVALID and "is not an Active stage" in e.message
    e = error(client.transition_model_version_stage, "m", 1, "Deployed")
    assert e.message == (
        "Invalid Model Version stage: Deployed. Value must be one of None, Staging, Production, Archived."
    )
    assert error(client.get_latest_versions, "m", ["nope"]).error_code == INVALID


def test_deleted_versions_are_gone_from_latest_searches_and_aliases(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("m")
    for i in range(3):
        local.create_model_version("m", f"/v{i + 1}", tags={"i": str(i + 1)})
    local.transition_model_version_stage("m", 2, "Production")
    local.transition_model_version_stage("m", 3, "Production")
    local.set_registered_model_alias("m", "champion", 3)
    local.delete_model_version("m", 3)

    assert error(local.get_model_version, "m", 3).error_code == NOT_FOUND
    assert error(local.get_model_version_download_uri, "m", 3).error_code == NOT_FOUND
    assert error(local.delete_model_version, "m", 3).error_code == NOT_FOUND
    assert [v.version for v in local.get_latest_versions("m", ["Production"])] == [2]
    assert [v.version for v in local.search_model_versions("name = 'm'")] == [2, 1]
    assert local.search_model_versions("tags.i = '3'") == []
    assert local.get_registered_model("m").aliases == {}
    assert error(local.get_model_version_by_alias, "m", "champion").error_code == INVALID
    assert local.get_model_version_by_alias("m", "latest").version == 2
    assert local.create_model_version("m", "/v4").version == 4  # a deleted number is never reused


# -- aliases ----------------------------------------------------------------------------------


def test_aliases_point_move_and_disappear(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("m")
    for i in range(3):
        local.create_model_version("m", f"/v{i + 1}")
    local.set_registered_model_alias("m", "champion", 1)
    local.set_registered_model_alias("m", "challenger", "2")
    assert local.get_model_version_by_alias("m", "champion").version == 1
    assert local.get_model_version("m", 1).aliases == ["champion"]
    local.set_registered_model_alias("m", "champion", 3)  # the alias moves
    assert local.get_model_version_by_alias("m", "champion").version == 3
    assert local.get_model_version("m", 1).aliases == []
    assert local.get_model_version("m", 3).aliases == ["champion"]
    assert local.get_registered_model("m").aliases == {"challenger": 2, "champion": 3}
    local.set_registered_model_alias("m", "best", 3)
    assert sorted(local.get_model_version("m", 3).aliases) == ["best", "champion"]

    local.delete_registered_model_alias("m", "challenger")
    local.delete_registered_model_alias("m", "never")  # nothing happens, as MLflow
    assert local.get_registered_model("m").aliases == {"best": 3, "champion": 3}
    e = error(local.get_model_version_by_alias, "m", "challenger")
    assert (e.error_code, e.message) == (INVALID, "Registered model alias challenger not found.")
    assert local.get_model_version_by_alias("m", "LATEST").version == 3
    assert error(local.set_registered_model_alias, "m", "x", 9).error_code == NOT_FOUND
    assert error(local.set_registered_model_alias, "ghost", "x", 1).error_code == NOT_FOUND


@pytest.mark.parametrize(
    "alias, message",
    [
        ("latest", "'latest' alias name (case insensitive) is reserved."),
        ("LATEST", "'latest' alias name (case insensitive) is reserved."),
        ("Latest", "'latest' alias name (case insensitive) is reserved."),
        ("v1", "Version alias name 'v1' is reserved."),
        ("V23", "Version alias name 'V23' is reserved."),
        ("", "Registered model alias name cannot be empty."),
        ("a b", "Invalid alias name: 'a b'. Names may only contain alphanumerics, underscores (_), and dashes (-)."),
        ("a.b", "Invalid alias name: 'a.b'."),
        ("ok\n", "Invalid alias name"),
        ("x" * 256, "exceeds the maximum length of 255 characters"),
    ],
)
def test_reserved_and_invalid_alias_names_are_rejected(local: evtrack.EvtrackClient, alias: str, message: str) -> None:
    local.create_registered_model("m")
    local.create_model_version("m", "/v1")
    e = error(local.set_registered_model_alias, "m", alias, 1)
    assert e.error_code == INVALID and message in e.message
    assert local.get_registered_model("m").aliases == {}


def test_alias_names_mlflow_accepts(local: evtrack.EvtrackClient) -> None:
    local.create_registered_model("m")
    local.create_model_version("m", "/v1")
    for alias in ("v1a", "version1", "late-st", "Ünï_cödé", "x" * 255, "v"):
        local.set_registered_model_alias("m", alias, 1)
    assert len(local.get_registered_model("m").aliases) == 6


# -- searches ---------------------------------------------------------------------------------


def _registry_for_search(client: evtrack.EvtrackClient) -> None:
    for name, team in (("churn", "growth"), ("Churn-B", "growth"), ("fraud", "risk"), ("it's", "x")):
        client.create_registered_model(name, tags={"team": team})
        time.sleep(0.002)
    for name, source, run_id, tags in (
        ("fraud", "s3://b/fraud/1", "r1", {"k": "a"}),
        ("fraud", "s3://b/fraud/2", "r2", {"k": "b"}),
        ("churn", "/local/churn", "r1", None),
    ):
        client.create_model_version(name, source, run_id=run_id, tags=tags)
        time.sleep(0.002)  # distinct creation timestamps: the ordering assertions compare them


def test_search_registered_models(local: evtrack.EvtrackClient) -> None:
    _registry_for_search(local)

    def names(*args: Any, **kwargs: Any) -> list[str]:
        return [m.name for m in local.search_registered_models(*args, **kwargs)]

    assert names() == ["Churn-B", "churn", "fraud", "it's"]  # name ASC
    assert names("name = 'churn'") == ["churn"]
    assert names("name LIKE 'chu%'") == ["churn"]
    assert names("name ILIKE 'chu%'") == ["Churn-B", "churn"]
    assert names("name != 'churn'") == ["Churn-B", "fraud", "it's"]
    assert names("name IN ('fraud', 'it''s')") == ["fraud", "it's"]
    assert names("tags.team = 'growth' AND name LIKE '%B'") == ["Churn-B"]
    assert names("tag.team ILIKE 'RISK'") == ["fraud"]
    assert names("tags.missing = 'x'") == []
    assert names(order_by=["name DESC"]) == ["it's", "fraud", "churn", "Churn-B"]
    assert names(order_by=["last_updated_timestamp DESC"])[0] == "churn"  # its version came last
    assert names(order_by=["creation_timestamp ASC"]) == ["churn", "Churn-B", "fraud", "it's"]
    fraud = local.search_registered_models("name = 'fraud'")[0]
    assert [v.version for v in fraud.latest_versions] == [2] and fraud.tags == {"team": "risk"}

    first = local.search_registered_models(max_results=3)
    assert [m.name for m in first] == ["Churn-B", "churn", "fraud"] and first.token
    rest = local.search_registered_models(max_results=3, page_token=first.token)
    assert [m.name for m in rest] == ["it's"] and rest.token is None

    for bad in (
        "run_id = 'x'",
        "tags.team IS NULL",
        "name = churn",
        "name = 'a' OR name = 'b'",
        "params.x = 'y'",
        "name > 'a'",
    ):
        assert error(local.search_registered_models, bad).error_code == INVALID, bad
    assert error(local.search_registered_models, max_results=1001).error_code == INVALID
    assert error(local.search_registered_models, order_by=["name", "name DESC"]).message.startswith(
        "`order_by` contains duplicate fields"
    )
    assert error(local.search_registered_models, order_by=["tags.team"]).error_code == INVALID


def test_search_model_versions(local: evtrack.EvtrackClient) -> None:
    _registry_for_search(local)

    def found(*args: Any, **kwargs: Any) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in local.search_model_versions(*args, **kwargs)]

    assert found() == [("churn", 1), ("fraud", 2), ("fraud", 1)]  # last_updated DESC, name, version DESC
    assert found("name = 'fraud'") == [("fraud", 2), ("fraud", 1)]
    assert found("run_id = 'r1'", order_by=["name"]) == [("churn", 1), ("fraud", 1)]
    assert found("run_id IN ('r2', 'zz')") == [("fraud", 2)]
    assert found("name IN ('fraud') AND version_number > 1") == [("fraud", 2)]
    assert found("version_number = 1", order_by=["name DESC"]) == [("fraud", 1), ("churn", 1)]
    assert found("source_path LIKE 's3://%'", order_by=["version_number ASC"]) == [("fraud", 1), ("fraud", 2)]
    assert found("tags.k = 'b'") == [("fraud", 2)]
    assert found("attribute.name ILIKE 'FRAUD' AND tags.k != 'b'") == [("fraud", 1)]
    assert found(order_by=["creation_timestamp ASC"]) == [("fraud", 1), ("fraud", 2), ("churn", 1)]
    page = local.search_model_versions(max_results=2)
    assert len(page) == 2 and len(local.search_model_versions(max_results=2, page_token=page.token)) == 1

    for bad in (
        "version_number = 1.5",
        "version_number = '1'",
        "source_path IN ('a')",
        "tags.k IS NULL",
        "creation_timestamp > 0",
        "metrics.x > 1",
    ):
        assert error(local.search_model_versions, bad).error_code == INVALID, bad
    assert error(local.search_model_versions, max_results=0).error_code == INVALID
    assert error(local.search_model_versions, max_results=200_001).error_code == INVALID
    local.delete_registered_model("fraud")
    assert found() == [("churn", 1)]  # versions of a deleted model go with it


# -- sources, URIs and register_model -------------------------------------------------------------


def test_register_model_from_a_run(local: evtrack.EvtrackClient, capsys: Any) -> None:
    with evtrack.start_run() as run:
        evtrack.log_text("weights", "model/MLmodel")
    run_id = run.info.run_id
    mv = evtrack.register_model(f"runs:/{run_id}/model", "churn", tags={"stage": "dev"})
    assert (mv.name, mv.version, mv.run_id, mv.tags) == ("churn", 1, run_id, {"stage": "dev"})
    assert mv.source == f"{run.info.artifact_uri}/model"
    assert "Successfully registered model 'churn'." in capsys.readouterr().err
    again = evtrack.register_model(f"runs:/{run_id}/model", "churn")
    assert again.version == 2 and "already exists" in capsys.readouterr().err
    assert evtrack.register_model("/some/dir", "churn").source == "/some/dir"  # any other URI as it is
    assert isinstance(again, evtrack.ModelVersion)

    assert error(evtrack.register_model, "runs:/", "churn").error_code == INVALID
    unknown_run = "runs:/0123456789abcdef0123456789abcdef/model"
    assert error(evtrack.register_model, unknown_run, "churn").error_code == NOT_FOUND


def test_download_uris_resolve_runs_and_models_sources(local: evtrack.EvtrackClient) -> None:
    run = local.create_run("0")
    local.create_registered_model("m")
    local.create_model_version("m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert local.get_model_version("m", 1).source == f"runs:/{run.info.run_id}/model"  # kept as given
    assert local.get_model_version_download_uri("m", 1) == f"{run.info.artifact_uri}/model"
    local.set_registered_model_alias("m", "champion", 1)
    local.create_registered_model("copy")
    local.create_model_version("copy", "models:/m@champion")
    assert local.get_model_version_download_uri("copy", 1) == f"{run.info.artifact_uri}/model"
    assert error(local.create_model_version, "copy", "models:/m/9").error_code == NOT_FOUND
    # an unknown run is recorded as it is, as MLflow does
    local.create_model_version("m", "runs:/feedfeedfeedfeedfeedfeedfeedfeed/model")
    assert local.get_model_version_download_uri("m", 2) == "runs:/feedfeedfeedfeedfeedfeedfeedfeed/model"


# -- the log, compaction and SQL ------------------------------------------------------------------


def _populate(client: evtrack.EvtrackClient) -> None:
    client.create_registered_model("churn", tags={"team": "growth"}, description="churn model")
    for i in range(3):
        client.create_model_version("churn", f"/churn/{i + 1}", tags={"i": str(i + 1)})
    client.transition_model_version_stage("churn", 2, "Production")
    client.set_registered_model_alias("churn", "champion", 2)
    client.create_registered_model("gone")
    client.create_model_version("gone", "/gone/1")
    client.delete_registered_model("gone")
    client.delete_model_version("churn", 3)


def _sql_registry() -> dict[str, Any]:
    return {
        "models": sql("select name, description from registered_models order by name"),
        "versions": sql("select name, version, current_stage, source from model_versions order by version"),
        "aliases": sql("select * from registered_model_aliases"),
        "model_tags": sql("select * from registered_model_tags"),
        "version_tags": sql("select name, version, key, value from model_version_tags order by version"),
    }


EXPECTED_SQL = {
    "models": [{"name": "churn", "description": "churn model"}],
    "versions": [
        {"name": "churn", "version": 1, "current_stage": "None", "source": "/churn/1"},
        {"name": "churn", "version": 2, "current_stage": "Production", "source": "/churn/2"},
    ],
    "aliases": [{"name": "churn", "alias": "champion", "version": 2}],
    "model_tags": [{"name": "churn", "key": "team", "value": "growth"}],
    "version_tags": [
        {"name": "churn", "version": 1, "key": "i", "value": "1"},
        {"name": "churn", "version": 2, "key": "i", "value": "2"},
    ],
}


def test_registry_is_visible_to_sql_from_the_tail_and_after_compaction(
    client: evtrack.EvtrackClient, tracking_uri: str
) -> None:
    _populate(client)
    assert _sql_registry() == EXPECTED_SQL  # nothing compacted yet: all from the tail
    compact(tracking_uri)
    assert _sql_registry() == EXPECTED_SQL
    # tail events override the compacted rows
    client.transition_model_version_stage("churn", 1, "Staging")
    client.rename_registered_model("churn", "churn2")
    rows = sql("select name, version, current_stage from model_versions order by version")
    assert rows == [
        {"name": "churn2", "version": 1, "current_stage": "Staging"},
        {"name": "churn2", "version": 2, "current_stage": "Production"},
    ]
    assert client.get_model_version_by_alias("churn2", "champion").version == 2
    types = {r["type"] for r in sql("select type from events")}
    assert {"registered_model_created", "model_version_created", "model_version_stage_set"} <= types


def test_registry_survives_compaction_rebuild_and_gc(local: evtrack.EvtrackClient, local_uri: str) -> None:
    from compaction.gc import gc
    from compaction.rebuild import rebuild

    store = open_store(local_uri)
    _populate(local)
    compact(local_uri)
    local.set_model_version_tag("churn", 2, "late", "yes")  # a second compaction folds onto the tables
    compact(local_uri)
    incremental = _sql_registry()
    assert incremental["version_tags"][-1] == {"name": "churn", "version": 2, "key": "late", "value": "yes"}
    assert rebuild(store).commits == 1
    assert _sql_registry() == incremental
    report = gc(store, retention_s=0)
    assert report.manifests_deleted >= 1
    assert _sql_registry() == incremental
    fresh = evtrack.EvtrackClient(local_uri)
    assert fresh.get_registered_model("churn").aliases == {"champion": 2}
    assert [v.version for v in fresh.search_model_versions()] == [2, 1]
    assert error(fresh.get_registered_model, "gone").error_code == NOT_FOUND


def _registry_events(n_models: int = 3, seed: int = 0) -> list[ev.Event]:
    """A random history of registry events from two writers with colliding timestamps."""
    rng = random.Random(seed)
    out: list[ev.Event] = []
    counter = iter(range(1, 10_000))

    def eid() -> str:
        return f"{rng.choice('ab')}-{next(counter):010d}"

    for m in range(n_models):
        mid = f"model{m}"
        out.append(
            rev.RegisteredModelCreated(eid=eid(), ts=rng.randint(0, 5), model_id=mid, name=f"n{m}", tags={"t": str(m)})
        )
        for v in range(1, 4):
            out.append(
                rev.ModelVersionCreated(
                    eid=eid(), ts=rng.randint(0, 9), model_id=mid, version_number=v, source=f"/{m}/{v}", tags={"k": "0"}
                )
            )
            for _ in range(3):
                out.append(
                    rng.choice(
                        [
                            rev.ModelVersionStageSet(
                                eid=eid(),
                                ts=rng.randint(0, 9),
                                model_id=mid,
                                version_number=v,
                                stage=rng.choice(["Staging", "Production", "Archived"]),
                            ),
                            rev.ModelVersionTagSet(
                                eid=eid(),
                                ts=rng.randint(0, 9),
                                model_id=mid,
                                version_number=v,
                                key="k",
                                value=str(rng.random()),
                            ),
                            rev.ModelVersionTagDeleted(
                                eid=eid(), ts=rng.randint(0, 9), model_id=mid, version_number=v, key="k"
                            ),
                            rev.RegisteredModelAliasSet(
                                eid=eid(),
                                ts=rng.randint(0, 9),
                                model_id=mid,
                                alias=rng.choice(["a", "b"]),
                                version_number=v,
                            ),
                            rev.RegisteredModelRenamed(
                                eid=eid(), ts=rng.randint(0, 9), model_id=mid, name=f"n{m}-{rng.randint(0, 3)}"
                            ),
                            rev.ModelVersionDescriptionSet(
                                eid=eid(),
                                ts=rng.randint(0, 9),
                                model_id=mid,
                                version_number=v,
                                description=str(rng.random()),
                            ),
                        ]
                    )
                )
        if rng.random() < 0.5:
            out.append(rev.ModelVersionDeleted(eid=eid(), ts=rng.randint(0, 9), model_id=mid, version_number=2))
    out.append(rev.RegisteredModelDeleted(eid=eid(), ts=7, model_id="model0"))
    out.append(out[0])  # a repaired claim: the very same event twice
    return out


def _tables_of(state: State) -> dict[str, list[dict[str, Any]]]:
    return {name: table.to_pylist() for name, table in registry_tables(state).items()}


@pytest.mark.parametrize("seed", range(5))
def test_the_registry_fold_is_order_independent_and_survives_its_tables(seed: int) -> None:
    from evtrack.state.tables import load_state

    events = _registry_events(seed=seed)
    expected = _tables_of(fold(events))
    rng = random.Random(seed)
    for _ in range(5):
        shuffled = events[:]
        rng.shuffle(shuffled)
        cut = rng.randint(0, len(shuffled))
        assert _tables_of(fold(shuffled)) == expected  # any order
        first = fold(shuffled[:cut])  # fold, write tables, load them, fold the rest: the same
        reloaded = load_state(registry_tables(first), State())
        assert _tables_of(fold(shuffled[cut:], reloaded)) == expected


# -- claims: crashed writers are repaired ------------------------------------------------------


def test_a_version_claim_whose_writer_died_is_repaired(
    local: evtrack.EvtrackClient, local_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_plumbing, "REPAIR_WAIT_S", 0.0)
    local.create_registered_model("m")
    local.create_model_version("m", "/v1")
    model_id = local._registry().live_model_named("m").model_id
    # a writer claims version 2 and dies before its event is written
    ghost = rev.ModelVersionCreated(
        eid="dead-0000000001",
        ts=ev.now_ms(),
        model_id=model_id,
        version_number=0,
        source="/v2",
        user_id="ghost",
        tags={"from": "claim"},
    )
    wire = ev.to_wire(ghost)
    del wire["version_number"]
    assert claims.claim_version(open_store(local_uri), model_id, wire) == 2
    assert [v.version for v in local.search_model_versions()] == [1]  # not visible yet
    assert local.create_model_version("m", "/v3").version == 3  # no duplicate number…
    versions = {v.version: v for v in local.search_model_versions()}
    assert sorted(versions) == [1, 2, 3]  # …and no gap: the dead writer's version was written for it
    assert (versions[2].source, versions[2].user_id, versions[2].tags) == ("/v2", "ghost", {"from": "claim"})
    # a direct read repairs too
    claims.claim_version(open_store(local_uri), model_id, {**wire, "source": "/v4", "eid": "dead-0000000002"})
    assert local.get_model_version("m", 4).source == "/v4"


def test_a_name_claim_whose_writer_died_is_repaired(
    local: evtrack.EvtrackClient, local_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_plumbing, "REPAIR_WAIT_S", 0.0)
    created = rev.RegisteredModelCreated(
        eid="dead-0000000001",
        ts=ev.now_ms(),
        model_id="m" * 32,
        name="orphan",
        description="claimed, never written",
        tags={},
    )
    won, _ = claims.claim_name(open_store(local_uri), "orphan", 1, created)
    assert won
    e = error(local.create_registered_model, "orphan")  # the claim holds: the name is taken…
    assert e.error_code == EXISTS
    assert local.get_registered_model("orphan").description == "claimed, never written"  # …and visible
    local.delete_registered_model("orphan")
    assert local.create_registered_model("orphan").description is None  # the next generation


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_register_list_versions_transition_and_alias(local: evtrack.EvtrackClient, local_uri: str) -> None:
    from evtrack.cli import cli

    run = local.create_run("0")

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, ["models", *args, "--tracking-uri", local_uri], prog_name="evtrack")

    out = invoke("register", "-m", f"runs:/{run.info.run_id}/model", "-n", "churn", "--tag", "team=growth")
    assert out.exit_code == 0, out.output
    assert "Registered model 'churn' version 1" in out.output
    assert invoke("register", "-m", "/models/churn-v2", "-n", "churn").exit_code == 0
    out = invoke("transition", "-n", "churn", "-v", "1", "--stage", "production")
    assert out.exit_code == 0 and "is now in stage Production" in out.output
    out = invoke("transition", "-n", "churn", "-v", "2", "--stage", "Production", "--archive-existing")
    assert out.exit_code == 0, out.output
    assert invoke("alias", "-n", "churn", "-a", "champion", "-v", "2").exit_code == 0
    out = invoke("versions", "-n", "churn", "--format", "json")
    assert out.exit_code == 0, out.output
    import json

    rows = json.loads(out.output)
    assert [(r["version"], r["stage"], r["aliases"]) for r in rows] == [
        (2, "Production", ["champion"]),
        (1, "Archived", []),
    ]
    assert rows[1]["run_id"] == run.info.run_id
    out = invoke("list")
    assert out.exit_code == 0 and "churn" in out.output and "champion=2" in out.output
    assert json.loads(invoke("list", "--filter", "name = 'none'", "--format", "json").output) == []

    assert invoke("alias", "-n", "churn", "-a", "champion", "--delete").exit_code == 0
    assert local.get_registered_model("churn").aliases == {}
    bad = invoke("alias", "-n", "churn", "-a", "latest", "-v", "1")
    assert bad.exit_code == 1 and "reserved" in bad.output
    assert invoke("alias", "-n", "churn", "-a", "x").exit_code == 2  # neither -v nor --delete
    missing = invoke("versions", "-n", "ghost")
    assert missing.exit_code == 1 and "Registered Model with name=ghost not found" in missing.output


def test_cli_as_a_real_subprocess(local: evtrack.EvtrackClient, local_uri: str) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    local.create_registered_model("churn", description="from the API")
    local.create_model_version("churn", "/m/1")
    script = Path(sys.executable).with_name("evtrack")  # the installed console script
    proc = subprocess.run(
        [str(script), "models", "list", "--format", "json", "--tracking-uri", local_uri],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {
            "name": "churn",
            "latest_version": 1,
            "aliases": {},
            "last_updated": local.get_registered_model("churn").last_updated_timestamp,
            "description": "from the API",
        }
    ]
