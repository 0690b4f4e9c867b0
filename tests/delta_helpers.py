"""Reading a store's tables as Delta tables with delta-rs (``deltalake``), as an outside engine would.

Shared by tests/test_delta.py and the compaction race and crash tests, which check
that every table's Delta log agrees with the manifests.
"""

from __future__ import annotations

import math
import os
from typing import Any


def storage_options(store_uri: str) -> dict[str, str] | None:
    """delta-rs' S3 options for the moto server (or the real endpoint) of the tests; None locally."""
    if not store_uri.startswith("s3://"):
        return None
    return {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
    }


def table_uri(store_uri: str, table: str) -> str:
    """Where an engine finds ``table``: ``<store root>/tables/<table>``."""
    root = store_uri.rstrip("/") if "://" in store_uri else os.path.abspath(store_uri)
    return f"{root}/tables/{table}"


def delta_table(store_uri: str, table: str, version: int | None = None) -> Any:
    """delta-rs' ``DeltaTable`` of a store's table (at ``version``)."""
    from deltalake import DeltaTable

    return DeltaTable(table_uri(store_uri, table), version=version, storage_options=storage_options(store_uri))


def read_delta(store_uri: str, table: str, version: int | None = None) -> Any:
    """A table's rows (a pyarrow Table) as Polars' Delta reader reads them (delta-rs for the log).

    Not ``DeltaTable.to_pyarrow_table()``: with deltalake 1.6 and pyarrow 25 its scanner
    threads make ~15% of processes abort at exit ("terminate called without an active
    exception", delta-io/delta-rs#2184); and not delta-rs' ``QueryBuilder``, whose S3 range
    reads hang on moto's server.
    """
    import polars as pl

    frame = pl.read_delta(table_uri(store_uri, table), version=version, storage_options=storage_options(store_uri))
    return frame.to_arrow()


def delta_keys(store_uri: str, table: str, version: int | None = None) -> set[str]:
    """The store keys (``tables/<table>/…``) of the files a Delta version lists."""
    uris = delta_table(store_uri, table, version).file_uris()
    return {"tables/" + u.split("/tables/", 1)[1] for u in uris}


def canon(rows: list[dict[str, Any]]) -> list[tuple]:
    """Rows as sorted tuples, NaN spelled so that it equals itself."""
    out = []
    for r in rows:
        out.append(tuple((k, "NaN" if isinstance(v, float) and math.isnan(v) else v) for k, v in sorted(r.items())))
    return sorted(out, key=repr)


def check_delta_agrees(store_uri: str) -> None:
    """Every table's newest Delta version holds exactly the newest manifest's files, and every
    Delta version mirrors a manifest, in rising order, one version per manifest."""
    from compaction import delta
    from evtrack.state import manifest as mf
    from evtrack.state import tables
    from evtrack.store import open_store

    store = open_store(store_uri)
    newest = mf.load(store)
    for table in tables.all_tables():
        dt = delta_table(store_uri, table)
        assert dt.transaction_version("evtrack") == newest.version, table
        assert delta_keys(store_uri, table) == {f["path"] for f in newest.files(table)}, table
        mirrored = [e.manifest_version for e in delta.version_map(store, table)]
        assert mirrored == sorted(set(mirrored)), (table, mirrored)  # rising, never twice
        kept = mf.list_versions(store)
        assert [v for v in mirrored if v in kept] == kept, (table, mirrored, kept)  # each manifest once
