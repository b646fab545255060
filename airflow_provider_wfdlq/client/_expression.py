"""A tiny parser that proves an ``Upstash-Retry-Delay`` expression is well formed.

The server evaluates the expression itself; the client only refuses text that the server
would reject at delivery time, long after the resume call "succeeded". Grammar::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("+" | "-") unary | primary
    primary := NUMBER | "retried" | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FUNCTIONS = frozenset({"pow", "exp", "sqrt", "abs", "floor", "ceil", "round", "min", "max"})
VARIABLE = "retried"
MAX_LENGTH = 1000
MAX_DEPTH = 50

_TOKEN = re.compile(
    r"(?P<space>[ \t]+)|(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/(),])"
)


class ExpressionError(ValueError):
    """Why the expression is malformed; the caller turns it into a ValidationError."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"unexpected character {text[position]!r} at {position}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    @property
    def _current(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._current
        self._index += 1
        return token

    def _expect(self, text: str) -> None:
        if self._current.text != text:
            raise ExpressionError(f"expected {text!r} at {self._describe(self._current)}")
        self._advance()

    @staticmethod
    def _describe(token: _Token) -> str:
        return "the end" if token.kind == "end" else f"{token.text!r} at {token.position}"

    def parse(self) -> None:
        self._expr()
        if self._current.kind != "end":
            raise ExpressionError(f"expected an operator, found {self._describe(self._current)}")

    def _expr(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels")
        self._term()
        while self._current.text in ("+", "-"):
            self._advance()
            self._term()
        self._depth -= 1

    def _term(self) -> None:
        self._unary()
        while self._current.text in ("*", "/"):
            self._advance()
            self._unary()

    def _unary(self) -> None:
        signs = 0
        while self._current.text in ("+", "-"):
            self._advance()
            signs += 1
            if signs > 1:
                raise ExpressionError(f"two signs in a row before {self._describe(self._current)}")
        self._primary()

    def _primary(self) -> None:
        token = self._advance()
        if token.kind == "number" or (token.kind == "name" and token.text == VARIABLE):
            return
        if token.kind == "name" and token.text in FUNCTIONS:
            if self._current.text != "(":
                raise ExpressionError(f"function {token.text!r} must be called, e.g. pow(2, 3)")
            self._advance()
            self._expr()
            while self._current.text == ",":
                self._advance()
                self._expr()
            self._expect(")")
            return
        if token.text == "(":
            self._expr()
            self._expect(")")
            return
        if token.kind == "name":
            raise ExpressionError(f"unknown name {token.text!r} at {token.position}")
        raise ExpressionError(f"expected a number, 'retried' or '(' at {self._describe(token)}")


def check_expression(text: str) -> None:
    """Raise :class:`ExpressionError` unless ``text`` matches the grammar above."""
    if not text:
        raise ExpressionError("it is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"it is longer than {MAX_LENGTH} characters")
    _Parser(_tokenize(text)).parse()
