"""Regular expressions that users write, matched within a time budget.

Users hand the daemon patterns in three places: noderanges (``/regex``),
selections (``attr=~re``, ``attr!~re``: ``lsdef -w``, dynamic groups'
``wherevals``, noderanges) and xCAT regular-expression values
(``|pattern|expression|``, ``/pattern/replacement/``).  A pattern can
backtrack catastrophically, and the store's single worker thread would then
stall every database command for minutes, so every match goes through here:

- the syntax is xCAT's, Perl's, rewritten for Python where they differ
  (`perl_regex`), then checked by `re`, whose messages users see;
  matching is done by the `regex` package, whose ``timeout`` stops a match;
- one match may take `MATCH_LIMIT` seconds: a match of a node name or of an
  attribute value takes microseconds, so a pattern that backtracks without
  end fails at once, on the first name;
- one request's matches share one budget of `BUDGET` seconds (`budget()`,
  opened by `Store.run` around each piece of store work), so that a pattern
  merely slow on each of 420,000 nodes fails after `BUDGET` seconds in all.
  The budget leaves room for honest work: ``lsdef -l`` of 420,000 nodes with
  three regular-expression values each spends about 3 s matching;
- a pattern is at most `MAX_LENGTH` characters, and its fixed repeat counts
  may unroll to at most `MAX_UNROLLED` items: `regex` copies a repeated body
  once per repetition when it compiles, so ``(a{600}){600}`` alone would
  take 100 MB.

Everything that goes wrong is a PatternError saying what, on one line; each
caller names the pattern the way its user wrote it.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from re import _parser as re_parser  # type: ignore[attr-defined]  # the parse tree, to weigh repeats; Python 3.11+ (not in typeshed)

import regex

from ..errors import XcatdError
from .perl_regex import PerlSyntaxError, translate

MATCH_LIMIT = 0.25  # seconds (CPU) for one match
BUDGET = 10.0  # seconds of matching for one request
MAX_LENGTH = 1000  # characters in one pattern
MAX_UNROLLED = 10_000  # items the compiler may make of a pattern's fixed repeats

_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)

# `re` warns of syntax whose meaning may change one day ("[[", "--"): a
# user's pattern means what it means today, and each new one would be a line
# in the daemon's log.
warnings.filterwarnings("ignore", category=FutureWarning, module=__name__)


class PatternError(XcatdError, ValueError):
    """A pattern that is malformed, too large or too slow; the message says which."""


class _Budget:
    """The seconds of matching one request has left."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds


_current: ContextVar[_Budget | None] = ContextVar("pattern_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """Make all the matching done inside share `BUDGET` seconds.

    Inside another budget this one changes nothing: the outer request's
    budget goes on being spent.
    """
    if _current.get() is not None:
        yield
        return
    token = _current.set(_Budget(BUDGET))
    try:
        yield
    finally:
        _current.reset(token)


class Pattern:
    """A user's pattern, compiled; its matches count against the current budget."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise PatternError(f"longer than {MAX_LENGTH:,} characters")
        try:
            text = translate(text)  # users write xCAT's (Perl's) syntax
            self._checked = re.compile(text)
            if _unrolled(re_parser.parse(text).data) > MAX_UNROLLED:
                raise PatternError(
                    f"its repeat counts unroll to more than {MAX_UNROLLED:,} items: "
                    "use smaller counts"
                )
            self._compiled = regex.compile(text, regex.VERSION0)
        except (re.error, regex.error, OverflowError, PerlSyntaxError) as error:
            raise PatternError(str(error)) from None
        except RecursionError:
            raise PatternError("its parentheses are nested too deeply") from None
        self.groups = self._checked.groups

    def search(self, subject: str) -> regex.Match[str] | None:
        """The first match anywhere in *subject*, or None."""
        return _timed(self._compiled.search, subject)

    def fullmatch(self, subject: str) -> regex.Match[str] | None:
        """The match of the whole of *subject*, or None."""
        return _timed(self._compiled.fullmatch, subject)

    def check_template(self, template: str) -> None:
        r"""Refuse a replacement template (``\1``, ``\g<name>``) naming what the pattern lacks."""
        try:
            # re checks a template only when it substitutes; an empty subject
            # makes it check this one now, without needing a match.
            self._checked.sub(template, "")
        except (re.error, IndexError) as error:
            raise PatternError(str(error)) from None


def _timed(method: Callable[..., regex.Match[str] | None], subject: str) -> regex.Match[str] | None:
    """*method* on *subject*, stopped after MATCH_LIMIT or when the budget
    runs out, and charged for its time."""
    spending = _current.get() or _Budget(BUDGET)
    if spending.left <= 0:
        raise _spent()
    limit = min(MATCH_LIMIT, spending.left)
    started = time.monotonic()
    try:
        return method(subject, timeout=limit)
    except TimeoutError:
        raise _spent() if limit < MATCH_LIMIT else _too_slow() from None
    finally:
        spending.left -= time.monotonic() - started


def _too_slow() -> PatternError:
    return PatternError(f"one match took more than {MATCH_LIMIT:g} s: simplify it")


def _spent() -> PatternError:
    return PatternError(f"matching took more than {BUDGET:g} s in all: simplify it")


def _unrolled(items: list) -> int:
    """How many items compiling these parse-tree items may make: a repeat's
    body counts once per required repetition (``{3,}`` three times)."""
    total = 0
    for operation, argument in items:
        if operation in _REPEATS:
            least, _, body = argument
            total += max(least, 1) * _unrolled(body.data)
        else:
            total += 1 + sum(_unrolled(part.data) for part in _parts(argument))
        if total > MAX_UNROLLED:
            break  # enough to refuse; spares arithmetic on huge products
    return total


def _parts(argument: object) -> Iterator[re_parser.SubPattern]:
    """The sub-patterns inside one item's argument (a group's, a branch's, ...)."""
    if isinstance(argument, re_parser.SubPattern):
        yield argument
    elif isinstance(argument, tuple | list):
        for element in argument:
            yield from _parts(element)
