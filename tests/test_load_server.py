"""The server load test (benchmarks/load_server.py) in a small size: MLflow clients in their own
processes, a searcher and a deleter against a 2-worker `evtrack server`, one worker SIGKILLed
half-way; every acknowledged metric point is in the store exactly once afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("psutil")
pytestmark = pytest.mark.timeout(300)

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "load_server.py"


def test_a_killed_worker_loses_and_doubles_nothing_acknowledged(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    args = ["--clients", "3", "--duration", "6", "--workers", "", "--kill", "--warmup", "8", "--batches", "5"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--json", str(out), "--dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "EVTRACK_CAPTURE_GIT": "0"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    account = doc["extra"]["accounts"]["evtrack 2w +kill"]
    assert account["acknowledged points"] > 0
    assert account["lost"] == 0 and account["doubled"] == 0
    assert doc["extra"]["phases"]["evtrack 2w +kill"]["killed"] is not None  # a worker really was killed
    figures = {f["name"]: f["value"] for f in doc["figures"]}
    assert figures["evtrack 2w +kill: metric points/s"] > 0
