"""The experiments list and its forms: create, rename, delete, restore."""

from __future__ import annotations

import urllib.parse
from typing import Any

from evtrack.entities import ViewType
from evtrack.errors import EvtrackError, InvalidParameterError
from evtrack.server.ui.forms import write_form
from evtrack.server.ui.render import page, render

PAGE_SIZE = 500
_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}


def _view(request) -> str:
    view = request.query_params.get("view") or "active"
    if view not in _VIEWS:
        raise InvalidParameterError(f"Invalid view {view!r}: expected one of {', '.join(_VIEWS)}")
    return view


def _list_page(request, view: str, message: str | None = None, status: int = 200, form: dict[str, str] | None = None):
    client = request.app.state.client
    token = request.query_params.get("page_token") or None
    experiments = client.search_experiments(
        view_type=_VIEWS[view], max_results=PAGE_SIZE, order_by=["last_update_time DESC"], page_token=token
    )
    return render(
        request,
        "experiments.html",
        status=status,
        title="Experiments",
        experiments=experiments,
        next_token=experiments.token,
        view=view,
        message=message,
        form=form or {},
    )


@page
def experiments_page(request):
    """``/experiments``: every experiment (``?view=all`` or ``deleted`` for deleted ones)."""
    return _list_page(request, _view(request))


def _after_post(request, action: Any, form: dict[str, str]):
    """Run one write; redirect back on success, re-render the list with the message on a user error."""
    from starlette.responses import RedirectResponse

    back = form.get("back") or "/experiments"
    if not back.startswith("/experiments") or back.startswith("//"):
        back = "/experiments"  # only ever redirect inside the UI
    try:
        action()
    except EvtrackError as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"):
            raise
        view = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query).get("view", ["active"])[-1]
        return _list_page(request, view if view in _VIEWS else "active", message=exc.message, status=400, form=form)
    return RedirectResponse(back, status_code=303)


@write_form
def create_experiment(request, form: dict[str, str]):
    """POST ``/experiments/create`` (``name``)."""
    client = request.app.state.client
    name = form.get("name", "").strip()
    root = request.app.state.config.default_artifact_root
    options = {"artifact_root": root.rstrip("/")} if root else {}  # as experiments created over REST
    return _after_post(request, lambda: client.create_experiment(name, **options), form)


@write_form
def rename_experiment(request, form: dict[str, str]):
    """POST ``/experiments/{id}/rename`` (``new_name``)."""
    client = request.app.state.client
    experiment_id = request.path_params["experiment_id"]
    new_name = form.get("new_name", "").strip()
    return _after_post(request, lambda: client.rename_experiment(experiment_id, new_name), form)


@write_form
def delete_experiment(request, form: dict[str, str]):
    """POST ``/experiments/{id}/delete``."""
    client = request.app.state.client
    experiment_id = request.path_params["experiment_id"]
    return _after_post(request, lambda: client.delete_experiment(experiment_id), form)


@write_form
def restore_experiment(request, form: dict[str, str]):
    """POST ``/experiments/{id}/restore``."""
    client = request.app.state.client
    experiment_id = request.path_params["experiment_id"]
    return _after_post(request, lambda: client.restore_experiment(experiment_id), form)


def routes() -> list:
    """The experiments list and its forms."""
    from starlette.routing import Route

    return [
        Route("/experiments", experiments_page, methods=["GET"]),
        Route("/experiments/create", create_experiment, methods=["POST"]),
        Route("/experiments/{experiment_id}/rename", rename_experiment, methods=["POST"]),
        Route("/experiments/{experiment_id}/delete", delete_experiment, methods=["POST"]),
        Route("/experiments/{experiment_id}/restore", restore_experiment, methods=["POST"]),
    ]
