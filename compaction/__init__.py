"""The compaction job: folds the event log's inbox into Parquet tables (see ``compactor``).

``Compactor``, ``compact`` and ``CompactionReport`` load on first use, so that a
process can set itself up (``compaction.process_setup``) before pyarrow loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compaction.compactor import CompactionReport, Compactor, compact

__all__ = ["CompactionReport", "Compactor", "compact"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from compaction import compactor

        return getattr(compactor, name)
    raise AttributeError(f"module 'compaction' has no attribute {name!r}")
