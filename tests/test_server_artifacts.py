"""Artifacts through the tracking server: ``artifacts/list`` and MLflow's proxied artifact
service, exercised with MLflow's own client and raw HTTP against a real server."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest

import evtrack

mlflow = pytest.importorskip("mlflow")
requests = pytest.importorskip("requests")

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def logged_run(mlflow_client, tmp_path):
    """A run with ``notes.txt`` at the root and a ``data/`` directory (with a sub-directory)."""
    (tmp_path / "notes.txt").write_text("hello artifacts")
    data = tmp_path / "data"
    (data / "deep").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(data), artifact_path="data")
    return run


def test_logged_files_list_and_download_through_mlflow(mlflow_client, logged_run, tmp_path) -> None:
    run_id = logged_run.info.run_id
    assert logged_run.info.artifact_uri == f"mlflow-artifacts:/0/{run_id}/artifacts"
    root = mlflow_client.list_artifacts(run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in root] == [("data", True, None), ("notes.txt", False, 15)]
    sub = mlflow_client.list_artifacts(run_id, "data")
    assert [(f.path, f.is_dir) for f in sub] == [("data/a.csv", False), ("data/deep", True)]
    assert mlflow_client.list_artifacts(run_id, "notes.txt") == []  # a file lists nothing

    dst = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (dst / "notes.txt").read_text() == "hello artifacts"
    assert (dst / "data" / "deep" / "b.bin").read_bytes() == bytes(range(256)) * 40
    one = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/data/a.csv", dst_path=str(tmp_path / "one"))
    assert Path(one).read_text() == "x,y\n1,2\n"


def test_uploads_are_recorded_by_evtrack_with_size_and_digest(evtrack_server, logged_run) -> None:
    run_id = logged_run.info.run_id
    client = evtrack.EvtrackClient(evtrack_server.store_uri)
    assert [f.path for f in client.list_artifacts(run_id, "data/deep")] == ["data/deep/b.bin"]
    local = Path(client.download_artifacts(run_id, "notes.txt"))
    assert local.read_text() == "hello artifacts"

    evtrack.set_tracking_uri(evtrack_server.store_uri)
    rows = evtrack.sql("SELECT path, size, digest FROM artifacts WHERE run_id = ? ORDER BY path", [run_id]).to_pylist()
    payload = bytes(range(256)) * 40
    assert rows == [
        {"path": "data/a.csv", "size": 8, "digest": "sha256:" + hashlib.sha256(b"x,y\n1,2\n").hexdigest()},
        {"path": "data/deep/b.bin", "size": len(payload), "digest": "sha256:" + hashlib.sha256(payload).hexdigest()},
        {"path": "notes.txt", "size": 15, "digest": "sha256:" + hashlib.sha256(b"hello artifacts").hexdigest()},
    ]


def test_artifacts_list_endpoint_json(evtrack_server, logged_run) -> None:
    run_id = logged_run.info.run_id
    url = f"{evtrack_server.url}/api/2.0/mlflow/artifacts/list"
    body = httpx.get(url, params={"run_id": run_id, "path": "data"}).json()
    assert body == {
        "root_uri": f"mlflow-artifacts:/0/{run_id}/artifacts",
        "files": [{"path": "data/a.csv", "is_dir": False, "file_size": 8}, {"path": "data/deep", "is_dir": True}],
    }
    assert httpx.get(url, params={"run_uuid": run_id, "path": "nothing-here"}).json() == {
        "root_uri": f"mlflow-artifacts:/0/{run_id}/artifacts"
    }
    refused = httpx.get(url, params={"run_id": run_id, "path": "../other"})
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = httpx.get(url, params={"run_id": "0" * 32})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_proxied_download_listing_and_delete_over_http(evtrack_server, logged_run) -> None:
    base = f"{evtrack_server.url}{PROXY}/0/{logged_run.info.run_id}/artifacts"
    response = httpx.get(f"{base}/notes.txt")
    assert response.status_code == 200 and response.content == b"hello artifacts"
    assert response.headers["content-disposition"].startswith("attachment")
    listing = httpx.get(evtrack_server.url + PROXY, params={"path": f"0/{logged_run.info.run_id}/artifacts/data"})
    assert listing.json() == {
        "files": [{"path": "a.csv", "is_dir": False, "file_size": 8}, {"path": "deep", "is_dir": True}]
    }
    assert httpx.get(f"{base}/data").status_code == 400  # a directory is not a file
    gone = httpx.get(f"{base}/no-such-file")
    assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    assert httpx.delete(f"{base}/data/deep").json() == {}
    client = evtrack.EvtrackClient(evtrack_server.store_uri)
    assert [f.path for f in client.list_artifacts(logged_run.info.run_id, "data")] == ["data/a.csv"]


def test_deletes_through_mlflow_are_events_the_views_agree_with(evtrack_server, logged_run, tmp_path) -> None:
    from compaction import compact
    from mlflow.artifacts import download_artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    run_id = logged_run.info.run_id
    repo = get_artifact_repository(logged_run.info.artifact_uri)
    repo.delete_artifacts("data/deep")  # MLflow's own client: an HTTP DELETE of the proxied path
    repo.delete_artifacts("notes.txt")
    evtrack.set_tracking_uri(evtrack_server.store_uri)

    def views() -> list[str]:
        rows = evtrack.sql("SELECT path FROM artifacts WHERE run_id = ? ORDER BY path", [run_id]).to_pylist()
        return [r["path"] for r in rows]

    assert views() == ["data/a.csv"]  # from the tail, before compaction
    compact(evtrack.EvtrackClient(evtrack_server.store_uri).store)
    assert views() == ["data/a.csv"]  # and from the tables after it
    recorded = evtrack.sql(
        "SELECT json_extract_string(body, '$.path') AS path FROM events "
        "WHERE type = 'artifact_deleted' AND run_id = ? ORDER BY path",
        [run_id],
    ).to_pylist()
    assert recorded == [{"path": "data/deep/b.bin"}, {"path": "notes.txt"}]  # one event per deleted file
    dst = Path(download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file()) == ["data/a.csv"]
    assert [f.path for f in evtrack.EvtrackClient(evtrack_server.store_uri).list_artifacts(run_id, "data")] == [
        "data/a.csv"
    ]

    (tmp_path / "notes.txt").write_text("back again")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(tmp_path / "notes.txt"))  # a newer upload brings the path back
    assert views() == ["data/a.csv", "notes.txt"]


@pytest.mark.parametrize(
    "path",
    [
        "0/{run}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
        "0/{run}/artifacts/a/%2E%2E/%2E%2E/%2E%2E/x",
        "0/{run}/artifacts/a%5Cb",
        "%2Fetc%2Fpasswd",
        "0/{run}/artifacts/%2E/x",
    ],
)
def test_traversal_is_refused(evtrack_server, logged_run, path) -> None:
    url = f"{evtrack_server.url}{PROXY}/{path.format(run=logged_run.info.run_id)}"
    for response in (httpx.get(url), httpx.put(url, content=b"x"), httpx.delete(url)):
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listing = httpx.get(evtrack_server.url + PROXY, params={"path": f"0/{logged_run.info.run_id}/../.."})
    assert listing.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "1/{run}/artifacts/x.txt",  # the run is in experiment 0
        "0/{other}/artifacts/x.txt",  # no such run
        "0/{run}/not-artifacts/x.txt",  # outside the run's artifacts
        "0/models/m-{other}/artifacts/x.txt",  # no such logged model
        "0/x.txt",
    ],
)
def test_paths_naming_no_run_artifacts_are_404(evtrack_server, logged_run, path) -> None:
    url = f"{evtrack_server.url}{PROXY}/{path.format(run=logged_run.info.run_id, other='f' * 32)}"
    response = httpx.put(url, content=b"data")
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert httpx.get(url).status_code == 404


def test_upload_over_the_size_limit_is_413_and_stores_nothing(server_factory, monkeypatch, tmp_path) -> None:
    server = server_factory(max_artifact_bytes=1000)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    try:
        (tmp_path / "small.txt").write_bytes(b"s" * 1000)
        (tmp_path / "big.bin").write_bytes(b"b" * 1001)
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(tmp_path / "small.txt"))
            with pytest.raises(requests.HTTPError, match="413") as refused:
                mlflow.log_artifact(str(tmp_path / "big.bin"))
            assert refused.value.response.json()["error_code"] == "BAD_REQUEST"
    finally:
        mlflow.set_tracking_uri(None)
    url = f"{server.url}{PROXY}/0/{run.info.run_id}/artifacts/streamed.bin"

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(3):
            yield b"z" * 600

    response = httpx.put(url, content=chunks())
    assert response.status_code == 413
    assert "limit of 1,000 bytes" in response.json()["message"]
    client = evtrack.EvtrackClient(server.store_uri)
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["small.txt"]


def test_writes_need_the_read_write_role(server_factory, tmp_path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n  - {name: alice, password: a-pw, role: read-write}\n"
        "  - {name: viewer, password: v-pw, role: read-only}\n"
    )
    server = server_factory(auth_file=str(users))
    run = evtrack.EvtrackClient(server.store_uri).create_run("0")
    url = f"{server.url}{PROXY}/0/{run.info.run_id}/artifacts/f.txt"
    assert httpx.put(url, content=b"x").status_code == 401
    denied = httpx.put(url, content=b"x", headers=basic("viewer", "v-pw"))
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"
    assert httpx.put(url, content=b"x", headers=basic("alice", "a-pw")).status_code == 200
    assert httpx.get(url, headers=basic("viewer", "v-pw")).content == b"x"
    assert httpx.delete(url, headers=basic("viewer", "v-pw")).status_code == 403


def test_proxied_routes_are_absent_without_serve_artifacts(server_factory) -> None:
    server = server_factory(serve_artifacts=False)
    run = evtrack.EvtrackClient(server.store_uri).create_run("0")
    assert httpx.put(f"{server.url}{PROXY}/0/{run.info.run_id}/artifacts/f.txt", content=b"x").status_code == 404
    listed = httpx.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id}).json()
    assert not listed["root_uri"].startswith("mlflow-artifacts:")


def test_proxied_artifacts_on_an_s3_store(server_factory, s3_uri, monkeypatch, tmp_path) -> None:
    server = server_factory(tracking_uri=s3_uri)
    run = evtrack.EvtrackClient(server.store_uri).create_run("0")
    url = f"{server.url}{PROXY}/0/{run.info.run_id}/artifacts/dir/model.bin"
    payload = b"\x00\x01" * 5000
    assert httpx.put(url, content=payload).status_code == 200
    assert httpx.get(url).content == payload
    client = evtrack.EvtrackClient(server.store_uri)
    assert [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "dir")] == [
        ("dir/model.bin", len(payload))
    ]
