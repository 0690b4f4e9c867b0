"""The web UI's SVG charts: well-formed, escaped, and faithful to the data they draw."""

from __future__ import annotations

import math
import random
import re
import time
import xml.etree.ElementTree as ET

import pytest

from evtrack.server.ui import charts
from evtrack.server.ui.downsample import downsample

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&\'"]]>'


def parse(svg: str) -> ET.Element:
    """The chart's root element; fails the test when the markup is not well-formed XML."""
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter() if el.tag in (f"{SVG}text", f"{SVG}title")]


def path_points(d: str) -> list[list[tuple[float, float]]]:
    """The sub-paths of an SVG path's ``d`` as lists of (x, y)."""
    subpaths = []
    for part in d.split("M")[1:]:
        subpaths.append([tuple(map(float, xy.split())) for xy in part.split("L")])
    return subpaths


def series_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "series"]


# -- root element and escaping ----------------------------------------------------------------


@pytest.mark.parametrize(
    "render, css_class",
    [
        (lambda t: charts.line_chart([("loss", [0, 1, 2], [3.0, 2.0, 1.0])], title=t), "metric-chart"),
        (lambda t: charts.scatter_chart([("r", 1.0, 2.0)], x_label="a", y_label="b", title=t), "scatter-chart"),
        (
            lambda t: charts.parallel_coordinates([{"a": 1.0, "m": 2.0}], ["a"], color_by="m", title=t),
            "parallel-coordinates",
        ),
    ],
)
def test_root_svg_carries_class_role_viewbox_and_aria_label(render, css_class):
    root = parse(render("Loss & <friends>"))
    assert root.tag == f"{SVG}svg"
    assert root.get("class") == css_class
    assert root.get("role") == "img"
    assert re.fullmatch(r"0 0 \d+(\.\d+)? \d+(\.\d+)?", root.get("viewBox"))
    assert root.get("aria-label") == "Loss & <friends>"


def test_custom_css_class_is_used_and_escaped():
    root = parse(charts.line_chart([("a", [1], [1.0])], title="t", css_class='compare-chart" onload="x'))
    assert root.get("class") == 'compare-chart" onload="x'
    assert root.get("onload") is None


def test_line_chart_labels_appear_only_escaped():
    svg = charts.line_chart([(HOSTILE, [0, 1], [1.0, 2.0])], title=HOSTILE, x_label=HOSTILE, y_label=HOSTILE)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    assert all(
        tag.endswith(("svg", "g", "text", "title", "path", "line", "circle")) for tag in {el.tag for el in root.iter()}
    )
    assert any(HOSTILE in t for t in texts(root))  # the full name is in the series' tooltip


def test_scatter_and_parallel_coordinates_escape_every_label():
    scatter = charts.scatter_chart([(HOSTILE, 1.0, 2.0)], x_label=HOSTILE, y_label=HOSTILE, title=HOSTILE)
    rows = [{HOSTILE: HOSTILE, "m": 1.0, "label": HOSTILE}, {HOSTILE: "b", "m": 2.0}]
    pc = charts.parallel_coordinates(rows, [HOSTILE, "m"], color_by=HOSTILE, title=HOSTILE)
    for svg in (scatter, pc):
        assert "<script" not in svg
        root = parse(svg)
        assert any(HOSTILE in t for t in texts(root))


def test_characters_not_allowed_in_xml_are_replaced():
    label = "bad\x00\x07\ud800name"
    root = parse(charts.line_chart([(label, [0, 1], [1.0, 2.0])], title=label))
    assert "bad\ufffd\ufffd\ufffdname" in root.get("aria-label")


# -- downsampling -----------------------------------------------------------------------------


def test_downsample_caps_count_and_keeps_first_last_and_extremes():
    rng = random.Random(7)
    xs = list(range(100_000))
    ys = [math.sin(i / 500) + rng.gauss(0, 0.1) for i in xs]
    ys[31_337], ys[77_777] = 50.0, -50.0  # isolated spikes the shape must keep
    dx, dy = downsample(xs, ys, 1000)
    assert len(dx) == len(dy) == 1000
    assert (dx[0], dy[0]) == (0, ys[0]) and (dx[-1], dy[-1]) == (99_999, ys[-1])
    assert (31_337, 50.0) in zip(dx, dy) and (77_777, -50.0) in zip(dx, dy)
    assert dx == sorted(dx)
    assert all(ys[x] == y for x, y in zip(dx, dy))  # only real points, never averages


def test_downsample_keeps_the_shape_of_a_curve():
    xs = list(range(10_000))
    ys = [abs((x % 2000) - 1000) / 1000 for x in xs]  # a triangle wave: 5 peaks, 6 troughs
    dx, dy = downsample(xs, ys, 100)
    assert {x for x, y in zip(dx, dy) if y == 1.0} == {0, 2000, 4000, 6000, 8000}
    assert {x for x, y in zip(dx, dy) if y == 0.0} == {1000, 3000, 5000, 7000, 9000}


def test_downsample_returns_short_series_unchanged():
    assert downsample([1, 2, 3], [4.0, 5.0, 6.0], 10) == ([1, 2, 3], [4.0, 5.0, 6.0])


@pytest.mark.parametrize(
    "xs, ys, n, message",
    [([1, 2], [1.0], 10, "2 x values but 1 y values"), ([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0], 2, "n must be at least 3")],
)
def test_downsample_rejects_bad_input(xs, ys, n, message):
    with pytest.raises(ValueError, match=message):
        downsample(xs, ys, n)


def test_million_point_series_renders_capped(capsys):
    xs = list(range(1_000_000))
    ys = [1 / (1 + x / 1000) + 0.01 * math.sin(x) for x in xs]
    started = time.perf_counter()
    svg = charts.line_chart([("loss", xs, ys)], title="loss")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n  line_chart of 1,000,000 points: {elapsed * 1000:.0f} ms, {len(svg):,} bytes")
    (d,) = [p.get("d") for p in parse(svg).iter(f"{SVG}path")]
    points = [pt for sub in path_points(d) for pt in sub]
    assert 900 <= len(points) <= charts.MAX_POINTS_PER_SERIES


# -- line chart -------------------------------------------------------------------------------


def test_several_series_get_distinct_colours_a_legend_and_tooltips():
    series = [(f"run-{i}", [0, 1, 2], [i, i + 1.0, i + 2.0]) for i in range(3)]
    root = parse(charts.line_chart(series, title="loss", y_label="loss"))
    groups = series_groups(root)
    assert len(groups) == 3
    assert len({g.get("stroke") for g in groups}) == 3
    assert [g.find(f"{SVG}title").text.split(" ")[0] for g in groups] == ["run-0", "run-1", "run-2"]
    assert "last 4 at 2" in groups[2].find(f"{SVG}title").text
    legend = [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend-item"]
    assert ["".join(g.find(f"{SVG}text").itertext()) for g in legend] == ["run-0", "run-1", "run-2"]


def test_higher_values_are_drawn_higher_and_later_steps_further_right():
    root = parse(charts.line_chart([("acc", [0, 5, 10], [0.1, 0.5, 0.9])], title="acc"))
    (sub,) = path_points(series_groups(root)[0].find(f"{SVG}path").get("d"))
    assert [x for x, _ in sub] == sorted(x for x, _ in sub)
    assert [y for _, y in sub] == sorted((y for _, y in sub), reverse=True)  # SVG y grows downwards


def test_nan_and_infinite_points_leave_a_gap():
    ys = [1.0, 2.0, float("nan"), 3.0, 4.0, float("inf"), 5.0, 6.0]
    root = parse(charts.line_chart([("m", list(range(8)), ys)], title="m"))
    subpaths = path_points(series_groups(root)[0].find(f"{SVG}path").get("d"))
    assert [len(sub) for sub in subpaths] == [2, 2, 2]


def test_unordered_steps_are_drawn_in_step_order():
    root = parse(charts.line_chart([("m", [2, 0, 1], [3.0, 1.0, 2.0])], title="m"))
    (sub,) = path_points(series_groups(root)[0].find(f"{SVG}path").get("d"))
    assert [x for x, _ in sub] == sorted(x for x, _ in sub)


def test_single_point_is_drawn_as_a_dot():
    root = parse(charts.line_chart([("m", [3], [0.25])], title="m"))
    group = series_groups(root)[0]
    assert group.find(f"{SVG}circle") is not None
    assert "last 0.25 at 3" in group.find(f"{SVG}title").text


def test_constant_series_is_a_flat_line_inside_the_plot():
    root = parse(charts.line_chart([("m", [0, 1, 2, 3], [5.0] * 4)], title="m"))
    (sub,) = path_points(series_groups(root)[0].find(f"{SVG}path").get("d"))
    assert len({y for _, y in sub}) == 1
    tick_labels = ["".join(t.itertext()) for g in root.iter(f"{SVG}g") if g.get("class") == "ticks" for t in g]
    assert "5.0" in tick_labels or "5" in tick_labels
    _, _, width, height = map(float, root.get("viewBox").split())
    assert all(0 < x < width and 0 < y < height for x, y in sub)


def test_chart_without_finite_values_says_no_data():
    root = parse(charts.line_chart([("m", [0, 1], [float("nan")] * 2)], title="m"))
    assert "No data" in texts(root)


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0, 1_000_000, ["0", "0.2M", "0.4M", "0.6M", "0.8M", "1.0M"]),
        (0, 1, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (-3, 7, ["-4", "-2", "0", "2", "4", "6", "8"]),
    ],
)
def test_axis_ticks_are_round_numbers(lo, hi, expected):
    axis_lo, axis_hi, ticks = charts.nice_ticks(lo, hi, 6)
    assert axis_lo <= lo and axis_hi >= hi
    assert charts._tick_labels(ticks) == expected


# -- scatter ----------------------------------------------------------------------------------


def test_scatter_draws_a_dot_with_tooltip_per_finite_point():
    points = [("run-a", 0.1, 3.0), ("run-b", 0.5, 2.0), ("run-c", float("nan"), 1.0), ("run-d", 1.0, 2.5)]
    root = parse(charts.scatter_chart(points, x_label="alpha", y_label="rmse", title="rmse by alpha"))
    circles = list(root.iter(f"{SVG}circle"))
    assert [c.find(f"{SVG}title").text for c in circles] == [
        "run-a: alpha=0.1, rmse=3",
        "run-b: alpha=0.5, rmse=2",
        "run-d: alpha=1, rmse=2.5",
    ]
    xs = [float(c.get("cx")) for c in circles]
    ys = [float(c.get("cy")) for c in circles]
    assert xs[0] < xs[1] < xs[2] and ys[0] < ys[2] < ys[1]


# -- parallel coordinates -------------------------------------------------------------------


ROWS = [
    {"label": "run-a", "alpha": 0.1, "model": "lasso", "rmse": 3.0},
    {"label": "run-b", "alpha": 0.5, "model": "ridge", "rmse": 2.0},
    {"label": "run-c", "alpha": None, "model": "ridge", "rmse": 5.0},
    {"label": "run-d", "alpha": 1.0, "model": "elastic", "rmse": None},
]


def pc_rows(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "row"]


def test_parallel_coordinates_one_axis_per_name_and_one_line_per_row():
    root = parse(charts.parallel_coordinates(ROWS, ["alpha", "model", "rmse"], color_by="rmse", title="pc"))
    axes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "pc-axis"]
    assert [g.find(f"{SVG}title").text for g in axes] == ["alpha", "model", "rmse"]
    rows = pc_rows(root)
    assert len(rows) == 4
    assert rows[0].find(f"{SVG}title").text.startswith("run-a: alpha=0.1 model=lasso rmse=3")


def test_categorical_axis_spaces_values_evenly_in_sorted_order():
    root = parse(charts.parallel_coordinates(ROWS, ["model", "rmse"], color_by="rmse", title="pc"))
    (model_axis, _) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "pc-axis"]
    labels = {"".join(t.itertext()): float(t.get("y")) for t in model_axis.iter(f"{SVG}text")}
    assert set(labels) >= {"elastic", "lasso", "ridge"}
    assert labels["elastic"] > labels["lasso"] > labels["ridge"]  # bottom to top
    assert labels["elastic"] - labels["lasso"] == pytest.approx(labels["lasso"] - labels["ridge"])


def test_missing_value_breaks_the_line_and_missing_colour_is_grey():
    root = parse(charts.parallel_coordinates(ROWS, ["alpha", "model", "rmse"], color_by="rmse", title="pc"))
    rows = {g.find(f"{SVG}title").text.split(":")[0]: g for g in pc_rows(root)}
    assert [len(s) for s in path_points(rows["run-a"].find(f"{SVG}path").get("d"))] == [3]
    assert [len(s) for s in path_points(rows["run-c"].find(f"{SVG}path").get("d"))] == [2]  # no alpha
    assert [len(s) for s in path_points(rows["run-d"].find(f"{SVG}path").get("d"))] == [2]  # no rmse
    assert rows["run-d"].get("stroke") == charts.MISSING_COLOR


def test_colour_ramp_runs_from_min_to_max_with_a_legend():
    root = parse(charts.parallel_coordinates(ROWS, ["alpha", "rmse"], color_by="rmse", title="pc"))
    rows = {g.find(f"{SVG}title").text.split(":")[0]: g.get("stroke") for g in pc_rows(root)}
    assert rows["run-b"] == charts._ramp(0.0) and rows["run-c"] == charts._ramp(1.0)
    assert len({rows["run-a"], rows["run-b"], rows["run-c"]}) == 3
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "color-legend")
    assert ["".join(t.itertext()) for t in legend.iter(f"{SVG}text")] == ["rmse", "2", "5"]


def test_two_parallel_coordinate_charts_use_distinct_gradient_ids():
    ids = {
        parse(charts.parallel_coordinates(ROWS, ["alpha"], color_by="rmse", title="pc"))
        .find(f".//{SVG}linearGradient")
        .get("id")
        for _ in range(2)
    }
    assert len(ids) == 2


def test_parallel_coordinates_without_rows_says_no_data():
    assert "No data" in texts(parse(charts.parallel_coordinates([], ["a"], color_by="a", title="pc")))


def test_step_axis_of_a_single_step_has_whole_ticks():
    root = parse(charts.line_chart([("rmse", [0], [7.0])], title="rmse"))
    ticks = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "ticks")
    x_labels = [t.text for t in ticks if t.get("text-anchor") == "middle"]
    assert x_labels == ["-1", "0", "1"]


def test_categorical_axis_with_many_values_labels_only_some():
    rows = [{"run": f"run-{i:03d}", "m": float(i)} for i in range(200)]
    root = parse(charts.parallel_coordinates(rows, ["run", "m"], color_by="m", title="pc"))
    run_axis = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "pc-axis")
    labels = ["".join(t.itertext()) for t in run_axis.iter(f"{SVG}text")][1:]
    assert 10 <= len(labels) <= charts.MAX_CATEGORY_LABELS + 1
    assert labels[0] == "run-000" and labels[-1] == "run-199"
    assert len(pc_rows(root)) == 200
