"""``evtrack quickstart``: a sweep tracked, compacted and summed up, then the commands to try next.

Run twice on one store, through click's CliRunner; the printed commands are run as
printed (``search`` and ``sql`` in-process, ``ui`` as a real subprocess).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import free_port, read_inbox

import evtrack
from compaction.compactor import CompactionReport
from evtrack.cli import cli
from evtrack.quickstart import compaction_sentence, shell_arg
from evtrack.store import open_store

RUN_ROW = re.compile(r"^  (\S+)\s+(lasso|ridge)\s+\S+\s+[\d.]+\s+[\d.]+  ([0-9a-f]{32})$", re.M)
COMPACTED = re.compile(r"^Compacted ([\d,]+) events from ([\d,]+) inbox files into .* manifest v(\d+)\)", re.M)


@pytest.fixture(autouse=True)
def _isolated(fresh_evtrack: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_CACHE_DIR", str(tmp_path / "table-cache"))


@dataclass
class Quickstart:
    """One ``evtrack quickstart`` as a user reads it."""

    output: str
    sweep: str
    best: list[tuple[str, str]]  # (run name, run id), as printed
    commands: list[str]  # the "next" commands, as printed
    inbox_events: int  # events in the store's inbox right after it
    inbox_files: int

    @classmethod
    def run(cls, store: str) -> Quickstart:
        result = CliRunner().invoke(cli, ["quickstart", "--tracking-uri", store], prog_name="evtrack")
        assert result.exit_code == 0, (result.output, result.exception)
        out = result.stdout
        summary = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        commands = [line.strip() for line in out.splitlines() if line.startswith("    evtrack ")]
        best = [(name, run_id) for name, _, run_id in RUN_ROW.findall(out)]
        files = [i.key for i in open_store(store).list("events/") if i.key.endswith(".jsonl")]
        return cls(out, summary["sweep"], best, commands, len(read_inbox(store)), len(files))

    def command(self, name: str) -> list[str]:
        """The printed ``evtrack NAME …`` command, split as a POSIX shell splits it."""
        return shlex.split(next(c for c in self.commands if c.startswith(f"evtrack {name} ")))


def sweep_runs(store: str, sweep: str) -> set[str]:
    evtrack.set_tracking_uri(store)
    runs = evtrack.search_runs(
        filter_string=f"tags.sweep = '{sweep}'", search_all_experiments=True, output_format="list"
    )
    return {r.info.run_id for r in runs}


@pytest.fixture
def twice(tmp_path: Path) -> tuple[str, Quickstart, Quickstart]:
    """The quickstart run twice on one store."""
    store = str(tmp_path / "store")
    return store, Quickstart.run(store), Quickstart.run(store)


def test_a_second_quickstart_prints_only_its_own_sweep(twice: tuple[str, Quickstart, Quickstart]) -> None:
    store, first, second = twice
    assert first.sweep != second.sweep
    first_runs, second_runs = sweep_runs(store, first.sweep), sweep_runs(store, second.sweep)
    assert len(first_runs) == len(second_runs) == 10 and not first_runs & second_runs
    assert len(second.best) == 5
    assert {run_id for _, run_id in second.best} <= second_runs
    names = [name for name, _ in second.best]
    assert len(set(names)) == len(names), second.output  # no run listed twice, once per sweep
    assert f"tags.sweep = '{second.sweep}'" in second.output
    assert "lasso  runs=5" in second.output and "ridge  runs=5" in second.output  # the SQL: this sweep only


def _compacted(q: Quickstart) -> tuple[int, int, int]:
    found = COMPACTED.search(q.output)
    assert found, q.output
    events, files, version = (int(g.replace(",", "")) for g in found.groups())
    return events, files, version


def test_compaction_is_told_in_plain_words_with_its_numbers(twice: tuple[str, Quickstart, Quickstart]) -> None:
    _, first, second = twice
    (events1, files1, version1), (events2, files2, version2) = _compacted(first), _compacted(second)
    # no inbox file is old enough to delete yet: the inbox still holds every event of both sweeps
    assert (events1, files1) == (first.inbox_events, first.inbox_files)
    assert (events1 + events2, files1 + files2) == (second.inbox_events, second.inbox_files)
    assert events2 > 300 and (version1, version2) == (1, 2)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (
            CompactionReport(version=3, events=1234, segments=12, files_written=40),
            "Compacted 1,234 events from 12 inbox files into the runs, params, metrics and tags tables "
            "(40 table files, manifest v3): searches now read these tables, not the raw log.",
        ),
        (
            CompactionReport(version=1, events=1, segments=1, files_written=1, quarantined_lines=2),
            "Compacted 1 event from 1 inbox file into the runs, params, metrics and tags tables "
            "(1 table file, manifest v1) (2 kept aside in quarantine): searches now read these tables, "
            "not the raw log.",
        ),
        (CompactionReport(version=7), "Nothing new to compact: the tables (manifest v7) already hold every event."),
    ],
)
def test_compaction_sentence(report: CompactionReport, expected: str) -> None:
    assert compaction_sentence(report) == expected


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("/tmp/store", "/tmp/store"),
        ("s3://bucket/tracking", "s3://bucket/tracking"),
        ("metrics.rmse ASC", "metrics.rmse ASC"),
        ("tags.sweep = 'ab12' and metrics.r2 > 0.5", "tags.sweep = 'ab12' and metrics.r2 > 0.5"),
        ("/home/me/my $store", "/home/me/my $store"),
        ('say "hi" it\'s', 'say "hi" it\'s'),
    ],
)
def test_shell_arg_survives_a_shell(text: str, split: str) -> None:
    assert shlex.split(shell_arg(text)) == [split]
    echoed = subprocess.run(["sh", "-c", f"printf %s {shell_arg(text)}"], capture_output=True, text=True, check=True)
    assert echoed.stdout == split


def test_printed_search_and_sql_commands_run_as_printed(twice: tuple[str, Quickstart, Quickstart]) -> None:
    store, _, second = twice
    search, sql = second.command("search"), second.command("sql")
    assert search[search.index("--tracking-uri") + 1] == store
    assert sql[sql.index("--tracking-uri") + 1] == store
    runner = CliRunner()
    found = runner.invoke(cli, search[1:], prog_name="evtrack")
    assert found.exit_code == 0, found.output
    listed = re.findall(r"^([0-9a-f]{32})\s", found.stdout, re.M)
    assert listed and set(listed) <= sweep_runs(store, second.sweep)
    assert listed[:5] == [run_id for _, run_id in second.best]  # the same order as the quickstart's table
    queried = runner.invoke(cli, sql[1:], prog_name="evtrack")
    assert queried.exit_code == 0, queried.output
    rows = [line.split() for line in queried.stdout.splitlines()[2:]]
    assert sorted(row[:2] for row in rows) == [["lasso", "5"], ["ridge", "5"]]


def test_printed_ui_command_serves_the_sweep(twice: tuple[str, Quickstart, Quickstart], tmp_path: Path) -> None:
    store, _, second = twice
    ui = second.command("ui")
    assert ui[ui.index("--backend-store-uri") + 1] == store
    page = re.search(r"then open http://127\.0\.0\.1:5000(/experiments/\d+)", second.output).group(1)  # type: ignore[union-attr]
    port = free_port()
    script = Path(sys.executable).with_name("evtrack")
    proc = subprocess.Popen(
        [str(script), *ui[1:], "--port", str(port), "--compact-every", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        html = _wait_for_page(f"http://127.0.0.1:{port}{page}", proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "nyc-taxi-experiment" in html
    assert all(f'data-run-id="{run_id}"' in html for _, run_id in second.best)


def _wait_for_page(url: str, proc: Any) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        return response.text
    raise AssertionError(f"evtrack ui did not answer {url} within 30s")
