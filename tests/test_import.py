"""``evtrack import``: an MLflow store filled by MLflow's own client, copied, and compared call by call.

The sources are real MLflow stores (sqlite, an ``mlruns`` directory, a ``mlflow server``
subprocess); every answer of evtrack's client on the copy is compared with MLflow's client's
answer on the source.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient as MlflowMlflowClient  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, InputTag, ViewType  # noqa: E402

import evtrack  # noqa: E402
from evtrack.cli import cli  # noqa: E402
from evtrack.errors import InvalidUriError  # noqa: E402
from evtrack.importer import import_store  # noqa: E402

from tests.conftest import free_port  # noqa: E402


# -- building a source with MLflow's client ----------------------------------------------------


def fill(client: Any, art: Path | None, n_bulk: int = 12) -> None:
    """Experiments (one deleted), nested/failed/deleted runs, histories with NaN, a dataset, artifacts
    (one of 3 MB), a registry with a version gap, stages, aliases and tags."""
    loc = (lambda name: (art / name).as_uri()) if art is not None else (lambda name: None)
    alpha = client.create_experiment("alpha", artifact_location=loc("alpha"), tags={"team": "vision", "x": "1"})
    beta = client.create_experiment("beta", artifact_location=loc("beta"))
    gone = client.create_experiment("gone", artifact_location=loc("gone"))
    client.set_experiment_tag(alpha, "x", "2")
    parent = client.create_run(alpha, run_name="parent", tags={"stage": "train"}, start_time=1_700_000_000_000)
    pid = parent.info.run_id
    for key, value in {"lr": "0.01", "layers": "4", "opt": "adam"}.items():
        client.log_param(pid, key, value)
    for step in range(40):
        value = math.nan if step == 7 else (math.inf if step == 9 else 1.0 / (step + 1))
        client.log_metric(pid, "loss", value, step=step, timestamp=1_700_000_001_000 + step * 10)
    client.log_metric(pid, "acc", 0.5, step=0, timestamp=1_700_000_002_000)
    client.log_metric(pid, "acc", 0.7, step=0, timestamp=1_700_000_002_000)  # two values at one step
    client.log_metric(pid, "acc", 0.9, step=3, timestamp=1_700_000_001_500)
    client.set_tag(pid, "note", "first")
    client.set_tag(pid, "note", "second")
    dataset = Dataset(name="train", digest="abc123", source_type="local", source='{"uri": "/data/train"}')
    client.log_inputs(pid, [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])
    work = Path(os.getcwd())
    small = work / "notes.txt"
    small.write_text("hello artifacts\n")
    big = work / "weights.bin"
    big.write_bytes(os.urandom(3 << 20))
    client.log_artifact(pid, str(small))
    client.log_artifact(pid, str(big), "model/data")
    client.log_artifact(pid, str(small), "model")
    for i, status in enumerate(["FINISHED", "FAILED", "KILLED"]):
        child = client.create_run(alpha, run_name=f"child-{i}", tags={"mlflow.parentRunId": pid})
        client.log_metric(child.info.run_id, "loss", 0.1 * i, step=i)
        client.set_terminated(child.info.run_id, status)
    running = client.create_run(alpha, run_name="still-running")
    client.log_param(running.info.run_id, "p", "x")
    deleted = client.create_run(alpha, run_name="deleted-one")
    client.set_terminated(deleted.info.run_id)
    client.delete_run(deleted.info.run_id)
    client.set_terminated(pid, "FINISHED", end_time=1_700_000_009_000)
    for i in range(n_bulk):
        run = client.create_run(beta, run_name=f"bulk-{i:03d}")
        client.log_batch(
            run.info.run_id,
            metrics=[mlflow.entities.Metric("m", float(s * i), 1_700_000_000_000 + s, s) for s in range(20)],
            params=[mlflow.entities.Param("i", str(i))],
        )
        client.set_terminated(run.info.run_id)
    in_gone = client.create_run(gone, run_name="in-gone")
    client.set_terminated(in_gone.info.run_id)
    client.delete_experiment(gone)
    client.create_registered_model("churn", tags={"owner": "ds"}, description="the churn model")
    for _ in range(4):
        client.create_model_version("churn", f"runs:/{pid}/model", run_id=pid, tags={"v": "t"})
    client.delete_model_version("churn", "2")
    client.transition_model_version_stage("churn", "3", "Production")
    client.transition_model_version_stage("churn", "1", "Staging")
    client.set_registered_model_alias("churn", "champion", "3")
    client.set_registered_model_alias("churn", "old", "1")
    client.set_model_version_tag("churn", "4", "validated", "yes")
    client.update_model_version("churn", "4", description="newest")
    client.create_registered_model("other")
    client.create_model_version("other", f"runs:/{pid}/model", run_id=pid)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same content in an MLflow sqlite store and an MLflow mlruns directory."""
    root = tmp_path_factory.mktemp("mlflow-sources")
    cwd = os.getcwd()
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        os.chdir(root)
        sqlite = f"sqlite:///{root / 'mlflow.db'}"
        fill(MlflowMlflowClient(sqlite, sqlite), root / "sqlite-artifacts")
        mlruns = str(root / "mlruns")
        fill(MlflowMlflowClient(mlruns, mlruns), None)
    finally:
        os.chdir(cwd)
    return {"sqlite": sqlite, "mlruns": mlruns}


# -- comparing MLflow's answers with evtrack's ---------------------------------------------------


def _value(x: float) -> str:
    return repr(float(x))


def _history(client: Any, run_id: str, key: str) -> list[tuple]:
    return sorted((m.step, m.timestamp, _value(m.value)) for m in client.get_metric_history(run_id, key))


def _files(client: Any, run_id: str, path: str | None = None) -> list[tuple[str, int | None]]:
    out = []
    for f in client.list_artifacts(run_id, path):
        out += _files(client, run_id, f.path) if f.is_dir else [(f.path, f.file_size)]
    return sorted(out)


def _run_view(r: Any) -> dict:
    i, d = r.info, r.data
    return {
        "info": (
            i.run_id,
            i.experiment_id,
            i.run_name,
            i.user_id,
            i.status,
            i.start_time,
            i.end_time,
            i.lifecycle_stage,
        ),
        "params": d.params,
        "tags": d.tags,
        "metrics": {k: _value(v) for k, v in d.metrics.items()},
        "inputs": sorted(
            (x.dataset.name, x.dataset.digest, x.dataset.source, sorted((t.key, t.value) for t in x.tags))
            for x in r.inputs.dataset_inputs
        ),
    }


def _version_view(v: Any) -> tuple:
    return (str(v.version), v.current_stage, v.source, v.run_id, v.tags, v.description or "")


def assert_same(source: Any, dest: Any, tmp: Path) -> int:
    """Every experiment, run, history, artifact (bytes too) and registry answer equal; returns runs compared."""

    def experiments(c: Any) -> list[tuple]:
        return sorted(
            (e.experiment_id, e.name, e.lifecycle_stage, e.tags, e.creation_time, e.last_update_time)
            for e in c.search_experiments(view_type=ViewType.ALL)
        )

    assert experiments(dest) == experiments(source)
    compared = 0
    for exp in source.search_experiments(view_type=ViewType.ALL):
        eid = exp.experiment_id
        for view in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
            mine = [r.info.run_id for r in dest.search_runs([eid], run_view_type=view, max_results=1000)]
            theirs = [r.info.run_id for r in source.search_runs([eid], run_view_type=view, max_results=1000)]
            assert mine == theirs, (exp.name, view)  # same runs, same default order
        filtered = "metrics.loss < 0.5 and params.lr = '0.01'"
        assert [r.info.run_id for r in dest.search_runs([eid], filtered)] == [
            r.info.run_id for r in source.search_runs([eid], filtered)
        ]
        for run in source.search_runs([eid], run_view_type=ViewType.ALL, max_results=1000):
            rid = run.info.run_id
            theirs = source.get_run(rid)
            mine = dest.get_run(rid)
            assert _run_view(mine) == _run_view(theirs)
            for key in theirs.data.metrics:
                assert _history(dest, rid, key) == _history(source, rid, key)
            files = _files(source, rid)
            assert _files(dest, rid) == files
            for path, _ in files:
                a = Path(source.download_artifacts(rid, path, str(tmp / "theirs" / rid)))
                b = Path(dest.download_artifacts(rid, path, str(tmp / "mine" / rid)))
                assert a.read_bytes() == b.read_bytes(), path
            compared += 1
    assert sorted(m.name for m in dest.search_registered_models()) == sorted(
        m.name for m in source.search_registered_models()
    )
    for model in source.search_registered_models():
        mine = dest.get_registered_model(model.name)
        aliases = {k: int(v) for k, v in model.aliases.items()}  # MLflow's file store gives str versions, sqlite int
        # an unset description is None from MLflow's stores and '' over its REST API
        assert (mine.tags, mine.description or "", mine.aliases) == (model.tags, model.description or "", aliases)
        versions = sorted(map(_version_view, source.search_model_versions(f"name = '{model.name}'")))
        assert sorted(map(_version_view, dest.search_model_versions(f"name = '{model.name}'"))) == versions
        for number, *_ in versions:  # (MLflow's search_model_versions leaves aliases out; get_model_version has them)
            mine_v, theirs_v = dest.get_model_version(model.name, number), source.get_model_version(model.name, number)
            assert sorted(mine_v.aliases) == sorted(theirs_v.aliases)
        for alias in model.aliases:
            assert dest.get_model_version_by_alias(model.name, alias).version == int(
                source.get_model_version_by_alias(model.name, alias).version
            )
        got = [(v.version, v.current_stage) for v in dest.get_latest_versions(model.name)]
        assert sorted(got) == sorted((int(v.version), v.current_stage) for v in source.get_latest_versions(model.name))
    return compared


def _objects(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "mlruns"])
def test_import_equals_mlflow_and_a_second_import_writes_nothing(
    kind: str, sources: dict[str, str], tmp_path: Path, fresh_evtrack: None, capsys: pytest.CaptureFixture
) -> None:
    uri = sources[kind]
    source = MlflowMlflowClient(uri, uri)
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["import", uri, str(store)], prog_name="evtrack")
    assert result.exit_code == 0, result.output
    assert "runs: 19 new" in result.output and "metric points: 286" in result.output, result.output
    assert "artifacts: 3 files" in result.output
    dest = evtrack.MlflowClient(str(store))
    assert assert_same(source, dest, tmp_path) == 19
    before = _objects(store)
    again = CliRunner().invoke(cli, ["import", uri, "--tracking-uri", str(store)], prog_name="evtrack")
    assert again.exit_code == 0, again.output
    assert "runs: 0 new" in again.output and "19 already imported" in again.output, again.output
    assert _objects(store) == before  # not one object more: no segment, no claim, no marker, no artifact


def test_an_interrupted_import_resumes_to_the_same_state(
    sources: dict[str, str], tmp_path: Path, fresh_evtrack: None
) -> None:
    uri = sources["sqlite"]
    store = tmp_path / "store"
    dest = evtrack.MlflowClient(str(store))

    def crash(done: int) -> None:
        if done == 8:
            raise KeyboardInterrupt  # mid-batch: runs 6-8 emitted, not marked

    with pytest.raises(KeyboardInterrupt):
        import_store(uri, dest, progress=None, after_run=crash, batch_runs=5)
    dest.flush()  # what the dying process had buffered lands too (as its exit flush would send it)
    assert len(dest.search_runs(["1", "2"], run_view_type=ViewType.ALL, max_results=100)) == 8
    assert dest.search_registered_models() == []
    summary = import_store(uri, dest, progress=None, batch_runs=5)
    assert summary.runs.skipped == 5 and summary.runs.runs == 14  # the marked batch is not redone
    assert assert_same(MlflowMlflowClient(uri, uri), dest, tmp_path) == 19


def test_progress_bar_and_summary(sources: dict[str, str], tmp_path: Path, fresh_evtrack: None) -> None:
    import io

    out = io.StringIO()
    summary = import_store(sources["sqlite"], evtrack.MlflowClient(str(tmp_path / "s")), progress=out)
    text = out.getvalue()
    assert "runs 19/19" in text and "/s)" in text and "metric points 286" in text, text
    lines = "\n".join(summary.lines())
    assert "experiments: 4 new" in lines and "registry: 2 models, 4 versions, 2 aliases" in lines, lines


@pytest.mark.parametrize(
    "source, message",
    [
        ("/no/such/mlruns", "no such directory"),
        ("sqlite:////no/such/mlflow.db", "does not exist"),
        ("ftp://host/x", "is not an MLflow tracking URI"),
        (f"http://127.0.0.1:{free_port()}", "no server answers there"),
    ],
)
def test_a_bad_source_is_one_clear_error(source: str, message: str, tmp_path: Path, fresh_evtrack: None) -> None:
    result = CliRunner().invoke(cli, ["import", source, str(tmp_path / "s")], prog_name="evtrack")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: cannot import from"), result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()  # nothing written


def test_a_directory_that_is_not_mlruns_and_a_database_destination(tmp_path: Path, fresh_evtrack: None) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "empty"), str(tmp_path / "s")], prog_name="evtrack")
    assert result.exit_code == 1 and "is not an MLflow mlruns directory" in result.output
    with pytest.raises(InvalidUriError) as exc:
        evtrack.set_tracking_uri("sqlite:///mlflow.db")
    assert "`evtrack import sqlite:///mlflow.db <store>`" in str(exc.value)  # the advice the refusal gives works:
    db = tmp_path / "m.db"
    MlflowMlflowClient(f"sqlite:///{db}").create_experiment("e")
    result = CliRunner().invoke(cli, ["import", f"sqlite:///{db}", str(tmp_path / "s")], prog_name="evtrack")
    assert result.exit_code == 0 and "experiments: 2 new" in result.output, result.output


def test_import_from_an_mlflow_server_subprocess(tmp_path: Path, fresh_evtrack: None) -> None:
    """``mlflow server`` (sqlite, artifacts proxied) filled over HTTP; ``evtrack import http://…`` as a subprocess."""
    port = free_port()
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'srv.db'}",
            "--artifacts-destination",
            str(tmp_path / "srv-art"),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError("mlflow server did not start") from None
                time.sleep(0.5)
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            fill(MlflowMlflowClient(url, url), None, n_bulk=3)
        finally:
            os.chdir(cwd)
        store = tmp_path / "store"
        done = subprocess.run(
            [sys.executable, "-c", "from evtrack.cli import main; main()", "import", url, str(store)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert "runs: 10 new" in done.stdout and "artifacts: 3 files" in done.stdout, done.stdout
        assert "runs 10/10" in done.stderr  # the progress bar
        assert assert_same(MlflowMlflowClient(url, url), evtrack.MlflowClient(str(store)), tmp_path) == 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)
