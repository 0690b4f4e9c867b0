"""Search snapshots kept on disk (``evtrack.query.snapshot_file``): built once per manifest version,
attached read-only by later processes, and answering exactly as the index built in memory.

The reference is the same store searched with the snapshot file turned off
(``EVTRACK_SNAPSHOT_MIN_RUNS`` above the store's size): the in-memory build every store used before.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import evtrack
from compaction import compact
from evtrack.entities import Metric, Param, RunTag, ViewType
from evtrack.errors import InvalidParameterError
from evtrack.query import snapshot_file
from evtrack.read import backend as backend_module

from conftest import reset_evtrack_globals

SEARCHES: list[tuple[str, list[str] | None, int]] = [
    ("", None, ViewType.ACTIVE_ONLY),
    ("metrics.rmse < 0.5", ["metrics.rmse"], ViewType.ACTIVE_ONLY),
    ("params.model = 'lasso' and metrics.r2 > 0.2", None, ViewType.ALL),
    ("tags.developer LIKE 'a%'", ["params.alpha DESC"], ViewType.ACTIVE_ONLY),
    ("tags.team = 'vision'", None, ViewType.ALL),  # set only in the tail
    ("", ["attributes.start_time ASC"], ViewType.DELETED_ONLY),
]
QUERIES = [
    "SELECT run_id, status, lifecycle_stage FROM runs ORDER BY run_id",
    "SELECT run_id, key, value FROM params ORDER BY ALL",
    "SELECT run_id, key, value, step FROM latest_metrics ORDER BY ALL",
    "SELECT run_id, key, value FROM tags ORDER BY ALL",
]


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_evtrack: None) -> Path:
    """A cache directory of this test, with snapshots kept for stores of any size."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EVTRACK_CACHE_DIR", str(cache))
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "0")
    return cache


def fill(uri: str, n: int, seed: int, tail: bool = True) -> None:
    """``n`` runs with params, metrics and tags, compacted; with ``tail``, changes logged after it."""
    rng = random.Random(seed)
    client = evtrack.EvtrackClient(uri)
    experiments = [client.create_experiment(f"e{seed}-{i}") for i in range(2)]
    ids = []
    for i in range(n):
        run = client.create_run(rng.choice(experiments), start_time=rng.choice([1000, 2000, 3000]), run_name=f"r{i}")
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, round(rng.random(), 2), 10, 0) for k in ("rmse", "r2") if rng.random() < 0.9],
            params=[Param("model", rng.choice(["lasso", "ridge"])), Param("alpha", str(i % 4))],
            tags=[RunTag("developer", rng.choice(["anna", "bob", "ahmad"]))],
        )
        if i % 3 == 0:
            client.set_terminated(rid, "FINISHED", end_time=5000)
        ids.append(rid)
    client.delete_run(ids[1])
    client.flush()
    compact(backend_module.get_backend(uri).store, grace_seconds=0)
    if tail:
        for rid in ids[::5]:
            client.set_tag(rid, "team", "vision")
        client.log_metric(ids[2], "rmse", 0.01, timestamp=20, step=11)
        client.delete_run(ids[3])
        client.flush()


def answers(uri: str) -> list[Any]:
    """Every search of SEARCHES (paged by 7) and every query of QUERIES, from a new backend."""
    reset_evtrack_globals()
    client = evtrack.EvtrackClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    out: list[Any] = []
    for filter_string, order_by, view in SEARCHES:
        token, pages = None, []
        while True:
            runs = client.search_runs(experiments, filter_string, view, 7, order_by, token)
            pages.append([(r.info.run_id, r.info.status, r.data.params, r.data.metrics, r.data.tags) for r in runs])
            token = runs.token
            if not token:
                break
        out.append(pages)
    for query in QUERIES:
        out.append(_sql(uri, query))
    return out


def _sql(uri: str, query: str) -> list[dict]:
    evtrack.set_tracking_uri(uri)
    return evtrack.sql(query).to_pylist()


def snapshots(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("*/snapshots/*") if not p.name.startswith("."))


def test_answers_equal_the_in_memory_index(kept: Path, local_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(local_uri, 40, seed=1)
    built = answers(local_uri)  # builds the snapshot, then searches over it
    [path] = snapshots(kept)
    assert json.loads((path / "meta.json").read_text())["runs"] == 40
    attached = answers(local_uri)  # a new backend attaches the file
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "1000")
    in_memory = answers(local_uri)
    assert built == in_memory
    assert attached == in_memory
    assert snapshots(kept) == [path]


def test_small_stores_keep_no_snapshot_by_default(kept: Path, local_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVTRACK_SNAPSHOT_MIN_RUNS")
    fill(local_uri, 10, seed=2)
    answers(local_uri)
    assert snapshots(kept) == []
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "10")
    answers(local_uri)
    assert len(snapshots(kept)) == 1


def test_a_new_process_attaches_without_building(kept: Path, local_uri: str) -> None:
    fill(local_uri, 30, seed=3)
    code = (
        "import sys, evtrack\n"
        "c = evtrack.EvtrackClient(sys.argv[1])\n"
        "ids = [e.experiment_id for e in c.search_experiments()]\n"
        "print(sorted(r.info.run_id for r in c.search_runs(ids, 'metrics.rmse < 0.7', max_results=100)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def search() -> str:
        done = subprocess.run([sys.executable, "-c", code, local_uri], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = search()
    [path] = snapshots(kept)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in path.iterdir()}
    assert search() == first
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in path.iterdir()} == before
    assert snapshots(kept) == [path]


@pytest.mark.parametrize("damage", ["db.duckdb", "info.arrow", "params.offsets.arrow", "meta.json"])
def test_a_damaged_snapshot_is_dropped_and_rebuilt(
    kept: Path, local_uri: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    fill(local_uri, 25, seed=4)
    good = answers(local_uri)
    [path] = snapshots(kept)
    (path / damage).write_bytes(b"not what was written" * 3)
    with caplog.at_level(logging.WARNING, logger="evtrack.query.snapshot_file"):
        assert answers(local_uri) == good
    assert any(str(path) in r.getMessage() and "cannot be read" in r.getMessage() for r in caplog.records)
    assert not path.exists()
    assert answers(local_uri) == good  # the next backend builds it again
    assert snapshots(kept) == [path]


def test_an_unwritable_cache_searches_in_memory(
    tmp_path: Path,
    local_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    fresh_evtrack: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "1000")
    fill(local_uri, 15, seed=5)
    reference = answers(local_uri)
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory cannot be made here")
    monkeypatch.setenv("EVTRACK_CACHE_DIR", str(blocker))
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "0")
    with caplog.at_level(logging.WARNING, logger="evtrack.query.snapshot_file"):
        assert answers(local_uri) == reference
    assert any("could not keep a search snapshot" in r.getMessage() for r in caplog.records)


def test_each_version_gets_its_own_snapshot_and_old_ones_go(kept: Path, local_uri: str) -> None:
    client = evtrack.EvtrackClient(local_uri)
    exp = client.create_experiment("versions")
    store = backend_module.get_backend(local_uri).store
    seen = []
    for round_ in range(4):
        for i in range(5):
            client.log_param(client.create_run(exp, run_name=f"v{round_}-{i}").info.run_id, "round", str(round_))
        client.flush()
        compact(store, grace_seconds=0)
        backend_module._backends.clear()
        runs = evtrack.EvtrackClient(local_uri).search_runs([exp], "params.round = '%d'" % round_, max_results=50)
        assert sorted(r.info.run_name for r in runs) == [f"v{round_}-{i}" for i in range(5)]
        seen.append(snapshots(kept)[-1].name)
    assert len(set(seen)) == 4
    assert [p.name for p in snapshots(kept)] == seen[-snapshot_file.KEEP :]


def test_a_store_made_again_at_the_same_uri_is_not_confused(
    kept: Path, local_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(local_uri, 12, seed=6, tail=False)
    first = answers(local_uri)
    shutil.rmtree(local_uri.removeprefix("file://"))
    fill(local_uri, 12, seed=7, tail=False)  # version 1 again, other runs
    again = answers(local_uri)
    assert len(snapshots(kept)) == 2
    monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", "1000")
    assert again == answers(local_uri)
    assert again != first


def test_a_bad_threshold_is_named(kept: Path, local_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(local_uri, 3, seed=8, tail=False)
    for raw in ("many", "-1"):
        monkeypatch.setenv("EVTRACK_SNAPSHOT_MIN_RUNS", raw)
        backend_module._backends.clear()
        with pytest.raises(InvalidParameterError, match="EVTRACK_SNAPSHOT_MIN_RUNS"):
            evtrack.EvtrackClient(local_uri).search_runs(["0"], "")


def test_snapshots_of_all_stores_stay_within_the_cache_size(
    kept: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uris = [str(tmp_path / f"store-{i}") for i in range(3)]
    for seed, uri in enumerate(uris):
        fill(uri, 8, seed=10 + seed, tail=False)
        answers(uri)
    sizes = [sum(f.stat().st_size for f in p.iterdir()) for p in snapshots(kept)]
    assert len(sizes) == 3
    monkeypatch.setenv("EVTRACK_CACHE_MAX_BYTES", str(max(sizes) + min(sizes) - 1))
    fill(uris[0], 8, seed=20, tail=False)  # a second version of the first store
    answers(uris[0])
    first_store = snapshot_file.location(backend_module.get_backend(uris[0]).store, _manifest(uris[0])).parent
    assert [(p.parent, p.name[:20]) for p in snapshots(kept)] == [(first_store, f"{2:020d}")]


def _manifest(uri: str) -> Any:
    reader = backend_module.get_backend(uri).reader
    reader.refresh()
    return reader.manifest


def test_an_old_version_is_searched_without_keeping_a_snapshot(
    kept: Path, local_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = evtrack.EvtrackClient(local_uri)
    exp = client.create_experiment("old")
    store = backend_module.get_backend(local_uri).store
    for round_ in range(3):
        client.log_param(client.create_run(exp).info.run_id, "round", str(round_))
        client.flush()
        compact(store, grace_seconds=0)
        answers(local_uri)
    newest = [p.name for p in snapshots(kept)]
    assert [name[:20] for name in newest] == [f"{2:020d}", f"{3:020d}"]
    with caplog.at_level(logging.WARNING, logger="evtrack.query.snapshot_file"):
        rows = evtrack.sql("SELECT value FROM params ORDER BY value", version=1).to_pylist()
    assert rows == [{"value": "0"}]
    assert [p.name for p in snapshots(kept)] == newest
    assert not caplog.records


def test_a_dead_builders_temporary_directory_goes(kept: Path, local_uri: str) -> None:
    fill(local_uri, 5, seed=30, tail=False)
    answers(local_uri)
    [path] = snapshots(kept)
    dead = path.parent / ".tmp-999999-1-dead"
    busy = path.parent / ".tmp-999998-1-busy"
    for tmp in (dead, busy):
        tmp.mkdir()
        (tmp / "db.duckdb").write_bytes(b"half written")
    os.utime(dead, (0, 0))  # long ago: its builder is gone
    fill(local_uri, 5, seed=31, tail=False)  # a new version: a build, then a trim
    answers(local_uri)
    assert not dead.exists() and busy.exists()


def test_store_paths_with_glob_characters_read_their_own_files(
    kept: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, sibling = str(tmp_path / "st*re[1]"), str(tmp_path / "stXre1")
    for uri, n, seed in ((mine, 3, 40), (sibling, 5, 41)):
        fill(uri, n, seed=seed, tail=False)
    for name in ("metrics", "events"):  # the sibling's rows at the very paths mine's would glob to
        for own in Path(mine, "tables", name).glob("*.parquet"):
            shutil.copy(next(Path(sibling, "tables", name).glob("*.parquet")), Path(sibling, "tables", name, own.name))
    for uri, n in ((mine, 3), (sibling, 5)):
        reset_evtrack_globals()
        evtrack.set_tracking_uri(uri)
        points = evtrack.sql("SELECT count(DISTINCT run_id) AS n FROM metrics").to_pylist()
        assert points == [{"n": n}]
        assert evtrack.sql("SELECT count(*) AS n FROM events WHERE type = 'run_created'").to_pylist() == [{"n": n}]


def test_damage_inside_the_database_file_is_found_by_the_search_and_rebuilt(
    kept: Path, local_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    fill(local_uri, 400, seed=50)
    good = answers(local_uri)
    [path] = snapshots(kept)
    db = path / "db.duckdb"
    data = bytearray(db.read_bytes())
    for at in range(len(data) // 2, len(data) - 64, 8192):  # the blocks, not the header: same size
        data[at : at + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="evtrack.query.snapshot_file"):
        assert answers(local_uri) == good
    assert any("cannot be read" in r.getMessage() for r in caplog.records)
    assert answers(local_uri) == good
    [again] = snapshots(kept)
    assert again == path and (again / "db.duckdb").read_bytes() != bytes(data)  # written again, whole
