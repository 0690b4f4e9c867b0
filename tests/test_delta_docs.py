"""docs/delta.md: every Python snippet and every ``evtrack`` command it shows runs as written.

The snippets run in a fresh Python process whose working directory holds a compacted
store at ``./evtrack-store``; the S3 snippet runs against the moto server, its bucket
``s3://ml-bucket/tracking`` replaced by the test's own.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import read_table_rows

from evtrack.store import open_store

DOC = (Path(__file__).resolve().parent.parent / "docs" / "delta.md").read_text(encoding="utf-8")
PYTHON = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
COMMANDS = [
    line.split("#", 1)[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", DOC, flags=re.DOTALL)
    for line in block.splitlines()
    if line.strip().startswith("evtrack ")
]
S3_ROOT = "s3://ml-bucket/tracking"


def populate(uri: str) -> None:
    """Two compactions of a small sweep (runs, params, metrics with a NaN)."""
    import evtrack
    from compaction import compact
    from evtrack.store import open_store

    evtrack.set_tracking_uri(uri)
    for i in range(3):
        with evtrack.start_run(run_name=f"run-{i}"):
            evtrack.log_params({"lr": str(0.1 * (i + 1)), "depth": str(i)})
            evtrack.log_metric("loss", float("nan") if i == 1 else 1.0 / (i + 1))
        evtrack.flush()
        if i == 0:
            compact(open_store(uri), grace_seconds=0)
    compact(open_store(uri), grace_seconds=0)


def run_python(code: str, cwd: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def local_store(tmp_path: Any, cache_dir: Any, fresh_evtrack: None) -> Any:
    populate(str(tmp_path / "evtrack-store"))
    return tmp_path


def test_the_page_has_snippets_for_each_reader() -> None:
    assert len(PYTHON) >= 5 and len(COMMANDS) >= 3
    text = "\n".join(PYTHON)
    for needle in (
        "DeltaTable(",
        "QueryBuilder(",
        "pl.read_delta(",
        "pl.scan_delta(",
        ".to_pandas()",
        "storage_options",
    ):
        assert needle in text
    for engine in ('spark.read.format("delta")', "USING DELTA LOCATION", "connector.name=delta_lake", "delta_scan("):
        assert engine in DOC


@pytest.mark.parametrize("code", [c for c in PYTHON if S3_ROOT not in c], ids=lambda c: c.split("\n")[0][:40])
def test_each_local_snippet_runs(code: str, local_store: Any) -> None:
    result = run_python(code, local_store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()  # each prints what it read


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_runs(command: str, local_store: Any) -> None:
    argv = shlex.split(command)[1:]
    code = "import sys; from evtrack.cli import main; sys.argv = ['evtrack', *sys.argv[1:]]; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=local_store,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EVTRACK_TRACKING_URI": "evtrack-store"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_s3_snippet_runs_on_s3(
    s3_uri: str, s3_endpoint: str, tmp_path: Any, cache_dir: Any, fresh_evtrack: None
) -> None:
    populate(s3_uri)
    (code,) = [c for c in PYTHON if S3_ROOT in c]
    result = run_python(code.replace(S3_ROOT, s3_uri), tmp_path, {"AWS_ALLOW_HTTP": "true"})
    assert result.returncode == 0, result.stderr
    version, tags = result.stdout.split()
    assert int(version) == 1  # two manifests: Delta versions 0 and 1
    assert int(tags) == len(read_table_rows(open_store(s3_uri), "tags")) > 0
