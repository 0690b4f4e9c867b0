"""Decoding the inbox in worker processes, so that a large backlog uses every core.

Decoding JSON holds the GIL: in one process a single core decodes while the
others wait. For a backlog of several batches the compactor forks worker
processes (on Linux, from a process running no other thread: forking a
multi-threaded process can leave a lock held forever in the child). Each
worker takes whole batches::

    compactor ── fork N workers ── submit batches, N + 1 ahead ───────────┐
        ▲                                                                  ▼
        │                         worker: fetch (threads) ─▶ decode (inbox._decode_batch)
        │                                 ─▶ metric columns as an Arrow IPC file
        │                                 ─▶ per segment: counts, other events, bad lines
        └── map the file (no copy), rebuild the other events, yield the
            same DecodedBatch the in-process decoder would, in inbox order

The workers run the very functions the in-process decoder runs, so the
compactor sees the same batches either way; the other events come back as
their fields' values and raw lines (``evtrack.eventlog.events.field_values``), and are
rebuilt here without a second check (``rebuild``: unpickling the dataclass
would cost as much as decoding the line again). The files live in a private temporary directory that is
removed at the end; each is unlinked as soon as it is mapped. A worker dies
with the compactor (``PR_SET_PDEATHSIG``), and a worker that dies (killed, out
of memory) fails the pass with an error before anything is committed.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from typing import Iterable, Iterator

from evtrack.errors import EvtrackError
from evtrack.eventlog.events import BadLine, field_values, rebuild
from evtrack.store.base import ObjectInfo, ObjectStore

from evtrack.eventlog import native_decode
from compaction.crash import checkpoint
from compaction.inbox import NATIVE_ENV, DecodedBatch, DecodedSegment, _decode_batch, _get, metric_table
from compaction.process_setup import refuse_pandas

MAX_AUTO_PROCESSES = 8
BATCHES_PER_PROCESS = 4  # a backlog is cut into at least this many batches per worker ...
MIN_BATCH_BYTES = 2 << 20  # ... of at least this many bytes
_PR_SET_PDEATHSIG = 1

# An event as a worker hands it back: (wire type, its fields' values in declaration order, raw line)
PackedEvent = tuple[str, tuple, bytes]
# One decoded segment as a worker hands it back:
# (key, size, metric events, params and tags, run events, other events, bad lines)
PackedSegment = tuple[str, int, int, int, int, list[PackedEvent], list[BadLine]]
# What a worker hands back for a batch: the Arrow files of its metrics, its params and tags,
# its run events and their creations' tags (None where it has none), and its segments
PackedBatch = tuple[list["str | None"], list[PackedSegment]]


def process_count(requested: int | None, batches: int) -> int:
    """Worker processes to decode ``batches`` batches with; 0 decodes in this process.

    ``requested`` None chooses: one per core when there are several batches to
    share, the native decoder is on, and this process may fork safely. An
    explicit count above 1 is used (up to one per batch) wherever fork is
    available (Linux) and the native decoder is on; the caller then answers for
    other threads it runs.
    """
    if requested is not None and requested < 0:
        raise EvtrackError(f"processes must be 0 or more, got {requested}")
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if not native_decode.available() or os.environ.get(NATIVE_ENV, "1") == "0":
        return 0  # the native decoder off (or missing): the reference Python decoding, in this process
    if requested is not None:
        return min(requested, batches) if requested > 1 and batches > 1 else 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or batches < 2 or threading.active_count() > 1:
        return 0
    return min(cores, MAX_AUTO_PROCESSES, batches)


def batch_size(total_bytes: int, batch_bytes: int, processes: int) -> int:
    """Bytes per batch for ``processes`` workers: smaller than ``batch_bytes`` for a backlog of few batches.

    Each worker should get several batches, or the compacting process would
    wait for the first ones and then write them all while the workers idle; but
    not batches so small that their fixed costs show.
    """
    return min(batch_bytes, max(MIN_BATCH_BYTES, total_bytes // (BATCHES_PER_PROCESS * processes)))


def decode_in_processes(
    store: ObjectStore, chunks: Iterable[list[ObjectInfo]], processes: int
) -> Iterator[DecodedBatch]:
    """Yield each chunk of segments decoded by one of ``processes`` forked workers, in order."""
    out_dir = tempfile.mkdtemp(prefix="evtrack-compact-")
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(store, os.getpid()),
    )
    try:
        window: deque = deque()
        warmed = False
        for chunk in chunks:
            window.append(pool.submit(_decode_chunk, chunk, out_dir))
            if not warmed:
                _warm_pyarrow()  # while the workers decode the first batches
                warmed = True
            if len(window) > processes:
                yield _unpack(window.popleft().result(), processes)
        while window:
            yield _unpack(window.popleft().result(), processes)
    except BrokenProcessPool:
        raise EvtrackError(
            "a compaction worker process died (killed, or out of memory?); this pass "
            "committed nothing: run it again (--processes 1 decodes in one process)"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(out_dir, ignore_errors=True)


def _warm_pyarrow() -> None:
    """pyarrow may import pandas on its first conversion of a Python list (``process_setup``): pay it now."""
    import pyarrow as pa

    pa.array([0])


def _unpack(result: PackedBatch, processes: int) -> DecodedBatch:
    paths, packed = result
    segments = []
    for key, size, metrics, kv, runs, others, bad in packed:
        seg = DecodedSegment(key, size, converted=metrics, kv_converted=kv, runs_converted=runs, bad=bad)
        seg.events = [(rebuild(etype, values), line) for etype, values, line in others]
        segments.append(seg)
    metrics, kv, runs, run_tags = (_read_arrow(path) if path is not None else None for path in paths)
    metrics_table = metrics if metrics is not None else metric_table([])
    return DecodedBatch(segments, metrics_table, processes, kv=kv, runs=runs, run_tags=run_tags)


def _read_arrow(path: str):
    import pyarrow as pa

    source = pa.memory_map(path)  # the table's buffers keep the mapping alive
    table = pa.ipc.open_file(source).read_all()
    os.unlink(path)
    return table


def _write_arrow(table, out_dir: str) -> str:
    import pyarrow as pa

    path = os.path.join(out_dir, f"{uuid.uuid4().hex}.arrow")
    table = table.combine_chunks()
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


# -- in the worker processes ----------------------------------------------------------

_store: ObjectStore | None = None
_fetchers: ThreadPoolExecutor | None = None


def _start_worker(store: ObjectStore, parent: int) -> None:
    global _store, _fetchers
    try:  # die with the compactor, even when it is killed
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)  # the compactor died before the line above took effect
    for sig in (signal.SIGINT, signal.SIGTERM):  # a stop sent to the process group is the compactor's
        signal.signal(sig, signal.SIG_IGN)  # to handle (`--every` finishes its pass)
    refuse_pandas()  # a worker never needs it: spare it pyarrow's import of pandas
    gc.disable()  # a worker makes no cycles: spare it the collector's passes (and their copy-on-write)
    _store = store
    _fetchers = ThreadPoolExecutor(2, thread_name_prefix="evtrack-fetch")


def _decode_chunk(infos: list[ObjectInfo], out_dir: str) -> PackedBatch:
    assert _store is not None and _fetchers is not None
    checkpoint("worker_decoding")  # crash tests: a worker killed while it decodes
    batch = _decode_batch(infos, [_fetchers.submit(_get, _store, info) for info in infos])
    packed = []
    for seg in batch.segments:
        kv, runs = seg.kv_converted + len(seg.kv), seg.runs_converted + len(seg.runs)
        metrics = seg.event_count - len(seg.events) - kv - runs
        others = [(event.type, field_values(event), line) for event, line in seg.events]
        packed.append((seg.key, seg.size, metrics, kv, runs, others, seg.bad))
    tables = (batch.metrics, batch.kv, batch.runs, batch.run_tags)
    paths = [_write_arrow(t, out_dir) if t is not None and t.num_rows else None for t in tables]
    return paths, packed
