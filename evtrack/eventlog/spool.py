"""A local directory of segments that could not reach the store yet.

When the store is unreachable the writer parks finished segments here, under the
store's identity, and sends them later — from the same process or from any later
process that writes to the same store. A segment keeps its key and content, so
a re-send is idempotent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator


def default_spool_root() -> Path:
    """``$EVTRACK_SPOOL_DIR`` or ``~/.cache/evtrack/spool``."""
    env = os.environ.get("EVTRACK_SPOOL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evtrack" / "spool"


class Spool:
    """Segments waiting for one store, kept as files named by their escaped key."""

    def __init__(self, store_uri: str, root: Path | None = None) -> None:
        digest = hashlib.sha256(store_uri.encode()).hexdigest()[:20]
        self.dir = (root or default_spool_root()) / digest
        self.store_uri = store_uri

    @staticmethod
    def _name(key: str) -> str:
        return key.replace("%", "%25").replace("/", "%2F")

    @staticmethod
    def _key(name: str) -> str:
        return name.replace("%2F", "/").replace("%25", "%")

    def add(self, key: str, data: bytes) -> None:
        """Park a segment durably on local disk."""
        self.dir.mkdir(parents=True, exist_ok=True)
        marker = self.dir / "STORE"
        if not marker.exists():
            marker.write_text(self.store_uri + "\n")
        final = self.dir / self._name(key)
        tmp = self.dir / f".tmp-{os.getpid()}-{final.name}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def pending(self) -> Iterator[tuple[str, Path]]:
        """(key, file) of every parked segment, oldest key first."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".tmp-") or name == "STORE":
                continue
            yield self._key(name), self.dir / name

    def count(self) -> tuple[int, int]:
        """(segments, bytes) still parked."""
        n = size = 0
        for _, path in self.pending():
            try:
                size += path.stat().st_size
                n += 1
            except FileNotFoundError:
                pass
        return n, size

    @staticmethod
    def discard(path: Path) -> None:
        """Forget a parked segment once it reached the store (another process may have done so)."""
        try:
            path.unlink()
        except FileNotFoundError:
            pass
