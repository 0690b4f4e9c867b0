"""Shared helpers of the benchmark scripts: figures, tables, JSON output, a loopback S3 server.

Nothing here asserts on timings: the scripts print what they measure, next to
the targets of the issues, and exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


@dataclass
class Figure:
    """One measured number, with its unit, an optional baseline and an optional target."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None  # the same workload on the baseline system, same run
    baseline_name: str = ""
    higher_is_better: bool = True
    target: str = ""  # e.g. ">= 200000" or "< 2"; ">= 30x" is a target on the ratio to the baseline
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (> 1 means better)."""
        if self.value is None or self.baseline in (None, 0) or self.value == 0:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value

    @property
    def meets_target(self) -> bool | None:
        """Whether the figure meets its target (None when there is no target or no figure)."""
        if not self.target or self.value is None:
            return None
        op, _, num = self.target.partition(" ")
        value: float | None = self.value
        if num.endswith("x"):
            value, num = self.ratio, num[:-1]
            if value is None:
                return None
        limit = float(num.replace(",", "").replace("_", ""))
        return {">=": value >= limit, ">": value > limit, "<=": value <= limit, "<": value < limit}[op]


@dataclass
class Report:
    """The figures of one benchmark run, printed as a table and optionally saved as JSON."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    load_at_start: list[float] | None = field(default_factory=load_average)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        return fig

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def print(self) -> None:
        print()
        print(f"== {self.title} ==")
        print(machine_line() + f"; load average at start {self.load_at_start}")
        headers = ("figure", "value", "unit", "baseline", "ratio", "target", "meets")
        rows = []
        for f in self.figures:
            base = "" if f.baseline is None else f"{fmt(f.baseline)} ({f.baseline_name})"
            ratio = "" if f.ratio is None else f"{f.ratio:,.1f}x"
            meets = {None: "", True: "yes", False: "NO"}[f.meets_target]
            rows.append((f.name, fmt(f.value), f.unit, base, ratio, f.target, meets))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
        print(line)
        print("-" * len(line))
        for r in rows:
            print(
                "  ".join(c.ljust(w) if i in (0, 2, 3, 5, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            )
        notes = [f"{f.name}: {f.note}" for f in self.figures if f.note] + self.notes
        if notes:
            print()
            for n in notes:
                print(f"* {n}")
        print("ratio = how many times better than the baseline measured in this run (>1: evtrack is better)")

    def save(self, path: str | None) -> None:
        if not path:
            return
        doc = {
            "title": self.title,
            "machine": machine_info(),
            "load_at_start": self.load_at_start,
            "figures": [{**asdict(f), "ratio": f.ratio, "meets_target": f.meets_target} for f in self.figures],
            "notes": self.notes,
            "extra": self.extra,
        }
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=2)
        print(f"figures written to {path}")


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "executable": sys.executable,
        "loadavg": load_average(),
    }


def machine_line() -> str:
    m = machine_info()
    load = "" if m["loadavg"] is None else f", load average {m['loadavg'][0]}/{m['loadavg'][1]}/{m['loadavg'][2]}"
    return f"python {m['python']} on {m['platform']}, {m['cpus']} CPUs{load} ({m['executable']})"


def median_of(fn: Callable[[], float], n: int) -> float:
    return statistics.median(fn() for _ in range(n))


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh process; it must print one JSON object as its last line.

    The result also holds ``tree_pss_peak``: the most memory the child and its own
    children held at once (``TreeMemorySampler``, sampled from this process so that the
    child runs no thread of its own for it).
    """
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
    )
    with TreeMemorySampler(proc.pid) as memory:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{stderr[-4000:]}")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return {**json.loads(lines[-1]), "tree_pss_peak": memory.peak}


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: unlike ``ru_maxrss``, which
    survives ``execve`` and so can report the parent's size for a fresh child, it
    belongs to this process image alone.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class TreeMemorySampler:
    """The peak proportional set size (PSS) of process ``pid`` and its descendants, sampled every ``interval`` s.

    Forked workers share their parent's pages; adding their RSS to the parent's counts
    those pages twice. PSS divides each shared page among the processes mapping it, so
    the sum over the process tree is the memory the tree holds. Linux only
    (``/proc/<pid>/smaps_rollup``); elsewhere ``peak`` stays 0.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)

    def __enter__(self) -> "TreeMemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.sample(self.pid))
            if self._stop.wait(self.interval):
                return

    @staticmethod
    def _children(pid: int) -> list[int]:
        out: list[int] = []
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out += [int(c) for c in fh.read().split()]
        except OSError:
            pass
        return out

    @classmethod
    def sample(cls, pid: int) -> int:
        """The PSS of process ``pid`` and its descendants now, in bytes."""
        total, todo = 0, [pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                continue
            todo += cls._children(pid)
        return total


# -- a real S3 API on loopback ----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


class MotoS3:
    """moto's ThreadedMotoServer on 127.0.0.1 with one bucket; sets the AWS environment for boto3."""

    def __init__(self, bucket: str = "bench") -> None:
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Any = None

    def __enter__(self) -> "MotoS3":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        os.environ.update(fake_aws_env(self.url))
        import boto3

        boto3.client("s3", endpoint_url=self.url).create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()


def have_moto() -> bool:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start
