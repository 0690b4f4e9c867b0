"""Keeping pandas out of processes that never hand Arrow data to it.

pyarrow imports pandas, when it is installed, on its first conversion of a
Python list (to learn whether the list is a pandas object): 0.4–0.6 s of CPU,
as much as compacting 10,000 events. The compaction workers, and the
``evtrack compact`` and ``evtrack gc`` console commands (processes of their
own: ``evtrack.cli.main``), convert lists but never pandas objects, so they
refuse the import and pyarrow converts without it. Code that imports evtrack
(a notebook, the server, ``cli`` invoked in-process) is never affected.
"""

from __future__ import annotations

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
