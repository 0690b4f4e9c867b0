"""Periodic compaction inside the server process, so a lone ``evtrack ui`` stays fast."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("evtrack.server")


class PeriodicCompaction:
    """Runs one compaction pass every ``every`` seconds on a daemon thread (None: never).

    Compaction is safe to run from several processes at once, so every worker of a
    multi-worker server may run its own; a failed pass is logged and retried next time.
    """

    def __init__(self, store, every: float | None) -> None:
        self.store = store
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.every:
            return
        self._thread = threading.Thread(target=self._loop, name="evtrack-compaction", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from compaction import Compactor

        while not self._stop.wait(self.every):
            try:
                report = Compactor(self.store).run()
                if report.events:
                    log.info("evtrack server: %s", report.summary())
            except Exception:  # noqa: BLE001 - the server must outlive a failed pass
                log.exception("evtrack server: compaction pass failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def warm_up(client) -> threading.Thread:
    """Build the query engine's snapshot on a thread at start, so the first page is not the slow one.

    With 100,000 runs that first snapshot takes seconds; a search served before it
    is ready simply waits for the same snapshot (the engine builds one per version).
    """

    def run() -> None:
        try:
            experiments = client.search_experiments(max_results=1)
            if experiments:
                client.search_runs([experiments[0].experiment_id], max_results=1)
        except Exception:  # noqa: BLE001 - a cold start is slower, never broken
            log.exception("evtrack server: warming up the query engine failed")

    thread = threading.Thread(target=run, name="evtrack-warm-up", daemon=True)
    thread.start()
    return thread
