"""Authentication and request limits of the tracking server, over real HTTP."""

from __future__ import annotations

import base64

import httpx
import pytest

from evtrack.server.auth import AuthConfigError, Authenticator, hash_secret

SEARCH = "/api/2.0/mlflow/experiments/search"
CREATE = "/api/2.0/mlflow/experiments/create"


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def auth_file(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(f"""
users:
  - name: alice
    password: "{hash_secret("alice-pw", iterations=1000)}"
    role: read-write
  - {{name: viewer, password: "viewer-pw", role: read-only}}
tokens:
  - {{name: ci-bot, token: "sha256:{__import__("hashlib").sha256(b"tok-123").hexdigest()}", role: read-write}}
""")
    return str(path)


@pytest.fixture
def secured(server_factory, auth_file):
    return server_factory(auth_file=auth_file)


def test_without_credentials_every_api_call_is_401_with_a_basic_challenge(secured) -> None:
    response = httpx.post(secured.url + SEARCH, json={})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"] == 'Basic realm="evtrack"'
    assert httpx.get(secured.url + "/experiments").status_code == 401  # the UI too


def test_health_and_version_stay_public(secured) -> None:
    assert httpx.get(secured.url + "/health").text == "OK"
    assert httpx.get(secured.url + "/version").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        basic("alice", "wrong"),
        basic("nobody", "alice-pw"),
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Digest whatever"},
    ],
)
def test_wrong_credentials_are_401(secured, headers) -> None:
    assert httpx.post(secured.url + SEARCH, json={}, headers=headers).status_code == 401


def test_read_only_user_reads_but_cannot_write(secured) -> None:
    viewer = basic("viewer", "viewer-pw")
    assert httpx.post(secured.url + SEARCH, json={}, headers=viewer).status_code == 200
    refused = httpx.post(secured.url + CREATE, json={"name": "nope"}, headers=viewer)
    assert refused.status_code == 403
    assert refused.json() == {"error_code": "PERMISSION_DENIED", "message": "User 'viewer' has read-only access"}
    names = [e["name"] for e in httpx.post(secured.url + SEARCH, json={}, headers=viewer).json().get("experiments", [])]
    assert "nope" not in names


def test_read_write_user_and_bearer_token_can_write(secured) -> None:
    created = httpx.post(secured.url + CREATE, json={"name": "by-alice"}, headers=basic("alice", "alice-pw"))
    assert created.status_code == 200, created.text
    by_token = httpx.post(secured.url + CREATE, json={"name": "by-bot"}, headers={"Authorization": "Bearer tok-123"})
    assert by_token.status_code == 200, by_token.text
    names = {
        e["name"]
        for e in httpx.post(secured.url + SEARCH, json={}, headers=basic("viewer", "viewer-pw")).json()["experiments"]
    }
    assert {"by-alice", "by-bot"} <= names


def test_mlflow_client_authenticates_with_its_own_variables(secured, monkeypatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-pw")
    client = mlflow.MlflowClient(secured.url)
    experiment_id = client.create_experiment("from-mlflow")
    assert client.get_experiment(experiment_id).name == "from-mlflow"
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    assert mlflow.MlflowClient(secured.url).get_experiment_by_name("from-mlflow").experiment_id == experiment_id


def test_users_from_the_environment(server_factory, monkeypatch) -> None:
    monkeypatch.setenv("EVTRACK_AUTH_USERS", "ann:rw:pa:ss:word bob:ro:b")
    server = server_factory()
    assert httpx.post(server.url + CREATE, json={"name": "e"}, headers=basic("ann", "pa:ss:word")).status_code == 200
    assert httpx.post(server.url + CREATE, json={"name": "f"}, headers=basic("bob", "b")).status_code == 403


@pytest.mark.parametrize(
    "text, message",
    [
        ("users: [{name: a, role: rw}]", "needs 'name', 'password' and 'role'"),
        ("users: [{name: a, password: p, role: admin}]", "unknown role 'admin'"),
        ("people: []", "must be a mapping with 'users' and/or 'tokens'"),
        ("users: [unclosed", "is not valid YAML"),
    ],
)
def test_a_bad_auth_file_is_one_clear_error(tmp_path, text, message) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(AuthConfigError, match=message):
        Authenticator.load(str(path))


def test_a_bad_users_variable_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("EVTRACK_AUTH_USERS", "justaname")
    with pytest.raises(AuthConfigError, match="EVTRACK_AUTH_USERS: entry 'justaname' must be name:role:secret"):
        Authenticator.load()


def test_request_bodies_over_the_limit_are_413(server_factory) -> None:
    server = server_factory(max_request_bytes=4096)
    response = httpx.post(server.url + CREATE, json={"name": "x" * 10_000})
    assert response.status_code == 413
    assert "over the limit of 4,096 bytes" in response.json()["message"]
    assert httpx.post(server.url + CREATE, json={"name": "small"}).status_code == 200


def test_a_body_that_is_not_json_is_refused(evtrack_server) -> None:
    # a cross-site HTML form can post text/plain or urlencoded, never application/json
    response = httpx.post(
        evtrack_server.url + CREATE, content=b'{"name": "csrf"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert "application/json" in response.json()["message"]
