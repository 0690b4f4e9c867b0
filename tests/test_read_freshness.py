"""Reads without a store listing per call (issue 19): own writes, other processes' writes, the window.

A reader lists the store (manifests, inbox) only when that can tell it something: its own
writer hands it every segment it appends; a local directory store says when a directory
changed; on S3 the listing is reused for ``EVTRACK_READ_FRESHNESS`` seconds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

import pytest

import evtrack
from evtrack.errors import InvalidParameterError
from evtrack.read.backend import get_backend
from evtrack.store.base import list_keys


class _CountingStore:
    """The store of a backend, counting its listings by prefix (what S3 bills and waits for)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.lists: Counter = Counter()

    def list(self, prefix: str = "", start_after: str | None = None):
        self.lists[prefix] += 1
        return self._inner.list(prefix, start_after)

    def list_keys(self, prefix: str = ""):
        self.lists[prefix] += 1
        return list_keys(self._inner, prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _count_listings(uri: str) -> _CountingStore:
    backend = get_backend(uri)
    counting = _CountingStore(backend.store)
    backend.reader.store = counting
    return counting


def _log_elsewhere(uri: str, run_id: str, key: str, value: float) -> None:
    """Log a metric from another process and flush it there."""
    code = textwrap.dedent(
        f"""
        import evtrack
        client = evtrack.EvtrackClient({uri!r})
        client.log_metric({run_id!r}, {key!r}, {value!r})
        assert client.flush().durable
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _create_run_elsewhere(uri: str) -> str:
    code = f"import evtrack; c = evtrack.EvtrackClient({uri!r}); print(c.create_run('0').info.run_id); c.flush()"
    done = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    return done.stdout.strip()


def test_own_writes_are_read_without_listing(store_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "60")
    client = evtrack.EvtrackClient(store_uri)
    run_id = client.create_run("0").info.run_id
    client.get_run(run_id)  # the first read lists
    counting = _count_listings(store_uri)
    for i in range(5):
        client.log_metric(run_id, "loss", float(i), step=i)
        client.set_tag(run_id, "i", str(i))
        run = client.get_run(run_id)  # flushes, then reads what it just wrote
        assert run.data.metrics["loss"] == float(i)
        assert run.data.tags["i"] == str(i)
    if store_uri.startswith("s3://"):
        assert counting.lists["events/"] == 0  # within the window: the handed-over segments only
    else:
        assert counting.lists["events/"] == 5  # a local store lists when its inbox changed: here, each write


def test_local_store_lists_only_when_a_directory_changed(local_uri: str, fresh_evtrack: None) -> None:
    client = evtrack.EvtrackClient(local_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)
    client.flush()
    time.sleep(0.1)  # the directory's change time settles
    client.get_run(run_id)
    counting = _count_listings(local_uri)
    for _ in range(20):
        assert client.get_run(run_id).data.metrics == {"m": 1.0}
        client.search_runs(["0"])
    assert counting.lists["events/"] == 0  # nothing changed: no listing at all

    _log_elsewhere(local_uri, run_id, "m", 2.0)
    assert client.get_run(run_id).data.metrics == {"m": 2.0}  # another process's write, at once
    assert counting.lists["events/"] == 1


def test_s3_reuses_a_listing_within_the_window(s3_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "2")
    client = evtrack.EvtrackClient(s3_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)
    assert client.get_run(run_id).data.metrics == {"m": 1.0}
    counting = _count_listings(s3_uri)
    started = time.monotonic()
    _log_elsewhere(s3_uri, run_id, "m", 2.0)
    seen = client.get_run(run_id).data.metrics["m"]
    if time.monotonic() - started < 2:
        assert seen == 1.0  # another process's write: not yet, within the documented window
        assert counting.lists["events/"] == 0
    time.sleep(max(0.0, 2.05 - (time.monotonic() - started)))
    assert client.get_run(run_id).data.metrics == {"m": 2.0}  # past the window: listed and seen
    assert counting.lists["events/"] == 1


def test_s3_window_zero_lists_every_call_once(s3_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "0")
    client = evtrack.EvtrackClient(s3_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)
    client.search_runs(["0"])
    counting = _count_listings(s3_uri)
    _log_elsewhere(s3_uri, run_id, "m", 2.0)
    assert client.get_run(run_id).data.metrics == {"m": 2.0}  # at once, as DESIGN's invariant 6
    found = client.search_runs(["0"])
    assert [r.data.metrics for r in found] == [{"m": 2.0}]
    assert counting.lists["events/"] == 2  # one listing per public call, not one per internal read


def test_a_run_created_elsewhere_is_found_within_the_window(s3_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "60")
    client = evtrack.EvtrackClient(s3_uri)
    client.search_runs(["0"])  # listed once: the window is open for a minute
    run_id = _create_run_elsewhere(s3_uri)
    assert client.get_run(run_id).info.run_id == run_id  # a miss lists again before answering
    client.log_param(run_id, "alpha", "0.5")  # and the run takes writes here
    assert client.get_run(run_id).data.params == {"alpha": "0.5"}


def test_bad_freshness_setting_is_named(local_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVTRACK_READ_FRESHNESS", "soon")
    client = evtrack.EvtrackClient(local_uri)
    with pytest.raises(InvalidParameterError, match="EVTRACK_READ_FRESHNESS must be a number of seconds"):
        client.search_runs(["0"])


def test_own_writes_pending_across_a_compaction_here_are_read_once(store_uri: str, fresh_evtrack: None) -> None:
    """Own segments handed to the reader, then compacted by this process before it reads: the
    read takes the folded ones from the new manifest and the rest from the tail, each point once."""
    from compaction import Compactor

    client = evtrack.EvtrackClient(store_uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 0.0, step=0)
    assert client.get_run(run_id).data.metrics == {"loss": 0.0}  # read: own segments are handed over from now on
    for step in (1, 2):
        client.log_metric(run_id, "loss", float(step), step=step)
        client.set_tag(run_id, "t", str(step))
        client.flush()
    Compactor(client.store, grace_seconds=0).run()  # folds steps 0-2, this process's reader not refreshed since
    client.log_metric(run_id, "loss", 3.0, step=3)  # pending, not in the manifest
    client.flush()
    run = client.get_run(run_id)
    assert run.data.metrics == {"loss": 3.0} and run.data.tags["t"] == "2"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert get_backend(store_uri).reader.bad_lines == []


def test_write_checks_of_many_runs_share_one_listing(local_uri: str, fresh_evtrack: None) -> None:
    """A server re-checks each run it writes to once per write-check TTL; checks may use a listing
    up to half that old, so writing to many runs does not list the store once a run."""
    client = evtrack.EvtrackClient(local_uri)
    backend = get_backend(local_uri)
    backend.writable_ttl = 10.0
    runs = [client.create_run("0").info.run_id for _ in range(20)]
    client.get_run(runs[0])
    backend.writable_runs.clear()  # as after the TTL: every run is checked again
    counting = _count_listings(local_uri)
    for run_id in runs:
        client.log_metric(run_id, "m", 1.0)
        client.flush()  # the inbox changes between the checks
    assert counting.lists["events/"] <= 1
    backend.writable_ttl = None  # a plain process: each check reads the store as it is
    backend.writable_runs.clear()
    for run_id in runs:
        client.log_metric(run_id, "m", 2.0)
        client.flush()
    assert counting.lists["events/"] >= 20


def test_concurrent_refreshes_share_a_listing_that_began_after_them(local_uri: str, direct_writer) -> None:
    """Requests that wait for the reader while another lists take the next listing that began
    after they were called, instead of listing one after another under a steady inflow (the
    inbox changes during every listing); each still sees every write made before it was called."""
    import threading

    from evtrack.eventlog import events as ev
    from evtrack.read.reader import StoreReader
    from evtrack.store import open_store

    store = open_store(local_uri)
    w = direct_writer(store)

    def put(step: int) -> None:
        w.put([w.event(ev.MetricLogged, run_id="r1", key="m", value=float(step), step=step, timestamp=step)])

    put(0)
    reader = StoreReader(store)
    reader.refresh()
    slow, listing = _CountingStore(store), threading.Event()

    def slow_list_keys(prefix: str = ""):
        keys = list(list_keys(store, prefix))
        if prefix == "events/":
            slow.lists[prefix] += 1
            put(100 + slow.lists[prefix])  # a writer, while this listing is folded
            listing.set()
            time.sleep(0.3)
        return iter(keys)

    slow.list_keys = slow_list_keys  # type: ignore[method-assign]
    reader.store = slow
    put(1)
    first = threading.Thread(target=reader.refresh, kwargs={"max_age": 0})
    first.start()
    assert listing.wait(10)
    put(2)  # after the first listing began: the first refresh may miss it, the others may not
    seen: list[set[int]] = []

    def refresh_and_read() -> None:
        reader.refresh(max_age=0)
        seen.append(set(reader.metric_history("r1", "m").column("step").to_pylist()))

    later = [threading.Thread(target=refresh_and_read) for _ in range(3)]
    for t in later:
        t.start()
    for t in [first, *later]:
        t.join(30)
    assert len(seen) == 3 and all({0, 1, 2, 101} <= steps for steps in seen)
    assert slow.lists["events/"] == 2  # the first refresh's listing, and one for the three after it
