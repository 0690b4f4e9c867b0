"""The documented SQL views of a query database, over the names the engine registers or loads.

``base_<table>`` are the manifest version's tables (run tables, experiment and domain tables, the
append-only ``metrics`` and ``events``), ``tail_<table>`` a fresh snapshot's tail runs; the
``all_<run table>`` views join the two, and the documented views (``runs``, ``params``, …, listed
in ``evtrack.query.engine``) read ``all_*``. Views name tables and are bound when queried, so they
are made once per database and follow what is registered under those names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evtrack.state import tables
from evtrack.state.domains import domains

if TYPE_CHECKING:
    import duckdb

_RUN_VIEW_COLUMNS = (
    "run_id, r.experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, parent_run_id"
)
MAX_WIDE_KEYS = 1000


def create_all_views(con: "duckdb.DuckDBPyConnection", separate_tail: bool, fresh: bool) -> None:
    """``all_<run table>`` and ``all_metrics``: the base's rows, with the tail's when fresh."""
    for name in tables.RUN_TABLES:
        if separate_tail:
            con.execute(
                f"CREATE OR REPLACE VIEW all_{name} AS SELECT * FROM base_{name} "
                f"WHERE run_id NOT IN (SELECT run_id FROM tail_ids) "
                f"UNION ALL SELECT * FROM tail_{name}"
            )
        else:
            con.execute(f"CREATE OR REPLACE VIEW all_{name} AS SELECT * FROM base_{name}")
    if fresh:
        con.execute(
            "CREATE OR REPLACE VIEW all_metrics AS SELECT * FROM base_metrics UNION ALL SELECT * FROM tail_metrics"
        )
    else:
        con.execute("CREATE OR REPLACE VIEW all_metrics AS SELECT * FROM base_metrics")


def create_views(con: "duckdb.DuckDBPyConnection") -> None:
    """The documented views over the ``all_*`` and ``base_*`` names (``runs_wide`` is made
    by the first free SQL cursor of each snapshot)."""
    con.execute("""CREATE OR REPLACE VIEW experiments AS SELECT experiment_id, name, artifact_location,
                   lifecycle_stage, creation_time, last_update_time FROM base_experiments
                   WHERE created_ts >= 0""")
    con.execute("""CREATE OR REPLACE VIEW experiment_tags AS SELECT experiment_id, key, value
                   FROM base_experiment_tags WHERE value IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE VIEW runs AS SELECT {_RUN_VIEW_COLUMNS},
                   CASE WHEN e.lifecycle_stage = 'deleted' THEN 'deleted' ELSE r.lifecycle_stage END
                     AS lifecycle_stage
                   FROM all_runs r LEFT JOIN base_experiments e USING (experiment_id)
                   WHERE r.created_ts >= 0""")
    con.execute("CREATE OR REPLACE VIEW params AS SELECT run_id, key, value FROM all_params")
    con.execute("CREATE OR REPLACE VIEW tags AS SELECT run_id, key, value FROM all_tags WHERE value IS NOT NULL")
    con.execute(
        "CREATE OR REPLACE VIEW latest_metrics AS SELECT run_id, key, value, step, timestamp FROM all_latest_metrics"
    )
    con.execute(
        "CREATE OR REPLACE VIEW metrics AS SELECT DISTINCT run_id, key, value, step, timestamp FROM all_metrics"
    )
    con.execute(
        "CREATE OR REPLACE VIEW artifacts AS SELECT run_id, path, size, digest FROM all_artifacts WHERE size >= 0"
    )
    con.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM base_events")
    for domain in domains():
        for sql in domain.views:
            con.execute(sql)
    con.execute("""CREATE OR REPLACE VIEW inputs AS SELECT run_id, name, digest, context, source_type, source,
                   schema, profile, tags FROM all_inputs""")
    con.execute("CREATE OR REPLACE VIEW datasets AS SELECT * FROM inputs")


def create_wide(con: "duckdb.DuckDBPyConnection") -> None:
    cols, joins = [], []
    sources = (("params", "params", "value"), ("metrics", "latest_metrics", "value"), ("tags", "tags", "value"))
    for prefix, view, col in sources:
        keys = [
            k
            for (k,) in con.execute(f"SELECT DISTINCT key FROM {view} ORDER BY key LIMIT ?", [MAX_WIDE_KEYS]).fetchall()
        ]
        if not keys:
            continue
        alias = f"w_{prefix}"
        aggs = ", ".join(
            f"first({col}) FILTER (WHERE key = {sql_string(k)}) AS {quote_ident(prefix + '.' + k)}" for k in keys
        )
        joins.append(f"LEFT JOIN (SELECT run_id, {aggs} FROM {view} GROUP BY run_id) {alias} USING (run_id)")
        cols.extend(f"{alias}.{quote_ident(prefix + '.' + k)}" for k in keys)
    select = ", ".join(["runs.*"] + cols)
    con.execute(f"CREATE OR REPLACE VIEW runs_wide AS SELECT {select} FROM runs {' '.join(joins)}")


def quote_ident(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal (only for keys and paths from our own tables and store)."""
    return "'" + value.replace("'", "''") + "'"
