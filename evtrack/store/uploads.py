"""Background uploads: one thread that sends files to a store while the caller goes on.

A backend (a store's, or a tracking server's) runs small uploads here (the files a run
captures at ``start_run``) and waits for them before anything that must see them: a flush,
a listing of the run's artifacts, interpreter exit.
"""

from __future__ import annotations

from typing import Callable


class BackgroundUploads:
    """A one-thread pool, created on first use, and the uploads not yet waited for."""

    def __init__(self) -> None:
        self._pool = None
        self._pending: list = []

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the upload thread."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="evtrack-upload")
        self._pending.append(self._pool.submit(fn))

    def wait(self) -> None:
        """Wait for every upload submitted so far; the first that failed raises here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def reset_after_fork(self) -> None:
        """In a forked child: no thread (it did not survive the fork), nothing pending."""
        self._pool, self._pending = None, []
