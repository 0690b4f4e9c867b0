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
