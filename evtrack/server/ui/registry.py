"""The model registry pages: registered models, one model's versions, one version."""

from __future__ import annotations

import urllib.parse

from evtrack.errors import InvalidParameterError
from evtrack.server.ui.render import page, render

MODELS_PAGE = 100
VERSIONS_PAGE = 200


def model_url(name: str) -> str:
    """The page of a registered model (names may hold any character)."""
    return "/models/" + urllib.parse.quote(name, safe="")


def version_url(name: str, version: int | str) -> str:
    """The page of one model version."""
    return f"{model_url(name)}/versions/{version}"


def run_versions(client, run_id: str) -> list:
    """The registered model versions made from a run (their ``run_id`` is it), by name and version."""
    found = client.search_model_versions(
        f"run_id = {_quoted(run_id)}", VERSIONS_PAGE, ["name ASC", "version_number ASC"], None
    )
    return list(found)


def _quoted(text: str) -> str:
    """A string literal of MLflow's filter grammar."""
    return "'" + text.replace("'", "''") + "'"


@page
def models_page(request):
    """``/models``: registered models, with a name filter (``?q=`` matches a substring)."""
    client = request.app.state.client
    q = (request.query_params.get("q") or "").strip()
    token = request.query_params.get("page_token") or None
    filter_string = f"name ILIKE {_quoted('%' + q + '%')}" if q else None
    models = client.search_registered_models(filter_string, MODELS_PAGE, ["name ASC"], token)
    next_url = "/models?" + urllib.parse.urlencode({"q": q, "page_token": models.token}) if models.token else None
    return render(request, "models.html", title="Models", models=models, q=q, next_url=next_url, model_url=model_url)


def _version_number(raw: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise InvalidParameterError(f"Invalid model version {raw!r}: expected a whole number") from None
    if number < 1:
        raise InvalidParameterError(f"Invalid model version {raw!r}: versions start at 1")
    return number


@page
def model_page(request):
    """``/models/{name}``: one registered model and its versions, newest first."""
    client = request.app.state.client
    model = client.get_registered_model(request.path_params["name"])
    token = request.query_params.get("page_token") or None
    versions = client.search_model_versions(
        f"name = {_quoted(model.name)}", VERSIONS_PAGE, ["version_number DESC"], token
    )
    next_url = (
        f"{model_url(model.name)}?" + urllib.parse.urlencode({"page_token": versions.token}) if versions.token else None
    )
    aliases_by_version: dict[int, list[str]] = {}
    for alias, version in sorted(model.aliases.items()):
        aliases_by_version.setdefault(int(version), []).append(alias)
    return render(
        request,
        "model.html",
        title=model.name,
        model=model,
        versions=versions,
        next_url=next_url,
        aliases_by_version=aliases_by_version,
        model_url=model_url,
    )


@page
def version_page(request):
    """``/models/{name}/versions/{version}``: one model version."""
    client = request.app.state.client
    name = request.path_params["name"]
    mv = client.get_model_version(name, _version_number(request.path_params["version"]))
    return render(request, "model_version.html", title=f"{mv.name} v{mv.version}", mv=mv, model_url=model_url)


def routes() -> list:
    """The registry pages."""
    from starlette.routing import Route

    return [
        Route("/models", models_page, methods=["GET"]),
        Route("/models/{name:path}/versions/{version}", version_page, methods=["GET"]),
        Route("/models/{name:path}", model_page, methods=["GET"]),
    ]
