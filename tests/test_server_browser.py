"""The web UI in a real headless Chromium: search the runs table, open a run, compare runs, SQL.

Drives Debian's ``chromium`` through Playwright (no browser download); ``.ci/run``
installs it. Every page visited is saved as a PNG screenshot under the test run's
temporary directory (or ``$EVTRACK_SCREENSHOT_DIR``).
"""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any

import pytest
from conftest import shoot

from evtrack.entities import Metric, Param, RunTag

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def tracked(evtrack_server: Any) -> dict[str, Any]:
    """Four runs (two lasso, two ridge) with params, a loss history, a final rmse and tags."""
    from evtrack import EvtrackClient

    client = EvtrackClient(evtrack_server.store_uri)
    experiment_id = client.create_experiment("browser-taxi")
    runs = {}
    for i, (model, alpha) in enumerate([("lasso", 0.01), ("lasso", 0.1), ("ridge", 0.5), ("ridge", 1.0)]):
        name = f"{model}-{alpha}"
        run = client.create_run(experiment_id, run_name=name)
        history = [
            Metric("loss", (1 + i) / (step + 1) + 0.05 * math.sin(step), 1_700_000_000_000 + step, step)
            for step in range(60)
        ]
        client.log_batch(
            run.info.run_id,
            metrics=history + [Metric("rmse", 7.0 - i, 1_700_000_000_100, 0)],
            params=[Param("model", model), Param("alpha", str(alpha))],
            tags=[RunTag("developer", "ahmad")],
        )
        client.set_terminated(run.info.run_id)
        runs[name] = run.info.run_id
    client.flush()
    return {"server": evtrack_server, "client": client, "experiment_id": experiment_id, "runs": runs}


def row_ids(page: Any) -> list[str]:
    return page.locator("table#runs-table tr.run-row").evaluate_all("rows => rows.map(r => r.dataset.runId)")


def test_search_open_run_and_compare(page: Any, tracked: dict[str, Any], screenshot_dir: pathlib.Path):
    base, runs = tracked["server"].url, tracked["runs"]
    page.goto(f"{base}/experiments/{tracked['experiment_id']}")
    assert sorted(row_ids(page)) == sorted(runs.values())
    shoot(page, screenshot_dir, "01-runs-table")

    page.fill("form#search-form input#search-input[name=filter]", "params.model = 'ridge' and metrics.rmse < 5")
    with page.expect_navigation():
        page.press("input#search-input", "Enter")
    assert row_ids(page) == [runs["ridge-1.0"]]
    assert "filter=" in page.url
    shoot(page, screenshot_dir, "02-runs-table-filtered")

    page.goto(f"{base}/experiments/{tracked['experiment_id']}")
    row = page.locator(f"tr.run-row[data-run-id='{runs['lasso-0.1']}']")
    with page.expect_navigation():
        row.locator("a.run-link").first.click()
    assert page.url.endswith(f"/runs/{runs['lasso-0.1']}")
    chart = page.locator("svg.metric-chart").first
    chart.wait_for(state="visible")
    assert chart.locator("path, polyline").count() >= 1
    assert "lasso-0.1" in page.locator("body").inner_text()
    shoot(page, screenshot_dir, "03-run-page")

    page.go_back()
    page.locator("table#runs-table").wait_for()
    for name in ("lasso-0.01", "ridge-0.5"):
        page.check(f"tr.run-row[data-run-id='{runs[name]}'] input.run-select[name=runs]")
    with page.expect_navigation():
        page.click("button#compare-button")
    assert "/compare" in page.url
    assert runs["lasso-0.01"] in page.url and runs["ridge-0.5"] in page.url
    compare = page.locator("svg.compare-chart").first
    compare.wait_for(state="visible")
    assert compare.locator("path, polyline").count() >= 2  # one curve per run, overlaid
    parallel = page.locator("svg.parallel-coordinates").first
    parallel.wait_for(state="visible")
    body = page.locator("body").inner_text()
    assert "lasso-0.01" in body and "ridge-0.5" in body
    shoot(page, screenshot_dir, "04-compare")


def test_tag_with_markup_is_shown_not_executed(page: Any, tracked: dict[str, Any], screenshot_dir: pathlib.Path):
    run_id = tracked["runs"]["lasso-0.01"]
    tracked["client"].set_tag(run_id, "note", XSS)
    tracked["client"].flush()
    page.goto(f"{tracked['server'].url}/runs/{run_id}")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__xss") is None
    assert XSS in page.locator("body").inner_text()
    shoot(page, screenshot_dir, "05-run-page-hostile-tag")

    page.goto(f"{tracked['server'].url}/experiments/{tracked['experiment_id']}?show_tags=1")
    page.wait_for_load_state("load")
    assert page.evaluate("window.__xss") is None
    assert page.locator("table#runs-table tr.run-row").count() == 4


def test_sql_page_runs_a_query(page: Any, tracked: dict[str, Any], screenshot_dir: pathlib.Path):
    page.goto(f"{tracked['server'].url}/sql")
    page.fill(
        "textarea#sql-input[name=q]",
        "SELECT r.run_name, p.value AS alpha FROM runs r JOIN params p USING (run_id) "
        "WHERE p.key = 'alpha' ORDER BY r.run_name",
    )
    with page.expect_navigation():
        page.locator("textarea#sql-input").evaluate("el => el.form.requestSubmit()")
    result = page.locator("table#sql-result")
    result.wait_for(state="visible")
    cells = result.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )
    assert cells == [["lasso-0.01", "0.01"], ["lasso-0.1", "0.1"], ["ridge-0.5", "0.5"], ["ridge-1.0", "1.0"]]
    shoot(page, screenshot_dir, "06-sql")


FITS = """el => {
  const style = getComputedStyle(el);
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = style.font;
  const text = el.value || el.placeholder;
  const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {text: text, fits: el.offsetWidth > 0 && ctx.measureText(text).width <= room,
          placeholderColor: getComputedStyle(el, "::placeholder").color};
}"""


def test_order_by_box_shows_its_whole_text(page: Any, tracked: dict[str, Any], screenshot_dir: pathlib.Path):
    base, experiment_id = tracked["server"].url, tracked["experiment_id"]
    page.goto(f"{base}/experiments/{experiment_id}")
    box = page.locator("input#order-by-input")
    empty = box.evaluate(FITS)
    assert empty["text"] == "attributes.start_time DESC (newest first)" and empty["fits"], empty
    assert empty["placeholderColor"] == "rgb(107, 114, 128)"  # --muted, not the faint default

    with page.expect_navigation():
        page.locator("a.sort-link[data-order-key='metrics.rmse']").click()
    assert box.input_value() == "metrics.rmse ASC"
    assert box.evaluate(FITS)["fits"]
    assert row_ids(page)[0] == tracked["runs"]["ridge-1.0"]  # rmse 4.0, the lowest

    long_order = "params.`train-data-path-with-a-long-name` DESC"
    page.fill("input#order-by-input", long_order)
    with page.expect_navigation():
        page.press("input#order-by-input", "Enter")
    assert box.input_value() == long_order
    shown = box.evaluate(FITS)
    assert shown["text"] == long_order and shown["fits"], shown
    shoot(page, screenshot_dir, "07-runs-table-order-by")


def test_mlflow_deep_links_land_on_evtrack_pages(page: Any, tracked: dict[str, Any], screenshot_dir: pathlib.Path):
    base, experiment_id, runs = tracked["server"].url, tracked["experiment_id"], tracked["runs"]
    client = tracked["client"]
    client.create_registered_model("taxi model")
    client.create_model_version("taxi model", f"runs:/{runs['ridge-0.5']}/model", run_id=runs["ridge-0.5"])
    client.flush()
    cases = [
        (f"/#/experiments/{experiment_id}/runs/{runs['lasso-0.1']}", f"/runs/{runs['lasso-0.1']}", "lasso-0.1"),
        (
            f"/#/experiments/{experiment_id}/runs/{runs['ridge-1.0']}/artifacts?workspace=x",
            f"/runs/{runs['ridge-1.0']}",
            "ridge-1.0",
        ),
        (f"/#/experiments/{experiment_id}", f"/experiments/{experiment_id}", "browser-taxi"),
        ("/#/models/taxi%20model/versions/1", "/models/taxi%20model/versions/1", "taxi model v1"),
        ("/#/models/taxi%20model", "/models/taxi%20model", "taxi model"),
    ]
    for link, path, heading in cases:
        page.goto(base + link)
        page.wait_for_url(base + path)
        assert page.locator("h1#page-title").inner_text().strip() == heading, link
    shoot(page, screenshot_dir, "08-deep-link-landed")


def test_the_link_mlflow_prints_opens_the_run(
    page: Any, mlflow_client: Any, capsys: pytest.CaptureFixture[str], screenshot_dir: pathlib.Path
):
    experiment_id = mlflow_client.create_experiment("printed-links")
    run = mlflow_client.create_run(experiment_id, run_name="printed-run")
    mlflow_client.set_terminated(run.info.run_id)  # MLflow prints "View run printed-run at: <url>"
    printed = capsys.readouterr().out
    url = re.search(r"View run printed-run at: (\S+)", printed).group(1)  # type: ignore[union-attr]
    assert "/#/experiments/" in url
    page.goto(url)
    page.wait_for_url(f"**/runs/{run.info.run_id}")
    assert page.locator("h1#page-title").inner_text().strip() == "printed-run"
    assert run.info.run_id in page.locator("dd#run-id").inner_text()
    shoot(page, screenshot_dir, "09-mlflow-printed-link")
