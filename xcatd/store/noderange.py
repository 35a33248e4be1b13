"""Noderange expansion: xCAT's language for naming sets of nodes.

Every node command takes a noderange (XCAT-BEHAVIOUR.md, "Noderange").  This
is pure logic over a `NodeSource` that the store provides; the only I/O is
reading the ``^file`` files a user names.

Grammar: ``@`` binds tighter than ``,``, and parentheses group::

    range        := element ("," element)*
    element      := ["-"] intersection         "-" excludes
    intersection := operand ("@" operand)*
    operand      := "(" range ")" | atom

A range's exclusions are applied after all its inclusions, so ``-b,a`` and
``a,-b`` both mean "a without b"; a parenthesised range is evaluated on its
own, so its exclusions stay inside it: ``(a,-b),b`` includes b.

An atom is, tried in this order:

- ``^path``: a file, each line a noderange.  Only a line's first word counts,
  without a trailing ``:`` (so ``nodels`` output works); ``#`` comments and
  blank lines are skipped; files do not nest.
- ``/regex``: the nodes whose whole name matches.
- ``attr==value`` (also ``attr=value``), ``attr!=value``, ``attr=~regex``,
  ``attr!~regex``: the nodes whose effective value matches (`selection`).
- a node name, then a group name (so a group called ``rack1-rack2`` is a group).
- ``f[1-2]n[01:03]`` brackets (lists like ``[1,5-7]``; several make a cartesian
  product), ``node10+3`` (node10..node13), ``node01-node10`` or
  ``node01:node10``.  A zero-padded first number sets the width.  Each name
  produced is a node, a group (expanded), or unknown.
- otherwise an unknown name.

Unknown names are an error unless ``verify=False`` (mkdef creating nodes from
a range), which keeps them.

Limits, so that no noderange can exhaust the daemon: its parts together may
name at most `MAX_NAMES` nodes (each part counts, ``all,all`` twice; a range
is counted before its names are made), and its regular expressions share the
request's matching budget (`patterns`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import product
from pathlib import Path
from stat import S_ISREG
from typing import NamedTuple, Protocol

from ..errors import XcatdError
from .patterns import Pattern, PatternError
from .regex_values import RegexValueError
from .selection import SelectionError, parse_selection
from .tables import SHORTNAMES, TableError, node_selection

MAX_NAMES = 1_000_000  # named by one noderange: more is a typo, and would exhaust memory
MAX_DEPTH = 50  # nested parentheses
MAX_FILE_BYTES = 16 << 20


class NoderangeError(XcatdError, ValueError):
    """A noderange that cannot be expanded; the message says why, on one line."""


class _TooMany(Exception):
    """The noderange names more than MAX_NAMES; `expand` says which noderange."""


class NodeSource(Protocol):
    """What expansion needs to know about the cluster."""

    def all_nodes(self) -> Sequence[str]:
        """Every node name."""
        ...

    def nodes_among(self, names: Collection[str]) -> Collection[str]:
        """Which of these names are nodes (without listing every node: a
        noderange of one node costs one look-up, not the cluster)."""
        ...

    def group_members(self, group: str) -> Sequence[str] | None:
        """The members of a static or dynamic group; None if there is no such group.
        SelectionError when a dynamic group's selections cannot be used."""
        ...

    def attribute(self, node: str, attr: str) -> str | None:
        """The node's effective value (after inheritance and regular expressions);
        RegexValueError when a regular-expression value fails for the node."""
        ...


def expand(
    noderange: str,
    source: NodeSource,
    *,
    cwd: str | None = None,
    verify: bool = True,
    read_files: bool = True,
    prefix: str = "node",
    suffix: str = "",
) -> list[str]:
    """The node names *noderange* stands for: unique and in natural order.

    *cwd* resolves relative ``^file`` paths; *read_files* False refuses them,
    for callers who must not make the daemon read files on their behalf (it
    echoes unknown words back).  With *verify*, names that are
    neither nodes nor groups raise NoderangeError with xCAT's message; without
    it they are returned, so that mkdef can create them.  What the source
    cannot work out (a dynamic group's bad selection, a regular-expression
    value failing for a node) is a NoderangeError too, with the source's message.
    A number that is neither a node nor a group names the node *prefix*
    number *suffix* (xCAT's ``10-20``: node10..node20; `numbering`).
    """
    text = noderange.strip()
    if not text:
        raise NoderangeError("Empty noderange: name at least one node or group")
    resolver = _Resolver(source, cwd if read_files else _NO_FILES, verify, (prefix, suffix))
    try:
        names = resolver.evaluate(_Parser(text).parse())
    except _TooMany:
        raise NoderangeError(
            f"Noderange '{text}' expands to more than {MAX_NAMES:,} names"
        ) from None
    except (SelectionError, RegexValueError) as error:
        raise NoderangeError(str(error)) from None
    if resolver.missing:
        raise NoderangeError(
            "Invalid nodes and/or groups in noderange: " + ",".join(resolver.missing)
        )
    return names.items if names.ordered else sorted(set(names.items), key=natural_key)


def numbering(env: Mapping[str, str] | None) -> dict[str, str]:
    """The prefix and suffix that make a number a node name (noderange.3):
    XCAT_NODE_PREFIX (default ``node``) and XCAT_NODE_SUFFIX (default none),
    from the environment the client sent with the request."""
    env = env or {}
    return {
        "prefix": env.get("XCAT_NODE_PREFIX", "node"),
        "suffix": env.get("XCAT_NODE_SUFFIX", ""),
    }


_NUMBER = re.compile(r"([0-9]+)")
_MOST_DIGITS = sys.maxunicode - ord("0")  # that natural_key counts
_NO_FILES = "\0no files"  # a cwd no path can have: ^file is refused


def natural_key(name: str) -> str:
    """Sort key that orders the numbers in names by value: node2 before node10.

    Each run of digits becomes its length, as one character, then its digits
    without leading zeros, so that plain string comparison (done in C, several
    times faster than comparing tuples of parts) compares numbers by value.
    The name itself follows, so that node02 and node2 keep a stable order.
    """
    return _NUMBER.sub(_number_key, name) + "\0" + name


def _number_key(match: re.Match[str]) -> str:
    digits = match[0].lstrip("0") or "0"
    # Numbers of more digits than a character can count (a million: no real
    # name's) all take the last character, and compare as text.
    return chr(ord("0") + min(len(digits), _MOST_DIGITS)) + digits


# -- parsing ---------------------------------------------------------------


@dataclass(frozen=True)
class _Atom:
    text: str


@dataclass(frozen=True)
class _Intersection:
    operands: tuple[_Expr, ...]


@dataclass(frozen=True)
class _Range:
    include: tuple[_Expr, ...]
    exclude: tuple[_Expr, ...]


_Expr = _Atom | _Intersection | _Range

_CLOSING = {"(": ")", "[": "]", "{": "}"}


class _Parser:
    """Recursive descent over the grammar in the module docstring.

    An atom runs to the next ``,``, ``@`` or ``)`` that is not inside
    brackets, braces or parentheses of its own, nor escaped by a backslash, so
    ``/d(1|2)``, ``node[1,3]`` and ``os=~a{1,2}`` stay whole.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.depth = 0

    def parse(self) -> _Expr:
        expr = self.range()
        if self.position < len(self.text):
            raise self.unexpected()
        return expr

    def error(self, problem: str) -> NoderangeError:
        return NoderangeError(f"Bad noderange '{self.text}': {problem}")

    def unexpected(self) -> NoderangeError:
        char = self.text[self.position : self.position + 1]
        where = f"position {self.position + 1}"
        if not char:
            return self.error("unbalanced parentheses, missing ')'")
        if char == ")":
            return self.error(f"unbalanced parentheses, ')' at {where} has no '('")
        return self.error(f"unexpected '{char}' at {where}")

    def peek(self) -> str:
        return self.text[self.position : self.position + 1]

    def range(self) -> _Range:
        include: list[_Expr] = []
        exclude: list[_Expr] = []
        while True:
            excluded = self.peek() == "-"
            self.position += excluded
            (exclude if excluded else include).append(self.intersection())
            if self.peek() != ",":
                return _Range(tuple(include), tuple(exclude))
            self.position += 1

    def intersection(self) -> _Expr:
        operands = [self.operand()]
        while self.peek() == "@":
            self.position += 1
            operands.append(self.operand())
        return operands[0] if len(operands) == 1 else _Intersection(tuple(operands))

    def operand(self) -> _Expr:
        if self.peek() != "(":
            return _Atom(self.atom())
        if self.depth == MAX_DEPTH:
            raise self.error(f"parentheses nested more than {MAX_DEPTH} deep")
        self.position += 1
        self.depth += 1
        inner = self.range()
        if self.peek() != ")":
            raise self.unexpected()
        self.position += 1
        self.depth -= 1
        return inner

    def atom(self) -> str:
        start = self.position
        opened: list[str] = []
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\":
                self.position += 2
                continue
            if char in _CLOSING:
                opened.append(char)
            elif char in ")]}":
                if char == ")" and not opened:
                    break
                if not opened or _CLOSING[opened.pop()] != char:
                    raise self.error(f"unbalanced '{char}' at position {self.position + 1}")
            elif char in ",@" and not opened:
                break
            self.position += 1
        if opened:
            raise self.error(f"unbalanced '{opened[-1]}', missing '{_CLOSING[opened[-1]]}'")
        atom = self.text[start : self.position]
        if not atom:
            raise self.error(f"empty element at position {start + 1}")
        if atom.startswith("-"):
            raise self.error(f"'-' excludes only at the start of an element, not in '{atom}'")
        return atom


# -- evaluation ------------------------------------------------------------


class _Names(NamedTuple):
    items: list[str]
    ordered: bool  # unique and already in natural order: no sort needed


class _Resolver:
    """Evaluates parsed noderanges against one source, for one `expand` call."""

    def __init__(
        self, source: NodeSource, cwd: str | None, verify: bool, numbered: tuple[str, str]
    ) -> None:
        self.source = source
        self.cwd = cwd
        self.verify = verify
        self.numbered = numbered  # (prefix, suffix) that make a number a node name
        self.missing: dict[str, None] = {}  # an ordered set: reported in the order met
        self._groups: dict[str, Sequence[str] | None] = {}
        self._file: Path | None = None  # the file being read, to refuse nesting
        self.room = MAX_NAMES  # how many more names the noderange's parts may give

    @cached_property
    def all_names(self) -> Sequence[str]:
        return self.source.all_nodes()

    def group(self, name: str) -> Sequence[str] | None:
        if name not in self._groups:
            self._groups[name] = self.source.group_members(name)
        return self._groups[name]

    def evaluate(self, expr: _Expr) -> _Names:
        match expr:
            case _Atom(text):
                return self.atom(text)
            case _Intersection(operands):
                return self.intersection(operands)
            case _Range():
                return self.range(expr)

    def range(self, expr: _Range) -> _Names:
        included = [self.evaluate(operand) for operand in expr.include]
        excluded = {name for operand in expr.exclude for name in self.evaluate(operand).items}
        if len(included) == 1:
            names = included[0]
        else:
            names = _Names([name for part in included for name in part.items], False)
        if excluded:
            names = _Names([name for name in names.items if name not in excluded], names.ordered)
        return names

    def intersection(self, operands: tuple[_Expr, ...]) -> _Names:
        names = self.evaluate(operands[0])
        for operand in operands[1:]:
            keep = set(self.evaluate(operand).items)
            names = _Names([name for name in names.items if name in keep], names.ordered)
        return names

    def atom(self, text: str) -> _Names:
        if text.startswith("^"):
            return self.file(text[1:])
        if text.startswith("/"):
            return self.counted(self.regex(text[1:]))
        if "=" in text or "!~" in text:  # no node or group name holds these
            return self.counted(self.select(text))
        return self.counted(self.name(text))

    def counted(self, names: _Names) -> _Names:
        """*names*, taken from the room left; _TooMany when there is none."""
        self.room -= len(names.items)
        if self.room < 0:
            raise _TooMany
        return names

    def name(self, text: str) -> _Names:
        if self.source.nodes_among([text]):
            return _Names([text], True)
        members = self.group(text)
        if members is not None:
            return _Names(list(members), False)
        generated = _generate(text, strict=self.verify, limit=self.room)
        return self.resolve(*generated) if generated is not None else self.resolve([text], True)

    def resolve(self, names: list[str], ordered: bool) -> _Names:
        """Names from a range or a plain name: nodes stay, groups expand, the rest are unknown."""
        nodes = self.source.nodes_among(names)
        if len(nodes) == len(names) or set(nodes).issuperset(names):
            return _Names(names, ordered)
        names = self.numbers_named(names, nodes)
        nodes = self.source.nodes_among(names)
        result: list[str] = []
        for name in names:
            members = None if name in nodes else self.group(name)
            if members is not None:
                result.extend(members)
                ordered = False
            elif name in nodes or not self.verify:
                result.append(name)
            else:
                self.missing[name] = None
        return _Names(result, ordered)

    def numbers_named(self, names: list[str], nodes: Collection[str]) -> list[str]:
        """The names, with each number that is not a node or a group made a
        node name with the request's prefix and suffix, as xCAT does."""
        prefix, suffix = self.numbered
        return [
            f"{prefix}{name}{suffix}"
            if name.isascii() and name.isdigit() and name not in nodes and self.group(name) is None
            else name
            for name in names
        ]

    def regex(self, pattern: str) -> _Names:
        try:
            compiled = Pattern(pattern)
            chosen = [name for name in self.all_names if compiled.fullmatch(name)]
        except PatternError as error:
            raise NoderangeError(f"Bad regular expression '/{pattern}': {error}") from None
        return _Names(chosen, False)

    def select(self, text: str) -> _Names:
        try:
            selection = parse_selection(text)
            if "." in selection.attribute or selection.attribute in SHORTNAMES:
                # xCAT's nodehm.cons==hmc: the attribute the column is, for each node
                column = node_selection(selection.text)
                assert column is not None
                value_of = self.source.attribute
                chosen = [n for n in self.all_names if column.holds(partial(value_of, n))]
            else:
                attribute, name = self.source.attribute, selection.attribute
                chosen = [n for n in self.all_names if selection.matches(attribute(n, name))]
        except (SelectionError, TableError) as error:
            raise NoderangeError(f"Bad attribute selection in noderange: {error}") from None
        return _Names(chosen, False)

    def file(self, name: str) -> _Names:
        if self.cwd is _NO_FILES:
            raise NoderangeError(f"'^{name}': only root may use noderange files")
        if self._file is not None:
            raise NoderangeError(
                f"Noderange file '{self._file}' names another file, '^{name}': files do not nest"
            )
        path = Path(name)
        if not path.is_absolute():
            if self.cwd is None:
                raise NoderangeError(
                    f"Noderange file '{name}' is a relative path and there is no "
                    "working directory to find it from"
                )
            path = Path(self.cwd) / path
        self._file = path
        try:
            parts = [self.evaluate(expr) for expr in _file_ranges(path)]
        finally:
            self._file = None
        return _Names([node for part in parts for node in part.items], False)


# -- files -----------------------------------------------------------------


def _file_ranges(path: Path) -> Iterator[_Expr]:
    for number, line in enumerate(_read(path).splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            yield _Parser(words[0].removesuffix(":")).parse()
        except NoderangeError as error:
            raise NoderangeError(f"{path}, line {number}: {error}") from None


def _read(path: Path) -> str:
    try:
        # Non-blocking, so that naming a FIFO cannot hang the daemon; then
        # only a regular file is read.
        with open(path, "rb", opener=_open_nonblocking) as stream:
            if not S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise NoderangeError(f"Cannot read noderange file '{path}': not a regular file")
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise NoderangeError(f"Cannot read noderange file '{path}': {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise NoderangeError(f"Noderange file '{path}' is larger than {MAX_FILE_BYTES} bytes")
    return data.decode(errors="replace")


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


# -- ranges ----------------------------------------------------------------

_DIGITS = "0123456789"
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_BRACKET_ITEM = re.compile(r"([0-9]+)(?:[-:]([0-9]+))?")
# "\0" marks where a bracket's number goes in the joined literal text.
_SLOT_TOUCHING_DIGIT = re.compile(r"[0-9]\0|\0[0-9]|\0\0")


def _generate(text: str, strict: bool, limit: int) -> tuple[list[str], bool] | None:
    """The names a range atom stands for and whether they are in natural order.

    None if *text* is not a range.  A hyphenated name whose sides differ in
    more than a number (rack1-node1) is malformed when *strict*, and otherwise
    a name to create.  More than *limit* names raise _TooMany before they
    are made.
    """
    if "[" in text:
        return _brackets(text, limit)
    plus = _plus(text)
    if plus is not None:
        prefix, first, more = plus
        last = _integer(first, text) + _integer(more, text)
        return [prefix + number for number in _numbers(first, last, text, limit)], True
    return _span(text, strict, limit)


def _plus(text: str) -> tuple[str, str, str] | None:
    """``node10+3`` as its prefix, first number and count; None if it is not one.

    With string methods: a regular expression for it backtracks, in time
    growing with the square of the length of a long atom without a '+'.
    """
    head, plus, more = text.rpartition("+")
    prefix = head.rstrip(_DIGITS)
    if not plus or prefix == head or not more or more.strip(_DIGITS):
        return None
    return prefix, head[len(prefix) :], more


def _span(text: str, strict: bool, limit: int) -> tuple[list[str], bool] | None:
    ends = _ends(text)
    if ends is None:
        return None
    left, right = ends
    if left == right:
        return [left], True
    left_parts, right_parts = _NUMBER.split(left), _NUMBER.split(right)
    if len(left_parts) == 1 or len(right_parts) == 1:
        return None  # a side without a number: a hyphenated name such as login-a
    differ = []
    if len(left_parts) == len(right_parts):
        differ = [i for i, part in enumerate(left_parts) if part != right_parts[i]]
    # Odd indexes of the split are the numbers; exactly one of them may differ.
    if len(differ) != 1 or differ[0] % 2 == 0:
        if not strict:
            return None
        raise NoderangeError(
            f"Bad range '{text}': '{left}' and '{right}' must differ only in one number"
        )
    i = differ[0]
    prefix, suffix = "".join(left_parts[:i]), "".join(left_parts[i + 1 :])
    numbers = _numbers(left_parts[i], _integer(right_parts[i], text), text, limit)
    return [prefix + number + suffix for number in numbers], True


def _ends(text: str) -> tuple[str, str] | None:
    """The two ends of ``a:b``, or of ``a-b`` split at its middle '-' (node-1-node-9)."""
    if ":" in text:
        ends = text.split(":")
        return (ends[0], ends[1]) if len(ends) == 2 else None
    pieces = text.split("-")
    if len(pieces) % 2:
        return None  # no '-', or an even number of them: no middle one to split at
    half = len(pieces) // 2
    return "-".join(pieces[:half]), "-".join(pieces[half:])


def _brackets(text: str, limit: int) -> tuple[list[str], bool]:
    pieces = _BRACKET.split(text)
    literals, contents = pieces[0::2], pieces[1::2]
    if any("[" in literal or "]" in literal for literal in literals):
        raise NoderangeError(f"Bad range '{text}': brackets do not nest")
    choices: list[tuple[list[str], bool]] = []
    count = 1  # names in the product so far; each bracket may multiply it up to *limit*
    for content in contents:
        choices.append(_bracket_numbers(content, text, limit // count))
        count *= len(choices[-1][0])
    # The product comes out in natural order when every bracket counts up and
    # none touches a digit: node[1-2]0 or a[1-2][3-4] run numbers together.
    ordered = all(up for _, up in choices) and not _SLOT_TOUCHING_DIGIT.search("\0".join(literals))
    slots = [[literals[0]]]
    for (numbers, _), literal in zip(choices, literals[1:], strict=True):
        slots += [numbers, [literal]]
    return ["".join(parts) for parts in product(*slots)], ordered


def _bracket_numbers(content: str, text: str, limit: int) -> tuple[list[str], bool]:
    """The numbers of one bracket, ``01-10`` or ``1,5-7``, and whether they count up;
    _TooMany for more than *limit*."""
    numbers: list[str] = []
    up, previous = True, -1
    for item in content.split(","):
        match = _BRACKET_ITEM.fullmatch(item)
        if match is None:
            raise NoderangeError(
                f"Bad range '{text}': '{item}' in brackets is not a number or a range like 1-10"
            )
        first, last = match[1], _integer(match[2] or match[1], text)
        numbers += _numbers(first, last, text, limit - len(numbers))
        up = up and int(first) > previous
        previous = last
    return numbers, up


def _numbers(first: str, last: int, text: str, limit: int) -> list[str]:
    """*first*..*last* as text; a zero-padded *first* sets the width (01..10).
    _TooMany, before making them, for more than *limit*."""
    start = _integer(first, text)
    if last < start:
        raise NoderangeError(f"Bad range '{text}': it counts down, from {first} to {last}")
    if last - start >= limit:
        raise _TooMany
    width = len(first) if first.startswith("0") else 0
    return [str(number).zfill(width) for number in range(start, last + 1)]


def _integer(digits: str, text: str) -> int:
    # Python refuses int() past 4,300 digits, and is slow long before.
    if len(digits) > 18:
        raise NoderangeError(f"Bad range '{text}': a number has more than 18 digits")
    return int(digits)
