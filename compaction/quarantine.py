"""Quarantine: bad input is kept, reported and never folded or silently dropped.

``quarantine/lines/<segment>.json`` holds the undecodable lines of a segment
(line number, error, raw text); ``quarantine/segments/<name>`` a whole object
that is not a segment at all; ``quarantine/conflicts/<version>-<committer>.json``
the param values that lost to an earlier, different value. Line and segment keys
are derived from what is quarantined, so a retried compaction rewrites the same
objects. Conflict records are per commit attempt: an attempt that loses the
commit deletes its own, so it never overwrites the winner's (one killed before
committing may leave a duplicate record behind, never a missing one).
"""

from __future__ import annotations

import orjson

from evtrack.errors import ObjectNotFoundError
from evtrack.eventlog.events import BadLine
from evtrack.state.fold import ParamConflict
from evtrack.store.base import ObjectStore

PREFIX = "quarantine/"


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def quarantine_lines(store: ObjectStore, segment_key: str, bad: list[BadLine]) -> None:
    """Keep the bad lines of a segment."""
    doc = {
        "segment": segment_key,
        "lines": [{"line": b.line_no, "error": b.error, "raw": b.raw.decode("utf-8", "replace")} for b in bad],
    }
    store.put(f"{PREFIX}lines/{_name(segment_key)}.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def quarantine_object(store: ObjectStore, key: str) -> bool:
    """Move an object that is not a well-named segment out of the inbox; False if it is gone."""
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        return False  # another compactor moved it
    store.put(f"{PREFIX}segments/{_name(key)}", data)
    store.delete(key)
    return True


def quarantine_conflicts(store: ObjectStore, version: int, committer: str, conflicts: list[ParamConflict]) -> str:
    """Keep the param values rejected by the params-are-immutable rule; returns the record's key."""
    doc = [{"run_id": c.run_id, "key": c.key, "kept": c.kept, "rejected": c.rejected, "eid": c.eid} for c in conflicts]
    key = f"{PREFIX}conflicts/{version:020d}-{committer}.json"
    store.put(key, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return key
