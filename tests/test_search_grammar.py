"""MLflow's search filter / order_by grammar: parsing into the AST, errors, evaluation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtrack.errors import InvalidParameterError
from evtrack.query.lexer import tokenize
from evtrack.query.nodes import NULL_OPS, STRING_OPS
from evtrack.query.search_grammar import (
    Comparison,
    OrderBy,
    SearchFilterError,
    effective_experiment_order,
    effective_run_order,
    experiment_sort_key,
    format_filter,
    format_order_by,
    like_to_regex,
    match_experiment,
    parse_experiment_filter,
    parse_order_by,
    parse_run_filter,
)

C = Comparison


def sq(text: str) -> str:
    """``text`` as a single-quoted filter literal."""
    return "'" + text.replace("'", "''") + "'"


def dq(text: str) -> str:
    """``text`` as a double-quoted filter literal."""
    return '"' + text.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------ accepted

ACCEPTED = [
    ("metrics.rmse < 1", [C("metric", "rmse", "<", 1.0)]),
    ("metric.rmse >= 0.5", [C("metric", "rmse", ">=", 0.5)]),
    ("metrics.rmse > 1e-3", [C("metric", "rmse", ">", 0.001)]),
    ("metrics.loss <= -2", [C("metric", "loss", "<=", -2.0)]),
    ("metrics.x = 1.5E+2", [C("metric", "x", "=", 150.0)]),
    ("metrics.x != .5", [C("metric", "x", "!=", 0.5)]),
    ("metrics.x>=-1", [C("metric", "x", ">=", -1.0)]),
    ("metrics.`val loss` > 0", [C("metric", "val loss", ">", 0.0)]),
    ('metrics."val loss" < 1', [C("metric", "val loss", "<", 1.0)]),
    ("metrics.'x y' = 3", [C("metric", "x y", "=", 3.0)]),
    ("metrics.val/loss > 0.1", [C("metric", "val/loss", ">", 0.1)]),
    ("metrics.précision > 0.9", [C("metric", "précision", ">", 0.9)]),
    ("`metrics`.`a``b` > 0", [C("metric", "a`b", ">", 0.0)]),
    ("params.train-data-path = 's3://b/d'", [C("param", "train-data-path", "=", "s3://b/d")]),
    ("params.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ('param.model = "LogisticRegression"', [C("param", "model", "=", "LogisticRegression")]),
    ("parameter.a LIKE 'x%'", [C("param", "a", "LIKE", "x%")]),
    ("parameters.a ilike '%X'", [C("param", "a", "ILIKE", "%X")]),
    ("params.a != 'b'", [C("param", "a", "!=", "b")]),
    ("params.lr IS NOT NULL", [C("param", "lr", "IS NOT NULL", None)]),
    ("tags.mlflow.runName = 'my run'", [C("tag", "mlflow.runName", "=", "my run")]),
    ("tag.`mlflow.user` ILIKE '%bob%'", [C("tag", "mlflow.user", "ILIKE", "%bob%")]),
    ("tags.env IS NULL", [C("tag", "env", "IS NULL", None)]),
    ("tags.env is not null", [C("tag", "env", "IS NOT NULL", None)]),
    ("attributes.status = 'FINISHED'", [C("attribute", "status", "=", "FINISHED")]),
    ("attribute.run_name = 'x'", [C("attribute", "run_name", "=", "x")]),
    ("attr.user_id != 'u'", [C("attribute", "user_id", "!=", "u")]),
    ("run.artifact_uri LIKE 's3://%'", [C("attribute", "artifact_uri", "LIKE", "s3://%")]),
    ("status = 'RUNNING'", [C("attribute", "status", "=", "RUNNING")]),
    ("created > 1000", [C("attribute", "start_time", ">", 1000)]),
    ("Created < 5", [C("attribute", "start_time", "<", 5)]),
    ("attributes.end_time <= 1700000000000", [C("attribute", "end_time", "<=", 1700000000000)]),
    ("`Run Name` = 'r'", [C("attribute", "run_name", "=", "r")]),
    ("\"run name\" = 'r'", [C("attribute", "run_name", "=", "r")]),
    ("attributes.`Run name` LIKE 'a_'", [C("attribute", "run_name", "LIKE", "a_")]),
    ("run_id IN ('a1', \"b2\")", [C("attribute", "run_id", "IN", ("a1", "b2"))]),
    ("attributes.run_id not in ('x',)", [C("attribute", "run_id", "NOT IN", ("x",))]),
    ("datasets.name IN ('train', 'test')", [C("dataset", "name", "IN", ("train", "test"))]),
    ("dataset.digest = 'abc'", [C("dataset", "digest", "=", "abc")]),
    ("datasets.context NOT IN ('eval')", [C("dataset", "context", "NOT IN", ("eval",))]),
    ("datasets.name LIKE 'tr%'", [C("dataset", "name", "LIKE", "tr%")]),
    ("params.note = 'it''s'", [C("param", "note", "=", "it's")]),
    ('params.q = "say ""hi"""', [C("param", "q", "=", 'say "hi"')]),
    ("params.city = 'Zürich 東京 🚀'", [C("param", "city", "=", "Zürich 東京 🚀")]),
    ("tags.path = 'C:\\data\\'", [C("tag", "path", "=", "C:\\data\\")]),
    ("params.empty = ''", [C("param", "empty", "=", "")]),
    (
        "metrics.a > 1 and params.b = 'c' AND tags.d IS NULL",
        [C("metric", "a", ">", 1.0), C("param", "b", "=", "c"), C("tag", "d", "IS NULL", None)],
    ),
    ("metrics.a>1 AnD metrics.b<2", [C("metric", "a", ">", 1.0), C("metric", "b", "<", 2.0)]),
    ("start_time >= 0 AND end_time < 10", [C("attribute", "start_time", ">=", 0), C("attribute", "end_time", "<", 10)]),
    ("metrics.a = 1 AND metrics.a = 2", [C("metric", "a", "=", 1.0), C("metric", "a", "=", 2.0)]),
    ("", []),
    ("   \t\n", []),
    (None, []),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_filter(text: str | None, expected: list[Comparison]) -> None:
    assert parse_run_filter(text) == expected


def test_ast_records_positions_and_is_frozen() -> None:
    ast = parse_run_filter("metrics.a > 1 AND  params.b = 'c'")
    assert [c.pos for c in ast] == [0, 19]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ast[0].key = "b"  # type: ignore[misc]


def test_metric_values_are_floats_and_time_values_ints() -> None:
    (metric,) = parse_run_filter("metrics.a = 3")
    (time,) = parse_run_filter("start_time = 3")
    assert type(metric.value) is float and type(time.value) is int


# ------------------------------------------------------------------------------------ rejected

# (filter, fragment of the message, text the error position points at; None = end of input)
REJECTED = [
    ("metrics.a > 1 OR metrics.b > 2", "OR is not supported", "OR"),
    ("(metrics.a > 1)", "Parentheses are not supported", "("),
    ("metrics.a > 1 AND (params.b = 'c')", "Parentheses are not supported", "("),
    ("metrics.a > 1; DROP TABLE runs", "multiple expressions", ";"),
    ("metrics.a > 1;", "multiple expressions", ";"),
    ("foo.a = 'b'", "Invalid entity type 'foo'", "foo"),
    ("METRICS.a > 1", "Invalid entity type 'METRICS'", "METRICS"),
    ("attributes.experiment_id = '1'", "Invalid attribute key 'experiment_id'", "attributes"),
    ("lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage'", "lifecycle"),
    ("attributes.nope = 'x'", "Invalid attribute key 'nope' specified", "attributes"),
    ("datasets.size = 'x'", "Invalid dataset key 'size'", "datasets"),
    ("metrics.a = 'x'", "Expected numeric value type for metric. Found 'x'", "'x'"),
    ("metrics.a > abc", "Expected numeric value type for metric", "abc"),
    ("metrics.a >", "Expected numeric value type for metric. Found end of input", None),
    ("start_time > '2024'", "numeric value type for numeric attribute: start_time", "'2024'"),
    ("start_time > 99999999999999999999", "out of range", "9999"),
    ("params.a = 1", "Expected a quoted string value for param", "1"),
    ("tags.a = x", "Parameter value is either not quoted", "x"),
    ("params.a = params.b", "identifiers are not allowed on the right-hand side", "params.b"),
    ("params.a = `b`", "not quoted", "`b`"),
    ("status = 3", "Expected a quoted string value for attributes", "3"),
    ("datasets.name = 1", "Expected a quoted string value for dataset attributes", "1"),
    ("tags.a = NULL", "Use IS NULL / IS NOT NULL", "NULL"),
    ("metrics.a IS NULL", "Invalid comparator 'IS NULL'", "IS"),
    ("status IS NOT NULL", "Invalid comparator 'IS NOT NULL'", "IS"),
    ("tags.a IS 'x'", "Expected NULL after 'IS'", "'x'"),
    ("metrics.a LIKE '1'", "Invalid comparator 'LIKE'", "LIKE"),
    ("params.a > '1'", "Invalid comparator '>'", ">"),
    ("metrics.a <> 1", "Invalid comparator '<>'", "<>"),
    ("metrics.a == 1", "Invalid comparator '=='", "=="),
    ("params.a NOT LIKE 'x'", "Invalid comparator 'NOT LIKE'", "NOT"),
    ("params.a IN ('x')", "Invalid comparator 'IN'", "IN"),
    ("status IN ('a')", "Only the 'run_id' attribute supports comparison with a list", "IN"),
    ("run_id IN ()", "but got empty list", "("),
    ("run_id IN ('a', 1)", "got different type in list", "1"),
    ("run_id IN ('a' 'b')", "ill-formed list", "'b'"),
    ("run_id IN ('a'", "ill-formed list", None),
    ("run_id IN 'a'", "parenthesized list", "'a'"),
    ("run_id = ('a')", "Expected a quoted string value for attributes", "("),
    ("metrics.a > 1 garbage", "Expected AND or the end of the filter", "garbage"),
    ("metrics.a > 1 metrics.b > 2", "Expected AND", "metrics.b"),
    ("metrics.a > 1 AND", "Expected a comparison after AND", None),
    ("AND metrics.a > 1", "Invalid clause(s) in filter string: 'AND'", "AND"),
    ("metrics.a > 1 AND AND metrics.b > 1", "Invalid clause(s)", "AND metrics.b"),
    ("params.a = 'unterminated", "Unterminated string literal", "'unterminated"),
    ('params."a = 1', "Unterminated string literal", '"a'),
    ("metrics.`a > 1", "Unterminated quoted key", "`a"),
    ("metrics.a", "Expected a comparator", None),
    ("metrics. > 1", "expected a key after the '.'", "metrics."),
    ('metrics."" > 1', "the key is empty", "metrics."),
    ("'status' = 'x'", "Expected an identifier", "'status'"),
    ("1 = metrics.a", "Expected an identifier", "1"),
    ("metrics.a > 1.2.3", "Invalid number '1.2.3'", "1.2.3"),
    ("metrics.a > 12abc", "Invalid number", "12abc"),
    ("metrics.a > 1 -- comment", "SQL comments are not supported", "--"),
    ("metrics.a > 1 /* c */", "SQL comments are not supported", "/*"),
    ("metrics.a > +1", "Unexpected character '+'", "+1"),
    ("metrics.a ! 1", "Unexpected character '!'", "! 1"),
    ("metrics.a > 1 & metrics.b > 1", "Unexpected character '&'", "&"),
]


@pytest.mark.parametrize(("text", "fragment", "at"), REJECTED)
def test_rejected_filter(text: str, fragment: str, at: str | None) -> None:
    with pytest.raises(SearchFilterError) as info:
        parse_run_filter(text)
    err = info.value
    assert fragment in err.message
    assert f"(at position {err.position})" in err.message
    if at is None:
        assert err.position == len(text)
    else:
        assert text[err.position :].startswith(at), (err.position, text[err.position :])


def test_error_is_an_invalid_parameter_error() -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse_run_filter("metrics.a > 'x'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(info.value, SearchFilterError) and info.value.position == 12


def test_non_string_filter_is_rejected() -> None:
    with pytest.raises(SearchFilterError, match="expected a string"):
        parse_run_filter(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ hostile

HOSTILE_VALUES = [
    "'; DROP TABLE runs; --",
    "' OR '1'='1",
    "x' UNION SELECT * FROM runs --",
    '" OR ""="',
    "Robert'); DROP TABLE Students;--",
    "%_\\%",
    "\x00null\x00byte",
    "日本語 ✓ \u202e RTL",
    "line1\nline2\r\n",
    '`backtick` and "double"',
    "AND OR NOT IN LIKE IS NULL",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("quote", [sq, dq])
def test_hostile_values_are_kept_verbatim(value: str, quote) -> None:
    ast = parse_run_filter(f"params.p = {quote(value)} AND metrics.m > 0")
    assert ast == [C("param", "p", "=", value), C("metric", "m", ">", 0.0)]


@pytest.mark.parametrize("key", HOSTILE_VALUES)
def test_hostile_keys_are_kept_verbatim(key: str) -> None:
    quoted = "`" + key.replace("`", "``") + "`"
    assert parse_run_filter(f"tags.{quoted} IS NULL") == [C("tag", key, "IS NULL", None)]


@pytest.mark.parametrize(
    "text",
    [
        "params.x = 'a' UNION SELECT * FROM runs",
        "params.x = 'a'; DELETE FROM runs",
        "params.x = 'a' -- ' AND metrics.m > 0",
        "params.x = 'a' OR 1=1",
        "1=1",
        "metrics.a > 1); DROP TABLE runs; --",
        "params.x = 'a' /* */",
        "params.x = 'a''",
        "params.x = 'a' ' OR '1'='1'",
        "status = 'x' AND SELECT",
        "params.x = 'a'\x00",
        "params.x = ‘curly’",
    ],
)
def test_hostile_filters_are_rejected(text: str) -> None:
    with pytest.raises(SearchFilterError) as info:
        parse_run_filter(text)
    assert 0 <= info.value.position <= len(text)


# ------------------------------------------------------------------------------------ order_by

RUN_ORDER_ACCEPTED = [
    ("metrics.rmse", OrderBy("metric", "rmse", True)),
    ("metrics.rmse DESC", OrderBy("metric", "rmse", False)),
    ("metrics.rmse desc", OrderBy("metric", "rmse", False)),
    ("  metrics.rmse   Asc ", OrderBy("metric", "rmse", True)),
    ("params.lr asc", OrderBy("param", "lr", True)),
    ("tags.`mlflow.runName` DESC", OrderBy("tag", "mlflow.runName", False)),
    ('metrics."val loss" DESC', OrderBy("metric", "val loss", False)),
    ("metrics.'val loss'", OrderBy("metric", "val loss", True)),
    ("attributes.start_time DESC", OrderBy("attribute", "start_time", False)),
    ("start_time", OrderBy("attribute", "start_time", True)),
    ("created DESC", OrderBy("attribute", "start_time", False)),
    ("run_name", OrderBy("attribute", "run_name", True)),
    ("attr.status asc", OrderBy("attribute", "status", True)),
    ("run.run_id DESC", OrderBy("attribute", "run_id", False)),
    ("end_time", OrderBy("attribute", "end_time", True)),
    ("user_id", OrderBy("attribute", "user_id", True)),
    ("artifact_uri", OrderBy("attribute", "artifact_uri", True)),
]


@pytest.mark.parametrize(("item", "expected"), RUN_ORDER_ACCEPTED)
def test_run_order_by_accepted(item: str, expected: OrderBy) -> None:
    assert parse_order_by([item]) == [expected]


def test_order_by_keeps_list_order() -> None:
    assert parse_order_by(["metrics.a DESC", "params.b"]) == [
        OrderBy("metric", "a", False),
        OrderBy("param", "b", True),
    ]
    assert parse_order_by(None) == [] and parse_order_by([]) == []


RUN_ORDER_REJECTED = [
    ("metrics.rmse DOWN", "Invalid ordering key in order_by clause", "DOWN"),
    ("metrics.rmse DESC ASC", "Could not be parsed", "ASC"),
    ("metrics.rmse DESC, params.a", "Could not be parsed", ","),
    ("metrics.rmse, params.a", "Invalid ordering key", ","),
    ("metrics.rmse; DROP TABLE runs", "Invalid ordering key", ";"),
    ("", "Could not be parsed: it is empty", None),
    ("   ", "Could not be parsed: it is empty", None),
    ("experiment_id", "Invalid attribute key 'experiment_id'", "experiment_id"),
    ("lifecycle_stage DESC", "Invalid attribute key 'lifecycle_stage'", "lifecycle_stage"),
    ("`run name`", "Invalid attribute key 'run name'", "`run name`"),
    ("datasets.name", "Invalid order_by entity type 'dataset'", "datasets"),
    ("foo.bar", "Invalid entity type 'foo'", "foo"),
    ("'metrics.rmse'", "expected an identifier", "'metrics.rmse'"),
    ("DESC", "expected an identifier", "DESC"),
    ("metrics.rmse DESC -- x", "SQL comments", "--"),
]


@pytest.mark.parametrize(("item", "fragment", "at"), RUN_ORDER_REJECTED)
def test_run_order_by_rejected(item: str, fragment: str, at: str | None) -> None:
    with pytest.raises(SearchFilterError) as info:
        parse_order_by(["metrics.ok", item])
    assert fragment in info.value.message
    if at is None:
        assert info.value.position == len(item)
    else:
        assert item[info.value.position :].startswith(at)


def test_order_by_item_must_be_a_string() -> None:
    with pytest.raises(SearchFilterError, match="expected a string"):
        parse_order_by([5])  # type: ignore[list-item]


EXPERIMENT_ORDER = [
    ("name", OrderBy("attribute", "name", True)),
    ("name DESC", OrderBy("attribute", "name", False)),
    ("experiment_id ASC", OrderBy("attribute", "experiment_id", True)),
    ("creation_time desc", OrderBy("attribute", "creation_time", False)),
    ("attribute.last_update_time", OrderBy("attribute", "last_update_time", True)),
]


@pytest.mark.parametrize(("item", "expected"), EXPERIMENT_ORDER)
def test_experiment_order_by_accepted(item: str, expected: OrderBy) -> None:
    assert parse_order_by([item], kind="experiment") == [expected]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("tags.team", "Invalid order_by entity: tag"),
        ("metrics.x DESC", "Invalid entity type 'metrics'"),
        ("attributes.name", "Invalid entity type 'attributes'"),
        ("artifact_location", "Invalid attribute key 'artifact_location'"),
        ("lifecycle_stage", "Invalid attribute key 'lifecycle_stage'"),
        ("name sideways", "Invalid ordering key"),
    ],
)
def test_experiment_order_by_rejected(item: str, fragment: str) -> None:
    with pytest.raises(SearchFilterError) as info:
        parse_order_by([item], kind="experiment")
    assert fragment in info.value.message


def test_order_by_kind_is_checked() -> None:
    with pytest.raises(ValueError):
        parse_order_by(["name"], kind="model")  # type: ignore[arg-type]


def test_effective_orders() -> None:
    assert effective_run_order([]) == [OrderBy("attribute", "start_time", False), OrderBy("attribute", "run_id", True)]
    assert effective_run_order([OrderBy("metric", "m", True)])[-1] == OrderBy("attribute", "run_id", True)
    assert effective_experiment_order([]) == [
        OrderBy("attribute", "creation_time", False),
        OrderBy("attribute", "experiment_id", True),
    ]
    assert effective_experiment_order([OrderBy("attribute", "name", True)]) == [
        OrderBy("attribute", "name", True),
        OrderBy("attribute", "experiment_id", False),
    ]


# ------------------------------------------------------------------------------- experiments

EXPERIMENT_ACCEPTED = [
    ("name = 'Default'", [C("attribute", "name", "=", "Default")]),
    ("attribute.name LIKE 'exp%'", [C("attribute", "name", "LIKE", "exp%")]),
    ("name ILIKE '%PROD%'", [C("attribute", "name", "ILIKE", "%PROD%")]),
    ("creation_time > 1000", [C("attribute", "creation_time", ">", 1000)]),
    ("last_update_time <= 5", [C("attribute", "last_update_time", "<=", 5)]),
    ("tags.team = 'ml'", [C("tag", "team", "=", "ml")]),
    ("tag.team != 'ml'", [C("tag", "team", "!=", "ml")]),
    ("tags.`a b` IS NULL", [C("tag", "a b", "IS NULL", None)]),
    ("tags.x IS NOT NULL and name = 'n'", [C("tag", "x", "IS NOT NULL", None), C("attribute", "name", "=", "n")]),
]


@pytest.mark.parametrize(("text", "expected"), EXPERIMENT_ACCEPTED)
def test_experiment_filter_accepted(text: str, expected: list[Comparison]) -> None:
    assert parse_experiment_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metrics.a > 1", "Valid entity types are ('attribute', 'tag', 'tags')"),
        ("params.a = 'x'", "Invalid entity type 'params'"),
        ("attributes.name = 'x'", "Invalid entity type 'attributes'"),
        ("experiment_id = '1'", "Invalid attribute key 'experiment_id'"),
        ("artifact_location = 'x'", "Invalid attribute key 'artifact_location'"),
        ("name IN ('a')", "Invalid comparator 'IN'"),
        ("name IS NULL", "Invalid comparator 'IS NULL'"),
        ("creation_time = 'x'", "numeric value type for numeric attribute: creation_time"),
        ("name = 1", "Expected a quoted string value for attributes"),
        ("name = 'a' OR name = 'b'", "OR is not supported"),
    ],
)
def test_experiment_filter_rejected(text: str, fragment: str) -> None:
    with pytest.raises(SearchFilterError) as info:
        parse_experiment_filter(text)
    assert fragment in info.value.message


EXPERIMENT = {
    "name": "Prod-Model_v1",
    "creation_time": 100,
    "last_update_time": 200,
    "tags": {"team": "ML", "empty": ""},
}

MATCHES = [
    ("", True),
    ("name = 'Prod-Model_v1'", True),
    ("name = 'prod-model_v1'", False),
    ("name != 'x'", True),
    ("name LIKE 'Prod%'", True),
    ("name LIKE 'prod%'", False),
    ("name ILIKE 'prod%'", True),
    ("name LIKE 'Prod-Model_v_'", True),
    ("name LIKE 'Prod-Model.v1'", False),
    ("name LIKE '%Model%'", True),
    ("name LIKE 'Model%'", False),
    ("creation_time > 99", True),
    ("creation_time >= 101", False),
    ("last_update_time = 200", True),
    ("tags.team = 'ML'", True),
    ("tags.team = 'ml'", False),
    ("tags.team ILIKE 'ml'", True),
    ("tags.missing != 'x'", False),
    ("tags.missing = 'x'", False),
    ("tags.missing LIKE '%'", False),
    ("tags.missing IS NULL", True),
    ("tags.team IS NULL", False),
    ("tags.team IS NOT NULL", True),
    ("tags.empty IS NOT NULL", True),
    ("tags.empty = ''", True),
    ("name LIKE 'Prod%' AND tags.team = 'ML' AND creation_time < 150", True),
    ("name LIKE 'Prod%' AND tags.team = 'DS'", False),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_match_experiment(text: str, expected: bool) -> None:
    assert match_experiment(parse_experiment_filter(text), **EXPERIMENT) is expected


def test_missing_time_never_matches() -> None:
    ast = parse_experiment_filter("creation_time > 0")
    assert not match_experiment(ast, "n", None, None, {})
    assert not match_experiment(parse_experiment_filter("creation_time != 0"), "n", None, None, {})


@dataclass
class Exp:
    experiment_id: str
    name: str
    creation_time: int | None
    last_update_time: int | None


EXPS = [Exp("1", "b", 100, 5), Exp("2", "a", 300, None), Exp("10", "c", 100, 7), Exp("3", "d", None, 1)]


@pytest.mark.parametrize(
    ("order_by", "expected_ids"),
    [
        (None, ["2", "1", "10", "3"]),  # creation_time DESC, experiment_id ASC; None last
        (["name DESC"], ["3", "10", "1", "2"]),
        (["last_update_time ASC"], ["3", "1", "10", "2"]),
        (["last_update_time DESC"], ["10", "1", "3", "2"]),  # None last in both directions
        (["creation_time ASC"], ["10", "1", "2", "3"]),  # tie broken by experiment_id DESC
        (["creation_time ASC", "experiment_id ASC"], ["1", "10", "2", "3"]),
    ],
)
def test_experiment_sort_key(order_by: list[str] | None, expected_ids: list[str]) -> None:
    key = experiment_sort_key(parse_order_by(order_by, kind="experiment"))
    assert [e.experiment_id for e in sorted(EXPS, key=key)] == expected_ids


# ------------------------------------------------------------------------------------ LIKE


@pytest.mark.parametrize(
    ("pattern", "text", "case_sensitive", "expected"),
    [
        ("abc", "abc", True, True),
        ("abc", "abcd", True, False),
        ("a%", "abcd", True, True),
        ("%d", "abcd", True, True),
        ("%", "", True, True),
        ("a_c", "abc", True, True),
        ("a_c", "ac", True, False),
        ("_", "", True, False),
        ("a.c", "abc", True, False),
        ("a.c", "a.c", True, True),
        ("(x)*[y]", "(x)*[y]", True, True),
        ("A%", "abc", True, False),
        ("A%", "abc", False, True),
        ("%É", "café", False, True),
        ("a%b", "a\nb", True, True),
        ("x\\%", "x\\anything", True, True),
    ],
)
def test_like_to_regex(pattern: str, text: str, case_sensitive: bool, expected: bool) -> None:
    assert (like_to_regex(pattern, case_sensitive).match(text) is not None) is expected


# ------------------------------------------------------------------------------------ lexer


def test_tokenize_positions_and_kinds() -> None:
    tokens = tokenize("metrics.`a b` >= -1e3 AND tags.x IN ('p', \"q\")")
    assert [(t.kind, t.pos) for t in tokens] == [
        ("IDENT", 0), ("OP", 14), ("NUMBER", 17), ("KEYWORD", 22), ("IDENT", 26),
        ("KEYWORD", 33), ("(", 36), ("STRING", 37), (",", 40), ("STRING", 42), (")", 45),
        ("EOF", 46),
    ]  # fmt: skip
    assert tokens[0].prefix == "metrics" and tokens[0].value == "a b"
    assert tokens[2].value == -1000.0


# ------------------------------------------------------------------------------------ properties

keys = st.text(min_size=1, max_size=12)
texts = st.text(max_size=16)
run_comparisons = st.one_of(
    st.builds(
        C, st.just("metric"), keys, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), st.floats(allow_nan=False)
    ),
    st.builds(C, st.sampled_from(["param", "tag"]), keys, st.sampled_from(STRING_OPS), texts),
    st.builds(C, st.sampled_from(["param", "tag"]), keys, st.sampled_from(NULL_OPS), st.none()),
    st.builds(
        C,
        st.just("attribute"),
        st.sampled_from(["start_time", "end_time"]),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        st.integers(-(2**63), 2**63 - 1),
    ),
    st.builds(
        C,
        st.just("attribute"),
        st.sampled_from(["run_id", "run_name", "user_id", "status", "artifact_uri"]),
        st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
        texts,
    ),
    st.builds(
        C,
        st.just("attribute"),
        st.just("run_id"),
        st.sampled_from(["IN", "NOT IN"]),
        st.lists(texts, min_size=1, max_size=4).map(tuple),
    ),
    st.builds(
        C,
        st.just("dataset"),
        st.sampled_from(["name", "digest", "context"]),
        st.sampled_from(["IN", "NOT IN"]),
        st.lists(texts, min_size=1, max_size=4).map(tuple),
    ),
    st.builds(
        C,
        st.just("dataset"),
        st.sampled_from(["name", "digest", "context"]),
        st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
        texts,
    ),
)


@settings(max_examples=300)
@given(st.lists(run_comparisons, max_size=5))
def test_rendered_run_filter_parses_back(ast: list[Comparison]) -> None:
    assert parse_run_filter(format_filter(ast)) == ast


experiment_comparisons = st.one_of(
    st.builds(C, st.just("attribute"), st.just("name"), st.sampled_from(STRING_OPS), texts),
    st.builds(
        C,
        st.just("attribute"),
        st.sampled_from(["creation_time", "last_update_time"]),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        st.integers(-(2**63), 2**63 - 1),
    ),
    st.builds(C, st.just("tag"), keys, st.sampled_from(STRING_OPS), texts),
    st.builds(C, st.just("tag"), keys, st.sampled_from(NULL_OPS), st.none()),
)


@given(st.lists(experiment_comparisons, max_size=4))
def test_rendered_experiment_filter_parses_back(ast: list[Comparison]) -> None:
    assert parse_experiment_filter(format_filter(ast)) == ast


@given(st.builds(OrderBy, st.sampled_from(["metric", "param", "tag"]), keys, st.booleans()))
def test_rendered_order_by_parses_back(order_by: OrderBy) -> None:
    assert parse_order_by([format_order_by(order_by)]) == [order_by]


@given(texts, st.sampled_from([sq, dq]))
def test_any_quoted_value_is_kept_verbatim(value: str, quote) -> None:
    assert parse_run_filter(f"tags.t != {quote(value)}") == [C("tag", "t", "!=", value)]


GRAMMARISH = st.text(
    alphabet=st.sampled_from(list("metrics.params.tags'\"`()=<>!,;-_1e.%\\ ANDORNOTINLIKEIS")), max_size=40
)
FRAGMENTS = st.lists(
    st.sampled_from(
        ["metrics.a", "params.b", "tags.`c`", "status", "run_id", "datasets.name", "AND", "OR",
         "NOT", "IN", "IS", "NULL", "LIKE", "=", "!=", ">", "(", ")", ",", ";", "'x'", '"y"',
         "1", "-2.5e3", "--", "DESC", "'", "`"]
    ),
    max_size=10,
).map(" ".join)  # fmt: skip


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=40), GRAMMARISH, FRAGMENTS))
def test_arbitrary_input_parses_or_raises_search_filter_error(text: str) -> None:
    for parse in (parse_run_filter, parse_experiment_filter, lambda s: parse_order_by([s])):
        try:
            result = parse(text)
        except SearchFilterError as err:
            assert 0 <= err.position <= len(text)
        else:
            assert all(isinstance(r, (Comparison, OrderBy)) for r in result)


@given(st.text(alphabet=st.characters(exclude_characters="%_"), max_size=12), texts, texts)
def test_like_literal_and_contains(needle: str, before: str, after: str) -> None:
    assert like_to_regex(needle).match(needle)
    assert like_to_regex(f"%{needle}%").match(before + needle + after)


@given(st.text(alphabet="abcXYZ_%", max_size=8), st.text(alphabet="abcxyzABCXYZ", max_size=8))
def test_ilike_is_like_on_folded_case(pattern: str, text: str) -> None:
    folded = like_to_regex(pattern.lower()).match(text.lower()) is not None
    assert (like_to_regex(pattern, case_sensitive=False).match(text) is not None) is folded
