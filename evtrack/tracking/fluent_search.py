"""The module-level query API: ``evtrack.search_runs`` (as MLflow's) and ``evtrack.sql``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from evtrack.entities import Run, ViewType
from evtrack.errors import InvalidParameterError
from evtrack.tracking import fluent

if TYPE_CHECKING:
    import pyarrow as pa

SEARCH_MAX_RESULTS_PANDAS = 100_000
_PAGE = 50_000


def _experiment_ids(experiment_ids, experiment_names, search_all: bool, view_type: int) -> list[str]:
    client = fluent._client()
    if search_all:
        return [e.experiment_id for e in fluent.search_experiments(view_type=ViewType.ALL)]
    ids = [str(e) for e in ([experiment_ids] if isinstance(experiment_ids, (str, int)) else experiment_ids or [])]
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            ids.append(exp.experiment_id)
    if not ids and not experiment_names:
        ids = [fluent._resolve_experiment_id()]
    return ids


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_PANDAS,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching MLflow's filter grammar: a pandas DataFrame (MLflow's columns) or a list of ``Run``."""
    if output_format not in ("pandas", "list"):
        raise InvalidParameterError(f"Unsupported output format: {output_format!r}. Supported: 'pandas', 'list'")
    ids = _experiment_ids(experiment_ids, experiment_names, search_all_experiments, run_view_type)
    client = fluent._client()
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page = client.search_runs(
            ids, filter_string, run_view_type, min(_PAGE, max_results - len(runs)), order_by, token
        )
        runs.extend(page)
        token = page.token
        if token is None:
            break
    return runs if output_format == "list" else runs_to_pandas(runs)


def runs_to_pandas(runs: list[Run]):
    """MLflow's search_runs DataFrame: info columns, then metrics.*, params.*, tags.*."""
    try:
        import pandas as pd
    except ImportError:
        raise InvalidParameterError(
            "search_runs(output_format='pandas') needs pandas: pip install pandas, or pass output_format='list'"
        ) from None
    info_cols = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    data: dict[str, list] = {c: [getattr(r.info, c) for r in runs] for c in info_cols}
    for col in ("start_time", "end_time"):
        data[col] = pd.to_datetime(pd.Series(data[col], dtype="float64"), unit="ms", utc=True)
    for prefix, attr in (("metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        keys = sorted({k for r in runs for k in getattr(r.data, attr)})
        for key in keys:
            data[f"{prefix}.{key}"] = [getattr(r.data, attr).get(key) for r in runs]
    frame = pd.DataFrame(data)
    return frame


def sql(
    query: str,
    params: Sequence[Any] | None = None,
    *,
    version: int | None = None,
    fresh: bool = True,
    output_format: str = "arrow",
    timeout: float | None = None,
    max_rows: int | None = None,
) -> "pa.Table | Any":
    """Run a read-only SQL SELECT over the store's views (see ``evtrack.query.engine``).

    ``version`` pins a manifest version (time travel, without the tail);
    ``fresh=False`` skips the not-yet-compacted tail; ``output_format="pandas"``
    returns a DataFrame. ``timeout`` (seconds, 0 = none) and ``max_rows`` override
    ``EVTRACK_SQL_TIMEOUT`` / ``EVTRACK_SQL_MAX_ROWS``: a query past either limit fails
    with :class:`evtrack.query.limits.QueryLimitError` naming it (docs/settings.md).
    """
    from evtrack.query.limits import SqlLimits
    from evtrack.query.search import run_sql

    limits = SqlLimits.from_env().overriding(timeout, max_rows)
    client = fluent._client()
    if getattr(client, "remote", False):
        raise InvalidParameterError(
            f"evtrack.sql reads the store itself, and the tracking URI is a server ({client.tracking_uri}): "
            "open the server's SQL page (/sql), or point evtrack.sql at the store (a directory or s3://…)"
        )
    table = run_sql(client._backend, query, params, version, fresh, limits)
    if output_format == "pandas":
        return table.to_pandas()
    if output_format != "arrow":
        raise InvalidParameterError(f"Unsupported output format: {output_format!r}. Supported: 'arrow', 'pandas'")
    return table
