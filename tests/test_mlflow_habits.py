"""``import evtrack as mlflow`` keeps MLflow's habits (issue 14): settings, refused database URIs,
the top-level calls MLflow users reach for."""

from __future__ import annotations

from typing import Any

import pytest

import evtrack


def test_mlflow_tracking_uri_and_experiment_are_honoured(tmp_path: Any, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "team-store"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-exp")
    assert evtrack.get_tracking_uri() == str(tmp_path / "team-store") and evtrack.is_tracking_uri_set()
    with evtrack.start_run() as run:
        evtrack.log_metric("m", 1.0)
    assert evtrack.get_experiment(run.info.experiment_id).name == "team-exp"
    monkeypatch.setenv("EVTRACK_TRACKING_URI", str(tmp_path / "own"))  # evtrack's own name wins
    assert evtrack.get_tracking_uri() == str(tmp_path / "own")


def test_evtrack_uri_forms_are_accepted(tmp_path: Any, fresh_evtrack: None) -> None:
    evtrack.set_tracking_uri(f"evtrack://{tmp_path}/s")
    assert evtrack.get_tracking_uri() == f"{tmp_path}/s"


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "postgresql://u@h/db", "mysql+pymysql://h/db", "mssql://h/db"])
def test_database_uris_are_refused_at_once(fresh_evtrack: None, uri: str) -> None:
    with pytest.raises(evtrack.MlflowException, match="evtrack import") as info:
        evtrack.set_tracking_uri(uri)
    assert "does not keep runs in a database" in str(info.value)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_database_uri_from_the_environment_names_the_variable(fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    with pytest.raises(evtrack.MlflowException, match=r"\$MLFLOW_TRACKING_URI"):
        evtrack.get_tracking_uri()


def test_restore_parent_and_experiment_tag_calls(tracking_uri: str) -> None:
    exp = evtrack.create_experiment("habits")
    evtrack.set_experiment(experiment_id=exp)
    evtrack.set_experiment_tag("team", "fares")
    evtrack.delete_experiment_tag("team")
    assert "team" not in evtrack.get_experiment(exp).tags
    with evtrack.start_run() as parent:
        with evtrack.start_run(nested=True) as child:
            pass
    assert evtrack.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert evtrack.get_parent_run(parent.info.run_id) is None
    evtrack.delete_run(child.info.run_id)
    evtrack.restore_run(child.info.run_id)
    assert evtrack.get_run(child.info.run_id).info.lifecycle_stage == "active"
    evtrack.delete_experiment(exp)
    evtrack.restore_experiment(exp)
    assert evtrack.get_experiment(exp).lifecycle_stage == "active"
    assert evtrack.flush_async_logging().durable


def test_registry_calls_and_registry_uri(tracking_uri: str, tmp_path: Any) -> None:
    client = evtrack.MlflowClient()
    client.create_registered_model("a")
    client.create_model_version("a", str(tmp_path))
    evtrack.set_model_version_tag("a", "1", "ok", "yes")
    assert [m.name for m in evtrack.search_registered_models()] == ["a"]
    assert [v.tags for v in evtrack.search_model_versions(filter_string="name='a'")] == [{"ok": "yes"}]
    assert evtrack.get_registry_uri() == evtrack.get_tracking_uri()
    evtrack.set_registry_uri(str(tmp_path / "registry"))
    assert evtrack.get_registry_uri() == str(tmp_path / "registry")
    assert evtrack.get_tracking_uri() == tracking_uri  # unchanged
    assert evtrack.search_registered_models() == []
