"""The system-metrics monitor of a run: a daemon thread that samples, averages and logs ``system/…``.

One monitor per run started with system metrics (``start_run(log_system_metrics=True)``, or
``…ENABLE_SYSTEM_METRICS_LOGGING`` / ``enable_system_metrics_logging()``). ``end_run`` stops it,
and so do the run's context manager (on success or failure) and interpreter exit.

    start ─▶ prime ─▶ ┌─▶ wait sampling_interval ─▶ sample every sampler ─┐  × samples_before_logging
                      │                                                  │
                      └── log_batch(the means, step n); n += 1 ◀─────────┘

Each reading comes after a wait, so the CPU utilization of a point covers the interval before it
(a reading right after ``prime`` would measure a few microseconds and say 0).
    stop  ─▶ wake the thread; readings not yet logged are dropped (as MLflow); close the samplers

Steps count from 0 (a resumed run goes on after its highest ``system/`` step), as MLflow's;
a point's timestamp is when it is logged. Logging appends to the client's buffer
(``log_batch``) and never waits on the network. A sampler that raises is a warning once and is
skipped from then on; a ``log_batch`` that fails (the run deleted) is a warning and ends the
monitor. Nothing here raises into the training process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable

from evtrack.entities import Metric
from evtrack.eventlog.events import now_ms
from evtrack.read import backend
from evtrack.tracking.system_metrics import config
from evtrack.tracking.system_metrics.base import Sampler
from evtrack.tracking.system_metrics.config import log

if TYPE_CHECKING:
    from evtrack.tracking.client import TrackingClient

STOP_TIMEOUT = 2.0  # seconds end_run waits for a sample in progress; the thread is a daemon anyway
THREAD_NAME = "SystemMetricsMonitor"


def default_samplers() -> list[Sampler]:
    """CPU and memory, disk, network and, when NVML finds one, NVIDIA GPUs (needs psutil)."""
    from evtrack.tracking.system_metrics.cpu import CpuSampler
    from evtrack.tracking.system_metrics.disk import DiskSampler
    from evtrack.tracking.system_metrics.gpu import GpuSampler, GpuUnavailableError
    from evtrack.tracking.system_metrics.network import NetworkSampler

    samplers: list[Sampler] = []
    for make in (CpuSampler, DiskSampler, NetworkSampler):
        try:
            samplers.append(make())
        except Exception as exc:
            log.warning("evtrack: the %s system metrics cannot be read (%r); they are skipped", make.name, exc)
    try:
        samplers.append(GpuSampler())
    except GpuUnavailableError as exc:
        log.info("evtrack: no GPU metrics: %s", exc)
    except Exception as exc:
        log.warning("evtrack: the GPU system metrics cannot be read (%r); they are skipped", exc)
    return samplers


class SystemMetricsMonitor:
    """Samples system metrics on a daemon thread and logs their means to one run.

    Unset arguments come from the settings (``config``): the sampling interval, the samples
    averaged per logged point and the node id (keys ``system/<node_id>/…``).
    """

    def __init__(
        self,
        client: TrackingClient,
        run_id: str,
        *,
        sampling_interval: float | None = None,
        samples_before_logging: int | None = None,
        node_id: str | None = None,
        first_step: int = 0,
        samplers: Iterable[Sampler] | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.sampling_interval = sampling_interval if sampling_interval is not None else config.sampling_interval()
        self.samples_before_logging = (
            samples_before_logging if samples_before_logging is not None else config.samples_before_logging()
        )
        self.node_id = node_id if node_id is not None else config.node_id()
        self.prefix = config.METRIC_PREFIX + (f"{self.node_id}/" if self.node_id else "")
        self.step = first_step
        self.samplers = list(samplers) if samplers is not None else default_samplers()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the sampling thread (a daemon: it never keeps the interpreter alive)."""
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop sampling; waits at most ``timeout`` seconds for a reading in progress."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        try:
            self._each("prime")
            while self.samplers and not self._stop.is_set():
                for _ in range(self.samples_before_logging):
                    if self._stop.wait(self.sampling_interval):
                        return
                    self._each("sample")
                if not self._publish():
                    return
        except Exception as exc:  # a bug here must not surface in the training process
            log.warning("evtrack: system metrics monitoring of run %s stopped: %r", self.run_id, exc)
        finally:
            for sampler in self.samplers:
                try:
                    sampler.close()
                except Exception:
                    pass

    def _each(self, method: str) -> None:
        """Call ``method`` on every sampler; one that raises is a warning and is dropped."""
        for sampler in list(self.samplers):
            try:
                getattr(sampler, method)()
            except Exception as exc:
                self.samplers.remove(sampler)
                log.warning(
                    "evtrack: the %s system metrics of run %s cannot be read (%r); they are skipped from now on",
                    sampler.name,
                    self.run_id,
                    exc,
                )

    def _publish(self) -> bool:
        """Log the means of this round at the next step; False when logging failed."""
        values: dict[str, float] = {}
        for sampler in self.samplers:
            values.update(sampler.aggregate())
            sampler.clear()
        if not values:
            return True
        ts = now_ms()
        try:
            self.client.log_batch(
                self.run_id, metrics=[Metric(self.prefix + k, v, ts, self.step) for k, v in values.items()]
            )
        except Exception as exc:
            log.warning("evtrack: could not log system metrics to run %s (%s); monitoring stops", self.run_id, exc)
            return False
        self.step += 1
        return True


# -- one monitor per run: started by start_run, stopped by end_run -------------------------

_monitors: dict[str, SystemMetricsMonitor] = {}
_lock = threading.Lock()
_psutil_warned = False


def _psutil_available() -> bool:
    global _psutil_warned
    try:
        import psutil  # noqa: F401
    except ImportError:
        if not _psutil_warned:
            _psutil_warned = True
            log.warning(
                "evtrack: system metrics need the package psutil, which is not installed: run "
                "`pip install psutil` (or `pip install 'evtrack[system-metrics]'`). Runs log no system "
                "metrics until then; turn them off with start_run(log_system_metrics=False) or "
                "evtrack.disable_system_metrics_logging()."
            )
        return False
    return True


def next_step(client: TrackingClient, run_id: str) -> int:
    """The step after the highest ``system/…`` step the run has (0 when it has none)."""
    try:
        state = client._run_view(run_id)
    except Exception:
        return 0
    series = state.metrics.get(run_id, {})
    steps = [s.latest[0] for key, s in series.items() if config.is_system_metric(key) and s.latest]
    return max(steps) + 1 if steps else 0


def start_for_run(
    client: TrackingClient, run_id: str, log_system_metrics: bool | None, resumed: bool = False
) -> SystemMetricsMonitor | None:
    """Start the run's monitor when system metrics are asked for (argument, else the environment)."""
    if not config.logging_enabled(log_system_metrics) or not _psutil_available():
        return None
    with _lock:
        current = _monitors.get(run_id)
        if current is not None and current.running:
            return current  # the run is already monitored (resumed in another thread)
        try:
            monitor = SystemMetricsMonitor(client, run_id, first_step=next_step(client, run_id) if resumed else 0)
            monitor.start()
        except Exception as exc:
            log.warning("evtrack: could not start system metrics monitoring of run %s: %r", run_id, exc)
            return None
        _monitors[run_id] = monitor
    return monitor


def monitor_of(run_id: str) -> SystemMetricsMonitor | None:
    """The monitor of a run, if it has one."""
    return _monitors.get(run_id)


def stop_for_run(run_id: str) -> None:
    """Stop the run's monitor, if it has one."""
    with _lock:
        monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        monitor.stop()


def stop_all() -> None:
    """Stop every monitor (at interpreter exit, before the final flush)."""
    for run_id in list(_monitors):
        stop_for_run(run_id)


backend.on_exit(stop_all)
