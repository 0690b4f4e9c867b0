"""The model registry over REST, differentially: one sequence of registry calls (models, versions,
tags, aliases, stage transitions, renames, searches with filters, ordering and paging) sent alike
to ``mlflow server`` (sqlite) and ``evtrack server``, both real subprocesses, and every answer
compared whole (times, users and page-token texts left out: they differ by nature)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.rest_servers import Served, mlflow_and_evtrack, normal

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.timeout(300)

API = "/api/2.0/mlflow"
R = "{run}"


def _without_tokens(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<token>" if k == "next_page_token" else _without_tokens(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_tokens(v) for v in value]
    return value


def _step(server: Served, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = server.call(method, API + path, body)
    try:
        data = response.json()
    except ValueError:
        data = response.text
    if method == "POST" and path == "/experiments/create" and response.status_code == 200:
        server.ids["exp"] = data["experiment_id"]
    if method == "POST" and path == "/runs/create" and response.status_code == 200:
        server.ids["run"] = data["run"]["info"]["run_id"]
    return response.status_code, _without_tokens(normal(server, data))


def _page_token(server: Served, method: str, path: str, body: Any) -> None:
    """Keep the page token of a search for the next step ("{token}")."""
    data = server.call(method, API + path, body).json()
    server.ids["token"] = data.get("next_page_token", "")


SOURCE = "runs:/{run}/model"
# (method, path under /api/2.0/mlflow, body or query), in order
SEQUENCE: list[tuple[str, str, Any]] = [
    ("POST", "/experiments/create", {"name": "registry-diff"}),
    ("POST", "/runs/create", {"experiment_id": "{exp}", "run_name": "producer", "start_time": 1000}),
    (
        "POST",
        "/registered-models/create",
        {"name": "alpha", "description": "first", "tags": [{"key": "team", "value": "a"}]},
    ),
    ("POST", "/registered-models/create", {"name": "beta"}),
    ("POST", "/registered-models/create", {"name": "alphabet", "tags": [{"key": "team", "value": "b"}]}),
    ("POST", "/registered-models/create", {"name": "alpha"}),
    ("POST", "/model-versions/create", {"name": "alpha", "source": SOURCE, "run_id": R, "description": "v1"}),
    (
        "POST",
        "/model-versions/create",
        {"name": "alpha", "source": SOURCE, "run_id": R, "tags": [{"key": "k", "value": "v"}]},
    ),
    ("POST", "/model-versions/create", {"name": "beta", "source": SOURCE, "run_id": R}),
    ("POST", "/model-versions/create", {"name": "alpha", "source": SOURCE, "run_id": R}),
    ("GET", "/registered-models/get", {"name": "alpha"}),
    ("GET", "/model-versions/get", {"name": "alpha", "version": "2"}),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "alpha", "version": "1", "stage": "Production", "archive_existing_versions": False},
    ),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "alpha", "version": "2", "stage": "Production", "archive_existing_versions": True},
    ),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "alpha", "version": "3", "stage": "staging", "archive_existing_versions": False},
    ),
    ("GET", "/model-versions/get", {"name": "alpha", "version": "1"}),
    ("POST", "/registered-models/get-latest-versions", {"name": "alpha"}),
    ("POST", "/registered-models/get-latest-versions", {"name": "alpha", "stages": ["Production"]}),
    ("POST", "/registered-models/alias", {"name": "alpha", "alias": "champion", "version": "2"}),
    ("POST", "/registered-models/alias", {"name": "alpha", "alias": "challenger", "version": "3"}),
    ("POST", "/registered-models/alias", {"name": "alpha", "alias": "champion", "version": "3"}),
    ("GET", "/registered-models/alias", {"name": "alpha", "alias": "champion"}),
    ("GET", "/registered-models/get", {"name": "alpha"}),
    ("DELETE", "/registered-models/alias", {"name": "alpha", "alias": "challenger"}),
    ("POST", "/registered-models/set-tag", {"name": "alpha", "key": "stage", "value": "prod"}),
    ("POST", "/model-versions/set-tag", {"name": "alpha", "version": "3", "key": "validated", "value": "yes"}),
    ("DELETE", "/model-versions/delete-tag", {"name": "alpha", "version": "2", "key": "k"}),
    ("DELETE", "/registered-models/delete-tag", {"name": "alpha", "key": "team"}),
    ("PATCH", "/registered-models/update", {"name": "beta", "description": "second"}),
    ("PATCH", "/model-versions/update", {"name": "beta", "version": "1", "description": "only"}),
    ("GET", "/registered-models/search", {"filter": "name LIKE 'alpha%'"}),
    ("GET", "/registered-models/search", {"filter": "name ILIKE 'ALPHA%'", "order_by": "name DESC"}),
    ("GET", "/registered-models/search", {"filter": "tags.team = 'b'"}),
    ("GET", "/registered-models/search", {"max_results": "2", "order_by": "name ASC"}),
    ("GET", "/model-versions/search", {"filter": "name = 'alpha'", "order_by": "version_number DESC"}),
    ("GET", "/model-versions/search", {"filter": "tags.validated = 'yes'"}),
    (
        "GET",
        "/model-versions/search",
        {"filter": "run_id = '{run}'", "order_by": "version_number ASC", "max_results": "2"},
    ),
    ("POST", "/registered-models/rename", {"name": "beta", "new_name": "gamma"}),
    ("GET", "/model-versions/get", {"name": "gamma", "version": "1"}),
    ("GET", "/registered-models/get", {"name": "beta"}),
    ("DELETE", "/model-versions/delete", {"name": "alpha", "version": "1"}),
    ("POST", "/registered-models/get-latest-versions", {"name": "alpha"}),
    ("DELETE", "/registered-models/delete", {"name": "alphabet"}),
    ("GET", "/registered-models/search", {"order_by": "name ASC"}),
]

# searches paged to their end: each page's token feeds the next request
PAGED: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/registered-models/search", {"max_results": "1", "order_by": "name ASC"}),
    (
        "GET",
        "/model-versions/search",
        {"max_results": "1", "filter": "name = 'alpha'", "order_by": "version_number ASC"},
    ),
]


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list, list, tuple[Served, Served]]]:
    with mlflow_and_evtrack(tmp_path_factory) as (ref, ours):
        theirs = [_step(ref, *step) for step in SEQUENCE]
        mine = [_step(ours, *step) for step in SEQUENCE]
        yield theirs, mine, (ref, ours)


@pytest.mark.parametrize(
    "index", range(len(SEQUENCE)), ids=[f"{i:02d} {m} {p}" for i, (m, p, _) in enumerate(SEQUENCE)]
)
def test_each_registry_step_answers_as_mlflow(answers: tuple[list, list, Any], index: int) -> None:
    theirs, mine, _ = answers
    assert mine[index] == theirs[index], SEQUENCE[index]


@pytest.mark.parametrize("search", PAGED, ids=[p for _, p, _ in PAGED])
def test_paging_a_registry_search_gives_mlflows_pages(answers: tuple[list, list, Any], search: tuple) -> None:
    _, _, servers = answers
    method, path, body = search
    pages: dict[str, list[Any]] = {}
    for server in servers:
        server.ids["token"] = ""
        got: list[Any] = []
        while True:
            status, data = _step(
                server, method, path, {**body, "page_token": "{token}"} if server.ids["token"] else body
            )
            assert status == 200, data
            got.append({k: v for k, v in data.items() if k != "next_page_token"})
            _page_token(server, method, path, {**body, "page_token": "{token}"} if server.ids["token"] else body)
            if not server.ids["token"]:
                break
        pages[server.name] = got
    assert len(pages["mlflow"]) > 1  # the reference really paged
    assert pages["evtrack"] == pages["mlflow"]
