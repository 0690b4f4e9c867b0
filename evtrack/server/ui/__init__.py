"""The web UI: server-rendered pages over the same client and query engine as the REST API."""

from __future__ import annotations


def routes() -> list:
    """The UI's routes (pages, forms and static files)."""
    from evtrack.server.ui.pages import routes as page_routes

    return page_routes()
