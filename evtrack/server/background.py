"""Periodic compaction inside the server process, so a lone ``evtrack ui`` stays fast."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger("evtrack.server")


class PeriodicCompaction:
    """Runs one compaction pass every ``every`` seconds on a daemon thread (None: never).

    Compaction is safe to run from several processes at once, but two passes over the same
    inbox do the same work and one of them loses the commit: the workers of a multi-worker
    server (and other servers of the same store on this machine) take turns through a lock
    file, and a worker that finds it taken skips its pass. A failed pass is logged and retried
    next time.

    Folded inbox segments are deleted once older than ``GRACE_SECONDS``, much shorter than an
    external compactor's five minutes: every read and write check lists the inbox, and under a
    steady load five minutes of segments make each listing slow (45,000 keys ~ 50-150 ms).
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
                with pass_turn(self.store.uri) as ours:
                    if not ours:
                        continue  # another worker is compacting this store right now
                    report = Compactor(self.store, grace_seconds=GRACE_SECONDS).run()
                if report.events:
                    log.info("evtrack server: %s", report.summary())
            except Exception:  # noqa: BLE001 - the server must outlive a failed pass
                log.exception("evtrack server: compaction pass failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# Seconds a folded inbox segment stays before a server's pass deletes it. A reader that listed a
# segment deleted before it fetched it, or that missed segments deleted before it listed, reads
# the newer manifest instead (``StoreReader._list``): the grace only spares it that extra round,
# and every second of it is listed again at each refresh under writes.
GRACE_SECONDS = 10.0


@contextlib.contextmanager
def pass_turn(store_uri: str) -> Iterator[bool]:
    """Whether this process may compact ``store_uri`` now: True while it holds the machine's lock
    file of that store (in the temp directory), False when another process holds it. Where
    locks are not available (no ``fcntl``, an unwritable temp directory) every process may."""
    try:
        import fcntl
    except ImportError:
        yield True
        return
    digest = hashlib.sha256(store_uri.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"evtrack-compaction-{digest}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True  # the lock goes with the descriptor, also if the process dies
    finally:
        os.close(fd)


def warm_up(client, *first: Callable[[], None]) -> threading.Thread:
    """Build the query engine's snapshot on a thread at start, so the first page is not the slow one
    (``first``: other warm-ups to run before it on that thread, such as compiling the UI's templates).

    With 100,000 runs that first snapshot takes seconds; a search served before it
    is ready simply waits for the same snapshot (the engine builds one per version).
    """

    def run() -> None:
        try:
            for step in first:
                step()
            experiments = client.search_experiments(max_results=1)
            if experiments:
                client.search_runs([experiments[0].experiment_id], max_results=1)
        except Exception:  # noqa: BLE001 - a cold start is slower, never broken
            log.exception("evtrack server: warming up the query engine failed")

    thread = threading.Thread(target=run, name="evtrack-warm-up", daemon=True)
    thread.start()
    return thread
