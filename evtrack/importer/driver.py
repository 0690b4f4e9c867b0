"""The import pass: experiments, then runs in flushed batches with markers, then the registry."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from evtrack.importer import source as src
from evtrack.importer.experiments import copy_experiment
from evtrack.importer.markers import Markers
from evtrack.importer.registry_copy import RegistryCounts, copy_registry
from evtrack.importer.runs import RunCounts, copy_run, fingerprint

BATCH_RUNS = 50  # runs per flush + marker: what an interrupted import redoes at most


@dataclass
class ImportSummary:
    """What one import wrote, skipped and could not carry."""

    source: str
    experiments: int = 0
    experiments_skipped: int = 0
    merged: list[str] = field(default_factory=list)
    runs: RunCounts = field(default_factory=RunCounts)
    registry: RegistryCounts = field(default_factory=RegistryCounts)
    not_carried: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The summary as printed by ``evtrack import``."""
        r, g = self.runs, self.registry
        rate = r.runs / self.seconds if self.seconds else 0.0
        out = [
            f"imported from {self.source} in {self.seconds:.1f}s:",
            f"  experiments: {self.experiments} new, {self.experiments_skipped} already imported",
            f"  runs: {r.runs} new ({rate:.1f}/s), {r.skipped} already imported",
            f"  params: {r.params}, tags: {r.tags}, metric points: {r.metric_points:,}, dataset inputs: {r.inputs}",
            f"  artifacts: {r.artifacts} files, {r.artifact_bytes:,} bytes",
            f"  registry: {g.models} models, {g.versions} versions, {g.aliases} aliases, {g.tags} tags written",
        ]
        out += [f"  merged into the existing experiment of the same name: {name}" for name in self.merged]
        left = {k: v for k, v in self.not_carried.items() if v != 0}
        if left:
            shown = ", ".join(f"{k} ({'count unknown' if v < 0 else v})" for k, v in left.items())
            out.append(f"  not carried (evtrack import does not copy these): {shown}")
        out += [f"  problem: {p}" for p in r.problems + g.problems]
        return out


class Progress:
    """A one-line progress bar on a stream: runs done/total, metric points, and their rates."""

    def __init__(self, total: int, stream: TextIO | None, every: float = 0.5) -> None:
        self.total, self.stream, self.every = total, stream, every
        self.start = self.last = time.monotonic()
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def show(self, n: RunCounts, final: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not final and now - self.last < (self.every if self.tty else 5 * self.every):
            return
        self.last = now
        dt = max(now - self.start, 1e-9)
        done = n.runs + n.skipped
        width = 24
        bar = "#" * (width * done // self.total if self.total else width)
        text = (
            f"[{bar:<{width}}] runs {done}/{self.total} ({n.runs / dt:.1f}/s)  "
            f"metric points {n.metric_points:,} ({n.metric_points / dt:,.0f}/s)  artifacts {n.artifacts}"
        )
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()


def import_store(
    source: str,
    dest: Any,
    *,
    progress: TextIO | None = sys.stderr,
    after_run: Callable[[int], None] | None = None,
    batch_runs: int = BATCH_RUNS,
) -> ImportSummary:
    """Copy the MLflow tracking store at ``source`` into evtrack client ``dest``'s store.

    Runs are flushed, then marked as imported, ``batch_runs`` at a time; ``after_run`` is
    called with the number of runs handled so far after each copied run.
    """
    began = time.monotonic()
    uri = src.normalize_source(source)
    mlflow = src.mlflow_client(uri)
    tag = src.source_key(uri)
    summary = ImportSummary(uri)
    markers = Markers(dest.store, tag)
    exps = src.experiments(mlflow)
    targets = {}
    for exp in exps:
        target, written = copy_experiment(dest, exp, markers, tag)
        targets[exp.experiment_id] = target
        summary.experiments += written
        summary.experiments_skipped += not written
        if target.merged:
            summary.merged.append(f"{exp.name!r} (evtrack id {target.experiment_id})")
    all_runs = [(exp, run) for exp in exps for run in src.runs(mlflow, exp.experiment_id)]
    bar = Progress(len(all_runs), progress)
    n = summary.runs
    batch: dict[str, str] = {}
    for exp, run in all_runs:
        fp = fingerprint(run)
        if markers.runs.get(run.info.run_id) == fp:
            n.skipped += 1
        else:
            target = targets[exp.experiment_id]
            copy_run(dest, mlflow, run, target.experiment_id, target.artifact_location, tag, n)
            batch[run.info.run_id] = fp
            if len(batch) >= batch_runs:
                _commit(dest, markers, batch)
                batch = {}
            if after_run is not None:
                after_run(n.runs + n.skipped)
        bar.show(n)
    _commit(dest, markers, batch)
    bar.show(n, final=True)
    copy_registry(dest, mlflow, summary.registry)
    dest.flush()
    summary.not_carried = src.not_carried(mlflow, [e.experiment_id for e in exps])
    summary.seconds = time.monotonic() - began
    return summary


def _commit(dest: Any, markers: Markers, batch: dict[str, str]) -> None:
    if not batch:
        return
    result = dest.flush()
    if not result.durable:
        from evtrack.errors import StoreError

        raise StoreError(f"the store did not take the imported events ({result.error}); rerun to resume")
    markers.runs_done(dict(batch))
