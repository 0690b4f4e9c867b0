"""The architecture and code checks CI keeps: import-linter's contracts, ruff check and format, mypy.

Each runs as the tool's own command on the repository, configured in ``pyproject.toml``
(``[tool.importlinter]``, ``[tool.ruff]``, ``[tool.mypy]``); docs/architecture.md
explains the layers the import contracts hold.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: it is part of the test extra (pip install -e '.[test]')")
    return found


def test_imports_keep_the_layers_and_have_no_cycle() -> None:
    done = _run(_tool("lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    """The contracts can fail: a core module importing a feature is reported by name."""
    probe = ROOT / "evtrack" / "store" / "_layer_probe.py"
    probe.write_text("def probe():\n    from evtrack.tracking import fluent  # noqa: F401\n")
    try:
        done = _run(_tool("lint-imports"), "--no-cache")
    finally:
        probe.unlink()
    assert done.returncode != 0
    assert "evtrack.store._layer_probe -> evtrack.tracking.fluent" in done.stdout


def test_ruff_finds_nothing() -> None:
    done = _run(_tool("ruff"), "check", "--no-cache", "evtrack", "compaction", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_code_is_formatted() -> None:
    done = _run(_tool("ruff"), "format", "--check", "--no-cache", "evtrack", "compaction", "tests", "benchmarks")
    assert done.returncode == 0, "run `ruff format evtrack compaction tests benchmarks`:\n" + done.stdout + done.stderr


def test_the_public_api_type_checks() -> None:
    done = _run(sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_documented_layers_are_the_checked_ones() -> None:
    """docs/architecture.md's layer table lists the layers of the import contract, in order."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    checked = [sorted(part.strip() for part in layer.split("|")) for layer in layers]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc[doc.index("| layer | packages |") :].split("\n\n")[0].splitlines()[2:]
    documented = [sorted(re.findall(r"`((?:evtrack|compaction)[\w.]*)`", row.split("|")[2])) for row in table]
    assert documented == checked
