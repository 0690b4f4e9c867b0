"""Registering from several processes at once: names and version numbers stay exact."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from typing import Any

import pytest

import evtrack
from evtrack.registry import claims
from evtrack.store import open_store

VERSIONS = 5  # per process
PROCESSES = {"local": 6, "s3": 4}  # moto answers every process from one Python process: fewer there


def _register_worker(uri: str, worker: int, name: str, barrier: Any, results: Any) -> None:
    """Register VERSIONS versions of one model (created by whoever comes first)."""
    import evtrack

    evtrack.set_tracking_uri(uri)
    barrier.wait()
    for i in range(VERSIONS):
        mv = evtrack.register_model(f"/models/w{worker}/{i}", name, tags={"worker": str(worker)})
        results.put((worker, i, mv.version))


_ENV_PREFIXES = ("AWS_", "EVTRACK_")


def _child(env: dict[str, str], target: Any, *args: Any) -> None:
    """Run ``target`` with this test's AWS_* and EVTRACK_* environment (the forkserver has the
    environment of the moment it started)."""
    for key in [k for k in os.environ if k.startswith(_ENV_PREFIXES)]:
        del os.environ[key]
    os.environ.update(env)
    target(*args)


def _run_workers(target: Any, args_of: Any, n: int, expected: int | None = None) -> list[Any]:
    # Not plain fork: forking a process that runs moto's server and DuckDB threads can crash the
    # child inside native code. A forkserver is a fresh interpreter that forks the workers: safe
    # like spawn, and it imports evtrack once for all of them.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["evtrack", "evtrack.registry.client"])
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    procs = [ctx.Process(target=_child, args=(env, target, *args_of(w), barrier, results)) for w in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in range(n if expected is None else expected)]
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n
    return out


def test_concurrent_registration_numbers_versions_without_gaps_or_duplicates(tracking_uri: str, cache_dir: Any) -> None:
    processes = PROCESSES["s3" if tracking_uri.startswith("s3://") else "local"]
    total = processes * VERSIONS
    results = _run_workers(_register_worker, lambda w: (tracking_uri, w, "shared"), processes, total)
    assert len(results) == total
    numbers = [version for _, _, version in results]
    assert sorted(numbers) == list(range(1, total + 1))  # 1..N: no gap, no duplicate
    for w in range(processes):  # each process saw its own versions in increasing order
        mine = [v for worker, _, v in sorted(results) if worker == w]
        assert mine == sorted(mine)

    client = evtrack.EvtrackClient(tracking_uri)
    versions = {mv.version: mv for mv in client.search_model_versions("name = 'shared'")}
    assert sorted(versions) == list(range(1, total + 1))
    by_source = {(w, i): v for w, i, v in results}
    for (w, i), number in by_source.items():  # each number holds the version that claimed it
        assert versions[number].source == f"/models/w{w}/{i}"
        assert versions[number].tags == {"worker": str(w)}
    assert [m.name for m in client.search_registered_models()] == ["shared"]  # created once
    model_id = client._registry().live_model_named("shared").model_id
    assert sorted(claims.version_claims(open_store(tracking_uri), model_id)) == list(range(1, total + 1))
    assert evtrack.sql(
        "select count(*) as n, count(distinct version) as d, max(version) as top from model_versions"
    ).to_pylist() == [{"n": total, "d": total, "top": total}]


def _create_worker(uri: str, name: str, barrier: Any, results: Any) -> None:
    import evtrack

    client = evtrack.EvtrackClient(uri)
    barrier.wait()
    try:
        client.create_registered_model(name, description=f"by {multiprocessing.current_process().pid}")
        results.put("created")
    except evtrack.ResourceAlreadyExistsError:
        results.put("exists")


def test_concurrent_creation_of_one_name_has_one_winner(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> None:
    results = _run_workers(_create_worker, lambda w: (local_uri, "contested"), 6)
    assert Counter(results) == Counter({"created": 1, "exists": 5})
    client = evtrack.EvtrackClient(local_uri)
    assert [m.name for m in client.search_registered_models()] == ["contested"]


def _rename_worker(uri: str, source: str, barrier: Any, results: Any) -> None:
    import evtrack

    client = evtrack.EvtrackClient(uri)
    barrier.wait()
    try:
        client.rename_registered_model(source, "target")
        results.put(source)
    except evtrack.ResourceAlreadyExistsError:
        results.put(None)


def test_concurrent_renames_into_one_name_have_one_winner(local_uri: str, fresh_evtrack: None, cache_dir: Any) -> None:
    client = evtrack.EvtrackClient(local_uri)
    sources = [f"m{i}" for i in range(4)]
    for name in sources:
        client.create_registered_model(name)
        client.create_model_version(name, f"/{name}")
    results = _run_workers(_rename_worker, lambda w: (local_uri, sources[w]), len(sources))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    names = sorted(m.name for m in client.search_registered_models())
    assert names == sorted([n for n in sources if n != winners[0]] + ["target"])
    assert client.get_model_version("target", 1).source == f"/{winners[0]}"


@pytest.mark.parametrize("method", ["spawn"])
def test_a_fresh_interpreter_sees_and_extends_the_registry(
    method: str, local_uri: str, fresh_evtrack: None, cache_dir: Any
) -> None:
    client = evtrack.EvtrackClient(local_uri)
    client.create_registered_model("m")
    client.create_model_version("m", "/v1")
    ctx = multiprocessing.get_context(method)
    barrier = ctx.Barrier(1)
    results = ctx.Queue()
    proc = ctx.Process(target=_register_worker, args=(local_uri, 0, "m", barrier, results))
    proc.start()
    assert [results.get(timeout=120)[2] for _ in range(VERSIONS)] == list(range(2, VERSIONS + 2))
    proc.join(120)
    assert proc.exitcode == 0
    assert [v.version for v in client.search_model_versions(order_by=["version_number"])] == list(
        range(1, VERSIONS + 2)
    )
