"""The routes of the web UI: every page module's routes, the static files and ``/``.

Pages (all server-rendered, no external resources)::

    /experiments                        experiments, create/rename/delete forms
    /experiments/{id}                   runs table: search, order, paging, compare, CSV
    /experiments/{id}/runs.csv          the same search as CSV
    /runs/{run_id}                      one run; /runs/{run_id}/metrics/{key} one metric
    /runs/{run_id}/artifacts[/view|/raw]?path=…   artifacts browser
    /compare?runs=…                     runs side by side
    /models, /models/{name}, /models/{name}/versions/{v}   model registry
    /sql                                read-only SQL over the store

MLflow's own links (``/#/experiments/{id}/runs/{run_id}``, ``/#/experiments/{id}``,
``/#/models/{name}/versions/{v}``, as its client prints them) keep the page in the URL's
fragment, which the server never sees; ``static/app.js`` moves the browser to the page above.
"""

from __future__ import annotations

from evtrack.server.ui import artifacts, compare, experiment_runs, experiments, registry, runs, sql
from evtrack.server.ui.render import STATIC


def _home(request):
    from starlette.responses import RedirectResponse

    return RedirectResponse("/experiments", status_code=307)


def routes() -> list:
    """The UI's routes (pages, forms and static files)."""
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    out = [Route("/", _home, methods=["GET"])]
    for module in (experiments, experiment_runs, runs, artifacts, compare, registry, sql):
        out += module.routes()
    out.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    return out
