"""``import evtrack as mlflow``: every name of MLflow's top-level API is evtrack's too, or left out on purpose.

The table below is the whole list of what evtrack leaves out, each with its reason; the
test fails when MLflow gains a name (decide: build it, or add it here with a reason) and
when evtrack gains one listed here (take it off the list).
"""

from __future__ import annotations

import inspect

import pytest

import evtrack

mlflow = pytest.importorskip("mlflow")

_TRACING = "tracing (spans, traces) is a GenAI observability product of its own, not experiment tracking"
_GENAI = "GenAI evaluation and human feedback (assessments, judges) are outside evtrack's scope"
_LOGGED_MODEL = (
    "MLflow 3's fluent logged-model API: evtrack keeps models under the run's artifacts (runs:/…/model); "
    "MLflow's own client on evtrack's store has logged models through evtrack.mlflow_plugin"
)
_ACTIVE_MODEL = "the active-model context links GenAI traces to a model version; it comes with tracing"
_PROMPTS = "the prompt registry is served by evtrack.mlflow_plugin for MLflow's client, not by evtrack's fluent API"
_WORKSPACES = "workspaces are multi-tenancy of MLflow's server; evtrack separates tenants by store URI"
_DATABRICKS = "Databricks-only"

LEFT_OUT = {
    **dict.fromkeys(
        [
            "add_trace",
            "delete_trace_tag",
            "flush_trace_async_logging",
            "get_active_trace_id",
            "get_current_active_span",
            "get_last_active_trace_id",
            "get_trace",
            "log_trace",
            "search_sessions",
            "search_traces",
            "set_trace_tag",
            "start_span",
            "start_span_no_context",
            "trace",
            "update_current_trace",
            "log_stream",
        ],
        _TRACING,
    ),
    **dict.fromkeys(
        [
            "delete_assessment",
            "evaluate",
            "get_assessment",
            "log_assessment",
            "log_expectation",
            "log_feedback",
            "log_issue",
            "override_feedback",
            "update_assessment",
            "validate_evaluation_results",
        ],
        _GENAI,
    ),
    **dict.fromkeys(
        [
            "create_external_model",
            "delete_logged_model_tag",
            "finalize_logged_model",
            "get_logged_model",
            "initialize_logged_model",
            "last_logged_model",
            "log_model_params",
            "log_outputs",
            "search_logged_models",
            "set_logged_model_tags",
            "import_checkpoints",
        ],
        _LOGGED_MODEL,
    ),
    **dict.fromkeys(["ActiveModel", "clear_active_model", "get_active_model_id", "set_active_model"], _ACTIVE_MODEL),
    **dict.fromkeys(
        ["delete_prompt_alias", "load_prompt", "register_prompt", "search_prompts", "set_prompt_alias"], _PROMPTS
    ),
    **dict.fromkeys(
        [
            "create_workspace",
            "delete_workspace",
            "get_workspace",
            "list_workspaces",
            "set_workspace",
            "update_workspace",
        ],
        _WORKSPACES,
    ),
    "login": _DATABRICKS,
    "Image": "log_image takes numpy arrays, PIL images and mlflow.Image objects; evtrack needs no class of its own",
    "context": "MLflow's module of run-context providers; evtrack's are evtrack.tracking.context",
    "gateway": "the AI gateway is a separate service",
    "doctor": "prints MLflow's environment; `evtrack --version` and `pip show evtrack` do that here",
    "test": "MLflow's internal test helpers",
}


_LINKAGE = "MLflow 3's links from metrics and inputs to logged models and datasets (see _LOGGED_MODEL)"
# parameters of shared functions that evtrack does not take, with the reason
PARAMETERS_LEFT_OUT = {
    ("autolog", "log_traces"): _TRACING,
    ("create_experiment", "trace_location"): _TRACING,
    ("set_experiment", "trace_location"): _TRACING,
    ("log_input", "model"): _LINKAGE,
    ("log_inputs", "models"): _LINKAGE,
    ("log_metric", "model_id"): _LINKAGE,
    ("log_metric", "dataset"): _LINKAGE,
    ("log_metrics", "model_id"): _LINKAGE,
    ("log_metrics", "dataset"): _LINKAGE,
    ("register_model", "env_pack"): _DATABRICKS,
    **dict.fromkeys(
        [
            ("run", p)
            for p in ("docker_args", "backend", "backend_config", "storage_dir", "run_id", "build_image", "docker_auth")
        ],
        "evtrack runs projects on this machine (local, virtualenv, uv or conda environments); "
        "Docker images and remote backends (Databricks, Kubernetes) are not built",
    ),
}


def _mlflow_names() -> list[str]:
    return sorted(mlflow.__all__)


def test_every_mlflow_name_is_evtracks_or_left_out_with_a_reason() -> None:
    missing = [n for n in _mlflow_names() if not hasattr(evtrack, n) and n not in LEFT_OUT]
    assert missing == [], f"MLflow names evtrack neither has nor lists in LEFT_OUT: {missing}"


def test_the_left_out_table_is_honest() -> None:
    names = set(_mlflow_names())
    assert [n for n in LEFT_OUT if n not in names] == [], "LEFT_OUT lists names MLflow does not have"
    assert [n for n in LEFT_OUT if hasattr(evtrack, n)] == [], "LEFT_OUT lists names evtrack now has"
    assert all(reason.strip() for reason in LEFT_OUT.values())
    for function, parameter in PARAMETERS_LEFT_OUT:
        assert parameter in inspect.signature(getattr(mlflow, function)).parameters, (function, parameter)
        assert parameter not in inspect.signature(getattr(evtrack, function)).parameters, (function, parameter)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in sorted(getattr(mlflow, "__all__", []))
        if n not in LEFT_OUT and callable(getattr(mlflow, n, None)) and not inspect.isclass(getattr(mlflow, n))
    ],
)
def test_shared_functions_take_mlflows_parameters(name: str) -> None:
    """A call written for MLflow's function binds to evtrack's: same parameter names, none required extra."""
    theirs = inspect.signature(getattr(mlflow, name))
    ours = inspect.signature(getattr(evtrack, name))
    if any(p.kind is p.VAR_KEYWORD for p in ours.parameters.values()):
        return
    their_params = [p for p in theirs.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    absent = [
        p.name for p in their_params if p.name not in ours.parameters and (name, p.name) not in PARAMETERS_LEFT_OUT
    ]
    assert absent == [], f"evtrack.{name} lacks MLflow's parameters {absent}"
    required_extra = [
        p.name
        for p in ours.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in theirs.parameters
    ]
    assert required_extra == [], f"evtrack.{name} requires parameters MLflow's does not: {required_extra}"
