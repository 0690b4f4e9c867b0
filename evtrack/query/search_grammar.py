"""MLflow's search filter and order_by grammar, parsed into a typed AST.

A filter is comparisons joined by AND (no OR, no parentheses)::

    filter     := [comparison (AND comparison)*]
    comparison := identifier ( op number | op string | [I]LIKE string
                             | [NOT] IN '(' string {, string} [,] ')' | IS [NOT] NULL )
    order_by   := identifier [ASC | DESC]

Which comparator and value type an identifier takes depends on its entity and
key, as in MLflow's ``SearchUtils`` / ``SearchExperimentsUtils``.  The AST holds
values verbatim (strings are never interpreted), so a store can render it as
SQL with every value a bound parameter.  Lexical rules: ``evtrack.query.lexer``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from evtrack.query import lexer
from evtrack.query.lexer import SearchFilterError, Token, tokenize
from evtrack.query.matching import evaluate_comparison, experiment_sort_key, like_to_regex, match_experiment
from evtrack.query.nodes import (
    LIST_OPS,
    NULL_OPS,
    NUMERIC_OPS,
    STRING_OPS,
    Comparison,
    Entity,
    OrderBy,
    Value,
    effective_experiment_order,
    effective_run_order,
)

__all__ = [
    "Comparison",
    "Entity",
    "OrderBy",
    "SearchFilterError",
    "effective_experiment_order",
    "effective_run_order",
    "evaluate_comparison",
    "experiment_sort_key",
    "format_filter",
    "format_order_by",
    "like_to_regex",
    "match_experiment",
    "parse_experiment_filter",
    "parse_model_version_filter",
    "parse_order_by",
    "parse_registered_model_filter",
    "parse_run_filter",
]

RUN_ATTRIBUTES = (
    "run_id", "run_name", "user_id", "status", "start_time", "end_time", "artifact_uri",
)  # fmt: skip
NUMERIC_RUN_ATTRIBUTES = frozenset({"start_time", "end_time"})
DATASET_KEYS = ("context", "digest", "name")
EXPERIMENT_ATTRIBUTES = ("name", "creation_time", "last_update_time")
EXPERIMENT_ORDER_ATTRIBUTES = ("name", "experiment_id", "creation_time", "last_update_time")
_INT64 = 2**63


@dataclass(frozen=True)
class _Spec:
    """What one search API accepts: entity prefixes, attribute keys and their types."""

    entities: Mapping[str, Entity]
    entity_error: str
    attributes: Mapping[str, str]  # accepted spelling -> canonical key, in filters
    order_attributes: Mapping[str, str]  # the same, in order_by
    numeric: frozenset[str]
    list_attributes: frozenset[str]
    order_entities: frozenset[str]
    order_entity_error: str
    tag_null_ops: bool = True  # IS [NOT] NULL on tags (the registry searches have none)


def _aliases(canonical: Iterable[str], **extra: str) -> dict[str, str]:
    return {**{k: k for k in canonical}, **extra}


_CREATED = {"created": "start_time", "Created": "start_time"}
_RUN_NAME = {"run name": "run_name", "Run name": "run_name", "Run Name": "run_name"}
_RUN_ENTITIES: dict[str, Entity] = {
    **dict.fromkeys(("metric", "metrics"), "metric"),
    **dict.fromkeys(("param", "params", "parameter", "parameters"), "param"),
    **dict.fromkeys(("tag", "tags"), "tag"),
    **dict.fromkeys(("attribute", "attributes", "attr", "run"), "attribute"),
    **dict.fromkeys(("dataset", "datasets"), "dataset"),
}
_RUN = _Spec(
    entities=_RUN_ENTITIES,
    entity_error="Invalid entity type '{}'. Valid values are "
    "['metric', 'parameter', 'tag', 'attribute', 'dataset'] or their plurals, 'attr', 'run'",
    attributes=_aliases(RUN_ATTRIBUTES, **_CREATED, **_RUN_NAME),
    order_attributes=_aliases(RUN_ATTRIBUTES, **_CREATED),
    numeric=NUMERIC_RUN_ATTRIBUTES,
    list_attributes=frozenset({"run_id"}),
    order_entities=frozenset({"metric", "param", "tag", "attribute"}),
    order_entity_error="Invalid order_by entity type '{}'",
)
_EXPERIMENT = _Spec(
    entities={"attribute": "attribute", "tag": "tag", "tags": "tag"},
    entity_error="Invalid entity type '{}'. Valid entity types are ('attribute', 'tag', 'tags')",
    attributes=_aliases(EXPERIMENT_ATTRIBUTES),
    order_attributes=_aliases(EXPERIMENT_ORDER_ATTRIBUTES),
    numeric=frozenset({"creation_time", "last_update_time"}),
    list_attributes=frozenset(),
    order_entities=frozenset({"attribute"}),
    order_entity_error="Invalid order_by entity: {}",
)
_REGISTRY_ENTITIES: dict[str, Entity] = {"attribute": "attribute", "tag": "tag", "tags": "tag"}
_REGISTERED_MODEL = _Spec(
    entities=_REGISTRY_ENTITIES,
    entity_error=_EXPERIMENT.entity_error,
    attributes=_aliases(("name",)),
    order_attributes=_aliases(
        ("name", "creation_timestamp", "last_updated_timestamp"), timestamp="last_updated_timestamp"
    ),
    numeric=frozenset(),
    list_attributes=frozenset({"name"}),
    order_entities=frozenset({"attribute"}),
    order_entity_error="Invalid order_by entity: {}",
    tag_null_ops=False,
)
_MODEL_VERSION = _Spec(
    entities=_REGISTRY_ENTITIES,
    entity_error=_EXPERIMENT.entity_error,
    attributes=_aliases(("name", "version_number", "run_id", "source_path")),
    order_attributes=_aliases(("name", "version_number", "creation_timestamp", "last_updated_timestamp")),
    numeric=frozenset({"version_number"}),
    list_attributes=frozenset({"name", "run_id"}),
    order_entities=frozenset({"attribute"}),
    order_entity_error="Invalid order_by entity: {}",
    tag_null_ops=False,
)
_HINTS = {
    "experiment_id": " (experiments are chosen with the experiment_ids argument)",
    "lifecycle_stage": " (use the run_view_type argument)",
}


def _describe(tok: Token) -> str:
    if tok.kind == lexer.EOF:
        return "end of input"
    return tok.text if len(tok.text) <= 60 else tok.text[:57] + "..."


def _allowed_ops(spec: _Spec, entity: str, key: str) -> tuple[str, ...]:
    if entity == "metric" or (entity == "attribute" and key in spec.numeric):
        return NUMERIC_OPS
    if entity in ("param", "tag"):
        return STRING_OPS + (NULL_OPS if spec.tag_null_ops else ())
    if entity == "dataset":
        return STRING_OPS + LIST_OPS
    return STRING_OPS + (LIST_OPS if key in spec.list_attributes else ())


def _is_identifier(tok: Token) -> bool:
    return tok.kind == lexer.IDENT or (tok.kind == lexer.STRING and tok.quote == '"')


def _resolve(spec: _Spec, tok: Token, attributes: Mapping[str, str]) -> tuple[Entity, str]:
    """The (entity, canonical key) an identifier token names, or a SearchFilterError."""
    if not _is_identifier(tok):
        raise SearchFilterError(
            "Invalid comparison clause. Expected an identifier such as metrics.rmse or "
            f'params."my param", found {_describe(tok)}',
            tok.pos,
        )
    prefix, key = tok.prefix, str(tok.value)
    entity: Entity = "attribute"
    if prefix is not None:
        if prefix not in spec.entities:
            raise SearchFilterError(spec.entity_error.format(prefix), tok.pos)
        entity = spec.entities[prefix]
    if not key:
        raise SearchFilterError(f"Invalid identifier {tok.text}: the key is empty", tok.pos)
    if entity == "attribute":
        if key not in attributes:
            valid = sorted(set(attributes.values()))
            hint = _HINTS.get(key, "")
            message = f"Invalid attribute key '{key}' specified. Valid keys are {valid}{hint}"
            raise SearchFilterError(message, tok.pos)
        key = attributes[key]
    elif entity == "dataset" and key not in DATASET_KEYS:
        message = f"Invalid dataset key '{key}' specified. Valid keys are {list(DATASET_KEYS)}"
        raise SearchFilterError(message, tok.pos)
    return entity, key


class _Parser:
    """Recursive-descent parser over the tokens of one filter or order_by string."""

    def __init__(self, src: str, spec: _Spec) -> None:
        self.src = src
        self.spec = spec
        self.tokens = tokenize(src)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != lexer.EOF:
            self.i += 1
        return tok

    def at_keyword(self, *names: str) -> bool:
        return self.tok.kind == lexer.KEYWORD and self.tok.value in names

    def error(self, message: str, tok: Token | None = None) -> SearchFilterError:
        return SearchFilterError(message, (tok or self.tok).pos)

    def parse_filter(self) -> list[Comparison]:
        """filter := [comparison (AND comparison)*] EOF"""
        if self.tok.kind == lexer.EOF:
            return []
        result = [self.comparison()]
        while self.tok.kind != lexer.EOF:
            if self.at_keyword("AND"):
                self.advance()
                result.append(self.comparison())
                continue
            if self.at_keyword("OR"):
                reason = "OR is not supported; join comparisons with AND"
            elif self.tok.kind == lexer.SEMI:
                raise self.error("Search filter contained multiple expressions (';'). Provide AND-ed expression list.")
            else:
                reason = "Expected AND or the end of the filter"
            clause = _describe(self.tok)
            raise self.error(f"Invalid clause(s) in filter string: '{clause}'. {reason}")
        return result

    def comparison(self) -> Comparison:
        tok = self.tok
        if tok.kind == lexer.EOF:
            raise self.error("Expected a comparison after AND, found end of input")
        if tok.kind in (lexer.LPAREN, lexer.KEYWORD):
            reason = (
                "Parentheses are not supported; join comparisons with AND"
                if tok.kind == lexer.LPAREN
                else "Expected a comparison such as metrics.rmse < 1"
            )
            raise self.error(f"Invalid clause(s) in filter string: '{tok.text}'. {reason}")
        entity, key = _resolve(self.spec, tok, self.spec.attributes)
        self.advance()
        op_tok = self.tok
        op = self.operator(tok)
        allowed = _allowed_ops(self.spec, entity, key)
        if op not in allowed:
            raise self.error(self.bad_op_message(entity, key, op, allowed), op_tok)
        if op in NULL_OPS:
            value: Value = None
        elif op in LIST_OPS:
            value = self.string_list(op)
        elif entity == "metric" or (entity == "attribute" and key in self.spec.numeric):
            value = self.number(entity, key)
        else:
            value = self.string(entity)
        return Comparison(entity, key, op, value, tok.pos)

    def operator(self, lhs: Token) -> str:
        tok = self.advance()
        if tok.kind == lexer.OP:
            return str(tok.value)
        if tok.kind == lexer.KEYWORD:
            if tok.value in ("LIKE", "ILIKE", "IN"):
                return str(tok.value)
            if tok.value == "NOT" and self.at_keyword("IN", "LIKE", "ILIKE"):
                return "NOT " + str(self.advance().value)
            if tok.value == "IS":
                negated = self.at_keyword("NOT")
                if negated:
                    self.advance()
                if self.at_keyword("NULL"):
                    self.advance()
                    return "IS NOT NULL" if negated else "IS NULL"
                what = "IS NOT" if negated else "IS"
                raise self.error(f"Expected NULL after '{what}', found {_describe(self.tok)}")
        raise self.error(
            "Invalid comparison clause. Expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, "
            f"IN, NOT IN, IS NULL, IS NOT NULL) after {lhs.text}, found {_describe(tok)}",
            tok,
        )

    def bad_op_message(self, entity: str, key: str, op: str, allowed: Sequence[str]) -> str:
        is_string_attribute = entity == "attribute" and key not in self.spec.numeric
        if op in LIST_OPS and is_string_attribute and self.spec.list_attributes:
            names = " and ".join(f"'{k}'" for k in sorted(self.spec.list_attributes))
            verb = "attribute supports" if len(self.spec.list_attributes) == 1 else "attributes support"
            return f"Only the {names} {verb} comparison with a list of quoted string values."
        hint = {"<>": " (use '!=')", "==": " (use '=')"}.get(op, "")
        ops = "[" + ", ".join(f"'{o}'" for o in allowed) + "]"
        return f"Invalid comparator '{op}' not one of {ops} for {entity} '{key}'{hint}"

    def number(self, entity: str, key: str) -> float | int:
        tok = self.advance()
        if tok.kind != lexer.NUMBER:
            what = "metric" if entity == "metric" else f"numeric attribute: {key}"
            raise self.error(f"Expected numeric value type for {what}. Found {_describe(tok)}", tok)
        if entity == "metric":
            return float(tok.text)
        if isinstance(tok.value, int) and not -_INT64 <= tok.value < _INT64:
            raise self.error(f"Numeric value {tok.text} for attribute '{key}' is out of range", tok)
        return tok.value  # type: ignore[return-value]

    def string(self, entity: str) -> str:
        tok = self.advance()
        if tok.kind == lexer.STRING:
            return str(tok.value)
        if tok.kind == lexer.IDENT:
            raise self.error(
                "Parameter value is either not quoted or unidentified quote types used for string "
                f"value {_describe(tok)}. Use either single or double quotes "
                "(identifiers are not allowed on the right-hand side).",
                tok,
            )
        if entity in ("param", "tag"):
            what = f"{entity} (e.g. 'my-value')"
        else:
            what = "dataset attributes" if entity == "dataset" else "attributes"
        hint = ""
        if tok.value == "NULL":
            hint = ". Use IS NULL / IS NOT NULL to test for a missing key"
        message = f"Expected a quoted string value for {what}. Got value {_describe(tok)}{hint}"
        raise self.error(message, tok)

    def string_list(self, op: str) -> tuple[str, ...]:
        prefix = "While parsing a list in the query, expected"
        start = self.advance()
        if start.kind != lexer.LPAREN:
            message = f"Expected a parenthesized list of quoted strings after {op}"
            raise self.error(f"{message}, found {_describe(start)}", start)
        if self.tok.kind == lexer.RPAREN:
            message = f"{prefix} a non-empty list of string values, but got empty list"
            raise self.error(message, start)
        values: list[str] = []
        while True:
            tok = self.advance()
            if tok.kind != lexer.STRING:
                raise self.error(
                    f"{prefix} string value, punctuation, or whitespace, but got different type "
                    f"in list: {_describe(tok)}",
                    tok,
                )
            values.append(str(tok.value))
            sep = self.advance()
            if sep.kind == lexer.COMMA and self.tok.kind == lexer.RPAREN:
                self.advance()  # a trailing comma is allowed, as in a Python tuple
                return tuple(values)
            if sep.kind == lexer.RPAREN:
                return tuple(values)
            if sep.kind != lexer.COMMA:
                raise self.error(
                    f"{prefix} a non-empty list of string values, but got ill-formed list: "
                    f"expected ',' or ')', found {_describe(sep)}",
                    sep,
                )

    def parse_order_by(self) -> OrderBy:
        """order_by := identifier [ASC | DESC] EOF"""
        clause = f"Invalid order_by clause '{self.src}'. Could not be parsed"
        tok = self.tok
        if tok.kind == lexer.EOF:
            raise self.error(f"{clause}: it is empty")
        if not _is_identifier(tok):
            raise self.error(f"{clause}: expected an identifier, found {_describe(tok)}")
        entity, key = _resolve(self.spec, tok, self.spec.order_attributes)
        if entity not in self.spec.order_entities:
            raise self.error(self.spec.order_entity_error.format(entity), tok)
        self.advance()
        ascending = True
        if self.at_keyword("ASC", "DESC"):
            ascending = self.advance().value == "ASC"
        elif self.tok.kind != lexer.EOF:
            raise self.error(
                f"Invalid ordering key in order_by clause '{self.src}'. "
                f"Expected ASC or DESC, found {_describe(self.tok)}"
            )
        if self.tok.kind != lexer.EOF:
            raise self.error(f"{clause}: unexpected {_describe(self.tok)} after the direction")
        return OrderBy(entity, key, ascending)


def _parse_filter(s: str | None, spec: _Spec) -> list[Comparison]:
    if s is None:
        return []
    if not isinstance(s, str):
        raise SearchFilterError(f"Invalid filter {s!r}: expected a string", 0)
    return _Parser(s, spec).parse_filter()


def parse_run_filter(s: str | None) -> list[Comparison]:
    """Parse a ``search_runs`` filter string; None or blank gives []."""
    return _parse_filter(s, _RUN)


def parse_experiment_filter(s: str | None) -> list[Comparison]:
    """Parse a ``search_experiments`` filter (attributes name, creation_time, last_update_time;
    ``tag.<key>`` / ``tags.<key>``); None or blank gives []."""
    return _parse_filter(s, _EXPERIMENT)


def parse_registered_model_filter(s: str | None) -> list[Comparison]:
    """Parse a ``search_registered_models`` filter (attribute ``name`` with = != LIKE ILIKE IN NOT IN;
    ``tag.<key>`` / ``tags.<key>`` with = != LIKE ILIKE); None or blank gives []."""
    return _parse_filter(s, _REGISTERED_MODEL)


def parse_model_version_filter(s: str | None) -> list[Comparison]:
    """Parse a ``search_model_versions`` filter (attributes name, run_id, source_path — IN for name
    and run_id — and numeric version_number; tags as for registered models); None or blank gives []."""
    return _parse_filter(s, _MODEL_VERSION)


_ORDER_SPECS = {
    "run": _RUN,
    "experiment": _EXPERIMENT,
    "registered_model": _REGISTERED_MODEL,
    "model_version": _MODEL_VERSION,
}


def parse_order_by(
    items: Sequence[str] | None, kind: Literal["run", "experiment", "registered_model", "model_version"] = "run"
) -> list[OrderBy]:
    """Parse ``order_by`` items ("identifier [ASC|DESC]", default ASC) for runs, experiments,
    registered models or model versions."""
    if kind not in _ORDER_SPECS:
        raise ValueError(f"kind must be one of {sorted(_ORDER_SPECS)}, not {kind!r}")
    spec = _ORDER_SPECS[kind]
    result = []
    for item in items or ():
        if not isinstance(item, str):
            raise SearchFilterError(f"Invalid order_by clause {item!r}: expected a string", 0)
        result.append(_Parser(item, spec).parse_order_by())
    return result


def _quote(text: str, quote: str = "'") -> str:
    return quote + text.replace(quote, quote * 2) + quote


def _format_value(value: Value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_quote(v) for v in value) + ")"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, float) and math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def format_filter(comparisons: Iterable[Comparison]) -> str:
    """Render comparisons as a filter string that parses back to the same AST."""
    parts = []
    for c in comparisons:
        lhs = f"{c.entity}.{_quote(c.key, '`')} {c.op}"
        parts.append(lhs if c.op in NULL_OPS else f"{lhs} {_format_value(c.value)}")
    return " AND ".join(parts)


def format_order_by(order_by: OrderBy) -> str:
    """Render an order_by item that parses back to ``order_by``."""
    direction = "ASC" if order_by.ascending else "DESC"
    return f"{order_by.entity}.{_quote(order_by.key, '`')} {direction}"
