"""The tail's metric points in SQL (``all_metrics``, ``metrics``): every distinct point once,
whatever mix of duplicates, NaN and infinities, across snapshots that reuse the points of
earlier ones (``evtrack.read.tail_points``) and across compactions."""

from __future__ import annotations

import math
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evtrack
from evtrack.entities import Metric
from evtrack.read import tail_points

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, -0.0, 1.5, math.nan])
)
points = st.tuples(st.integers(0, 2), st.sampled_from(["loss", "acc"]), st.integers(0, 3), st.integers(0, 2), values)
rounds = st.lists(st.tuples(st.lists(points, max_size=12), st.booleans()), min_size=1, max_size=5)


def _key(run_id: str, key: str, value: float, step: int, timestamp: int) -> tuple:
    return (run_id, key, "nan" if math.isnan(value) else value, step, timestamp)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=rounds)
def test_sql_sees_each_distinct_point_once(rounds: list, fresh_evtrack: None, monkeypatch) -> None:
    monkeypatch.setattr(tail_points, "CHUNK", 5)  # chunks kept from one snapshot to the next
    from compaction import Compactor
    from evtrack.store import open_store

    with tempfile.TemporaryDirectory() as store:
        evtrack.set_tracking_uri(store)
        client = evtrack.EvtrackClient(store)
        runs = [client.create_run("0").info.run_id for _ in range(3)]
        logged: set[tuple] = set()
        compacted: set[tuple] = set()
        for batch, compact in rounds:
            metrics = [Metric(key, value, 1000 + ts, step) for _, key, step, ts, value in batch]
            for (run, *_), metric in zip(batch, metrics):
                client.log_batch(runs[run], metrics=[metric])
                logged.add(_key(runs[run], metric.key, metric.value, metric.step, metric.timestamp))
            client.flush()
            if compact:
                Compactor(open_store(store), grace_seconds=0).run()
                compacted = set(logged)
            distinct = [_key(*row.values()) for row in evtrack.sql("SELECT * FROM metrics").to_pylist()]
            tail = evtrack.sql("SELECT * FROM tail_metrics").to_pylist()
            assert sorted(distinct, key=repr) == sorted(logged, key=repr)
            assert len(distinct) == len(set(distinct))
            # the tail holds each point not yet compacted exactly once (a compacted one may be logged again)
            tail_keys = [_key(*row.values()) for row in tail]
            assert len(tail_keys) == len(set(tail_keys))
            assert logged - compacted <= set(tail_keys) <= logged
