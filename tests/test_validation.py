"""Tables of accepted and rejected inputs for evtrack.eventlog.validation (MLflow's rules and limits)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Any

import pytest

from evtrack.eventlog import validation as v
from evtrack.errors import InvalidParameterError

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is in the test extra
    np = None

numpy_only = pytest.mark.skipif(np is None, reason="numpy not installed")


@dataclass
class Item:
    """A stand-in for Metric/Param/RunTag: anything with .key and .value."""

    key: str
    value: Any = "v"


@pytest.fixture(autouse=True)
def _clean_env_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in v.TRUNCATE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    v._accepted_keys.clear()


def _raises(match: str) -> Any:
    return pytest.raises(InvalidParameterError, match=match)


# ---------------------------------------------------------------- constants


def test_constants_have_mlflow_values() -> None:
    assert v.MAX_ENTITY_KEY_LENGTH == 250
    assert v.MAX_PARAM_VAL_LENGTH == 6000
    assert v.MAX_TAG_VAL_LENGTH == 8000
    assert v.MAX_EXPERIMENT_NAME_LENGTH == 500
    assert v.MAX_EXPERIMENT_TAG_VAL_LENGTH == 20000
    assert v.MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH == 100_000
    assert v.MAX_REGISTERED_MODEL_TAG_VAL_LENGTH == 100_000
    assert v.MAX_METRICS_PER_BATCH == 1000
    assert v.MAX_PARAMS_TAGS_PER_BATCH == 100
    assert v.MAX_ENTITIES_PER_BATCH == 1000
    assert v.MAX_BATCH_LOG_REQUEST_SIZE == 1_000_000


# ---------------------------------------------------------------- keys

GOOD_KEYS = [
    "loss",
    "val loss",
    "train/loss",
    "a.b-c_d",
    "epoch:1",
    "a/b/c",
    "a..b",  # '..' inside a component is fine
    "x.",
    "λ_损失",  # \w is Unicode-aware, as in MLflow
    "k" * 250,
]


@pytest.mark.parametrize("key", GOOD_KEYS)
@pytest.mark.parametrize("kind", ["metric", "param", "tag"])
def test_validate_key_accepts(key: str, kind: str) -> None:
    assert v.validate_key(key, kind) == key
    assert key in v._accepted_keys
    assert v.validate_key(key, kind) == key  # cached path


BAD_KEYS = [
    ("", r"Invalid metric name: ''. A key name must be provided"),
    (None, r"Metric name cannot be None"),
    (5, r"Invalid metric name: 5. Names must be strings"),
    (["a"], r"Invalid metric name: \['a'\]"),
    ("a!b", r"Invalid metric name: 'a!b'. Names may only contain alphanumerics"),
    ("a\tb", r"Invalid metric name: 'a\\tb'"),
    ("loss\n", r"Invalid metric name: 'loss\\n'"),  # MLflow's ^…$ regex lets this through
    ("a\\b", r"Invalid metric name: 'a\\\\b'. Names may only contain"),
    ("/abs", r"Invalid metric name: '/abs'. Names may be treated as files.*resolve to '/abs'"),
    ("a/../b", r"Invalid metric name: 'a/../b'.*would resolve to 'b'"),
    ("..", r"Invalid metric name: '..'.*resolve to '..'"),
    ("../x", r"resolve to '../x'"),
    ("..x", r"Invalid metric name: '..x'"),  # MLflow rejects any name starting with '..'
    ("a//b", r"Invalid metric name: 'a//b'.*would resolve to 'a/b'"),
    ("a/", r"Invalid metric name: 'a/'.*would resolve to 'a'"),
    ("./a", r"would resolve to 'a'"),
    ("a/./b", r"would resolve to 'a/b'"),
    (".", r"Invalid metric name: '.'.*resolve to '.'"),
    ("k" * 251, r"Metric name 'k+'... had length 251, which exceeded length limit of 250"),
]


@pytest.mark.parametrize(("key", "message"), BAD_KEYS)
def test_validate_key_rejects(key: Any, message: str) -> None:
    with _raises(message):
        v.validate_key(key, "metric")
    if isinstance(key, str):
        assert key not in v._accepted_keys


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("metric", "Invalid metric name: 'a!b'"),
        ("param", "Invalid parameter name: 'a!b'"),
        ("tag", "Invalid tag name: 'a!b'"),
    ],
)
def test_validate_key_message_names_kind(kind: str, message: str) -> None:
    with _raises(message):
        v.validate_key("a!b", kind)


def test_rejected_key_error_code() -> None:
    with pytest.raises(InvalidParameterError) as info:
        v.validate_key("a!b", "metric")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_key_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v, "_KEY_CACHE_LIMIT", 3)
    for key in ["a", "b", "c", "d"]:
        v.validate_key(key, "metric")
    assert v._accepted_keys == {"d"}


# ---------------------------------------------------------------- metrics

GOOD_METRICS = [
    (1.5, 1.5),
    (3, 3.0),
    (-2, -2.0),
    (0.0, 0.0),
    (math.inf, math.inf),
    (-math.inf, -math.inf),
    (Decimal("2.5"), 2.5),
    (Fraction(1, 4), 0.25),
]


@pytest.mark.parametrize(("value", "expected"), GOOD_METRICS)
def test_validate_metric_accepts(value: Any, expected: float) -> None:
    result = v.validate_metric("loss", value, 1_700_000_000_000, 3)
    assert result == (expected, 1_700_000_000_000, 3)
    assert type(result[0]) is float


def test_validate_metric_accepts_nan() -> None:
    value, timestamp, step = v.validate_metric("loss", float("nan"), 0, -5)
    assert math.isnan(value) and (timestamp, step) == (0, -5)


@numpy_only
@pytest.mark.parametrize(
    "value",
    [
        lambda: np.float64(0.5),
        lambda: np.float32(0.5),
        lambda: np.float16(0.5),
        lambda: np.array(0.5),
        lambda: np.array([0.5]),
    ],
)
def test_validate_metric_accepts_numpy_values(value: Any) -> None:
    result = v.validate_metric("loss", value(), np.int64(7), np.int32(2))
    assert result == (0.5, 7, 2)
    assert [type(x) for x in result] == [float, int, int]


@numpy_only
def test_validate_metric_numpy_ints_and_nan() -> None:
    value, _, _ = v.validate_metric("loss", np.float64("nan"), 1, 1)
    assert math.isnan(value)
    assert v.validate_metric("loss", np.int64(4), np.uint64(9), np.int8(-1)) == (4.0, 9, -1)


BAD_VALUES = [True, False, "1.5", "abc", None, 1 + 2j, b"1", [1.0], {"a": 1}, 10**400]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_validate_metric_rejects_value(value: Any) -> None:
    message = r"Got invalid value .* for metric 'loss' \(timestamp=5\). Please specify value"
    with _raises(message):
        v.validate_metric("loss", value, 5, 0)


def test_validate_metric_type_cache_does_not_leak_between_values() -> None:
    v.validate_metric("m", Decimal("1.5"), 0, 0)  # Decimal is now a known number type
    with _raises(r"Got invalid value Decimal\('sNaN'\) for metric 'm'"):
        v.validate_metric("m", Decimal("sNaN"), 0, 0)
    v.validate_metric("m", 1, 0, 0)
    with _raises(r"Got invalid value True for metric 'm'"):
        v.validate_metric("m", True, 0, 0)


@numpy_only
@pytest.mark.parametrize("value", [lambda: np.bool_(True), lambda: np.array([1.0, 2.0])])
def test_validate_metric_rejects_numpy_value(value: Any) -> None:
    with _raises(r"Got invalid value .* for metric 'loss'"):
        v.validate_metric("loss", value(), 5, 0)


GOOD_STEPS_AND_TIMESTAMPS = [(0, 0), (5, 5), (5.0, 5), (2**63 - 1, 2**63 - 1)]


@pytest.mark.parametrize(("given", "expected"), GOOD_STEPS_AND_TIMESTAMPS)
def test_validate_metric_accepts_integral_timestamp_and_step(given: Any, expected: int) -> None:
    _, timestamp, step = v.validate_metric("m", 1.0, given, given)
    assert (timestamp, step) == (expected, expected)
    assert type(timestamp) is int and type(step) is int


@pytest.mark.parametrize("timestamp", [-1, 1.5, "5", None, True, 2**63, math.nan, math.inf])
def test_validate_metric_rejects_timestamp(timestamp: Any) -> None:
    message = (
        r"Got invalid timestamp .* for metric 'loss' \(value=1.0\). "
        r"Timestamp must be a nonnegative long"
    )
    with _raises(message):
        v.validate_metric("loss", 1.0, timestamp, 0)


@pytest.mark.parametrize("step", [1.5, "1", None, False, 2**63, -(2**63) - 1, math.inf])
def test_validate_metric_rejects_step(step: Any) -> None:
    message = r"Got invalid step .* for metric 'loss' \(value=1.0\). Step must be a valid long"
    with _raises(message):
        v.validate_metric("loss", 1.0, 0, step)


def test_validate_metric_accepts_negative_step() -> None:
    assert v.validate_metric("loss", 1.0, 0, -(2**63)) == (1.0, 0, -(2**63))


@pytest.mark.parametrize(("key", "message"), [("a!b", "Invalid metric name"), (None, "None")])
def test_validate_metric_checks_key(key: Any, message: str) -> None:
    with _raises(message):
        v.validate_metric(key, 1.0, 0, 0)


# ---------------------------------------------------------------- params and tags

STRINGIFIED = [("x", "x"), (3, "3"), (0.1, "0.1"), (None, "None"), (True, "True"), ([1, 2], "[1, 2]")]


@pytest.mark.parametrize(("value", "expected"), STRINGIFIED)
@pytest.mark.parametrize("func", [v.validate_param, v.validate_tag, v.validate_experiment_tag])
def test_values_are_stringified(func: Any, value: Any, expected: str) -> None:
    assert func("k", value) == expected


@pytest.mark.parametrize(
    ("func", "limit", "label"),
    [
        (v.validate_param, 6000, "Param value"),
        (v.validate_tag, 8000, "Tag value"),
        (v.validate_experiment_tag, 20000, "Experiment tag value"),
    ],
)
def test_value_at_limit_is_kept(func: Any, limit: int, label: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert func("k", "x" * limit) == "x" * limit


@pytest.mark.parametrize(("func", "limit"), [(v.validate_param, 6000), (v.validate_tag, 8000)])
def test_long_value_is_truncated_with_warning(func: Any, limit: int) -> None:
    with pytest.warns(v.TruncatedValueWarning) as record:
        result = func("my_key", "y" * (limit + 1000))
    assert result == "y" * limit
    message = str(record[0].message)
    assert "'my_key'" in message
    assert f"{limit + 1000} characters) is truncated to {limit} characters" in message
    assert record[0].filename == __file__  # points at the caller, not at validation.py


@pytest.mark.parametrize("env_var", v.TRUNCATE_ENV_VARS)
@pytest.mark.parametrize("setting", ["false", "FALSE", "0"])
@pytest.mark.parametrize(
    ("func", "limit", "label"), [(v.validate_param, 6000, "Param value"), (v.validate_tag, 8000, "Tag value")]
)
def test_long_value_raises_when_truncation_disabled(
    monkeypatch: pytest.MonkeyPatch, env_var: str, setting: str, func: Any, limit: int, label: str
) -> None:
    monkeypatch.setenv(env_var, setting)
    with _raises(
        rf"{label} 'z+'\.\.\. for key 'my_key' had length {limit + 1}, "
        rf"which exceeded length limit of {limit}"
    ):
        func("my_key", "z" * (limit + 1))


def test_evtrack_env_var_wins_over_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_TRUNCATE_LONG_VALUES", "true")
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    with pytest.warns(v.TruncatedValueWarning):
        assert len(v.validate_param("k", "a" * 6001)) == 6000


def test_bad_truncate_env_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVTRACK_TRUNCATE_LONG_VALUES", "maybe")
    with _raises(r"EVTRACK_TRUNCATE_LONG_VALUES value must be one of .* \(got 'maybe'\)"):
        v.validate_param("k", "a" * 6001)


def test_experiment_tag_too_long_is_an_error_not_truncated() -> None:
    with _raises(
        r"Experiment tag value 'e+'\.\.\. for key 'note' had length 20001, "
        r"which exceeded length limit of 20000"
    ):
        v.validate_experiment_tag("note", "e" * 20001)


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (v.validate_param, "Invalid parameter name: 'a b!'"),
        (v.validate_tag, "Invalid tag name: 'a b!'"),
        (v.validate_experiment_tag, "Invalid tag name: 'a b!'"),
    ],
)
def test_params_and_tags_check_keys(func: Any, message: str) -> None:
    with _raises(message):
        func("a b!", "v")


# ---------------------------------------------------------------- experiments and runs


@pytest.mark.parametrize("name", ["Default", "my exp", "a/b:c!?", " ", "é" * 500])
def test_validate_experiment_name_accepts(name: str) -> None:
    assert v.validate_experiment_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", r"Invalid experiment name: ''$"),
        (None, r"Invalid experiment name: 'None'$"),
        (42, r"Invalid experiment name: 42. Expects a string."),
        ("n" * 501, r"exceeds the maximum length of 500 characters \(got 501\)"),
    ],
)
def test_validate_experiment_name_rejects(name: Any, message: str) -> None:
    with _raises(message):
        v.validate_experiment_name(name)


@pytest.mark.parametrize("run_id", ["a", "0" * 32, "3f2a9b7c1d4e4f5a8b6c7d8e9f0a1b2c", "run-1_x", "A" + "b" * 255])
def test_validate_run_id_accepts(run_id: str) -> None:
    assert v.validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "-abc", "_abc", "a b", "a/b", "../x", "abc\n", "a" * 257, None, 12])
def test_validate_run_id_rejects(run_id: Any) -> None:
    with _raises(r"Invalid run ID: "):
        v.validate_run_id(run_id)


def test_validate_run_id_message_quotes_the_id() -> None:
    with _raises(r"^Invalid run ID: 'a/b'$"):
        v.validate_run_id("a/b")


@pytest.mark.parametrize(
    ("experiment_id", "expected"), [(0, "0"), (17, "17"), ("0", "0"), ("123", "123"), ("007", "7")]
)
def test_validate_experiment_id_accepts(experiment_id: Any, expected: str) -> None:
    assert v.validate_experiment_id(experiment_id) == expected


@pytest.mark.parametrize("experiment_id", ["", "abc", "-1", -1, "1.0", 1.0, True, None, "١٢", "²", " 1"])
def test_validate_experiment_id_rejects(experiment_id: Any) -> None:
    with _raises(rf"Invalid experiment ID: {experiment_id!r}".replace(".", r"\.")):
        v.validate_experiment_id(experiment_id)


@pytest.mark.parametrize("status", v.RUN_STATUSES)
def test_validate_run_status_accepts(status: str) -> None:
    assert v.validate_run_status(status) == status


@pytest.mark.parametrize("status", ["finished", "Running", "DONE", "", None])
def test_validate_run_status_rejects(status: Any) -> None:
    with _raises(
        rf"Invalid run status: {status!r}. Valid run status strings: "
        r"\['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'\]"
    ):
        v.validate_run_status(status)


# ---------------------------------------------------------------- batches


def _items(n: int, prefix: str = "k") -> list[Item]:
    return [Item(f"{prefix}{i}") for i in range(n)]


@pytest.mark.parametrize(("n_metrics", "n_params", "n_tags"), [(0, 0, 0), (1000, 0, 0), (0, 100, 100), (800, 100, 100)])
def test_validate_batch_accepts(n_metrics: int, n_params: int, n_tags: int) -> None:
    assert v.validate_batch(_items(n_metrics), _items(n_params), _items(n_tags)) is None


@pytest.mark.parametrize(
    ("n_metrics", "n_params", "n_tags", "message"),
    [
        (1001, 0, 0, "at most 1000 metrics. Got 1001 metrics"),
        (0, 101, 0, "at most 100 params. Got 101 params"),
        (0, 0, 101, "at most 100 tags. Got 101 tags"),
        (801, 100, 100, "at most 1000 metrics, params, and tags. Got 1001 metrics, params, and tags"),
    ],
)
def test_validate_batch_rejects_too_many(n_metrics: int, n_params: int, n_tags: int, message: str) -> None:
    with _raises(f"A batch logging request can contain {message}. Please split up"):
        v.validate_batch(_items(n_metrics), _items(n_params), _items(n_tags))


@pytest.mark.parametrize(
    "params",
    [
        [Item("lr", "0.1"), Item("lr", "0.2")],
        [Item("lr", "0.1"), Item("lr", "0.1")],  # MLflow rejects even identical values
        [Item("lr"), Item("bs"), Item("lr"), Item("lr")],
    ],
)
def test_validate_batch_rejects_duplicate_param_keys(params: list[Item]) -> None:
    with _raises(r"Duplicate parameter keys have been submitted: \['lr'\]. Please ensure"):
        v.validate_batch([], params, [])


def test_validate_batch_allows_repeated_metric_and_tag_keys() -> None:
    v.validate_batch([Item("loss"), Item("loss")], [Item("a"), Item("b")], [Item("t"), Item("t")])


def test_validate_batch_request_size() -> None:
    v.validate_batch_request_size(1_000_000)
    with _raises("must be at most 1000000 bytes, got a request of size 1000001"):
        v.validate_batch_request_size(1_000_001)


# ---------------------------------------------------------------- artifact paths

GOOD_ARTIFACT_PATHS = [
    (None, ""),
    ("", ""),
    (".", ""),
    ("./", ""),
    ("model", "model"),
    ("model/", "model"),
    ("./model/data.pkl", "model/data.pkl"),
    ("a//b///c", "a/b/c"),
    ("a/./b", "a/b"),
    ("a..b/..c", "a..b/..c"),
    ("plots/roc curve:1.png", "plots/roc curve:1.png"),
    ("ünïcode/図.png", "ünïcode/図.png"),
    (PurePosixPath("a/b"), "a/b"),
]


@pytest.mark.parametrize(("path", "expected"), GOOD_ARTIFACT_PATHS)
def test_validate_artifact_path_accepts(path: Any, expected: str) -> None:
    assert v.validate_artifact_path(path) == expected


BAD_ARTIFACT_PATHS = [
    ("../x", "'..' components"),
    ("..", "'..' components"),
    ("a/../b", "'..' components"),
    ("a/b/..", "'..' components"),
    ("/abs", "absolute paths"),
    ("//server/share", "absolute paths"),
    ("C:/x", "Windows drive"),
    ("c:x", "Windows drive"),
    ("s3://bucket/x", "URIs are not allowed"),
    ("file:///tmp/x", "URIs are not allowed"),
    ("a\\b", "not '\\\\'"),
    ("..\\x", "not '\\\\'"),
    ("a\x00b", "NUL characters"),
    (5, "Artifact paths must be strings"),
]


@pytest.mark.parametrize(("path", "reason"), BAD_ARTIFACT_PATHS)
def test_validate_artifact_path_rejects(path: Any, reason: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        v.validate_artifact_path(path)
    message = str(info.value)
    assert message.startswith(f"Invalid artifact path: {path!r}")
    assert reason.replace("\\\\", "\\") in message
    if isinstance(path, str):
        assert "must be relative and stay inside the run's artifact root" in message
