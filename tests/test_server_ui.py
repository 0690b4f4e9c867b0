"""The web UI of ``evtrack server``: pages over real HTTP against a running server.

Data is logged with ``EvtrackClient`` straight into the served store; pages are
fetched with httpx from the uvicorn server of the ``evtrack_server`` fixture.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import httpx
import pytest

from evtrack.entities import Dataset, DatasetInput, InputTag
from evtrack.client import EvtrackClient

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MODEL_XSS = "model <img src=x onerror=alert(1)>"  # registry names cannot hold '/'


def _run_ids(html: str) -> list[str]:
    """The run ids of the runs table, in page order."""
    return re.findall(r'<tr class="run-row" data-run-id="([0-9a-f]+)"', html)


def _http(server: Any, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, **kwargs)


@pytest.fixture
def sweep(evtrack_server: Any) -> dict[str, Any]:
    """An experiment of five finished runs: alpha 0..4, rmse 1.0, 0.8, … with a 3-step history."""
    client = EvtrackClient(evtrack_server.store_uri)
    exp = client.create_experiment("sweep")
    ids = []
    for i in range(5):
        run = client.create_run(exp, run_name=f"run-{i}", start_time=1_700_000_000_000 + i * 1000)
        rid = run.info.run_id
        client.log_param(rid, "alpha", str(i))
        client.log_param(rid, "model", "lasso" if i % 2 == 0 else "ridge")
        for step in range(3):
            client.log_metric(rid, "rmse", 1.0 - 0.2 * i + 0.1 * (2 - step), step=step)
        client.log_metric(rid, "r2", 0.1 * i)
        client.set_tag(rid, "team", "vision" if i < 3 else "nlp")
        client.set_terminated(rid, end_time=1_700_000_000_000 + i * 1000 + 2500)
        ids.append(rid)
    client.flush()
    return {"client": client, "experiment_id": exp, "run_ids": ids}


# -- experiments list and forms -----------------------------------------------------------------


def test_home_redirects_to_experiments_and_lists_them(evtrack_server: Any, sweep: dict) -> None:
    with _http(evtrack_server) as http:
        home = http.get("/")
        assert home.status_code in (302, 303, 307) and home.headers["location"].endswith("/experiments")
        page = http.get("/experiments")
    assert page.status_code == 200
    assert f'data-experiment-id="{sweep["experiment_id"]}"' in page.text
    assert ">sweep</a>" in page.text
    assert "/artifacts/" + sweep["experiment_id"] in page.text  # its artifact location
    assert "Models</a>" in page.text and "SQL</a>" in page.text
    assert re.search(r"<footer>evtrack \d+\.\d+", page.text)


def test_experiment_forms_create_rename_delete_and_show_deleted(evtrack_server: Any) -> None:
    client = EvtrackClient(evtrack_server.store_uri)
    with _http(evtrack_server) as http:
        created = http.post("/experiments/create", data={"name": "made-in-ui"})
        assert created.status_code == 303 and created.headers["location"] == "/experiments"
        exp = client.get_experiment_by_name("made-in-ui")
        assert exp is not None

        duplicate = http.post("/experiments/create", data={"name": "made-in-ui"})
        assert duplicate.status_code == 400
        assert 'id="message"' in duplicate.text and "already exists" in duplicate.text
        empty = http.post("/experiments/create", data={"name": ""})
        assert empty.status_code == 400 and "Invalid experiment name" in empty.text

        renamed = http.post(f"/experiments/{exp.experiment_id}/rename", data={"new_name": "renamed-in-ui"})
        assert renamed.status_code == 303
        assert client.get_experiment(exp.experiment_id).name == "renamed-in-ui"

        deleted = http.post(f"/experiments/{exp.experiment_id}/delete")
        assert deleted.status_code == 303
        assert client.get_experiment(exp.experiment_id).lifecycle_stage == "deleted"
        active = http.get("/experiments").text
        everything = http.get("/experiments?view=all").text
        missing = http.post("/experiments/999/delete")
    row = f'data-experiment-id="{exp.experiment_id}"'
    assert row not in active
    assert row in everything and "renamed-in-ui" in everything
    assert missing.status_code == 404


def test_cross_origin_form_posts_are_refused(evtrack_server: Any) -> None:
    client = EvtrackClient(evtrack_server.store_uri)
    with _http(evtrack_server) as http:
        evil = http.post("/experiments/create", data={"name": "csrf"}, headers={"Origin": "http://evil.example"})
        null = http.post("/experiments/create", data={"name": "csrf"}, headers={"Origin": "null"})
        same = http.post("/experiments/create", data={"name": "same-origin"}, headers={"Origin": evtrack_server.url})
        proxied = http.post(
            "/experiments/create",
            data={"name": "via-proxy"},
            headers={"Origin": "https://ml.example.org", "X-Forwarded-Host": "ml.example.org"},
        )
        fetch_cross = http.post("/experiments/create", data={"name": "csrf"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert evil.status_code == 403 and null.status_code == 403
    assert "another origin" in evil.text
    assert client.get_experiment_by_name("csrf") is None
    assert fetch_cross.status_code == 403
    assert same.status_code == 303 and client.get_experiment_by_name("same-origin") is not None
    assert proxied.status_code == 303 and client.get_experiment_by_name("via-proxy") is not None


def test_read_only_user_cannot_post_forms(server_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_AUTH_USERS", "alice:rw:pw-a viewer:ro:pw-v")
    server = server_factory()
    client = EvtrackClient(server.store_uri)
    with _http(server, auth=("viewer", "pw-v")) as viewer, _http(server, auth=("alice", "pw-a")) as alice:
        assert viewer.get("/experiments").status_code == 200
        refused = viewer.post("/experiments/create", data={"name": "by-viewer"})
        assert refused.status_code == 403 and "read-only" in refused.text
        assert viewer.post("/experiments/0/delete").status_code == 403
        assert client.get_experiment_by_name("by-viewer") is None
        assert alice.post("/experiments/create", data={"name": "by-alice"}).status_code == 303
    assert client.get_experiment_by_name("by-alice") is not None
    assert httpx.get(f"{server.url}/experiments").status_code == 401


# -- the runs table ------------------------------------------------------------------------------


def test_runs_table_shows_runs_params_metrics_and_compare_controls(evtrack_server: Any, sweep: dict) -> None:
    with _http(evtrack_server) as http:
        page = http.get(f"/experiments/{sweep['experiment_id']}")
        with_tags = http.get(f"/experiments/{sweep['experiment_id']}?show_tags=1")
        chosen = http.get(f"/experiments/{sweep['experiment_id']}?columns=params.alpha,tags.team")
        bad_column = http.get(f"/experiments/{sweep['experiment_id']}?columns=alpha")
    html = page.text
    assert page.status_code == 200 and '<table id="runs-table"' in html
    assert _run_ids(html) == sweep["run_ids"][::-1]  # newest first
    for rid in sweep["run_ids"]:
        assert f'<a class="run-link" href="/runs/{rid}"' in html
        assert f'<input type="checkbox" class="run-select" name="runs" value="{rid}"' in html
    assert '<form id="search-form" method="get"' in html and 'id="search-input" name="filter"' in html
    assert 'id="compare-button"' in html and 'action="/compare"' in html
    assert ">alpha</a>" in html and ">rmse</a>" in html and ">run-3</a>" in html
    assert ">team</a>" not in html and ">team</a>" in with_tags.text  # tags behind the toggle
    assert ">alpha</a>" in chosen.text and ">team</a>" in chosen.text and ">rmse</a>" not in chosen.text
    assert bad_column.status_code == 400 and "Invalid column &#39;alpha&#39;" in bad_column.text


def test_search_filter_narrows_and_bad_filter_names_the_problem(evtrack_server: Any, sweep: dict) -> None:
    url = f"/experiments/{sweep['experiment_id']}"
    with _http(evtrack_server) as http:
        lasso = http.get(url, params={"filter": "params.model = 'lasso' and metrics.r2 > 0.15"})
        bad = http.get(url, params={"filter": "metrics.rmse <<< 3"})
        unknown = http.get(url, params={"filter": "colour = 'red'"})
    assert lasso.status_code == 200
    assert set(_run_ids(lasso.text)) == {sweep["run_ids"][2], sweep["run_ids"][4]}
    assert 'value="params.model = &#39;lasso&#39; and metrics.r2 &gt; 0.15"' in lasso.text  # kept in the box
    assert bad.status_code == 400 and 'id="message"' in bad.text and "position" in bad.text
    assert _run_ids(bad.text) == []
    assert unknown.status_code == 400 and "Invalid attribute key" in unknown.text


def test_order_by_and_pagination(evtrack_server: Any, sweep: dict) -> None:
    url = f"/experiments/{sweep['experiment_id']}"
    ids = sweep["run_ids"]
    with _http(evtrack_server) as http:
        first = http.get(url, params={"order_by": "metrics.rmse ASC", "max_results": 2})
        next_href = re.search(r'id="next-page" class="next-page" href="([^"]+)"', first.text).group(1)
        second = http.get(next_href.replace("&amp;", "&"))
        prev_href = re.search(r'id="prev-page" class="prev-page" href="([^"]+)"', second.text).group(1)
        back = http.get(prev_href.replace("&amp;", "&"))
        by_header = re.search(r'href="([^"]+)" data-order-key="params.alpha"', first.text).group(1)
        ascending = http.get(by_header.replace("&amp;", "&"))
        too_many = http.get(url, params={"max_results": "5000"})
    assert _run_ids(first.text) == [ids[4], ids[3]]  # rmse falls with i
    assert _run_ids(second.text) == [ids[2], ids[1]]
    assert _run_ids(back.text) == [ids[4], ids[3]]
    assert "prev-page" not in first.text
    assert _run_ids(ascending.text)[0] == ids[0]  # alpha 0 first
    assert too_many.status_code == 400 and "max_results" in too_many.text


def _order_box(html: str) -> dict[str, str]:
    """The attributes of the runs page's order-by input."""
    tag = re.search(r'<input id="order-by-input"[^>]*>', html)
    assert tag, "no order-by input on the page"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


@pytest.mark.parametrize(
    "order_by", ["", "metrics.rmse ASC", "params.`train-data-path` DESC", "attributes.start_time DESC"]
)
def test_order_by_box_shows_the_current_order_and_a_readable_placeholder(
    evtrack_server: Any, sweep: dict, order_by: str
) -> None:
    with _http(evtrack_server) as http:
        page = http.get(f"/experiments/{sweep['experiment_id']}", params={"order_by": order_by} if order_by else {})
    assert page.status_code == 200
    box = _order_box(page.text)
    assert box["name"] == "order_by" and box["value"] == order_by
    assert box["placeholder"] == "attributes.start_time DESC (newest first)"
    assert int(box["size"]) >= max(len(order_by), len(box["placeholder"]))  # the whole text fits the box


def test_order_by_box_follows_a_header_click(evtrack_server: Any, sweep: dict) -> None:
    with _http(evtrack_server) as http:
        first = http.get(f"/experiments/{sweep['experiment_id']}")
        href = re.search(r'href="([^"]+)" data-order-key="metrics.rmse"', first.text).group(1)
        sorted_page = http.get(href.replace("&amp;", "&"))
    assert _order_box(sorted_page.text)["value"] == "metrics.rmse ASC"


def test_csv_download_has_every_matching_run_in_order(evtrack_server: Any, sweep: dict) -> None:
    sweep["client"].set_tag(sweep["run_ids"][0], "formula", '=HYPERLINK("http://x")')
    sweep["client"].flush()
    with _http(evtrack_server) as http:
        page = http.get(
            f"/experiments/{sweep['experiment_id']}",
            params={"filter": "tags.team = 'vision'", "order_by": "params.alpha DESC"},
        )
        href = re.search(r'id="csv-link" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
        response = http.get(href)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["run_id"] for r in rows] == [sweep["run_ids"][i] for i in (2, 1, 0)]
    assert [r["params.alpha"] for r in rows] == ["2", "1", "0"]
    assert float(rows[0]["metrics.rmse"]) == pytest.approx(0.6)
    assert rows[0]["tags.team"] == "vision" and rows[0]["status"] == "FINISHED"
    assert rows[2]["tags.formula"] == '\'=HYPERLINK("http://x")'  # not a live spreadsheet formula


# -- run, metric, compare -------------------------------------------------------------------------


def test_run_page_shows_info_params_metrics_charts_tags_datasets_models(evtrack_server: Any, sweep: dict) -> None:
    client, rid = sweep["client"], sweep["run_ids"][1]
    client.log_inputs(
        rid,
        [
            DatasetInput(
                Dataset("taxi-trips", "d1g3st", "local", '{"uri": "/data/t.parquet"}'),
                [InputTag("mlflow.data.context", "training")],
            )
        ],
    )
    history = [
        {
            "run_id": rid,
            "artifact_path": "model",
            "utc_time_created": "2024-01-01 00:00:00.0",
            "model_uuid": "abc123",
            "flavors": {"python_function": {}, "sklearn": {}},
        }
    ]
    client.set_tag(rid, "mlflow.log-model.history", json.dumps(history))
    client.log_metric(rid, "val/loss", 0.5, step=7)
    client.flush()
    with _http(evtrack_server) as http:
        page = http.get(f"/runs/{rid}")
        metric = http.get(f"/runs/{rid}/metrics/rmse")
        slashed = http.get(f"/runs/{rid}/metrics/val/loss")
        no_such = http.get(f"/runs/{rid}/metrics/nope")
    html = page.text
    assert page.status_code == 200
    assert rid in html and ">run-1<" in html and f'href="/experiments/{sweep["experiment_id"]}"' in html
    assert "FINISHED" in html and "2.5s" in html  # status and duration
    assert html.count('class="metric-chart"') == 3  # one chart per metric
    params = html.split('id="params-table"')[1].split("</table>")[0]
    assert "alpha" in params and "ridge" in params
    tags = html.split('id="tags-table"')[1].split("</table>")[0]
    assert "team" in tags and "mlflow.runName" not in tags
    assert "mlflow.runName" in html.split('id="system-tags-table"')[1]
    assert "taxi-trips" in html and "training" in html
    assert "python_function, sklearn" in html and "abc123" in html
    assert metric.status_code == 200 and 'class="metric-chart"' in metric.text
    assert metric.text.count('<tr><td class="num">') == 3  # the three points
    assert slashed.status_code == 200 and '<tr><td class="num">7</td>' in slashed.text
    assert f'href="/runs/{rid}/metrics/val/loss"' in html
    assert no_such.status_code == 404


def test_unknown_run_experiment_and_model_are_404_pages(evtrack_server: Any) -> None:
    with _http(evtrack_server) as http:
        for url in ("/runs/0123456789abcdef", "/experiments/4242", "/models/nope", "/models/nope/versions/1"):
            response = http.get(url)
            assert response.status_code == 404, url
            assert "RESOURCE_DOES_NOT_EXIST" in response.text and "Traceback" not in response.text


def test_compare_page_tables_and_charts(evtrack_server: Any, sweep: dict) -> None:
    ids = sweep["run_ids"][:3]
    with _http(evtrack_server) as http:
        page = http.get("/compare", params=[("runs", rid) for rid in ids])
        scatter = http.get(
            "/compare", params=[("runs", rid) for rid in ids] + [("x", "params.alpha"), ("y", "metrics.rmse")]
        )
        bad_axis = http.get("/compare", params=[("runs", ids[0]), ("x", "params.nope"), ("y", "metrics.rmse")])
        none = http.get("/compare")
    html = page.text
    assert page.status_code == 200
    for rid in ids:
        assert f'data-run-id="{rid}"' in html
    assert re.search(r'<svg[^>]*class="parallel-coordinates"', html)
    assert len(re.findall(r'<svg[^>]*class="compare-chart"', html)) == 2  # rmse and r2, in common
    assert re.search(r'<svg[^>]*class="scatter-chart"', scatter.text)
    assert bad_axis.status_code == 400 and "params.nope" in bad_axis.text
    assert none.status_code == 400


def test_compare_page_names_the_experiments_of_the_runs(evtrack_server: Any, sweep: dict) -> None:
    client = sweep["client"]
    other = client.create_experiment("other-sweep")
    elsewhere = client.create_run(other, run_name="elsewhere").info.run_id
    client.flush()
    one, two = sweep["run_ids"][:2]
    with _http(evtrack_server) as http:
        same = http.get("/compare", params=[("runs", one), ("runs", two)])
        mixed = http.get("/compare", params=[("runs", one), ("runs", elsewhere)])
    experiment_cells = re.compile(r'<a class="experiment-link" href="/experiments/(\d+)"[^>]*>([^<]+)</a>')
    assert experiment_cells.findall(same.text) == [(sweep["experiment_id"], "sweep")] * 2
    assert experiment_cells.findall(mixed.text) == [(sweep["experiment_id"], "sweep"), (other, "other-sweep")]
    crumbs = re.compile(r'<nav class="crumbs">.*?</nav>', re.S)
    assert f'<a href="/experiments/{sweep["experiment_id"]}">sweep</a>' in crumbs.search(same.text).group(0)
    assert "/experiments/" + sweep["experiment_id"] not in crumbs.search(mixed.text).group(0)


# -- artifacts ---------------------------------------------------------------------------------------


def test_artifacts_browser_lists_previews_and_downloads(evtrack_server: Any, sweep: dict, tmp_path: Any) -> None:
    client, rid = sweep["client"], sweep["run_ids"][0]
    client.log_text(rid, "plain <b>text</b>\n", "notes/readme.txt")
    client.log_dict(rid, {"lr": 0.1}, "notes/config.json")
    client.log_text(rid, "a,b\n1,2\n3,4\n", "data/table.csv")
    client.log_text(rid, '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "plot.svg")
    client.log_text(rid, "x" * (1 << 20) + "TAIL", "big.log")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    client.log_artifact(rid, str(tmp_path / "blob.bin"))
    base = f"/runs/{rid}/artifacts"
    with _http(evtrack_server) as http:
        root = http.get(base)
        notes = http.get(base, params={"path": "notes"})
        text = http.get(f"{base}/view", params={"path": "notes/readme.txt"})
        as_json = http.get(f"{base}/view", params={"path": "notes/config.json"})
        table = http.get(f"{base}/view", params={"path": "data/table.csv"})
        svg_view = http.get(f"{base}/view", params={"path": "plot.svg"})
        svg_raw = http.get(f"{base}/raw", params={"path": "plot.svg"})
        big = http.get(f"{base}/view", params={"path": "big.log"})
        binary = http.get(f"{base}/view", params={"path": "blob.bin"})
        raw = http.get(f"{base}/raw", params={"path": "notes/readme.txt"})
        escape = http.get(base, params={"path": "../../.."})
        escape_raw = http.get(f"{base}/raw", params={"path": "notes/../../x"})
        missing = http.get(f"{base}/view", params={"path": "nope.txt"})
    assert root.status_code == 200 and 'class="artifact-dir"' in root.text and ">notes/</a>" in root.text
    assert ">readme.txt</a>" in notes.text and 'id="artifact-breadcrumbs"' in notes.text
    assert "plain &lt;b&gt;text&lt;/b&gt;" in text.text and "<b>text</b>" not in text.text
    assert '"lr": 0.1' in as_json.text.replace("&#34;", '"')
    assert 'id="csv-preview"' in table.text and "<td>3</td>" in table.text
    assert f'src="{base}/raw?path=plot.svg"' in svg_view.text
    assert svg_raw.headers["content-security-policy"] == "sandbox"
    assert svg_raw.headers["content-type"].startswith("image/svg+xml")
    assert big.status_code == 200 and 'id="truncated-note"' in big.text and "TAIL" not in big.text
    assert "binary file" in binary.text
    assert raw.content == b"plain <b>text</b>\n" and "attachment" in raw.headers["content-disposition"]
    assert raw.headers["content-type"] == "application/octet-stream"
    assert escape.status_code == 400 and "'..'" in escape.text.replace("&#39;", "'")
    assert escape_raw.status_code == 400
    assert missing.status_code == 404


# -- escaping ------------------------------------------------------------------------------------------


def test_attacker_chosen_strings_are_escaped_everywhere(evtrack_server: Any) -> None:
    client = EvtrackClient(evtrack_server.store_uri)
    exp = client.create_experiment(f"exp {XSS}")
    run = client.create_run(exp, run_name=f"run {XSS}")
    rid = run.info.run_id
    client.log_param(rid, "p", XSS)  # keys cannot hold markup characters; values can
    client.log_metric(rid, "m", 1.0)
    client.set_tag(rid, "note", XSS)
    client.log_text(rid, XSS, f"{XSS}.txt")
    client.create_registered_model(MODEL_XSS, description=XSS)
    client.create_model_version(MODEL_XSS, f"runs:/{rid}/model", run_id=rid)  # listed on the run page
    client.flush()
    urls = [
        "/experiments",
        f"/experiments/{exp}",
        f"/experiments/{exp}?show_tags=1",
        f"/runs/{rid}",
        f"/runs/{rid}/artifacts",
        f"/compare?runs={rid}",
        "/models",
        f"/experiments/{exp}?filter=" + httpx.QueryParams({"q": f"tags.x = '{XSS}"})["q"],
        "/sql?" + str(httpx.QueryParams({"q": f"SELECT '{XSS}' AS x"})),
        "/sql?" + str(httpx.QueryParams({"q": f"SELECT * FROM {XSS}"})),
    ]
    with _http(evtrack_server) as http:
        pages = {url: http.get(url) for url in urls}
        pages["model"] = http.get(f"/models/{MODEL_XSS}")
        pages["artifact"] = http.get(f"/runs/{rid}/artifacts/view", params={"path": f"{XSS}.txt"})
    for url, response in pages.items():
        assert response.status_code < 500, url
        assert "<script>alert" not in response.text, url
        assert "<img src=x" not in response.text, url
    for url in ("/experiments", f"/runs/{rid}", f"/compare?runs={rid}", "model", "artifact"):
        assert ESCAPED in pages[url].text, url
    assert "model &lt;img src=x onerror=alert(1)&gt;" in pages[f"/runs/{rid}"].text
    assert "model &lt;img src=x onerror=alert(1)&gt;" in pages["/models"].text


# -- models and SQL -------------------------------------------------------------------------------------


def test_model_registry_pages(evtrack_server: Any, sweep: dict) -> None:
    client, rid = sweep["client"], sweep["run_ids"][0]
    client.create_registered_model("churn", tags={"owner": "ml-team"}, description="Churn classifier")
    client.create_model_version("churn", f"runs:/{rid}/model", run_id=rid)
    client.create_model_version("churn", f"runs:/{rid}/model", run_id=rid, description="second")
    client.transition_model_version_stage("churn", 2, "Production")
    client.set_registered_model_alias("churn", "champion", 2)
    client.flush()
    with _http(evtrack_server) as http:
        models = http.get("/models")
        model = http.get("/models/churn")
        version = http.get("/models/churn/versions/2")
        bad_version = http.get("/models/churn/versions/two")
    assert models.status_code == 200 and 'href="/models/churn"' in models.text
    assert "@champion" in models.text and "owner" in models.text and "Churn classifier" in models.text
    assert model.status_code == 200
    assert re.findall(r'class="version-link" href="/models/churn/versions/(\d+)"', model.text) == ["2", "1"]
    assert "Production" in model.text and f'href="/runs/{rid}"' in model.text
    assert version.status_code == 200 and "second" in version.text and "@champion" in version.text
    assert bad_version.status_code == 400


def test_run_page_links_the_model_versions_made_from_it(evtrack_server: Any, sweep: dict) -> None:
    client = sweep["client"]
    made_from, other_run, plain_run = sweep["run_ids"][:3]
    for name in ("churn", "taxi model"):
        client.create_registered_model(name)
    client.create_model_version("taxi model", f"runs:/{made_from}/model", run_id=made_from)
    client.create_model_version("churn", f"runs:/{other_run}/model", run_id=other_run)
    client.create_model_version("churn", f"runs:/{made_from}/model", run_id=made_from)
    client.set_registered_model_alias("churn", "champion", 2)
    client.flush()
    with _http(evtrack_server) as http:
        page = http.get(f"/runs/{made_from}")
        plain = http.get(f"/runs/{plain_run}")
        links = re.findall(r'<a class="model-version-link" href="([^"]+)"[^>]*>([^<]+)</a>', page.text)
        targets = [http.get(href) for href, _ in links]
    assert page.status_code == 200
    assert links == [("/models/churn/versions/2", "churn"), ("/models/taxi%20model/versions/1", "taxi model")]
    versions = page.text.split('id="model-versions-table"')[1].split("</table>")[0]
    assert ">v2</a>" in versions and ">v1</a>" in versions and "@champion" in versions
    assert [t.status_code for t in targets] == [200, 200]
    assert "churn v2" in targets[0].text and f'href="/runs/{made_from}"' in targets[0].text
    assert "taxi model v1" in targets[1].text
    assert plain.status_code == 200 and "model-versions-table" not in plain.text


def test_sql_page_shows_results_and_refuses_writes_and_files(evtrack_server: Any, sweep: dict) -> None:
    with _http(evtrack_server) as http:
        ok = http.get("/sql", params={"q": "SELECT run_name, status FROM runs ORDER BY run_name"})
        posted = http.post("/sql", data={"q": "SELECT count(*) AS n FROM runs;"})
        many = http.get("/sql", params={"q": "SELECT * FROM range(5000)"})
        write = http.get("/sql", params={"q": "DROP VIEW runs"})
        two = http.get("/sql", params={"q": "SELECT 1; DELETE FROM runs"})
        read_file = http.get("/sql", params={"q": "SELECT * FROM read_csv('/etc/passwd')"})
        after = http.get("/sql", params={"q": "SELECT count(*) FROM runs"})
        form = http.get("/sql")
    assert ok.status_code == 200 and '<table class="data" id="sql-result">' in ok.text
    assert re.findall(r"<td>(run-\d)</td>", ok.text) == [f"run-{i}" for i in range(5)]
    assert posted.status_code == 200 and '<td class="num">5</td>' in posted.text
    assert many.text.count('<tr><td class="num">') == 1000 and "the first 1000" in many.text
    assert write.status_code == 400 and "read-only" in write.text
    assert two.status_code == 400 and "exactly one statement" in two.text
    assert read_file.status_code == 400 and 'id="sql-result"' not in read_file.text
    assert '<td class="num">5</td>' in after.text  # nothing was dropped
    assert form.status_code == 200 and 'id="sql-input" name="q"' in form.text


def test_static_files_are_served_from_the_package(evtrack_server: Any) -> None:
    with _http(evtrack_server) as http:
        css = http.get("/static/style.css")
        js = http.get("/static/app.js")
        page = http.get("/experiments")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert js.status_code == 200 and "compare-button" in js.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from another origin


def test_artifacts_on_s3_preview_the_head_and_stream_downloads(server_factory: Any, s3_uri: str) -> None:
    server = server_factory(tracking_uri=s3_uri)
    client = EvtrackClient(s3_uri)
    run = client.create_run(client.create_experiment("on-s3"))
    rid = run.info.run_id
    client.log_text(rid, "head-" + "y" * (1 << 20) + "-TAIL", "logs/big.log")
    client.log_text(rid, "a,b\n1,2\n", "t.csv")
    client.flush()
    base = f"/runs/{rid}/artifacts"
    with _http(server) as http:
        listing = http.get(base, params={"path": "logs"})
        big = http.get(f"{base}/view", params={"path": "logs/big.log"})
        raw = http.get(f"{base}/raw", params={"path": "logs/big.log"})
        small = http.get(f"{base}/view", params={"path": "t.csv"})
    assert ">big.log</a>" in listing.text
    assert big.status_code == 200 and "head-yyy" in big.text and "TAIL" not in big.text
    assert 'id="truncated-note"' in big.text
    assert raw.status_code == 200 and raw.content.endswith(b"-TAIL") and len(raw.content) == (1 << 20) + 10
    assert "<td>2</td>" in small.text
