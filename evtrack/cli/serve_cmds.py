"""``evtrack models serve|predict``: score a model over REST or on a file, as ``mlflow models``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evtrack.cli.models_cmds import models, register_models_group
from evtrack.cli.options import resolve_uri, tracking_uri_option
from evtrack.errors import EvtrackError


def _model_uri_option(f):
    return click.option(
        "-m",
        "--model-uri",
        "model_uri",
        required=True,
        metavar="URI",
        help="The model: a directory, runs:/<run_id>/<path>, models:/<name>/<version|stage|latest>, "
        "models:/<name>@<alias> or an s3:// URI.",
    )(f)


@models.command("serve")
@_model_uri_option
@click.option("-p", "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "-h",
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to accept connections from other machines).",
)
@click.option(
    "-w",
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Number of server processes, each with its own copy of the model.",
)
@tracking_uri_option
def serve(model_uri: str, port: int, host: str, workers: int, tracking_uri: str | None) -> None:
    """Serve a model over REST with MLflow's scoring protocol.

    POST /invocations takes JSON with one of dataframe_split, dataframe_records,
    instances or inputs (plus optional params), or text/csv, and answers
    {"predictions": ...}. GET /ping and /health say whether the model loaded;
    GET /version gives the evtrack version. Needs pip install "evtrack[serve]".

    Example:

        evtrack models serve -m models:/churn@champion --port 5001
    """
    from evtrack.pyfunc.scoring_server import serve as run_server

    click.echo(f"Serving {model_uri} on http://{host}:{port} (Ctrl+C to stop)", err=True)
    run_server(model_uri, host=host, port=port, workers=workers, tracking_uri=resolve_uri(tracking_uri))


def _content_type(explicit: str | None, input_path: str | None) -> str:
    if explicit:
        return explicit.lower()
    return "csv" if input_path and Path(input_path).suffix.lower() == ".csv" else "json"


@models.command("predict")
@_model_uri_option
@click.option(
    "-i",
    "--input-path",
    "input_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Input file: a JSON scoring request or a CSV table (default: standard input).",
)
@click.option(
    "-o",
    "--output-path",
    "output_path",
    default=None,
    type=click.Path(dir_okay=False),
    help='Where to write {"predictions": ...} (default: standard output).',
)
@click.option(
    "-t",
    "--content-type",
    "content_type",
    default=None,
    type=click.Choice(["json", "csv"], case_sensitive=False),
    help="Format of the input (default: csv for a .csv file, else json).",
)
@tracking_uri_option
def predict(
    model_uri: str, input_path: str | None, output_path: str | None, content_type: str | None, tracking_uri: str | None
) -> None:
    """Score a JSON or CSV input with a model and write the predictions as JSON.

    The JSON input is a scoring request body, as POST /invocations takes it
    (e.g. {"dataframe_split": {"columns": [...], "data": [...]}}).

    Example:

        evtrack models predict -m runs:/0b3e5f3c9d2a4b6f8e1d7c5a3b9f2e4d/model -i in.json -o out.json
    """
    from evtrack.models import serving_io
    from evtrack.pyfunc import load_model

    kind = _content_type(content_type, input_path)
    text = Path(input_path).read_text(encoding="utf-8") if input_path else sys.stdin.read()
    model = load_model(model_uri, tracking_uri=resolve_uri(tracking_uri))
    schema = model.metadata.get_input_schema()
    if kind == "csv":
        data, params = serving_io.parse_csv_request(text, schema), None
    else:
        data, params = serving_io.parse_json_request(text, schema)
    try:
        predictions = model.predict(data, params=params)
    except EvtrackError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own failure, in one line
        raise EvtrackError(f"The model failed to predict: {type(exc).__name__}: {exc}") from exc
    try:
        out = serving_io.predictions_json(predictions)
    except (TypeError, ValueError) as exc:
        raise EvtrackError(f"The model's predictions cannot be written as JSON: {exc}") from exc
    if output_path:
        Path(output_path).write_text(out, encoding="utf-8")
    else:
        click.echo(out)


def register(cli: click.Group) -> None:
    """Add ``serve`` and ``predict`` (with the ``models`` group) to the ``evtrack`` group."""
    register_models_group(cli)
