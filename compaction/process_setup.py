"""How a process of its own that compacts is set up: no pandas, the system allocator for Arrow.

**No pandas.**
pyarrow imports pandas, when it is installed, on its first conversion of a
Python list (to learn whether the list is a pandas object): 0.4–0.6 s of CPU,
as much as compacting 10,000 events. The compaction workers, and the
``evtrack compact`` and ``evtrack gc`` console commands (processes of their
own: ``evtrack.cli.main``), convert lists but never pandas objects, so they
refuse the import and pyarrow converts without it. Code that imports evtrack
(a notebook, the server, ``cli`` invoked in-process) is never affected.

**The system allocator.** pyarrow allocates with jemalloc by default, which keeps
the memory a compaction's many short-lived buffers freed: compacting 8,000 short
runs peaked at ~270 MiB with it and ~170 MiB with the C library's allocator, which
was also no slower (benchmarks/bench_short_runs.py). The allocator is chosen when
pyarrow loads, so these processes set ``ARROW_DEFAULT_MEMORY_POOL=system`` before
that, unless the variable is set already.
"""

from __future__ import annotations

import os
import sys


class _RefusePandas:
    """An import finder that refuses pandas."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded by evtrack's compaction processes")
        return None


def refuse_pandas() -> None:
    """From now on this process does not import pandas (unless it already has)."""
    if "pandas" not in sys.modules and not any(isinstance(f, _RefusePandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefusePandas())


def use_system_allocator() -> None:
    """Arrow's buffers from the C library's allocator in this process (before pyarrow loads; else nothing)."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def setup_compaction_process() -> None:
    """A process that is a compaction's alone: no pandas, the system allocator."""
    refuse_pandas()
    use_system_allocator()
