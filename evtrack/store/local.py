"""``LocalStore``: a directory laid out exactly like a bucket (``a/b.jsonl`` -> ``root/a/b.jsonl``).

Writes are atomic (temp file in the same directory, fsync, then ``os.replace``);
put-if-absent is ``os.link`` of the temp file, which fails when the name is taken.
Temp files start with ``.tmp-`` and are never listed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, BinaryIO

from evtrack.errors import CommitConflictError, InvalidParameterError, InvalidUriError, ObjectNotFoundError, StoreError
from evtrack.store.base import CHUNK_SIZE, ObjectInfo

TEMP_PREFIX = ".tmp-"
_COPY_BUFFER = 1024 * 1024
_PARALLEL_DELETES, _DELETE_THREADS = 2000, 4  # delete_many of this many keys or more uses threads
_SETTLE_NS = 50_000_000  # a directory's times are trusted once this old (coarser than any fs clock tick)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative ``/``-separated key; else ``InvalidUriError``."""
    if not isinstance(key, str) or not key:
        raise InvalidUriError(f"invalid object key {key!r}: must be a non-empty string")
    if "\x00" in key or "\\" in key:
        raise InvalidUriError(f"invalid object key {key!r}: NUL and backslash are not allowed")
    if key.startswith("/"):
        raise InvalidUriError(f"invalid object key {key!r}: must be relative, not absolute")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidUriError(f"invalid object key {key!r}: empty, '.' and '..' path segments are not allowed")
    return key


def validate_range(start: int, length: int) -> None:
    """``InvalidParameterError`` unless ``start`` and ``length`` are integers >= 0."""
    for name, value in (("start", start), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameterError(f"invalid byte range: {name}={value!r} must be an integer >= 0")


def validate_chunk_size(chunk_size: int) -> None:
    """``InvalidParameterError`` unless ``chunk_size`` is an integer >= 1."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidParameterError(f"invalid chunk size {chunk_size!r}: must be an integer >= 1")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` when it is a safe listing prefix (may be empty or end with ``/``)."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


class LocalStore:
    """An ``ObjectStore`` in a local directory, safe for concurrent processes on one machine."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.uri = "file://" + self.root
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    # -- paths --------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        validate_key(key)
        segments = key.split("/")
        if any(s.startswith(TEMP_PREFIX) for s in segments):
            raise InvalidUriError(f"invalid object key {key!r}: names starting with {TEMP_PREFIX!r} are reserved")
        return os.path.join(self.root, *segments)

    def _mkstemp(self, parent: str, key: str) -> tuple[int, str]:
        """Create a temp file in ``parent``, making directories a concurrent delete may prune."""
        for _ in range(100):
            try:
                os.makedirs(parent, exist_ok=True)
                return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
            except (FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
                if self._object_above(parent):
                    raise StoreError(f"cannot write {key!r} in {self.uri}: a parent of the key is an object") from exc
            except OSError as exc:
                raise StoreError(f"cannot write {key!r} in {self.uri}: {exc}") from exc
        raise StoreError(f"cannot write {key!r} in {self.uri}: its directory keeps disappearing")

    def _object_above(self, directory: str) -> bool:
        """True when ``directory`` or one of its ancestors below the root is a file."""
        while directory != self.root and len(directory) > len(self.root):
            try:
                if not stat.S_ISDIR(os.stat(directory).st_mode):
                    return True
            except (FileNotFoundError, NotADirectoryError):
                pass
            directory = os.path.dirname(directory)
        return False

    def _write_temp(self, path: str, key: str, write: Callable[[BinaryIO], object]) -> str:
        """Create a temp file next to ``path``, fill it with ``write(fileobj)``, return its name."""
        fd, tmp = self._mkstemp(os.path.dirname(path), key)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                if self._fsync:
                    os.fsync(f.fileno())
        except BaseException:
            _remove_quietly(tmp)
            raise
        return tmp

    # -- ObjectStore --------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[BinaryIO]:
        """The object's file open for reading; a missing object or an I/O failure as in ``get``."""
        path = self._path(key)
        try:
            f = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"object not found: {key!r} in {self.uri}") from None
        except OSError as exc:
            raise StoreError(f"local get of {key!r} in {self.uri} failed: {exc}") from exc
        with f:
            try:
                yield f
            except OSError as exc:
                raise StoreError(f"local get of {key!r} in {self.uri} failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        """Return the object's bytes; ``ObjectNotFoundError`` when absent."""
        with self._reading(key) as f:
            return f.read()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` (fewer at the end, none past it); errors as ``get``."""
        validate_range(start, length)
        with self._reading(key) as f:
            f.seek(start)
            return f.read(length)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The whole object in chunks of at most ``chunk_size``; errors as ``get``, by the first chunk."""
        self._path(key)
        validate_chunk_size(chunk_size)
        return self._chunks(key, chunk_size)

    def _chunks(self, key: str, chunk_size: int) -> Iterator[bytes]:
        with self._reading(key) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def put(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically."""
        path = self._path(key)
        tmp = self._write_temp(path, key, lambda f: f.write(data))
        try:
            os.replace(tmp, path)
        except OSError as exc:
            _remove_quietly(tmp)
            raise StoreError(f"local put of {key!r} in {self.uri} failed: {exc}") from exc

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create the object only when the key is free; ``CommitConflictError`` otherwise."""
        path = self._path(key)
        tmp = self._write_temp(path, key, lambda f: f.write(data))
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise CommitConflictError(f"object already exists: {key!r} in {self.uri}") from None
        except OSError as exc:
            raise StoreError(f"local put_if_absent of {key!r} in {self.uri} failed: {exc}") from exc
        finally:
            _remove_quietly(tmp)

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Yield objects whose key starts with ``prefix``, in key order, after ``start_after``."""
        return self._walk(*self._listing_of(prefix), start_after)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """The keys of ``list(prefix)``, without a ``stat`` of each file (``base.list_keys``).

        A directory whose link count says it has no sub-directory (2: itself and its entry in
        its parent) is read with one ``listdir`` and sorted: the inbox, listed at nearly every
        refresh under writes, in half the time of a walk. Where the file system does not count
        sub-directories in links (btrfs gives 1), it is walked."""
        directory, base, name_prefix = self._listing_of(prefix)
        try:
            flat = os.stat(directory).st_nlink == 2
            names = os.listdir(directory) if flat else []
        except (FileNotFoundError, NotADirectoryError):
            return iter(())
        except OSError as exc:
            raise StoreError(f"local list of {base!r} in {self.uri} failed: {exc}") from exc
        if not flat:
            return self._walk(directory, base, name_prefix, None, with_stat=False)
        names = sorted([n for n in names if n.startswith(name_prefix) and not n.startswith(TEMP_PREFIX)])
        return iter([base + n for n in names])

    def _listing_of(self, prefix: str) -> tuple[str, str, str]:
        """(directory, key base, name prefix) of a listing of ``prefix``."""
        validate_prefix(prefix)
        dir_part, _, name_prefix = prefix.rpartition("/")
        base = dir_part + "/" if dir_part else ""
        directory = os.path.join(self.root, *dir_part.split("/")) if dir_part else self.root
        return directory, base, name_prefix

    def _walk(
        self, directory: str, base: str, name_prefix: str, start_after: str | None, with_stat: bool = True
    ) -> Iterator[Any]:
        """Yield objects under ``directory`` (keys ``base + name…``) in S3 order (keys alone
        when not ``with_stat``).

        Sorting a directory's entries by name, with ``/`` appended to sub-directories,
        yields keys in plain lexicographic order over the whole key string.
        """
        try:
            with os.scandir(directory) as it:
                entries = []
                for e in it:
                    if e.name.startswith(TEMP_PREFIX):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        entries.append((e.name + "/", e))
                    elif e.is_file(follow_symlinks=False):
                        entries.append((e.name, e))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StoreError(f"local list of {base!r} in {self.uri} failed: {exc}") from exc
        entries.sort(key=lambda pair: pair[0])
        for name, entry in entries:
            if not name.startswith(name_prefix):
                continue
            key = base + name
            if name.endswith("/"):
                # everything below sorts before start_after: skip the whole subtree
                if start_after is not None and start_after > key and not start_after.startswith(key):
                    continue
                yield from self._walk(entry.path, key, "", start_after, with_stat)
                continue
            if start_after is not None and key <= start_after:
                continue
            if not with_stat:
                yield key
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while listing
                continue
            yield ObjectInfo(key=key, size=st.st_size, mtime=st.st_mtime)

    def listing_token(self, prefix: str) -> Hashable:
        """The directory's identity and change times (one ``stat``): any object created, replaced
        or deleted directly in it changes them. A directory changed within the last
        ``_SETTLE_NS`` gives a token equal to nothing, since the file system's clock is coarser
        than that (two changes in one tick could leave the same time)."""
        if not prefix.endswith("/"):
            raise InvalidUriError(f"listing_token needs a directory prefix ending in '/', got {prefix!r}")
        try:
            st = os.stat(self._path(prefix[:-1]))
        except (FileNotFoundError, NotADirectoryError):
            return "absent"
        changed = max(st.st_mtime_ns, st.st_ctime_ns)
        if time.time_ns() - changed < _SETTLE_NS:
            return object()  # unsettled: list again
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when absent."""
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not os.path.isfile(path):
            return None
        return ObjectInfo(key=key, size=st.st_size, mtime=st.st_mtime)

    def delete(self, key: str) -> None:
        """Remove the object (a missing key is fine) and prune now-empty parent directories."""
        path = self._path(key)
        if self._unlink(path):
            self._prune(os.path.dirname(path))

    def _unlink(self, path: str) -> bool:
        """Remove a file; False when there was none."""
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except PermissionError:  # macOS reports unlink of a directory as EPERM
            if os.path.isdir(path):
                return False
            raise
        return True

    def _prune(self, parent: str) -> None:
        """Remove ``parent`` and its ancestors inside the root while they are empty."""
        while parent != self.root and parent.startswith(self.root + os.sep):
            try:
                os.rmdir(parent)
            except FileNotFoundError:  # pruned by a concurrent delete; keep going up
                pass
            except OSError:  # not empty (or busy): stop
                return
            parent = os.path.dirname(parent)

    def delete_many(self, keys: list[str]) -> None:
        """Remove the objects (missing keys are fine), then prune each emptied directory once.

        Many keys are removed by a few threads: ``unlink`` waits in the kernel without the
        GIL, so one thread's system call overlaps another's path checks.
        """
        paths = [self._path(key) for key in keys]  # every key checked before anything is removed
        if len(paths) >= _PARALLEL_DELETES:
            from concurrent.futures import ThreadPoolExecutor

            step = -(-len(paths) // _DELETE_THREADS)
            with ThreadPoolExecutor(_DELETE_THREADS, thread_name_prefix="evtrack-delete") as pool:
                removed = [
                    p
                    for part in pool.map(self._unlink_all, [paths[i : i + step] for i in range(0, len(paths), step)])
                    for p in part
                ]
        else:
            removed = self._unlink_all(paths)
        for parent in sorted({os.path.dirname(p) for p in removed}, key=len, reverse=True):  # the deepest first
            self._prune(parent)

    def _unlink_all(self, paths: list[str]) -> list[str]:
        """Remove files; returns the ones that were there."""
        return [path for path in paths if self._unlink(path)]

    def put_file(self, key: str, path: str) -> None:
        """Copy a local file into the store atomically."""
        dest = self._path(key)
        try:
            src = open(path, "rb")
        except OSError as exc:
            raise InvalidParameterError(f"cannot upload {path!r} to {key!r}: {exc.strerror}") from exc
        with src:
            tmp = self._write_temp(dest, key, lambda f: shutil.copyfileobj(src, f, _COPY_BUFFER))
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            _remove_quietly(tmp)
            raise StoreError(f"local put_file of {key!r} in {self.uri} failed: {exc}") from exc

    def get_file(self, key: str, path: str) -> None:
        """Copy the object into a local file, creating parent directories."""
        src_path = self._path(key)
        try:
            src = open(src_path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"object not found: {key!r} in {self.uri}") from None
        with src:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            with open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, _COPY_BUFFER)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
