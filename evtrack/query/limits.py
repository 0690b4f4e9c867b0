"""Limits of one free SQL query: time, memory, threads and rows returned.

``evtrack.sql``, ``evtrack sql`` and the server's SQL page run a user's SELECT on a
cursor of its own over the snapshot's database, so a long query never holds the lock
that searches take. The cursor is interrupted at the time limit; DuckDB's
``memory_limit`` and ``threads`` bound the database (they are set before its
configuration is locked); the rows are fetched in batches and the query fails, naming
the limit, as soon as the result would pass the row cap — a result is never cut short
silently.

The time limit counts from the call, not from the query's start: a snapshot that is slow
to build (a server under write load) spends the query's time, and at the limit the call
answers whatever it was waiting on. The work runs on a thread of its own for that: the
caller waits for it until the deadline, then interrupts the cursor (or, while the snapshot
is still being built, leaves the build to finish for the next call) and fails at once.

Defaults come from the environment (docs/settings.md); a call's own arguments win.
The server uses a 30 s time limit unless ``EVTRACK_SQL_TIMEOUT`` says otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from evtrack.errors import InvalidParameterError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

SERVER_TIMEOUT = 30.0
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MEMORY_LIMIT = "50%"
DEFAULT_THREADS = 2
_BATCH_ROWS = 65_536


class QueryLimitError(InvalidParameterError):
    """A free SQL query ran into one of its limits (time, memory or rows)."""


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameterError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise InvalidParameterError(f"{name} must be 0 (no limit) or a positive number of seconds, got {raw}")
    return value or None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise InvalidParameterError(f"{name} must be at least 1, got {raw}")
    return value


@dataclass(frozen=True)
class SqlLimits:
    """``timeout`` in seconds (None: none), ``max_rows`` returned, and the database's
    ``memory_limit`` (DuckDB's syntax: ``"4GB"``, ``"50%"``) and ``threads``."""

    timeout: float | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    threads: int = DEFAULT_THREADS
    deadline: float | None = None  # time.monotonic() at which the time limit runs out (``started``)

    @classmethod
    def from_env(cls, default_timeout: float | None = None) -> SqlLimits:
        """The limits the environment sets (``EVTRACK_SQL_*``), ``default_timeout`` when it sets none."""
        timeout = _env_float("EVTRACK_SQL_TIMEOUT") if os.environ.get("EVTRACK_SQL_TIMEOUT") else default_timeout
        return cls(
            timeout=timeout,
            max_rows=_env_int("EVTRACK_SQL_MAX_ROWS", DEFAULT_MAX_ROWS),
            memory_limit=os.environ.get("EVTRACK_SQL_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT,
            threads=_env_int("EVTRACK_SQL_THREADS", DEFAULT_THREADS),
        )

    def overriding(self, timeout: float | None = None, max_rows: int | None = None) -> SqlLimits:
        """These limits with a call's own ``timeout`` / ``max_rows`` (None keeps them; timeout 0 = none)."""
        out = self
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
                raise InvalidParameterError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
            out = replace(out, timeout=float(timeout) or None)
        if max_rows is not None:
            if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
                raise InvalidParameterError(f"max_rows must be a whole number >= 1, got {max_rows!r}")
            out = replace(out, max_rows=max_rows)
        return out

    def started(self) -> SqlLimits:
        """These limits with the time limit counting from now (unless it already counts)."""
        if self.timeout is None or self.deadline is not None:
            return self
        return replace(self, deadline=time.monotonic() + self.timeout)


def apply_database_settings(con: "duckdb.DuckDBPyConnection") -> None:
    """Set the memory and thread limits on a query database (before its configuration is locked)."""
    import duckdb

    limits = SqlLimits.from_env()
    try:
        con.execute(f"SET memory_limit = '{limits.memory_limit}'")
    except duckdb.Error as exc:
        raise InvalidParameterError(
            f"EVTRACK_SQL_MEMORY_LIMIT={limits.memory_limit!r} is not a memory size DuckDB accepts "
            f"(e.g. '4GB', '512MiB', '50%'): {str(exc).splitlines()[0]}"
        ) from None
    con.execute(f"SET threads TO {limits.threads}")


def _describe(seconds: float) -> str:
    return f"{seconds:g} s"


def _time_limit_error(limits: SqlLimits) -> QueryLimitError:
    return QueryLimitError(
        f"The SQL query was stopped at its time limit of {_describe(limits.timeout or 0)} "
        "(EVTRACK_SQL_TIMEOUT or timeout=): narrow it, or raise the limit"
    )


class _Job:
    """A query's snapshot and run on a thread of their own, which the caller may give up on."""

    def __init__(self, snapshot_of: Callable[[], Any], query: str, params: list[Any], limits: SqlLimits) -> None:
        self.snapshot_of, self.query, self.params, self.limits = snapshot_of, query, params, limits
        self.done = threading.Event()
        self.guard = threading.Lock()
        self.cursor: Any = None
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            snapshot = self.snapshot_of()
            with self.guard:
                if self.cancelled:
                    raise _time_limit_error(self.limits)
                self.cursor = snapshot.cursor()
            self.result = _fetch(self.cursor, self.query, self.params, self.limits, self.is_cancelled)
        except BaseException as exc:  # handed to the caller (or dropped, if it gave up)
            self.error = exc
        finally:
            with self.guard:
                if self.cursor is not None:
                    self.cursor.close()
                self.cursor = None
            self.done.set()

    def is_cancelled(self) -> bool:
        return self.cancelled

    def cancel(self) -> None:
        with self.guard:
            self.cancelled = True
            if self.cursor is not None:
                self.cursor.interrupt()


def run_limited(snapshot_of: Callable[[], Any], query: str, params: list[Any], limits: SqlLimits) -> pa.Table:
    """Run ``query`` on a cursor of its own of the snapshot ``snapshot_of()`` returns (an engine
    ``Snapshot``) under ``limits``; an Arrow table, or a clear error.

    With a time limit, the snapshot and the query run on a thread of their own until the
    deadline (``SqlLimits.started``); past it the cursor is interrupted and the call fails
    at once, without waiting for DuckDB to wind the query down.
    """
    limits = limits.started()
    if limits.deadline is None:
        snapshot = snapshot_of()
        cursor = snapshot.cursor()
        try:
            return _fetch(cursor, query, params, limits, lambda: False)
        finally:
            cursor.close()
    job = _Job(snapshot_of, query, params, limits)
    threading.Thread(target=job.run, name="evtrack-sql", daemon=True).start()
    try:
        finished = job.done.wait(max(0.0, limits.deadline - time.monotonic()))
    except BaseException:  # Ctrl-C in a notebook: the query must not run on unwatched
        job.cancel()
        raise
    if not finished:
        job.cancel()
        if not job.done.wait(0.05):  # still building the snapshot, or DuckDB winding down
            raise _time_limit_error(limits)
    if job.error is not None:
        raise job.error
    return job.result


def _fetch(cursor: Any, query: str, params: list[Any], limits: SqlLimits, cancelled: Callable[[], bool]) -> pa.Table:
    """The rows of ``query`` on ``cursor``, in batches, under the row cap; DuckDB's errors made clear."""
    import duckdb
    import pyarrow as pa

    try:
        reader = cursor.sql(query, params=params or None).to_arrow_reader(_BATCH_ROWS)
        batches, rows = [], 0
        for batch in reader:
            rows += batch.num_rows
            if rows > limits.max_rows:
                raise QueryLimitError(
                    f"The SQL result has more than {limits.max_rows:,} rows (the row limit, "
                    "EVTRACK_SQL_MAX_ROWS or max_rows=): add a LIMIT or aggregate, or raise the limit"
                )
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.InterruptException:
        if cancelled():
            raise _time_limit_error(limits) from None
        raise
    except duckdb.OutOfMemoryException:
        raise QueryLimitError(
            f"The SQL query needs more memory than its limit of {limits.memory_limit} "
            "(EVTRACK_SQL_MEMORY_LIMIT): narrow it, or raise the limit"
        ) from None
    except duckdb.Error as exc:
        raise InvalidParameterError(f"SQL error: {str(exc).splitlines()[0]}") from None
