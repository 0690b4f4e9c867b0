"""System metrics (``start_run(log_system_metrics=True)``): MLflow's ``system/…`` metrics from a real
sampling thread, MLflow's settings and setters, the monitor's lifecycle, and the run page's grouping.

The sampling interval is 0.1 s here (MLflow's variable, which evtrack reads too), so a test sees
several points within a second. ``test_metric_names_match_mlflows_own_monitor`` runs MLflow's own
monitor on a sqlite store on the same machine and compares the metric names.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import evtrack
from evtrack.client import EvtrackClient
from evtrack.entities import Metric
from evtrack.tracking.system_metrics import monitor as monitor_module

psutil = pytest.importorskip("psutil")

# MLflow's names on a machine without a GPU (MLflow's CPUMonitor, DiskMonitor, NetworkMonitor)
BASE_NAMES = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}
CPU = "system/cpu_utilization_percentage"
SETTINGS = [
    f"{vendor}_{name}"
    for vendor in ("EVTRACK", "MLFLOW")
    for name in (
        "ENABLE_SYSTEM_METRICS_LOGGING",
        "SYSTEM_METRICS_SAMPLING_INTERVAL",
        "SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
        "SYSTEM_METRICS_NODE_ID",
    )
]


@pytest.fixture(autouse=True)
def system_metrics_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No system-metrics variable from outside; whatever a test (or a setter) sets is undone after it;
    sampling every 0.1 s."""
    for name in SETTINGS:
        monkeypatch.setenv(name, "unset")  # recorded, so the setters' writes are undone at teardown
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.1")
    monkeypatch.setattr(monitor_module, "_psutil_warned", False)


@pytest.fixture
def local_tracking(local_uri: str, fresh_evtrack: None) -> str:
    """A fresh local store as the tracking URI."""
    evtrack.set_tracking_uri(local_uri)
    return local_uri


def monitor_threads() -> list[threading.Thread]:
    """The live system-metrics sampling threads of this process."""
    return [t for t in threading.enumerate() if t.name == monitor_module.THREAD_NAME and t.is_alive()]


def history(run_id: str, key: str = CPU) -> list[Metric]:
    """The points of one metric of a run, read back through the public client."""
    return list(evtrack.MlflowClient().get_metric_history(run_id, key))


def wait_for_points(run_id: str, n: int, key: str = CPU, timeout: float = 15.0) -> list[Metric]:
    """Poll until the run has ``n`` points of ``key`` (the sampler runs in its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        points = history(run_id, key)
        if len(points) >= n or time.monotonic() > deadline:
            assert len(points) >= n, f"only {len(points)} points of {key} after {timeout}s"
            return points
        time.sleep(0.05)


# -- the metrics: MLflow's names, sane values, steps ------------------------------------------------


def test_system_metrics_have_mlflows_names_sane_values_and_rising_steps(tracking_uri: str) -> None:
    with evtrack.start_run(log_system_metrics=True) as run:
        points = wait_for_points(run.info.run_id, 3)
    metrics = evtrack.get_run(run.info.run_id).data.metrics
    system = {k for k in metrics if k.startswith("system/")}
    gpu = {k for k in system if re.fullmatch(r"system/gpu_\d+_\w+", k)}
    assert system - gpu == BASE_NAMES
    assert 0 <= metrics[CPU] <= 100
    total_mb = psutil.virtual_memory().total / 1e6
    assert 0 < metrics["system/system_memory_usage_megabytes"] <= total_mb
    assert 0 < metrics["system/system_memory_usage_percentage"] <= 100
    assert 0 < metrics["system/disk_usage_percentage"] <= 100
    disk = psutil.disk_usage(os.sep)
    assert metrics["system/disk_usage_megabytes"] == pytest.approx(disk.used / 1e6, rel=0.05)
    assert metrics["system/disk_available_megabytes"] > 0
    assert metrics["system/network_receive_megabytes"] >= 0 and metrics["system/network_transmit_megabytes"] >= 0
    steps = [p.step for p in points]
    assert steps == list(range(len(steps)))  # 0, 1, 2, … as MLflow's monitor
    assert [p.timestamp for p in points] == sorted(p.timestamp for p in points)
    assert all(p.value == round(p.value, 1) for p in points)  # means rounded to 0.1, as MLflow


def test_a_busy_process_shows_in_cpu_utilization(local_tracking: str) -> None:
    """A training loop that keeps a core busy shows from the first point on."""
    with evtrack.start_run(log_system_metrics=True) as run:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # keep one core busy
            pass
    points = history(run.info.run_id)
    assert points and points[0].value > 0


def test_samples_are_averaged_before_logging_and_network_is_a_running_total(
    local_tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three samples per point: memory is their mean (rounded to 0.1), the network total its latest."""
    used = itertools.cycle([100e6, 200e6, 330e6])
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(used=next(used), total=1000e6))
    received = itertools.count()
    monkeypatch.setattr(
        psutil, "net_io_counters", lambda: SimpleNamespace(bytes_recv=next(received) * 1e6, bytes_sent=0)
    )
    evtrack.set_system_metrics_samples_before_logging(3)
    with evtrack.start_run(log_system_metrics=True) as run:
        wait_for_points(run.info.run_id, 2, "system/system_memory_usage_megabytes")
    rid = run.info.run_id
    memory = history(rid, "system/system_memory_usage_megabytes")
    assert {p.value for p in memory} == {210.0}  # (100 + 200 + 330) / 3 = 210
    assert {p.value for p in history(rid, "system/system_memory_usage_percentage")} == {21.0}
    network = history(rid, "system/network_receive_megabytes")
    assert [p.value for p in network[:2]] == [3.0, 6.0]  # the last of each three readings since the start


# -- the thread: a daemon, stopped when the run ends --------------------------------------------------


def test_the_monitor_is_a_daemon_thread_that_stops_at_end_run(local_tracking: str) -> None:
    run = evtrack.start_run(log_system_metrics=True)
    (thread,) = monitor_threads()
    assert thread.daemon
    wait_for_points(run.info.run_id, 2)
    started = time.monotonic()
    evtrack.end_run()
    assert time.monotonic() - started < 1.0  # end_run does not wait for a sampling interval
    assert not thread.is_alive() and monitor_threads() == []
    count = len(history(run.info.run_id))
    time.sleep(0.4)
    assert len(history(run.info.run_id)) == count  # nothing more is logged after the end
    assert evtrack.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_failing_run_stops_its_monitor(local_tracking: str) -> None:
    with pytest.raises(ZeroDivisionError):
        with evtrack.start_run(log_system_metrics=True) as run:
            assert len(monitor_threads()) == 1
            _ = 1 / 0
    assert monitor_threads() == []
    assert evtrack.get_run(run.info.run_id).info.status == "FAILED"


def test_nested_runs_have_a_monitor_each(local_tracking: str) -> None:
    with evtrack.start_run(log_system_metrics=True):
        with evtrack.start_run(nested=True, log_system_metrics=True) as child:
            assert len(monitor_threads()) == 2
            wait_for_points(child.info.run_id, 1)
        assert len(monitor_threads()) == 1
    assert monitor_threads() == []


def test_a_resumed_run_goes_on_after_its_last_system_step(local_tracking: str) -> None:
    with evtrack.start_run(log_system_metrics=True) as run:
        wait_for_points(run.info.run_id, 2)
    first = [p.step for p in history(run.info.run_id)]
    with evtrack.start_run(run_id=run.info.run_id, log_system_metrics=True):
        wait_for_points(run.info.run_id, len(first) + 2)
    steps = [p.step for p in history(run.info.run_id)]
    assert steps[: len(first)] == first and steps == list(range(len(steps)))  # as MLflow's resume_logging


# -- turning it on and off: argument, environment, functions ----------------------------------------


def test_runs_log_no_system_metrics_by_default(local_tracking: str) -> None:
    with evtrack.start_run() as run:
        assert monitor_threads() == []
        time.sleep(0.3)
    assert not [k for k in evtrack.get_run(run.info.run_id).data.metrics if k.startswith("system/")]


@pytest.mark.parametrize("variable", ["EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"])
@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_the_environment_variable_enables_system_metrics(
    local_tracking: str, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with evtrack.start_run() as run:
        assert len(monitor_threads()) == 1
        wait_for_points(run.info.run_id, 1)
    with evtrack.start_run(log_system_metrics=False):  # the argument wins
        assert monitor_threads() == []


def test_evtracks_variable_wins_over_mlflows(local_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    with evtrack.start_run():
        assert monitor_threads() == []


def test_an_invalid_enable_value_is_a_warning_and_off(
    local_tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "yes please")
    with caplog.at_level(logging.WARNING, logger="evtrack.system_metrics"):
        with evtrack.start_run():
            assert monitor_threads() == []
    assert "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING" in caplog.text and "yes please" in caplog.text


def test_enable_and_disable_system_metrics_logging(local_tracking: str) -> None:
    evtrack.enable_system_metrics_logging()
    assert os.environ["EVTRACK_ENABLE_SYSTEM_METRICS_LOGGING"] == "true"  # inherited by child processes
    with evtrack.start_run():
        assert len(monitor_threads()) == 1
    with evtrack.start_run(log_system_metrics=False):
        assert monitor_threads() == []
    evtrack.disable_system_metrics_logging()
    with evtrack.start_run():
        assert monitor_threads() == []
    with evtrack.start_run(log_system_metrics=True):  # a run can still opt in
        assert len(monitor_threads()) == 1


def test_the_node_id_goes_into_the_keys(local_tracking: str) -> None:
    evtrack.set_system_metrics_node_id("node_0")
    with evtrack.start_run(log_system_metrics=True) as run:
        wait_for_points(run.info.run_id, 1, "system/node_0/cpu_utilization_percentage")
    keys = {k for k in evtrack.get_run(run.info.run_id).data.metrics if k.startswith("system/")}
    assert {k for k in keys if "gpu_" not in k} == {n.replace("system/", "system/node_0/") for n in BASE_NAMES}
    evtrack.set_system_metrics_node_id(None)
    assert "EVTRACK_SYSTEM_METRICS_NODE_ID" not in os.environ


def test_the_node_id_from_mlflows_variable(local_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_NODE_ID", "worker-3")
    with evtrack.start_run(log_system_metrics=True) as run:
        wait_for_points(run.info.run_id, 1, "system/worker-3/cpu_utilization_percentage")


def test_the_setters_write_evtracks_variables_and_none_restores_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from evtrack.tracking.system_metrics import config

    evtrack.set_system_metrics_sampling_interval(0.5)
    evtrack.set_system_metrics_samples_before_logging(4)
    assert os.environ["EVTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL"] == "0.5"
    assert config.sampling_interval() == 0.5 and config.samples_before_logging() == 4
    evtrack.set_system_metrics_sampling_interval(None)  # MLflow's variable goes too, as MLflow's unset
    evtrack.set_system_metrics_samples_before_logging(None)
    assert "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL" not in os.environ
    assert config.sampling_interval() == 10.0 and config.samples_before_logging() == 1  # MLflow's defaults
    for bad in (0, -1, "fast", True):
        with pytest.raises(evtrack.InvalidParameterError):
            evtrack.set_system_metrics_sampling_interval(bad)  # type: ignore[arg-type]
    for bad in (0, 1.5, "3"):
        with pytest.raises(evtrack.InvalidParameterError):
            evtrack.set_system_metrics_samples_before_logging(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["0", "-2", "soon"])
def test_a_bad_sampling_interval_variable_is_a_warning_and_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    from evtrack.tracking.system_metrics import config

    monkeypatch.setenv("EVTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL", raw)
    with caplog.at_level(logging.WARNING, logger="evtrack.system_metrics"):
        assert config.sampling_interval() == 10.0
    assert "EVTRACK_SYSTEM_METRICS_SAMPLING_INTERVAL" in caplog.text


# -- never in the way of training: a failing sampler, no psutil, a light import -----------------------


def test_a_failing_sampler_is_one_warning_and_the_others_go_on(
    local_tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(path: str) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(psutil, "disk_usage", broken)
    with caplog.at_level(logging.WARNING, logger="evtrack.system_metrics"):
        with evtrack.start_run(log_system_metrics=True) as run:
            wait_for_points(run.info.run_id, 3)
    warnings = [r for r in caplog.records if "disk gone" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    keys = set(evtrack.get_run(run.info.run_id).data.metrics)
    assert CPU in keys and not {k for k in keys if k.startswith("system/disk_")}


def test_without_psutil_one_warning_names_pip_install_psutil(
    local_tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    with caplog.at_level(logging.WARNING, logger="evtrack.system_metrics"):
        for i in range(2):
            with evtrack.start_run(log_system_metrics=True) as run:
                evtrack.log_metric("loss", 0.5)
                assert monitor_threads() == []
    warnings = [r for r in caplog.records if "pip install psutil" in r.getMessage()]
    assert len(warnings) == 1  # one clear warning, not one per run
    assert evtrack.get_run(run.info.run_id).data.metrics == {"loss": 0.5}  # the runs themselves work


def test_import_evtrack_loads_no_psutil_and_stays_light() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import evtrack\n"
        "print(time.perf_counter() - t)\n"
        "assert 'psutil' not in sys.modules and 'pynvml' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 1.0  # ~0.2 s; generous for a loaded CI machine


# -- the differential check: MLflow's own monitor on the same machine ------------------------------


def test_metric_names_match_mlflows_own_monitor(local_tracking: str, tmp_path: Any) -> None:
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    with evtrack.start_run(log_system_metrics=True) as ours:
        wait_for_points(ours.info.run_id, 3)
    our_run = evtrack.get_run(ours.info.run_id)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run(log_system_metrics=True) as theirs:
            deadline = time.monotonic() + 15
            client = mlflow.MlflowClient()
            while time.monotonic() < deadline and len(client.get_metric_history(theirs.info.run_id, CPU)) < 3:
                time.sleep(0.1)
        their_run = client.get_run(theirs.info.run_id)
        their_steps = [m.step for m in client.get_metric_history(theirs.info.run_id, CPU)]
    finally:
        mlflow.set_tracking_uri(None)

    ours_names = {k for k in our_run.data.metrics if k.startswith("system/")}
    theirs_names = {k for k in their_run.data.metrics if k.startswith("system/")}
    assert ours_names == theirs_names and BASE_NAMES <= ours_names
    our_steps = [m.step for m in history(ours.info.run_id)]
    assert our_steps[:3] == their_steps[:3] == [0, 1, 2]
    for key in ("system/disk_usage_percentage", "system/system_memory_usage_percentage"):
        assert our_run.data.metrics[key] == pytest.approx(their_run.data.metrics[key], abs=5)


# -- the run page: system metrics in their own section ------------------------------------------------


def test_the_run_page_groups_system_metrics_apart_from_model_metrics(evtrack_server: Any) -> None:
    client = EvtrackClient(evtrack_server.store_uri)
    run = client.create_run(client.create_experiment("sysmetrics"), run_name="with-system")
    rid = run.info.run_id
    for step in range(3):
        client.log_metric(rid, "rmse", 1.0 - 0.1 * step, step=step)
    monitor = monitor_module.SystemMetricsMonitor(client, rid, sampling_interval=0.05)
    monitor.start()
    deadline = time.monotonic() + 15
    while monitor.step < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    monitor.stop()
    client.set_terminated(rid)
    client.flush()
    with httpx.Client(base_url=evtrack_server.url, timeout=30) as http:
        page = http.get(f"/runs/{rid}")
        chart_page = http.get(f"/runs/{rid}/metrics/{CPU}")
    assert page.status_code == 200
    html = page.text
    model_section = html.split('id="metrics-table"')[1].split("</section>")[0]
    system_section = html.split('<section id="system-metrics">')[1].split("</section>")[0]
    assert "rmse" in model_section and "system/" not in model_section
    assert model_section.count('class="metric-chart"') == 1
    assert "<h2>System metrics" in system_section and "rmse" not in system_section
    system_keys = sorted(k for k in client.get_run(rid).data.metrics if k.startswith("system/"))
    table = system_section.split('id="system-metrics-table"')[1].split("</table>")[0]
    assert all(f">{key}</a>" in table for key in system_keys)
    assert system_section.count('class="metric-chart"') == len(system_keys)
    assert chart_page.status_code == 200 and 'class="metric-chart"' in chart_page.text


def test_a_run_without_system_metrics_has_no_system_section(evtrack_server: Any) -> None:
    client = EvtrackClient(evtrack_server.store_uri)
    run = client.create_run(client.create_experiment("plain"))
    client.log_metric(run.info.run_id, "rmse", 0.5)
    client.flush()
    with httpx.Client(base_url=evtrack_server.url, timeout=30) as http:
        html = http.get(f"/runs/{run.info.run_id}").text
    assert 'id="system-metrics"' not in html and "rmse" in html
