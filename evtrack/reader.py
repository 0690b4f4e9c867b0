"""Reads the inbox and keeps a folded state up to date, incrementally.

Segments are immutable, so each one is fetched and folded once per process; the
fold is order-independent, so new segments fold on top of the cached state.
Lines that cannot be decoded are counted and kept aside, never folded.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from evtrack.errors import ObjectNotFoundError
from evtrack.events import BadLine, decode_segment
from evtrack.fold import State, fold
from evtrack.store.base import ObjectStore
from evtrack.writer import INBOX

_FETCH_THREADS = 16


class InboxReader:
    """The folded state of every segment in a store's inbox."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.state = State()
        self.bad_lines: list[BadLine] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def _fetch(self, key: str) -> bytes | None:
        try:
            return self.store.get(key)
        except ObjectNotFoundError:
            return None  # removed between list and get

    def refresh(self) -> State:
        """Fold every segment not folded yet and return the state."""
        with self._lock:
            new = [info.key for info in self.store.list(INBOX) if info.key not in self._seen]
            if len(new) <= 2:
                blobs = [self._fetch(k) for k in new]
            else:
                with ThreadPoolExecutor(min(_FETCH_THREADS, len(new))) as pool:
                    blobs = list(pool.map(self._fetch, new))
            for key, data in zip(new, blobs):
                if data is None:
                    continue
                events, bad = decode_segment(data, key)
                fold(events, self.state)
                self.bad_lines.extend(bad)
                self._seen.add(key)
            return self.state
