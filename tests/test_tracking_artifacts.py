"""Artifacts: upload, list, download, the artifact_logged record, and paths that try to escape."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import evtrack
from evtrack import FileInfo
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.state.fold import fold
from evtrack.store import open_store


@pytest.fixture
def run(tracking_uri: str) -> Any:
    active = evtrack.start_run()
    yield active
    evtrack.end_run()


@pytest.fixture
def client(tracking_uri: str) -> evtrack.EvtrackClient:
    return evtrack.EvtrackClient(tracking_uri)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _run_prefix(run: Any, store_uri: str) -> str:
    """The run's artifact root as a key prefix of the tracking store."""
    root = run.info.artifact_uri
    base = open_store(store_uri).uri
    assert root.startswith(base + "/")
    return root[len(base) + 1 :] + "/"


def _store_keys(store_uri: str) -> list[str]:
    return [i.key for i in open_store(store_uri).list("")]


def test_log_artifact_with_and_without_artifact_path(
    run: Any, client: evtrack.EvtrackClient, tracking_uri: str, tmp_path: Path, inbox: Any
) -> None:
    model = tmp_path / "lin_reg.bin"
    model.write_bytes(b"\x00\x01weights" * 100)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    evtrack.log_artifact(model, artifact_path="models")
    evtrack.log_artifact(str(notes))
    run_id = run.info.run_id

    assert client.list_artifacts(run_id) == [FileInfo("models", True, None), FileInfo("notes.txt", False, 5)]
    assert client.list_artifacts(run_id, "models") == [FileInfo("models/lin_reg.bin", False, 900)]
    assert client.list_artifacts(run_id, "models/lin_reg.bin") == []  # a file, not a directory
    prefix = _run_prefix(run, tracking_uri)
    assert open_store(tracking_uri).get(prefix + "models/lin_reg.bin") == model.read_bytes()

    assert evtrack.flush().durable
    recorded = fold(inbox(tracking_uri)).artifacts[run_id]
    assert {p: (a.size, a.digest) for p, a in recorded.items()} == {
        "models/lin_reg.bin": (900, _sha256(model.read_bytes())),
        "notes.txt": (5, _sha256(b"hello")),
    }
    with pytest.raises(InvalidParameterError, match="is not a file"):
        evtrack.log_artifact(tmp_path / "missing.bin")


def test_log_artifacts_keeps_nested_directories(
    run: Any, client: evtrack.EvtrackClient, tmp_path: Path, tracking_uri: str, inbox: Any
) -> None:
    src = tmp_path / "out"
    (src / "plots" / "deep").mkdir(parents=True)
    (src / "summary.json").write_text('{"ok": true}')
    (src / "plots" / "loss.png").write_bytes(b"png" * 10)
    (src / "plots" / "deep" / "x.csv").write_text("a,b\n1,2\n")
    run_id = run.info.run_id
    evtrack.log_artifacts(src)
    evtrack.log_artifacts(src / "plots", artifact_path="copy/of/plots")

    assert client.list_artifacts(run_id) == [
        FileInfo("copy", True, None),
        FileInfo("plots", True, None),
        FileInfo("summary.json", False, 12),
    ]
    assert client.list_artifacts(run_id, "plots") == [
        FileInfo("plots/deep", True, None),
        FileInfo("plots/loss.png", False, 30),
    ]
    assert client.list_artifacts(run_id, "copy/of/plots/deep") == [FileInfo("copy/of/plots/deep/x.csv", False, 8)]
    assert client.list_artifacts(run_id, "nothing-here") == []
    assert evtrack.flush().durable
    assert sorted(fold(inbox(tracking_uri)).artifacts[run_id]) == [
        "copy/of/plots/deep/x.csv",
        "copy/of/plots/loss.png",
        "plots/deep/x.csv",
        "plots/loss.png",
        "summary.json",
    ]
    with pytest.raises(InvalidParameterError, match="is not a directory"):
        evtrack.log_artifacts(src / "summary.json")


def test_log_text_and_log_dict(run: Any, client: evtrack.EvtrackClient, tmp_path: Path) -> None:
    features = {"features": ["trip_distance", "PU_DO"], "n": 2, "nested": {"a": [1, 2]}}
    evtrack.log_text("ünïcode text\n", "notes/readme.txt")
    evtrack.log_dict(features, "features.json")
    evtrack.log_dict(features, "config/features.yaml")
    evtrack.log_dict(features, "features.yml")
    run_id = run.info.run_id

    out = Path(client.download_artifacts(run_id, "", str(tmp_path / "all")))
    assert (out / "notes" / "readme.txt").read_text(encoding="utf-8") == "ünïcode text\n"
    assert json.loads((out / "features.json").read_text()) == features
    assert yaml.safe_load((out / "config" / "features.yaml").read_text()) == features
    assert yaml.safe_load((out / "features.yml").read_text()) == features
    assert not (out / "features.yml").read_text().lstrip().startswith("{")  # YAML, not JSON
    with pytest.raises(InvalidParameterError, match="must name a file"):
        evtrack.log_text("x", "")


def test_download_artifacts_file_and_directory(run: Any, client: evtrack.EvtrackClient, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    evtrack.log_artifacts(src, artifact_path="data")
    run_id = run.info.run_id

    one = client.download_artifacts(run_id, "data/sub/b.txt", str(tmp_path / "one"))
    assert Path(one) == tmp_path / "one" / "b.txt" and Path(one).read_text() == "B"
    folder = Path(client.download_artifacts(run_id, "data", str(tmp_path / "dir")))
    assert folder == tmp_path / "dir" / "data"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == ["a.txt", "sub/b.txt"]
    default_dst = Path(client.download_artifacts(run_id, "data/a.txt"))  # a fresh temp directory
    assert default_dst.read_text() == "A"
    with pytest.raises(ResourceNotFoundError, match="No artifact at 'data/missing'"):
        client.download_artifacts(run_id, "data/missing", str(tmp_path / "none"))


def test_get_artifact_uri(run: Any, client: evtrack.EvtrackClient, tracking_uri: str) -> None:
    run_id = run.info.run_id
    expected_root = f"{open_store(tracking_uri).uri}/artifacts/0/{run_id}/artifacts"
    assert evtrack.get_artifact_uri() == expected_root == run.info.artifact_uri
    assert evtrack.get_artifact_uri("models/m.bin") == expected_root + "/models/m.bin"
    assert client.get_artifact_uri(run_id, "a/b") == expected_root + "/a/b"
    with pytest.raises(InvalidParameterError, match="Invalid artifact path"):
        evtrack.get_artifact_uri("../other-run")


def test_artifacts_of_another_experiment_live_under_its_location(
    tracking_uri: str, client: evtrack.EvtrackClient, tmp_path: Path
) -> None:
    exp_id = evtrack.create_experiment("arts")
    with evtrack.start_run(experiment_id=exp_id) as run:
        evtrack.log_text("x", "x.txt")
    assert run.info.artifact_uri == f"{open_store(tracking_uri).uri}/artifacts/{exp_id}/{run.info.run_id}/artifacts"
    assert client.list_artifacts(run.info.run_id) == [FileInfo("x.txt", False, 1)]


def test_logging_artifacts_to_a_deleted_run_is_rejected(tracking_uri: str, client: evtrack.EvtrackClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    with pytest.raises(evtrack.InvalidStateError, match="must be in the 'active' state"):
        client.log_text(run_id, "x", "x.txt")
    client.restore_run(run_id)
    client.log_text(run_id, "x", "x.txt")
    assert client.list_artifacts(run_id) == [FileInfo("x.txt", False, 1)]


# -- path traversal ----------------------------------------------------------------------------

ESCAPES = [
    "../x",
    "/abs",
    "a/../../b",
    "..",
    "a/..",
    "ok/../../../etc/passwd",
    "C:/windows",
    "s3://bucket/key",
    "back\\slash",
    "nul\x00byte",
]


@pytest.mark.parametrize("bad", ESCAPES)
def test_paths_that_escape_the_run_are_refused(
    bad: str, run: Any, client: evtrack.EvtrackClient, tracking_uri: str, tmp_path: Path, inbox: Any
) -> None:
    f = tmp_path / "payload.txt"
    f.write_text("payload")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "inner.txt").write_text("inner")
    before = _store_keys(tracking_uri)
    run_id = run.info.run_id
    attempts = [
        lambda: evtrack.log_artifact(f, artifact_path=bad),
        lambda: evtrack.log_artifacts(d, artifact_path=bad),
        lambda: evtrack.log_text("t", bad),
        lambda: evtrack.log_dict({"a": 1}, bad),
        lambda: client.list_artifacts(run_id, bad),
        lambda: client.download_artifacts(run_id, bad, str(tmp_path / "dl")),
        lambda: client.get_artifact_uri(run_id, bad),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidParameterError, match=r"Invalid artifact path: .*(not allowed|must be relative)"):
            attempt()
    assert evtrack.flush().durable
    new = set(_store_keys(tracking_uri)) - set(before)
    prefix = _run_prefix(run, tracking_uri)
    assert all(k.startswith(("events/", prefix)) for k in new), new
    assert not any(k.startswith(prefix) for k in new)  # nothing was written at all
    assert run_id not in fold(inbox(tracking_uri)).artifacts
    assert not (tmp_path / "dl").exists()
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and "store" not in p.parts and "spool" not in p.parts]
    assert sorted(p.name for p in outside) == ["inner.txt", "payload.txt"]


def test_harmless_dots_and_slashes_are_normalized(run: Any, client: evtrack.EvtrackClient, tmp_path: Path) -> None:
    evtrack.log_text("x", "./a//b/./c.txt")
    evtrack.log_text("y", "dots..are..fine.txt")
    assert client.list_artifacts(run.info.run_id, "a/b") == [FileInfo("a/b/c.txt", False, 1)]
    assert FileInfo("dots..are..fine.txt", False, 1) in client.list_artifacts(run.info.run_id)
