"""Tokenizer for MLflow's search filter and order_by strings.

Every token carries its 0-based character offset into the source string, and
every error is a :class:`SearchFilterError` carrying the offset of the fault.

Lexical rules (MLflow's, minus its reliance on a SQL lexer):

* Identifiers: a bare word ``[letter|_][word chars . - / :]*`` whose text up to
  the first ``.`` is the entity prefix and the rest the key (``metrics.val/loss``,
  ``tags.mlflow.runName``, ``params.train-data-path``).  A prefix may be followed
  by a quoted key: ``metrics."val loss"``, ``metrics.'x'``, metrics.`val loss`.
  A backtick-quoted word is an identifier: `run name`, `metrics`.rmse.
* Strings: ``'…'`` or ``"…"``; a doubled quote stands for one quote character
  (``'it''s'``).  Backslashes are ordinary characters.  Nothing else is
  unescaped, so text between the quotes is taken verbatim.
* Numbers: ``-?(digits[.digits]|.digits)([eE][+-]digits)?``.
* Operators ``= != <> == < <= > >=``, ``( ) , ;`` and the case-insensitive
  keywords AND OR NOT IN LIKE ILIKE IS NULL ASC DESC (bare words only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evtrack.errors import InvalidParameterError

IDENT = "IDENT"
STRING = "STRING"
NUMBER = "NUMBER"
OP = "OP"
KEYWORD = "KEYWORD"
LPAREN = "("
RPAREN = ")"
COMMA = ","
SEMI = ";"
EOF = "EOF"

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"})
_OPERATORS = ("!=", "<>", "==", "<=", ">=", "=", "<", ">")
_PUNCT = {"(": LPAREN, ")": RPAREN, ",": COMMA, ";": SEMI}
_QUOTES = "'\"`"
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class SearchFilterError(InvalidParameterError):
    """A search filter or order_by clause breaks MLflow's grammar; ``position`` is the offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.position = position
        self.reason = message


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme: its kind, raw source text, offset and decoded value."""

    kind: str
    text: str
    pos: int
    value: str | float | int | None = None  # STRING: content; NUMBER: number; OP/KEYWORD: name
    prefix: str | None = None  # IDENT: entity prefix, or None when there is none
    quote: str | None = None  # STRING: its quote; IDENT: the quote around the key, if any


def _is_word_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_.-/:"


def _read_quoted(src: str, start: int) -> tuple[str, int]:
    """Read the quoted text opening at ``start``; return (content, index after the close)."""
    quote = src[start]
    parts: list[str] = []
    i = start + 1
    while True:
        end = src.find(quote, i)
        if end < 0:
            what = "quoted key" if quote == "`" else "string literal"
            message = f"Unterminated {what}: expected a closing {quote} for the {quote} opened here"
            raise SearchFilterError(message, start)
        parts.append(src[i:end])
        if src.startswith(quote, end + 1):  # a doubled quote is one literal quote
            parts.append(quote)
            i = end + 2
            continue
        return "".join(parts), end + 1


def _read_key(src: str, i: int, prefix: str, start: int) -> tuple[str, str | None, int]:
    """Read the key after ``prefix.``: quoted or bare; return (key, quote, end)."""
    if i < len(src) and src[i] in _QUOTES:
        key, end = _read_quoted(src, i)
        return key, src[i], end
    j = i
    while j < len(src) and _is_word_char(src[j]):
        j += 1
    if j == i:
        message = f"Invalid identifier '{prefix}.': expected a key after the '.'"
        raise SearchFilterError(message, start)
    return src[i:j], None, j


def _word(src: str, start: int) -> tuple[Token, int]:
    j = start
    while j < len(src) and _is_word_char(src[j]):
        j += 1
    word = src[start:j]
    if "." not in word:
        upper = word.upper()
        if upper in KEYWORDS:
            return Token(KEYWORD, word, start, upper), j
        return Token(IDENT, word, start, word), j
    prefix, _, key = word.partition(".")
    quote = None
    if not key:
        key, quote, j = _read_key(src, j, prefix, start)
    return Token(IDENT, src[start:j], start, key, prefix, quote), j


def _backticked(src: str, start: int) -> tuple[Token, int]:
    name, j = _read_quoted(src, start)
    if src.startswith(".", j):
        key, quote, end = _read_key(src, j + 1, name, start)
        return Token(IDENT, src[start:end], start, key, name, quote), end
    return Token(IDENT, src[start:j], start, name, None, "`"), j


def _number(src: str, start: int) -> tuple[Token, int]:
    match = _NUMBER.match(src, start)
    assert match is not None
    end = match.end()
    if end < len(src) and (_is_word_char(src[end]) or src[end] in _QUOTES):
        j = end
        while j < len(src) and _is_word_char(src[j]):
            j += 1
        raise SearchFilterError(f"Invalid number '{src[start:j]}'", start)
    text = match.group()
    value: float | int = int(text) if text.lstrip("-").isdigit() else float(text)
    return Token(NUMBER, text, start, value), end


def _starts_number(src: str, i: int) -> bool:
    return _NUMBER.match(src, i) is not None


def tokenize(src: str) -> list[Token]:
    """Split ``src`` into tokens, ending with an EOF token; raise SearchFilterError on bad input."""
    tokens: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            value, end = _read_quoted(src, i)
            tokens.append(Token(STRING, src[i:end], i, value, quote=ch))
        elif ch == "`":
            token, end = _backticked(src, i)
            tokens.append(token)
        elif _is_word_start(ch):
            token, end = _word(src, i)
            tokens.append(token)
        elif ch in "-." and _starts_number(src, i) or ch.isascii() and ch.isdigit():
            token, end = _number(src, i)
            tokens.append(token)
        elif ch in "<>=!":
            op = next((o for o in _OPERATORS if src.startswith(o, i)), None)
            if op is None:
                raise SearchFilterError(f"Unexpected character {ch!r}: expected an operator", i)
            tokens.append(Token(OP, op, i, op))
            end = i + len(op)
        elif ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i, ch))
            end = i + 1
        elif src.startswith("--", i) or src.startswith("/*", i):
            raise SearchFilterError("SQL comments are not supported in a search filter", i)
        else:
            raise SearchFilterError(f"Unexpected character {ch!r}", i)
        i = end
    tokens.append(Token(EOF, "", n))
    return tokens
