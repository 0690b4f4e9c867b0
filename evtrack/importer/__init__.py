"""``evtrack import``: copy an MLflow tracking store into an evtrack store.

One pass, read through MLflow's own client (never its database tables)::

    open source (MlflowClient) ── experiments ──▶ claim ids/names, experiment events, marker
                                   │
                                   ├─ runs, page by page ─▶ batch of runs: events with
                                   │    deterministic (ts, eid), artifacts streamed via a
                                   │    temp file ─▶ flush ─▶ batch marker (run -> fingerprint)
                                   │
                                   └─ registry ─▶ models, versions, stages, aliases, tags
                                        (compared first: only what differs is written)

Idempotence: every event gets an id derived from the source object it stands for and a
time taken from the source (a run's start and end time, a point's timestamp), so copying
an object twice folds to the same state. Markers under ``catalog/imports/<source>/`` say
which experiments and runs (with a fingerprint of each run) are durable in the store: a
second import skips them and writes nothing; an interrupted one redoes only the runs of
the batch it was in.
"""

from __future__ import annotations

from evtrack.importer.driver import ImportSummary, import_store
from evtrack.importer.source import ImportSourceError

__all__ = ["ImportSourceError", "ImportSummary", "import_store"]
