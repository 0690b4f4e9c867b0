"""Rich artifacts (issue 14, part 4): ``log_figure``, ``log_image``, ``log_table``, ``load_table``.

Through the API a user calls (``evtrack.log_figure``, ``MlflowClient.load_table``, …) with real
matplotlib (Agg), plotly and Pillow, on both backends; then the same calls on MLflow itself (a
sqlite store in tmp_path) and on evtrack, compared file for file; then the web UI's previews,
over HTTP and once in a real browser.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import matplotlib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

import evtrack
from evtrack.errors import InvalidParameterError, ResourceNotFoundError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
QA = {
    "inputs": ["What is MLflow?", "What is evtrack?"],
    "outputs": ["A tracker", "An event log"],
    "toxicity": [0.0, 0.1],
}


@pytest.fixture
def run(tracking_uri: str) -> Any:
    active = evtrack.start_run()
    yield active
    evtrack.end_run()


@pytest.fixture
def client(tracking_uri: str) -> evtrack.MlflowClient:
    return evtrack.MlflowClient(tracking_uri)


def _line_figure() -> Any:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [2, 3, 1])
    return fig


def _files(client: Any, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact file of a run, recursively."""
    out: list[str] = []
    for info in client.list_artifacts(run_id, path):
        out.extend(_files(client, run_id, info.path) if info.is_dir else [info.path])
    return sorted(out)


def _read(client: Any, run_id: str, path: str, tmp_path: Path) -> bytes:
    return Path(client.download_artifacts(run_id, path, str(tmp_path / "dl"))).read_bytes()


def _image(client: Any, run_id: str, path: str, tmp_path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(_read(client, run_id, path, tmp_path)))
    image.load()
    return image


# -- log_figure ------------------------------------------------------------------------------------


def test_log_figure_saves_matplotlib_and_plotly_figures(run: Any, client: Any, tmp_path: Path) -> None:
    fig = _line_figure()
    evtrack.log_figure(fig, "plots/line.png")
    evtrack.log_figure(fig, "plots/line-hi.png", save_kwargs={"dpi": 200})
    evtrack.log_figure(fig, "plots/line.svg")
    evtrack.log_figure(go.Figure(go.Scatter(x=[0, 1], y=[2, 3])), "plots/scatter.html")
    rid = run.info.run_id

    assert _files(client, rid) == ["plots/line-hi.png", "plots/line.png", "plots/line.svg", "plots/scatter.html"]
    low, high = _image(client, rid, "plots/line.png", tmp_path), _image(client, rid, "plots/line-hi.png", tmp_path)
    assert low.format == "PNG" and low.size == (400, 300)  # 4x3 inches at matplotlib's 100 dpi
    assert high.size == (800, 600)  # save_kwargs reach savefig
    assert _read(client, rid, "plots/line.svg", tmp_path).lstrip().startswith(b"<?xml")
    html = _read(client, rid, "plots/scatter.html", tmp_path).decode()
    assert "cdn.plot.ly" in html and '"scatter"' in html  # MLflow's default: plotly.js from the CDN


def test_plotly_image_export_without_kaleido_is_a_clear_error(run: Any) -> None:
    if "kaleido" in sys.modules or importlib.util.find_spec("kaleido"):
        pytest.skip("kaleido is installed: plotly can export images here")
    with pytest.raises(InvalidParameterError, match="kaleido"):
        evtrack.log_figure(go.Figure(go.Bar(y=[1, 2])), "bar.png")


@pytest.mark.parametrize(
    ("figure", "artifact_file", "message"),
    [
        (object(), "x.png", "Unsupported figure object type"),
        ([1, 2], "x.png", "Unsupported figure object type"),
        ("plotly-bar", "bar.txt", "Unsupported file extension for plotly figure: '.txt'"),
        ("matplotlib", "line.xyz", "Format 'xyz' is not supported"),
        ("matplotlib", "../escape.png", "'..' components are not allowed"),
    ],
)
def test_log_figure_refuses_bad_input(run: Any, client: Any, figure: Any, artifact_file: str, message: str) -> None:
    if figure == "plotly-bar":
        figure = go.Figure(go.Bar(y=[1]))
    elif figure == "matplotlib":
        figure = _line_figure()
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        evtrack.log_figure(figure, artifact_file)
    assert _files(client, run.info.run_id) == []


# -- log_image --------------------------------------------------------------------------------------


def test_log_image_from_arrays_and_pil_keeps_the_pixels(run: Any, client: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(12, 20, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(12, 20), dtype=np.uint8)
    evtrack.log_image(rgb, "rgb.png")
    evtrack.log_image(rgba, "dir/rgba.png")
    evtrack.log_image(gray, "gray.png")
    evtrack.log_image(gray[:, :, None], "gray1.png")  # H x W x 1 is grayscale too
    evtrack.log_image(np.linspace(0, 1, 12 * 20).reshape(12, 20), "float.png")
    evtrack.log_image(gray > 128, "mask.png")
    evtrack.log_image(Image.fromarray(rgb), "pil.jpg")
    with pytest.warns(UserWarning, match="Rescaling values"):
        evtrack.log_image(np.array([[-1.0, 0.0], [1.0, 3.0]]), "scaled.png")
    rid = run.info.run_id

    assert np.array_equal(np.asarray(_image(client, rid, "rgb.png", tmp_path)), rgb)
    assert _image(client, rid, "dir/rgba.png", tmp_path).mode == "RGBA"
    assert np.array_equal(np.asarray(_image(client, rid, "dir/rgba.png", tmp_path)), rgba)
    for name in ("gray.png", "gray1.png"):
        image = _image(client, rid, name, tmp_path)
        assert image.mode == "L" and np.array_equal(np.asarray(image), gray)
    floats = np.asarray(_image(client, rid, "float.png", tmp_path))
    assert floats[0, 0] == 0 and floats[-1, -1] == 255
    assert set(np.unique(np.asarray(_image(client, rid, "mask.png", tmp_path)))) <= {0, 255}
    assert _image(client, rid, "pil.jpg", tmp_path).format == "JPEG"
    assert np.asarray(_image(client, rid, "scaled.png", tmp_path)).tolist() == [[0, 63], [127, 255]]


def test_log_image_with_key_and_step_writes_mlflows_image_series(run: Any, client: Any, tmp_path: Path) -> None:
    image = np.zeros((50, 200, 3), dtype=np.uint8)
    evtrack.log_image(image, key="val/sample img", step=3, timestamp=1_700_000_000_123)
    evtrack.log_image(Image.new("RGB", (10, 40)), key="val/sample img")  # step 0, timestamp now
    rid = run.info.run_id

    files = _files(client, rid)
    assert len(files) == 4 and all(f.startswith("images/val~sample img+step+") for f in files)
    stepped = [f for f in files if "+step+3+timestamp+1700000000123+" in f]
    assert [UUID.sub("<uuid>", f) for f in stepped] == [
        "images/val~sample img+step+3+timestamp+1700000000123+<uuid>+compressed.webp",
        "images/val~sample img+step+3+timestamp+1700000000123+<uuid>.png",
    ]
    assert _image(client, rid, stepped[1], tmp_path).size == (200, 50)
    thumbnail = _image(client, rid, stepped[0], tmp_path)
    assert thumbnail.format == "WEBP" and thumbnail.size == (256, 64)  # longer side 256, as MLflow's
    at_zero = [f for f in files if "+step+0+" in f and f.endswith("+compressed.webp")]
    assert _image(client, rid, at_zero[0], tmp_path).size == (64, 256)
    assert client.get_run(rid).data.tags["mlflow.loggedImages"] == "True"


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((2, 2, 2, 2, 2), dtype=np.uint8), "must be a 2D (H x W) or 3D (H x W x C) array"),
        (np.zeros(5, dtype=np.uint8), "image shape: (5,)"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "Invalid channel length: 2"),
        (np.zeros((4, 4), dtype=np.complex64), "Invalid array data type: 'complex64'"),
        (np.array([["a"]]), "Invalid array data type"),
        (np.full((4, 4), 300, dtype=np.int32), "Integer pixel values out of acceptable range [0, 255]"),
        (np.zeros((0, 4), dtype=np.uint8), "empty array"),
        (np.array([[0.5, np.nan]]), "NaN or infinite"),
        ([[0, 1], [1, 0]], "Unsupported image object type: <class 'list'>"),
        ("picture.png", "Unsupported image object type"),
    ],
)
def test_log_image_refuses_bad_arrays_and_types(run: Any, client: Any, image: Any, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        evtrack.log_image(image, "x.png")
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        evtrack.log_image(image, key="series", step=1)
    assert _files(client, run.info.run_id) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"artifact_file": "x.png", "key": "k"}, "cannot be used in conjunction with `key`"),
        ({"artifact_file": "x.png", "step": 1}, "cannot be used in conjunction"),
        ({}, "specify exactly one of `artifact_file` or `key`"),
        ({"key": "bad:key"}, "contains invalid characters"),
        ({"key": "k", "step": 1.5}, "`step` must be an integer"),
        ({"artifact_file": "x.unknown"}, "unknown file extension"),
        ({"artifact_file": "x"}, "unknown file extension"),
    ],
)
def test_log_image_refuses_bad_arguments(run: Any, client: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        evtrack.log_image(np.zeros((2, 2), dtype=np.uint8), **kwargs)
    assert _files(client, run.info.run_id) == []
    assert "mlflow.loggedImages" not in client.get_run(run.info.run_id).data.tags


# -- log_table / load_table --------------------------------------------------------------------------


def test_log_table_writes_mlflows_json_appends_and_tags_once(run: Any, client: Any, tmp_path: Path) -> None:
    evtrack.log_table(QA, "eval/qa.json")
    evtrack.log_table(pd.DataFrame({"inputs": ["Why?"], "outputs": ["Because"], "toxicity": [0.5]}), "eval/qa.json")
    evtrack.log_table({"question": "one scalar row"}, "single.json")
    rid = run.info.run_id

    assert json.loads(_read(client, rid, "eval/qa.json", tmp_path)) == {
        "columns": ["inputs", "outputs", "toxicity"],
        "data": [
            ["What is MLflow?", "A tracker", 0.0],
            ["What is evtrack?", "An event log", 0.1],
            ["Why?", "Because", 0.5],
        ],
    }
    assert json.loads(_read(client, rid, "single.json", tmp_path)) == {
        "columns": ["question"],
        "data": [["one scalar row"]],
    }
    assert json.loads(client.get_run(rid).data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "eval/qa.json", "type": "table"},
        {"path": "single.json", "type": "table"},
    ]


def test_log_table_parquet_and_image_cells(run: Any, client: Any, tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": [1, 2], "label": ["a", "b"]})
    evtrack.log_table(frame, "t.parquet")
    evtrack.log_table(frame, "t.parquet")
    pictures = pd.DataFrame(
        {"prompt": ["dog", "cat"], "picture": [Image.new("RGB", (30, 10)), Image.new("RGB", (5, 5))]}
    )
    evtrack.log_table(pictures, "gen.json")
    rid = run.info.run_id

    back = pd.read_parquet(io.BytesIO(_read(client, rid, "t.parquet", tmp_path)))
    assert back.to_dict("list") == {"n": [1, 2, 1, 2], "label": ["a", "b", "a", "b"]}
    table = json.loads(_read(client, rid, "gen.json", tmp_path))
    cells = [row[1] for row in table["data"]]
    assert all(c["type"] == "image" for c in cells)
    assert UUID.sub("<uuid>", cells[0]["filepath"]) == "table_images/gen/<uuid>.png"
    assert cells[0]["compressed_filepath"] == cells[0]["filepath"][: -len(".png")] + ".webp"
    assert _image(client, rid, cells[0]["filepath"], tmp_path).size == (30, 10)
    assert all(isinstance(p, Image.Image) for p in pictures["picture"])  # the caller's DataFrame is not changed


@pytest.mark.parametrize(
    ("data", "artifact_file", "message"),
    [
        (QA, "eval/qa.csv", "either '.json' or '.parquet' extension"),
        (QA, "qa", "either '.json' or '.parquet' extension"),
        (QA, "bad:name.json", "forbidden character: :"),
        (QA, "a,b.json", "forbidden character: ,"),
        ([1, 2, 3], "t.json", "data must be a pandas.DataFrame or a dictionary"),
        ({"img": [Image.new("RGB", (2, 2)), "text"]}, "t.json", "contains a mix of images and non-images"),
        ({"x": [object()]}, "t.parquet", "not serializable"),
    ],
)
def test_log_table_refuses_bad_input(run: Any, client: Any, data: Any, artifact_file: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        evtrack.log_table(data, artifact_file)
    assert "mlflow.loggedArtifacts" not in client.get_run(run.info.run_id).data.tags


def test_load_table_joins_the_runs_that_logged_it(tracking_uri: str, client: Any) -> None:
    evtrack.set_experiment("tables")
    ids = []
    for i in range(3):
        with evtrack.start_run(run_name=f"r{i}") as run:
            evtrack.set_tag("team", f"t{i}")
            if i < 2:
                evtrack.log_table({"x": [i, i], "run_id": ["mine", "mine"]}, "preds.json")
            ids.append(run.info.run_id)

    everything = evtrack.load_table("preds.json", extra_columns=["run_id", "tags.team"])
    assert sorted(everything["x"].tolist()) == [0, 0, 1, 1]
    assert set(everything["run_id_"]) == {ids[0], ids[1]}  # the table's own run_id column is kept
    assert everything["run_id"].tolist() == ["mine"] * 4
    assert dict(zip(everything["run_id_"], everything["tags.team"])) == {ids[0]: "t0", ids[1]: "t1"}

    one = evtrack.load_table("preds.json", run_ids=[ids[1], ids[2]], extra_columns=["start_time"])
    assert one["x"].tolist() == [1, 1] and str(one["start_time"].dt.tz) == "UTC"
    exp_id = evtrack.get_experiment_by_name("tables").experiment_id
    assert client.load_table(exp_id, "preds.json", run_ids=[ids[0]])["x"].tolist() == [0, 0]

    with pytest.raises(ResourceNotFoundError, match="No runs found with the corresponding table artifact"):
        evtrack.load_table("other.json")
    with pytest.raises(ResourceNotFoundError, match="No runs found"):
        evtrack.load_table("preds.json", run_ids=[ids[2]])
    with pytest.raises(InvalidParameterError, match="Unknown extra column 'colour'"):
        evtrack.load_table("preds.json", extra_columns=["colour"])
    with pytest.raises(InvalidParameterError, match="'.json' or '.parquet'"):
        evtrack.load_table("preds.csv")


# -- the same calls on MLflow and on evtrack ---------------------------------------------------------


def _scenario(m: Any, wrapped: Any) -> dict[str, str]:
    """Log figures, images and tables with module ``m`` (``mlflow`` or ``evtrack``); returns run ids.
    ``wrapped`` is an ``mlflow.Image``, which both take."""
    first_image = np.arange(60 * 90 * 3, dtype=np.uint32).reshape(60, 90, 3) % 256
    with m.start_run() as first:
        m.log_figure(_line_figure(), "plots/line.png")
        m.log_figure(go.Figure(go.Scatter(x=[0, 1], y=[2, 3])), "plots/scatter.html")
        m.log_image(first_image.astype(np.uint8), "static/array.png")
        m.log_image(Image.new("RGBA", (7, 3)), "static/pil.png")
        m.log_image(wrapped, "static/wrapped.png")
        m.log_image(first_image.astype(np.uint8), key="samples/val", step=4, timestamp=1_700_000_000_000)
        m.log_table(QA, "eval/qa.json")
        m.log_table({"inputs": ["More?"], "outputs": ["Yes"], "toxicity": [0.2]}, "eval/qa.json")
        m.log_table({"scalar": "row", "n": 1}, "single.json")
        m.log_table(pd.DataFrame({"when": pd.to_datetime(["2024-01-02"]), "v": [None]}), "typed.json")
    with m.start_run() as second:
        m.log_table(QA, "eval/qa.json")
    return {first.info.run_id: "first", second.info.run_id: "second"}


def _relative_files(root: Path) -> list[str]:
    return sorted(UUID.sub("<uuid>", p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())


def test_differential_against_mlflow(tmp_path: Path, local_uri: str, fresh_evtrack: None, monkeypatch: Any) -> None:
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import fluent as mlflow_fluent

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # restored afterwards
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        exp = mlflow.create_experiment("rich", artifact_location=str(tmp_path / "mlartifacts"))
        mlflow.set_experiment(experiment_id=exp)
        ml_names = _scenario(mlflow, mlflow.Image(np.ones((5, 6), dtype=np.uint8)))
        ml_tables = mlflow.load_table("eval/qa.json", extra_columns=["run_id"])
        ml_runs = {rid: mlflow.get_run(rid) for rid in ml_names}
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow_fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        mlflow.set_tracking_uri(None)

    evtrack.set_tracking_uri(local_uri)
    evtrack.set_experiment("rich")
    ev_names = _scenario(evtrack, mlflow.Image(np.ones((5, 6), dtype=np.uint8)))
    ev_tables = evtrack.load_table("eval/qa.json", extra_columns=["run_id"])
    ev_client = evtrack.MlflowClient()

    for ml_id, name in ml_names.items():
        ev_id = next(r for r, n in ev_names.items() if n == name)
        ml_root = tmp_path / "mlartifacts" / ml_id / "artifacts"
        assert sorted(UUID.sub("<uuid>", f) for f in _files(ev_client, ev_id)) == _relative_files(ml_root), name
        for path in _relative_files(ml_root):
            if path.endswith(".json"):
                assert _read(ev_client, ev_id, path, tmp_path / name) == (ml_root / path).read_bytes(), path
            if path.endswith((".png", ".webp")) and "<uuid>" not in path:
                ours = _image(ev_client, ev_id, path, tmp_path / name)
                assert (ours.size, ours.mode) == (Image.open(ml_root / path).size, Image.open(ml_root / path).mode)
        thumbs = sorted((ml_root / "images").glob("*+compressed.webp")) if (ml_root / "images").exists() else []
        ours = [f for f in _files(ev_client, ev_id) if f.endswith("+compressed.webp")]
        assert [Image.open(t).size for t in thumbs] == [_image(ev_client, ev_id, f, tmp_path).size for f in ours]
        ml_tags, ev_tags = ml_runs[ml_id].data.tags, ev_client.get_run(ev_id).data.tags
        for tag in ("mlflow.loggedImages", "mlflow.loggedArtifacts"):
            assert ev_tags.get(tag) == ml_tags.get(tag), (name, tag)

    def named(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
        return frame.assign(run_id=frame["run_id"].map(names))

    pd.testing.assert_frame_equal(named(ev_tables, ev_names), named(ml_tables, ml_names))
    assert named(ev_tables, ev_names)["run_id"].tolist() == ["second"] * 2 + ["first"] * 3  # newest run first


# -- the web UI -------------------------------------------------------------------------------------


@pytest.fixture
def logged(evtrack_server: Any) -> dict[str, Any]:
    """A run of the served store with an image, a plotly figure and tables."""
    client = evtrack.MlflowClient(evtrack_server.store_uri)
    rid = client.create_run(client.create_experiment("rich-ui")).info.run_id
    client.log_image(rid, np.full((30, 40, 3), 200, dtype=np.uint8), "pics/grey.png")
    client.log_figure(rid, go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "plots/fig.html")
    client.log_table(rid, {"q": ["<script>alert(1)</script>", "plain"], "score": [0.5, None]}, "qa.json")
    client.log_table(rid, {"i": list(range(600))}, "long.json")
    client.log_table(rid, {"prompt": ["dog"], "picture": [Image.new("RGB", (8, 8))]}, "gen.json")
    client.log_text(rid, "n\n" + "".join(f"{i}\n" for i in range(700)), "long.csv")
    client.flush()
    return {"server": evtrack_server, "run_id": rid, "base": f"/runs/{rid}/artifacts"}


def test_ui_previews_images_tables_and_html_figures(logged: dict[str, Any]) -> None:
    base = logged["base"]
    with httpx.Client(base_url=logged["server"].url, timeout=30) as http:
        image = http.get(f"{base}/view", params={"path": "pics/grey.png"})
        qa = http.get(f"{base}/view", params={"path": "qa.json"})
        long_table = http.get(f"{base}/view", params={"path": "long.json"})
        long_csv = http.get(f"{base}/view", params={"path": "long.csv"})
        gen = http.get(f"{base}/view", params={"path": "gen.json"})
        figure = http.get(f"{base}/view", params={"path": "plots/fig.html"})
        framed = http.get(f"{base}/raw", params={"path": "plots/fig.html", "inline": "1"})
        downloaded = http.get(f"{base}/raw", params={"path": "plots/fig.html"})
    assert f'<img class="artifact-image" src="{base}/raw?path=pics%2Fgrey.png"' in image.text

    assert 'id="table-preview"' in qa.text and "<th>q</th>" in qa.text and "<th>score</th>" in qa.text
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in qa.text and "<script>alert" not in qa.text
    assert "<td>0.5</td>" in qa.text and "<td>null</td>" in qa.text and 'id="more-rows"' not in qa.text
    assert long_table.text.count("<tr><td>") == 500
    assert "Showing the first 500 of 600 rows (100 more)" in long_table.text
    assert 'id="csv-preview"' in long_csv.text and "Showing the first 500 of 700 rows (200 more)" in long_csv.text
    thumb = re.search(r'<img class="table-image" src="([^"]+)"', gen.text)
    assert thumb and "table_images%2Fgen%2F" in thumb.group(1) and thumb.group(1).endswith(".webp")

    assert re.search(r'<iframe class="artifact-html" id="html-preview" sandbox="allow-scripts"', figure.text)
    assert framed.headers["content-type"].startswith("text/html")
    assert framed.headers["content-security-policy"] == "sandbox allow-scripts"  # scripts, never our origin
    assert "inline" in framed.headers["content-disposition"] and "cdn.plot.ly" in framed.text
    assert downloaded.headers["content-security-policy"] == "sandbox"
    assert "attachment" in downloaded.headers["content-disposition"]


def test_browser_renders_an_image_and_a_sandboxed_plotly_figure(page: Any, logged: dict[str, Any]) -> None:
    page.goto(f"{logged['server'].url}{logged['base']}/view?path=pics/grey.png")
    image = page.locator("img.artifact-image")
    image.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('img.artifact-image').complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]

    client = evtrack.MlflowClient(logged["server"].store_uri)  # plotly.js inside the file: no CDN needed
    figure = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    client.log_figure(logged["run_id"], figure, "plots/offline.html", save_kwargs={"include_plotlyjs": True})
    page.goto(f"{logged['server'].url}{logged['base']}/view?path=plots/offline.html")
    frame = page.frame_locator("iframe#html-preview")
    frame.locator("svg.main-svg").first.wait_for(state="visible")  # its scripts ran and drew the plot
    reach_parent = "() => { try { return parent.document.title } catch (e) { return 'blocked' } }"
    assert page.frames[1].evaluate(reach_parent) == "blocked"  # but in an origin of its own
