"""The scoring server over real HTTP (``evtrack models serve`` as a subprocess) and ``evtrack models predict``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pytest
from click.testing import CliRunner

import evtrack
import evtrack.pyfunc
from evtrack.cli import cli
from evtrack.models import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema

pytest.importorskip("starlette", reason="serving needs evtrack[serve]")
pytest.importorskip("uvicorn", reason="serving needs evtrack[serve]")

SIGNATURE = ModelSignature(
    Schema([ColSpec("double", "a"), ColSpec("long", "b"), ColSpec("string", "s")]),
    params=ParamSchema([ParamSpec("factor", "double", 1.0)]),
)
ROWS = [{"a": 1.0, "b": 2, "s": "xy"}, {"a": 0.5, "b": 1, "s": "12"}]
EXPECTED = [5.0, 3.5]  # a * factor + b + len(s)


# a lambda (pickled by value) so that the server process needs no import of this test module
score = lambda df, params=None: (  # noqa: E731
    df["a"] * (params or {}).get("factor", 1.0) + df["b"] + df["s"].str.len()
).to_numpy()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    url: str, body: str | bytes | None = None, content_type: str | None = "application/json"
) -> tuple[int, str, str]:
    """(status, content type, body text) of a GET (no body) or POST."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None and content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """``serve(model_uri) -> base URL``: ``evtrack models serve`` in a subprocess, stopped at teardown."""
    procs: list[subprocess.Popen] = []
    tmp = tmp_path_factory.mktemp("serving")

    def start(model_uri: str) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "EVTRACK_SPOOL_DIR": str(tmp / "spool"),
            "EVTRACK_CACHE_DIR": str(tmp / "cache"),
            "EVTRACK_TRACKING_URI": str(tmp / "store"),
        }
        log = open(tmp / f"server-{port}.log", "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from evtrack.cli import main; main()",
                "models",
                "serve",
                "-m",
                model_uri,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http(url + "/ping")
                return url
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        raise AssertionError(f"server did not start: {(tmp / f'server-{port}.log').read_text()}")

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "scorer"
    evtrack.pyfunc.save_model(path, python_model=score, signature=SIGNATURE)
    return path


@pytest.fixture(scope="module")
def server(serve: Callable[[str], str], model_dir: Path) -> str:
    return serve(str(model_dir))


def test_ping_health_and_version(server: str) -> None:
    assert http(server + "/ping")[0] == 200
    assert http(server + "/health")[0] == 200
    status, _, text = http(server + "/version")
    assert status == 200 and text == evtrack.__version__


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b", "s"], "data": [[r["a"], r["b"], r["s"]] for r in ROWS]}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"inputs": {k: [r[k] for r in ROWS] for k in ("a", "b", "s")}},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_each_json_input_form(server: str, payload: dict[str, Any]) -> None:
    status, content_type, text = http(server + "/invocations", json.dumps(payload))
    assert (status, content_type) == (200, "application/json"), text
    assert json.loads(text) == {"predictions": EXPECTED}
    with_params = json.dumps({**payload, "params": {"factor": 2.0}})
    assert json.loads(http(server + "/invocations", with_params)[2]) == {"predictions": [6.0, 4.0]}


def test_csv_and_charset(server: str) -> None:
    status, _, text = http(server + "/invocations", "a,b,s\n1.0,2,xy\n0.5,1,12\n", "text/csv")
    assert status == 200 and json.loads(text) == {"predictions": EXPECTED}  # "12" stays a string
    body = json.dumps({"dataframe_records": ROWS})
    assert http(server + "/invocations", body, "application/json; charset=utf-8")[0] == 200


@pytest.mark.parametrize(
    "records, column",
    [
        ([{"a": "oops", "b": 2, "s": "x"}], "'a'"),
        ([{"a": 1.0, "b": 2.5, "s": "x"}], "'b'"),
        ([{"a": 1.0, "s": "x"}], "'b'"),
    ],
)
def test_schema_errors_are_400_naming_the_column(server: str, records: list[dict[str, Any]], column: str) -> None:
    status, content_type, text = http(server + "/invocations", json.dumps({"dataframe_records": records}))
    assert (status, content_type) == (400, "application/json")
    error = json.loads(text)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE" and column in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"dataframe_records": ROWS, "inputs": ROWS}),
        json.dumps({"rows": ROWS}),
        json.dumps({"dataframe_split": [1, 2]}),
    ],
)
def test_malformed_bodies_are_400(server: str, body: str) -> None:
    status, _, text = http(server + "/invocations", body)
    assert status == 400 and json.loads(text)["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/json; charset=latin-1", "application/json; format=pandas-split"],
)
def test_unsupported_content_types_are_415(server: str, content_type: str) -> None:
    assert http(server + "/invocations", json.dumps({"inputs": ROWS}), content_type)[0] == 415


def test_a_model_that_failed_to_load_answers_404(serve: Callable[[str], str], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    url = serve(str(broken))
    status, _, text = http(url + "/ping")
    assert status == 404 and "MLmodel" in json.loads(text)["message"]
    assert http(url + "/health")[0] == 404
    assert http(url + "/invocations", json.dumps({"inputs": ROWS}))[0] == 503


@contextlib.contextmanager
def serve_in_thread(model_uri: str) -> Iterator[str]:
    """The scoring app on real HTTP, in a thread of this process (no second import of scikit-learn)."""
    import uvicorn

    from evtrack.pyfunc.scoring_server import build_app

    server = uvicorn.Server(
        uvicorn.Config(build_app(model_uri), host="127.0.0.1", port=_free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "the in-thread server did not start"
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_serves_a_model_saved_by_mlflow(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn", reason="mlflow is not installed")
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 0.0, 1.0, 0.0]})
    clf = LogisticRegression().fit(X, [0, 0, 1, 1])
    mlflow_sklearn.save_model(
        clf, str(tmp_path / "m"), serialization_format="pickle", input_example=X, pip_requirements=["scikit-learn"]
    )
    with serve_in_thread(str(tmp_path / "m")) as url:
        serving_example = (tmp_path / "m" / "serving_input_example.json").read_text()
        status, _, text = http(url + "/invocations", serving_example)
        assert http(url + "/ping")[0] == 200
    assert status == 200, text
    assert json.loads(text) == {"predictions": clf.predict(X).tolist()}


# -- evtrack models predict -------------------------------------------------------------------


def test_predict_cli_round_trip(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_records": ROWS, "params": {"factor": 2.0}}))
    pd.DataFrame(ROWS).to_csv(tmp_path / "in.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["models", "predict", "-m", str(model_dir), "-i", str(tmp_path / "in.json"), "-o", str(tmp_path / "out.json")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text()) == {"predictions": [6.0, 4.0]}
    result = runner.invoke(cli, ["models", "predict", "-m", str(model_dir), "-i", str(tmp_path / "in.csv")])
    assert result.exit_code == 0 and json.loads(result.output) == {"predictions": EXPECTED}
    (tmp_path / "bad.txt").write_text("a,s\n1.0,x\n")
    result = runner.invoke(
        cli, ["models", "predict", "-m", str(model_dir), "-i", str(tmp_path / "bad.txt"), "-t", "csv"]
    )
    assert result.exit_code == 1 and "'b'" in result.output and "Traceback" not in result.output


def test_predict_cli_from_a_run(local_uri: str, fresh_evtrack: None, model_dir: Path, tmp_path: Path) -> None:
    evtrack.set_tracking_uri(local_uri)
    with evtrack.start_run():
        info = evtrack.pyfunc.log_model(name="scorer", python_model=score, signature=SIGNATURE)
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_split": pd.DataFrame(ROWS).to_dict("split")}))
    result = CliRunner().invoke(
        cli, ["models", "predict", "-m", info.model_uri, "--tracking-uri", local_uri, "-i", str(tmp_path / "in.json")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"predictions": EXPECTED}


def test_serving_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from evtrack.errors import InvalidParameterError
    from evtrack.pyfunc import scoring_server

    real = scoring_server.importlib.util.find_spec
    monkeypatch.setattr(
        scoring_server.importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(InvalidParameterError, match=r'uvicorn missing\): pip install "evtrack\[serve\]"'):
        scoring_server.build_app(model=object())
