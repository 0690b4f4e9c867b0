"""Admission: how many requests one server process works on at once.

Past ``max_concurrent_requests`` in flight, a request is answered at once with 429
``REQUEST_LIMIT_EXCEEDED`` and ``Retry-After`` — MLflow's client (and evtrack's) retry
those with backoff — instead of queueing without bound behind the thread pool. Health
probes are always admitted. Request bodies have their own size and time limits
(``rest.protocol.read_body``).
"""

from __future__ import annotations

from evtrack.server.rest import protocol as p

ALWAYS_ADMITTED = frozenset({"/health", "/version"})


class AdmissionMiddleware:
    """Answers 429 while ``limit`` HTTP requests are already in flight in this process."""

    def __init__(self, app, limit: int | None) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in ALWAYS_ADMITTED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:  # one event loop: no lock needed between check and count
            self.refused += 1
            await self._refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, send) -> None:
        await p.send_error(
            send,
            429,
            "REQUEST_LIMIT_EXCEEDED",
            f"The server is working on {self.limit} requests already (its --max-concurrent-requests); retry shortly",
            ((b"retry-after", b"1"),),
        )
