"""The compaction job: folds the event log's inbox into Parquet tables (see ``compactor``)."""

from compaction.compactor import CompactionReport, Compactor, compact

__all__ = ["CompactionReport", "Compactor", "compact"]
