"""`evtrack import`: an MLflow store filled by MLflow's own client, copied, and compared.

The source is built with MLflow's ``MlflowClient`` on its sqlite store and on an ``mlruns``
directory: nested runs, params, tags, metric histories (NaN included), a deleted run, a deleted
experiment, a dataset input, artifacts in a sub-directory, a registered model with two versions,
a stage and an alias. ``evtrack import`` runs as a real process; then evtrack's client and
MLflow's client answer the same questions (get_run, search_runs, get_metric_history,
list_artifacts and the bytes, the registry) and the answers are compared.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

T0 = 1_700_000_000_000


def _fill(uri: str, workdir: Path) -> dict[str, Any]:
    """Fill an MLflow store at ``uri`` through MLflow's client; the ids that were made."""
    import warnings

    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    ids: dict[str, Any] = {}
    ids["exp"] = c.create_experiment("imported-exp", tags={"team": "vision", "note": "ü"})
    gone = c.create_experiment("gone-exp", tags={"old": "yes"})
    c.delete_experiment(gone)
    ids["gone"] = gone
    parent = c.create_run(ids["exp"], start_time=T0, tags={"mlflow.user": "alice", "k": "v"}, run_name="parent")
    pid = parent.info.run_id
    c.log_batch(
        pid,
        metrics=[Metric("loss", 1.0 / (s + 1), T0 + 10 * s, s) for s in range(20)]
        + [Metric("odd", math.nan, T0 + 5, 0), Metric("odd", 2.5, T0 + 6, 1), Metric("odd", -1.0, T0 + 6, 1)],
        params=[Param("lr", "0.01"), Param("layers", "3")],
        tags=[RunTag("stage", "train")],
    )
    ds = Dataset(name="train", digest="abc123", source_type="local", source='{"uri": "/data/train.csv"}')
    c.log_inputs(pid, [DatasetInput(ds, tags=[InputTag("mlflow.data.context", "training")])])
    (workdir / "art").mkdir(parents=True, exist_ok=True)
    (workdir / "art" / "hello.txt").write_text("hello artifact\n")
    (workdir / "art" / "blob.bin").write_bytes(bytes(range(256)) * 64)
    c.log_artifact(pid, str(workdir / "art" / "hello.txt"))
    c.log_artifact(pid, str(workdir / "art" / "blob.bin"), "sub/dir")
    child = c.create_run(
        ids["exp"], start_time=T0 + 1000, tags={"mlflow.parentRunId": pid, "mlflow.user": "bob"}, run_name="child"
    )
    cid = child.info.run_id
    c.log_metric(cid, "acc", 0.5, timestamp=T0 + 1100, step=3)
    c.set_terminated(cid, "FAILED", end_time=T0 + 2000)
    c.set_terminated(pid, "FINISHED", end_time=T0 + 3000)
    doomed = c.create_run(ids["exp"], start_time=T0 + 4000, run_name="doomed")
    c.log_param(doomed.info.run_id, "x", "1")
    c.set_terminated(doomed.info.run_id, "KILLED", end_time=T0 + 4500)
    c.delete_run(doomed.info.run_id)
    running = c.create_run(ids["exp"], start_time=T0 + 5000, run_name="still-running")
    c.log_metric(running.info.run_id, "m", 7.0, timestamp=T0 + 5001, step=0)
    ids["runs"] = [pid, cid, doomed.info.run_id, running.info.run_id]

    c.create_registered_model("imported-model", tags={"owner": "alice"}, description="a model")
    v1 = c.create_model_version("imported-model", f"runs:/{pid}/model", run_id=pid, description="first")
    v2 = c.create_model_version("imported-model", f"runs:/{cid}/model", run_id=cid, tags={"quality": "good"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.transition_model_version_stage("imported-model", v1.version, "Production")
    c.set_registered_model_alias("imported-model", "champion", v2.version)
    return ids


@pytest.fixture(scope="module", params=["sqlite", "mlruns"])
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """An MLflow store of the given kind, filled once for this module."""
    import warnings

    base = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    if request.param == "sqlite":
        uri = f"sqlite:///{base / 'mlflow.db'}"
    else:
        uri = str(base / "mlruns")
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3.17 refuses to write an mlruns store otherwise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = _fill(uri, base)
    return uri, ids


def _evtrack(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``evtrack`` console command in a real process."""
    exe = shutil.which("evtrack")
    cmd = [exe] if exe else [sys.executable, "-c", "from evtrack.cli import main; main()"]
    env = {**os.environ, "EVTRACK_CAPTURE_ENV": "false", "EVTRACK_SPOOL_DIR": str(cwd / "spool")}
    env.pop("EVTRACK_TRACKING_URI", None)
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def _inbox_keys(uri: str) -> set[str]:
    from evtrack.store import open_store

    return {info.key for info in open_store(uri).list("events/")}


@pytest.fixture(scope="module")
def imported(source: tuple[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``evtrack import SOURCE --tracking-uri DEST`` once; the store, the process's result."""
    uri, ids = source
    work = tmp_path_factory.mktemp("import")
    dest = str(work / "store")
    result = _evtrack("import", uri, "--tracking-uri", dest, cwd=work)
    assert result.returncode == 0, result.stderr
    return {"uri": uri, "ids": ids, "dest": dest, "work": work, "result": result}


def _clients(imported: dict[str, Any]) -> tuple[Any, Any]:
    from mlflow.tracking import MlflowClient as MlflowsClient

    from evtrack import MlflowClient

    return MlflowsClient(tracking_uri=imported["uri"], registry_uri=imported["uri"]), MlflowClient(imported["dest"])


def _run_view(run: Any) -> dict[str, Any]:
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage,
        "params": dict(data.params),
        "tags": dict(data.tags),
        "metrics": {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in data.metrics.items()},
        "inputs": sorted(
            (
                d.dataset.name,
                d.dataset.digest,
                d.dataset.source_type,
                d.dataset.source,
                tuple(sorted((t.key, t.value) for t in d.tags)),
            )
            for d in (run.inputs.dataset_inputs if run.inputs else [])
        ),
    }


def _points(history: Any) -> list[tuple]:
    return sorted((m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value) for m in history)


def test_import_prints_progress_and_summary(imported: dict[str, Any]) -> None:
    result = imported["result"]
    assert "runs 4/4" in result.stderr  # the progress bar's final line: done/total
    assert "/s" in result.stderr
    out = result.stdout
    assert "runs: 4 new" in out
    assert "experiments: 3 new" in out  # Default, the live one and the deleted one
    assert "metric points: 25" in out
    assert "artifacts: 2 files" in out
    assert "registry: 1 models, 2 versions, 1 aliases" in out
    assert "Traceback" not in result.stderr


def test_experiments_keep_ids_names_tags_and_lifecycle(imported: dict[str, Any]) -> None:
    from mlflow.entities import ViewType

    theirs, ours = _clients(imported)

    def view(exps: list[Any]) -> list[tuple]:
        return sorted(
            (e.experiment_id, e.name, e.lifecycle_stage, dict(e.tags), e.creation_time, e.last_update_time)
            for e in exps
        )

    assert view(ours.search_experiments(view_type=ViewType.ALL)) == view(
        theirs.search_experiments(view_type=ViewType.ALL)
    )
    assert [e.name for e in ours.search_experiments()] == [e.name for e in theirs.search_experiments()]
    assert ours.get_experiment(imported["ids"]["gone"]).lifecycle_stage == "deleted"


def test_runs_match_mlflows_view(imported: dict[str, Any]) -> None:
    from mlflow.entities import ViewType

    theirs, ours = _clients(imported)
    exp = imported["ids"]["exp"]
    for run_id in imported["ids"]["runs"]:
        assert _run_view(ours.get_run(run_id)) == _run_view(theirs.get_run(run_id))
    for view in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        mine = [_run_view(r) for r in ours.search_runs([exp], run_view_type=view, order_by=["start_time DESC"])]
        their = [_run_view(r) for r in theirs.search_runs([exp], run_view_type=view, order_by=["start_time DESC"])]
        assert mine == their
    parent, child = imported["ids"]["runs"][:2]
    kids = ours.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert [r.info.run_id for r in kids] == [child]


def test_metric_histories_match(imported: dict[str, Any]) -> None:
    theirs, ours = _clients(imported)
    for run_id in imported["ids"]["runs"]:
        for key in theirs.get_run(run_id).data.metrics:
            mine, their = ours.get_metric_history(run_id, key), theirs.get_metric_history(run_id, key)
            assert _points(mine) == _points(their), (run_id, key)
    assert len(ours.get_metric_history(imported["ids"]["runs"][0], "loss")) == 20


def test_artifacts_listed_and_bytes_equal(imported: dict[str, Any], tmp_path: Path) -> None:
    theirs, ours = _clients(imported)
    pid = imported["ids"]["runs"][0]

    def walk(client: Any, path: str | None = None) -> list[tuple]:
        out = []
        for f in client.list_artifacts(pid, path):
            out += walk(client, f.path) if f.is_dir else [(f.path, f.file_size)]
        return out

    assert walk(ours) == walk(theirs) == [("hello.txt", 15), ("sub/dir/blob.bin", 256 * 64)]
    for path, _ in walk(theirs):
        mine = Path(ours.download_artifacts(pid, path, str(tmp_path / "ours")))
        their = Path(theirs.download_artifacts(pid, path, str(tmp_path / "theirs")))
        assert mine.read_bytes() == their.read_bytes()


def test_registry_matches(imported: dict[str, Any]) -> None:
    theirs, ours = _clients(imported)
    name = "imported-model"
    mine, their = ours.get_registered_model(name), theirs.get_registered_model(name)
    # MLflow's file store gives alias versions as str, its sqlite store as int
    assert (mine.description, dict(mine.tags), dict(mine.aliases)) == (
        their.description,
        dict(their.tags),
        {k: int(v) for k, v in their.aliases.items()},
    )

    def version_view(v: Any) -> tuple:
        return (v.version, v.source, v.run_id, v.current_stage, v.description or "", dict(v.tags), sorted(v.aliases))

    for number in ("1", "2"):
        assert version_view(ours.get_model_version(name, number)) == version_view(
            theirs.get_model_version(name, number)
        )
    assert version_view(ours.get_model_version_by_alias(name, "champion")) == version_view(
        theirs.get_model_version_by_alias(name, "champion")
    )


def test_second_import_writes_nothing(imported: dict[str, Any]) -> None:
    before = _inbox_keys(imported["dest"])
    result = _evtrack("import", imported["uri"], "--tracking-uri", imported["dest"], "--quiet", cwd=imported["work"])
    assert result.returncode == 0, result.stderr
    assert "runs: 0 new" in result.stdout and "4 already imported" in result.stdout
    assert _inbox_keys(imported["dest"]) == before


@pytest.mark.parametrize(
    "bad, says",
    [
        ("{tmp}/no-such-dir", "no such directory"),
        ("sqlite:///{tmp}/missing.db", "does not exist"),
        ("ftp://example.com/x", "not an MLflow tracking URI"),
        ("{tmp}/plain", "not an MLflow mlruns directory"),
    ],
)
def test_bad_source_is_one_clear_error(tmp_path: Path, bad: str, says: str) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("not mlflow")
    result = _evtrack("import", bad.format(tmp=tmp_path), "--tracking-uri", str(tmp_path / "store"), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.stderr
    assert not (tmp_path / "store" / "events").exists()
