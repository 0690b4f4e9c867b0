"""Fetching and decoding a backlog of inbox segments in batches, in order.

A backlog of several batches goes to worker processes (``compaction.parallel``);
a small one is fetched by threads and decoded by one thread here
(``compaction.inbox``). Either way the compactor sees the same batches.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

from evtrack.store.base import ObjectInfo, ObjectStore

from compaction import parallel
from compaction.inbox import DecodedBatch, _decode_batch, _get


def _chunks(infos: list[ObjectInfo], size_bytes: int) -> Iterator[list[ObjectInfo]]:
    chunk: list[ObjectInfo] = []
    size = 0
    for info in infos:
        chunk.append(info)
        size += info.size
        if size >= size_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def fetch_batches(
    store: ObjectStore,
    infos: list[ObjectInfo],
    batch_bytes: int = 16 << 20,
    threads: int = 8,
    processes: int | None = None,
) -> Iterator[DecodedBatch]:
    """Yield decoded segments in batches of about ``batch_bytes``, in order.

    A backlog of several batches is decoded by worker processes
    (``compaction.parallel``; ``processes`` None chooses, 0 or 1 decodes here).
    ``threads`` threads fetch; one thread decodes, in order (decoding holds the
    GIL, so more decoders would only contend for it), and turns each batch's
    metric events into columns in one go. The next batch is fetched and decoded
    while the caller works on the current one, so at most two batches are in memory.
    """
    chunks = list(_chunks(infos, batch_bytes))
    workers = parallel.process_count(processes, len(chunks))
    if workers:
        size = parallel.batch_size(sum(info.size for info in infos), batch_bytes, workers)
        if size < batch_bytes:
            chunks = list(_chunks(infos, size))
        yield from parallel.decode_in_processes(store, chunks, workers)
        return
    fetchers = ThreadPoolExecutor(max(1, threads), thread_name_prefix="evtrack-fetch")
    decoder = ThreadPoolExecutor(1, thread_name_prefix="evtrack-decode")
    try:
        ahead: Future | None = None
        for chunk in chunks:
            batch = decoder.submit(_decode_batch, chunk, [fetchers.submit(_get, store, info) for info in chunk])
            if ahead is not None:
                yield ahead.result()
            ahead = batch
        if ahead is not None:
            yield ahead.result()
    finally:
        decoder.shutdown(wait=True, cancel_futures=True)
        fetchers.shutdown(wait=True, cancel_futures=True)
