"""``evtrack compact``: the printed report, ``--grace``, ``--rebuild``, and ``--every`` as a real process."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from evtrack.eventlog import events as ev
from evtrack.state import manifest as mf
from evtrack.cli import cli
from evtrack.store import ObjectStore, open_store

REPORT = re.compile(
    r"version (?P<version>\d+): (?P<segments>\d+) segments, (?P<events>\d+) events, (?P<files>\d+) files "
    r"\((?P<mb>[\d.]+) MB\) written in (?P<seconds>[\d.]+)s \((?P<rate>[\d,]+) events/s\), "
    r"(?P<quarantined>\d+) quarantined, (?P<deleted>\d+) inbox segments deleted"
)


@pytest.fixture(autouse=True)
def _isolated(cache_dir: Any, spool_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spool and table cache in tmp dirs; no tracking URI from the environment."""
    monkeypatch.delenv("EVTRACK_TRACKING_URI", raising=False)


def put_segments(store: ObjectStore, direct_writer: Any, n: int, points: int = 10, bad: bytes = b"") -> int:
    """``n`` segments of one writer with ``points`` metric points each (plus ``bad`` in the last)."""
    w = direct_writer(store)
    for i in range(n):
        w.put(
            [
                w.event(ev.MetricLogged, run_id=f"r{i % 3}", key="m", value=float(s), step=i * points + s, timestamp=s)
                for s in range(points)
            ],
            raw=bad if i == n - 1 else b"",
        )
    return n * points


def compact_cli(*args: str) -> tuple[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["compact", *args])
    assert result.exit_code == 0, result.output
    match = REPORT.search(result.output)
    assert match, result.output
    report = {
        k: float(v.replace(",", "")) if k in ("mb", "seconds", "rate") else int(v) for k, v in match.groupdict().items()
    }
    return result.output, report


def test_compact_prints_the_report(store_uri: str, direct_writer: Any, table_rows: Any) -> None:
    store = open_store(store_uri)
    events = put_segments(store, direct_writer, 4, bad=b'{"v": 1, "type": "metric", "truncat\n')

    _, report = compact_cli("--tracking-uri", store_uri, "--grace", "0")

    assert (report["version"], report["segments"], report["events"], report["quarantined"]) == (1, 4, events, 1)
    assert report["files"] >= 2 and report["mb"] >= 0.0 and report["rate"] > 0 and report["deleted"] == 4
    assert len(table_rows(store, "metrics")) == events
    assert list(store.list("quarantine/lines/"))

    _, again = compact_cli("--tracking-uri", store_uri, "--grace", "0")
    assert (again["version"], again["segments"], again["events"], again["files"]) == (1, 0, 0, 0)


def test_compact_takes_the_store_from_the_environment_and_honours_grace(
    local_uri: str, direct_writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(local_uri)
    put_segments(store, direct_writer, 2)
    monkeypatch.setenv("EVTRACK_TRACKING_URI", local_uri)

    _, report = compact_cli("--grace", "1h")
    assert (report["segments"], report["deleted"]) == (2, 0)
    assert len(list(store.list("events/"))) == 2  # folded, kept for the grace period
    _, report = compact_cli("--grace", "0s")
    assert (report["segments"], report["deleted"]) == (0, 2)
    assert list(store.list("events/")) == []


def test_compact_rebuild_rederives_the_tables(store_uri: str, direct_writer: Any, table_rows: Any) -> None:
    store = open_store(store_uri)
    w = direct_writer(store)
    w.put(
        [
            w.event(
                ev.RunCreated,
                run_id="r1",
                experiment_id="0",
                run_name="n",
                user_id="u",
                start_time=1,
                artifact_uri="file:///a",
                tags={"t": "1"},
            ),
            w.event(ev.ParamLogged, run_id="r1", key="p", value="1"),
        ]
    )
    events = put_segments(store, direct_writer, 3) + 2
    compact_cli("--tracking-uri", store_uri, "--grace", "0")
    put_segments(store, direct_writer, 2)
    compact_cli("--tracking-uri", store_uri, "--grace", "0")

    def snapshot() -> dict[str, Counter]:
        return {
            t: Counter(tuple(sorted(r.items())) for r in table_rows(store, t))
            for t in ("metrics", "runs", "params", "tags", "latest_metrics", "events")
        }

    before = snapshot()
    result = CliRunner().invoke(cli, ["compact", "--rebuild", "--tracking-uri", store_uri])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("rebuild: version 3: ")
    assert f"{events + 20} events" in result.output
    rebuilt = mf.load(store)
    assert (rebuilt.version, rebuilt.parent, rebuilt.committer) == (3, 2, "rebuild")
    assert snapshot() == before
    assert {f["path"] for f in rebuilt.files("metrics")}.isdisjoint(
        f["path"] for f in mf.load(store, 2).files("metrics")
    )  # written anew from the events table


def test_compact_rebuild_of_an_empty_store(local_uri: str) -> None:
    result = CliRunner().invoke(cli, ["compact", "--rebuild", "--tracking-uri", local_uri])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rebuild: version 0: 0 segments, 0 events")
    assert mf.list_versions(open_store(local_uri)) == []


def test_compact_rejects_a_bad_duration(local_uri: str) -> None:
    result = CliRunner().invoke(cli, ["compact", "--tracking-uri", local_uri, "--every", "soon"])
    assert result.exit_code == 2
    assert "'soon' is not a duration" in result.output


class Lines:
    """The lines a process prints, read by a thread so that a test can wait with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def next(self, timeout: float) -> str:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s; so far: {self.seen}") from None
        self.seen.append(line)
        return line

    def rest(self) -> list[str]:
        """Every line not read yet (call once the process has exited)."""
        time.sleep(0.2)
        out = []
        while not self.queue.empty():
            out.append(self.queue.get())
        return out


def test_compact_every_runs_until_sigterm_and_stops_cleanly(
    local_uri: str, direct_writer: Any, table_rows: Any
) -> None:
    exe = shutil.which("evtrack", path=os.path.dirname(sys.executable))
    assert exe, "the evtrack console script is installed next to the interpreter"
    store = open_store(local_uri)
    first = put_segments(store, direct_writer, 2)
    proc = subprocess.Popen(
        [exe, "compact", "--every", "1s", "--grace", "0", "--tracking-uri", local_uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = Lines(proc)
        report = REPORT.search(lines.next(60))
        assert report and report["segments"] == "2", lines.seen
        later = put_segments(store, direct_writer, 3)  # folded by the next passes
        folded = 0
        while folded < 3:
            report = REPORT.search(lines.next(30))
            assert report, lines.seen
            folded += int(report["segments"])
        assert folded == 3 and len(table_rows(store, "metrics")) == first + later
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rest = lines.rest()
    assert rest and rest[-1] == "stopped", lines.seen + rest
    assert "Traceback" not in err
