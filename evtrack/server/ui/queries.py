"""Read-only queries of the UI on the query engine (bound parameters only), where the client
API would need one call per run or per metric."""

from __future__ import annotations

import math
from typing import Any

from evtrack.server.ui.runs_table import Column

_IDS = "(SELECT unnest(?::VARCHAR[]))"


def _snapshot(client: Any):
    from evtrack.query.search import engine_of

    return engine_of(client._backend).snapshot()


def metric_histories(
    client: Any, run_ids: list[str], keys: list[str]
) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """``(run_id, key) -> (steps, values)`` ordered by step then timestamp, in one scan."""
    if not run_ids or not keys:
        return {}
    rows = _snapshot(client).rows(
        f"SELECT run_id, key, step, value FROM metrics WHERE run_id IN {_IDS} AND key IN {_IDS} "
        "ORDER BY run_id, key, step, timestamp",
        [run_ids, keys],
    )
    out: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for run_id, key, step, value in rows:
        steps, values = out.setdefault((run_id, key), ([], []))
        steps.append(float(step))
        values.append(float(value) if value is not None else math.nan)
    return out


def latest_points(client: Any, run_id: str) -> dict[str, tuple[int, int]]:
    """``key -> (step, timestamp)`` of each metric's latest value of a run."""
    rows = _snapshot(client).rows("SELECT key, step, timestamp FROM latest_metrics WHERE run_id = ?", [run_id])
    return {key: (step, ts) for key, step, ts in rows}


def experiment_keys(client: Any, experiment_id: str) -> list[Column]:
    """Every param, metric and tag key used by the experiment's runs, params first."""
    in_experiment = "run_id IN (SELECT run_id FROM runs WHERE experiment_id = ?)"
    rows = _snapshot(client).rows(
        f"SELECT DISTINCT 'param', key FROM params WHERE {in_experiment} "
        f"UNION ALL SELECT DISTINCT 'metric', key FROM latest_metrics WHERE {in_experiment} "
        f"UNION ALL SELECT DISTINCT 'tag', key FROM tags WHERE {in_experiment}",
        [experiment_id] * 3,
    )
    order = {"param": 0, "metric": 1, "tag": 2}
    return [Column(kind, key) for kind, key in sorted(rows, key=lambda r: (order[r[0]], r[1]))]
