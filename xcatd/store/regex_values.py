r"""xCAT's regular-expression attribute values, evaluated without eval.

One group definition can serve a whole rack when its values compute themselves
from the node's name (XCAT-BEHAVIOUR.md, "Groups, inheritance, regular
expressions"):

- ``|pattern|expression|``: ``pattern`` is searched for in the node name and
  the match is replaced by ``expression``, in which every parenthesised group
  is integer arithmetic over the captures ``$1``..``$9`` and integer literals
  (``+ - * / %``, unary minus, nested parentheses; ``/`` and ``%`` truncate
  toward zero, like Perl's ``use integer``), and ``$N`` elsewhere is the
  capture's text.  ``|node(\d+)|10.0.0.($1+0)|`` gives node012 -> 10.0.0.12.
- ``/pattern/replacement/``: a plain substitution of the first match in the
  node name; ``$N`` (xCAT's Perl spelling) and ``\N`` both name captures.

As in xCAT only the match is replaced, so a pattern meant to produce the whole
value must match the whole name (``\D+(\d+)``, not ``(\d+)``).

A value takes one of these forms only if it starts and ends with the delimiter
and holds exactly three unescaped delimiters (``\/`` and ``\|`` escape one).
So ``/install/foo`` and ``/install/a/b/`` are plain paths, but, as in xCAT,
``/install/custom/`` is a substitution: drop the trailing slash of such a path.

When the pattern does not match a node, or the result is empty, the value does
not apply to that node: it evaluates to None, so that inheritance can let the
node's next group supply a value.  (xCAT keeps the unmatched name, and treats
an empty result as unset without looking further.)

No user text is ever run as code: the arithmetic has its own small parser, a
regular-expression value is at most 256 characters long, and every number
stays below 10**18 in magnitude.  The pattern is an ordinary Python regular
expression, matched within the request's budget (`patterns`), so that one
that backtracks catastrophically fails instead of holding the daemon.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import regex

from ..errors import XcatdError
from .patterns import Pattern, PatternError

MAX_LENGTH = 256
_SHOWN = 40  # characters of a value too long that its error message repeats
LIMIT = 10**18

Captures = Sequence[str | None]  # one match's groups, $1 first
# Arithmetic on constants alone is folded to an int while compiling, so that
# it is done once; with `_combine`'s check, a division by a constant zero is
# refused when the value is written.
Term = int | Callable[[Captures], int]
Piece = Callable[[Captures], str]


class RegexValueError(XcatdError, ValueError):
    """A regular-expression value that cannot be used; the message names it."""


class _Problem(Exception):
    """What is wrong, raised where the value's text and the node are not known."""


def is_regex_value(value: str) -> bool:
    """True if *value* has the ``|pattern|expression|`` or ``/pattern/replacement/`` form."""
    # The store asks this of every value it reads: most fail the first test,
    # and the scan of the others is cached.
    if len(value) < 3 or value[0] not in "|/" or value[-1] != value[0]:
        return False
    return _middle(value) is not None


def evaluate(value: str, node: str) -> str | None:
    """The value of an attribute for *node*; None when a regular expression does not apply."""
    return compile_value(value)(node)


def compile_value(value: str) -> Callable[[str], str | None]:
    """A function of the node name giving *value* for that node, like `evaluate`.

    Raises RegexValueError for a malformed regular-expression value, so the
    store can refuse it before storing it.  The function it returns raises
    RegexValueError too when the arithmetic fails for a particular node (a
    capture that is not a number, a division by a capture that is zero).
    """
    if not is_regex_value(value):
        return lambda node: value
    # Only regular expressions are cached: plain values (MACs, addresses) are
    # numerous and would push the few shared expressions out of the cache.
    return _compile_regex(value)


@lru_cache(maxsize=4096)
def _compile_regex(value: str) -> Callable[[str], str | None]:
    if len(value) > MAX_LENGTH:
        # Only its start: a chdef of 100,000 nodes makes this message for each.
        raise RegexValueError(
            f"Bad regular expression value '{value[:_SHOWN]}...' ({len(value):,} characters): "
            f"longer than {MAX_LENGTH} characters"
        )
    try:
        middle = _middle(value)
        assert middle is not None  # compile_value checked the form
        pattern = _pattern(value[1:middle])
        body = value[middle + 1 : -1].replace("\\" + value[0], value[0])
        render = _substitution(body, pattern) if value[0] == "/" else _expression(body, pattern)
    except _Problem as problem:
        raise RegexValueError(f"Bad regular expression value '{value}': {problem}") from None
    return _evaluator(value, pattern, render)


@lru_cache(maxsize=4096)
def _middle(value: str) -> int | None:
    """Where the middle delimiter is; None unless there are exactly three, at the ends and between.

    The delimiter is the value's first character; a backslash escapes one.
    """
    positions: list[int] = []
    escaped = False
    for position, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == value[0]:
            positions.append(position)
    if len(positions) == 3 and positions[-1] == len(value) - 1:
        return positions[1]
    return None


def _pattern(text: str) -> Pattern:
    if not text:
        raise _Problem("empty pattern")
    try:
        return Pattern(text)
    except PatternError as error:
        raise _Problem(f"bad pattern: {error}") from None


def _evaluator(
    value: str, pattern: Pattern, render: Callable[[regex.Match[str]], str]
) -> Callable[[str], str | None]:
    def evaluate_for(node: str) -> str | None:
        try:
            match = pattern.search(node)
            if match is None:
                return None
            replacement = render(match)
        except (_Problem, PatternError) as problem:
            raise RegexValueError(
                f"Bad regular expression value '{value}' for node '{node}': {problem}"
            ) from None
        return node[: match.start()] + replacement + node[match.end() :] or None

    return evaluate_for


def _substitution(body: str, pattern: Pattern) -> Callable[[regex.Match[str]], str]:
    template = re.sub(r"\$([0-9]+)", r"\\g<\1>", body)
    try:
        pattern.check_template(template)
    except PatternError as error:
        raise _Problem(f"bad replacement: {error}") from None
    return lambda match: match.expand(template)


# Outside parentheses: literal text, a capture, or a stray ')'.
_OUTSIDE = re.compile(r"[^()$]+|\$[0-9]*|\)")


def _expression(body: str, pattern: Pattern) -> Callable[[regex.Match[str]], str]:
    pieces: list[Piece] = []
    position = 0
    while position < len(body):
        if body[position] == "(":
            parser = _Arithmetic(body, position, pattern.groups)
            pieces.append(_number_piece(parser.group()))
            position = parser.position
            continue
        token = _OUTSIDE.match(body, position)
        assert token is not None  # the pattern matches any character but '('
        text = token.group()
        if text == ")":
            raise _Problem(f"unbalanced ')' at position {position + 1} of the expression")
        if text.startswith("$"):
            pieces.append(_capture_piece(_capture_index(text, pattern.groups)))
        else:
            pieces.append(_text_piece(text))
        position = token.end()

    def render(match: regex.Match[str]) -> str:
        captures = match.groups()
        return "".join([piece(captures) for piece in pieces])

    return render


def _number_piece(term: Term) -> Piece:
    if isinstance(term, int):
        text = str(term)
        return lambda captures: text
    return lambda captures: str(term(captures))


def _text_piece(text: str) -> Piece:
    return lambda captures: text


def _capture_piece(index: int) -> Piece:
    return lambda captures: captures[index - 1] or ""


def _capture_index(token: str, groups: int) -> int:
    digits = token[1:]
    if not digits or not 1 <= int(digits) <= 9:
        raise _Problem(f"'{token}' is not a capture: use $1 to $9")
    if int(digits) > groups:
        raise _Problem(f"'{token}' names a capture the pattern does not have")
    return int(digits)


_TOKEN = re.compile(r"\s*([0-9]+|\$[0-9]*|.?)", re.DOTALL)


class _Arithmetic:
    """Recursive descent over one parenthesised group of the expression.

    group := "(" sum ")";  sum := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*;  unary := ("-" | "+") unary | primary
    primary := integer | "$N" | group
    The 256-character limit on values bounds the nesting, hence the recursion.
    """

    def __init__(self, text: str, position: int, groups: int) -> None:
        self.text = text
        self.position = position
        self.groups = groups

    def peek(self) -> str:
        return self._token().group(1)

    def take(self) -> str:
        token = self._token()
        self.position = token.end()
        return token.group(1)

    def _token(self) -> re.Match[str]:
        token = _TOKEN.match(self.text, self.position)
        assert token is not None  # every part of the pattern may be empty
        return token

    def group(self) -> Term:
        self.take()  # the "(" the caller saw
        term = self.sum()
        token = self.take()
        if token != ")":
            raise _Problem("unbalanced '(': missing ')'" if not token else _unexpected(token))
        return term

    def sum(self) -> Term:
        term = self.product()
        while self.peek() in ("+", "-"):
            term = _combine(self.take(), term, self.product())
        return term

    def product(self) -> Term:
        term = self.unary()
        while self.peek() in ("*", "/", "%"):
            term = _combine(self.take(), term, self.unary())
        return term

    def unary(self) -> Term:
        if self.peek() in ("+", "-"):
            sign = self.take()
            term = self.unary()
            return term if sign == "+" else _combine("-", 0, term)
        return self.primary()

    def primary(self) -> Term:
        token = self.peek()
        if token == "(":
            return self.group()
        self.take()
        if token.isascii() and token.isdigit():
            return _bounded(int(token))
        if token.startswith("$"):
            index = _capture_index(token, self.groups)
            return lambda captures: _capture_number(captures, index)
        raise _Problem(_unexpected(token) if token else "the arithmetic ends too early")


def _unexpected(token: str) -> str:
    return f"unexpected '{token}' in arithmetic"


def _combine(symbol: str, left: Term, right: Term) -> Term:
    if symbol in "/%" and isinstance(right, int) and right == 0:
        raise _Problem("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        return _apply(symbol, left, right)
    return lambda captures: _apply(symbol, _value(left, captures), _value(right, captures))


def _value(term: Term, captures: Captures) -> int:
    return term if isinstance(term, int) else term(captures)


def _apply(symbol: str, left: int, right: int) -> int:
    return _bounded(_OPERATIONS[symbol](left, right))


def _divide(left: int, right: int) -> int:
    if right == 0:
        raise _Problem("division by zero")
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _remainder(left: int, right: int) -> int:
    return left - right * _divide(left, right)


_OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "%": _remainder,
}


def _bounded(number: int) -> int:
    if abs(number) >= LIMIT:
        raise _Problem(f"{number} is out of range (limit 10**18)")
    return number


def _capture_number(captures: Captures, index: int) -> int:
    text = captures[index - 1] or ""
    # isascii: int() would also take other scripts' digits, which no node name means.
    if not (text.isascii() and text.isdigit()):
        raise _Problem(f"${index} is '{text}', not a number")
    # Counting digits first keeps int() away from absurdly long numbers.
    if len(text.lstrip("0")) > 18:
        raise _Problem(f"${index} is out of range (limit 10**18)")
    return int(text)
