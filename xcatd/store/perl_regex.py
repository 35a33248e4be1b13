r"""xCAT's regular expressions are Perl's: their spelling, in Python's.

Administrators write patterns for Perl (xCAT's values such as
``bmc='|\z|-imm|'``, ``lsdef -w os=~^rh``, noderanges ``/node[0-9]+``).  Most
of Perl's syntax means the same in Python; what differs is rewritten here,
as text, before Python compiles the pattern (nothing is ever evaluated):

- ``\z`` (the very end) is Python's ``\Z``; Perl's ``\Z`` (the end, or before
  a final newline) becomes ``(?=\n?\Z)``;
- ``\h``/``\H`` (horizontal space), ``\v``/``\V`` (vertical space), ``\R``
  (any line break): Python has no such classes, they are spelled out;
- ``\Q...\E`` quotes its text;
- named groups and back-references: ``(?<name>...)``, ``(?'name'...)``,
  ``\k<name>``, ``\k{name}``, ``\k'name'``, ``\g{N}``, ``\gN``;
- POSIX classes inside brackets: ``[[:digit:]]``, ``[[:alpha:]_]``, ...

Perl constructs that Python cannot match the same way (``\G``, ``\K``,
relative back-references, code blocks ``(?{...})``) are refused with a
message naming them, rather than matched differently.
"""

from __future__ import annotations

import re

from ..errors import XcatdError


class PerlSyntaxError(XcatdError, ValueError):
    """A Perl construct with no Python equivalent; the message names it."""


_VERTICAL = r"\n\x0b\f\r\x85\u2028\u2029"
# Outside brackets: an escape's translation.
_ESCAPES = {
    "z": r"\Z",
    "Z": r"(?=\n?\Z)",
    "h": r"[ \t]",
    "H": r"[^ \t]",
    "v": f"[{_VERTICAL}]",
    "V": f"[^{_VERTICAL}]",
    "R": rf"(?:\r\n|[{_VERTICAL}])",
}
# Inside brackets: what an escape adds to the class.
_CLASS_ESCAPES = {"h": r" \t", "v": _VERTICAL}
_REFUSED = {
    "G": r"'\G' (where the previous match ended)",
    "K": r"'\K' (keep what was matched so far)",
}
_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\s",
    "blank": r" \t",
    "word": r"\w",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")
_NAMED_GROUP = re.compile(r"\(\?(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')")
_NAMED_REFERENCE = re.compile(r"\\k(?:<([A-Za-z_]\w*)>|\{([A-Za-z_]\w*)\}|'([A-Za-z_]\w*)')")
_NUMBERED_REFERENCE = re.compile(r"\\g(?:\{(-?\d+)\}|(-?\d+))")


def translate(pattern: str) -> str:
    """`pattern`, written for Perl, as Python's `re` needs it to mean the same."""
    if "\\" not in pattern and "(?" not in pattern and "[:" not in pattern:
        return pattern  # nearly every pattern: nothing to rewrite
    out: list[str] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "[":
            position = _bracket(pattern, position, out)
        elif char == "(" and (named := _NAMED_GROUP.match(pattern, position)):
            out.append(f"(?P<{named[1] or named[2]}>")
            position = named.end()
        elif char == "(" and pattern.startswith(("(?{", "(??{"), position):
            raise PerlSyntaxError("Perl code in a pattern ('(?{...})') is not supported")
        elif char == "\\":
            position = _escape(pattern, position, out)
        else:
            out.append(char)
            position += 1
    return "".join(out)


def _escape(pattern: str, position: int, out: list[str]) -> int:
    """One escape outside brackets, translated; where the pattern goes on."""
    letter = pattern[position + 1 : position + 2]
    if letter in _ESCAPES:
        out.append(_ESCAPES[letter])
        return position + 2
    if letter in _REFUSED:
        raise PerlSyntaxError(f"Perl's {_REFUSED[letter]} is not supported")
    if letter == "Q":
        end = pattern.find("\\E", position + 2)
        literal = pattern[position + 2 :] if end < 0 else pattern[position + 2 : end]
        out.append(re.escape(literal))
        return len(pattern) if end < 0 else end + 2
    if letter == "E":  # a \E without \Q ends nothing
        return position + 2
    if reference := _NAMED_REFERENCE.match(pattern, position):
        out.append(f"(?P={reference[1] or reference[2] or reference[3]})")
        return reference.end()
    if reference := _NUMBERED_REFERENCE.match(pattern, position):
        number = reference[1] or reference[2]
        if number.startswith("-"):
            raise PerlSyntaxError(f"relative back-references ('{reference[0]}') are not supported")
        out.append(f"(?:\\{int(number)})")
        return reference.end()
    out.append(pattern[position : position + 2])
    return position + 2


def _bracket(pattern: str, position: int, out: list[str]) -> int:
    """A bracketed class from `position` ('['), translated; where the pattern
    goes on.  A ']' first in the class (after an optional '^') is literal,
    as in both languages."""
    out.append("[")
    position += 1
    if pattern.startswith("^", position):
        out.append("^")
        position += 1
    first = True
    while position < len(pattern):
        char = pattern[position]
        if char == "]" and not first:
            out.append("]")
            return position + 1
        first = False
        if char == "[" and (posix := _POSIX_CLASS.match(pattern, position)):
            out.append(_posix(posix))
            position = posix.end()
        elif char == "\\":
            letter = pattern[position + 1 : position + 2]
            out.append(_CLASS_ESCAPES.get(letter, pattern[position : position + 2]))
            position += 2
        else:
            out.append("\\[" if char == "[" else char)
            position += 1
    return position  # unterminated: Python's compiler says so


def _posix(found: re.Match[str]) -> str:
    negated, name = found.groups()
    if name not in _POSIX:
        raise PerlSyntaxError(f"unknown POSIX class '{found[0]}'")
    if negated:
        raise PerlSyntaxError(
            f"negated POSIX classes ('{found[0]}') are not supported: use [^[:{name}:]]"
        )
    return _POSIX[name]
