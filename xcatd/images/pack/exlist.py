"""exlist files: what packimage leaves out of a packed image, and puts back.

The format is xCAT's: one shell glob per line, matched against the whole
path of every entry as `find . -path` sees it (`./usr/share/man/man1/ls.1.gz`),
so `*` also matches `/` and `./usr/share/man*` takes a directory together with
everything below it.  A line starting with `+` puts matching paths back; a
leading `-` is ignored (xCAT accepts it); `#` starts a comment;
`#INCLUDE:<file>#` inserts another list (`listfiles` reads the lists and
expands includes).  Several lists (the osimage's comma-separated `exlist`)
combine into one.

An entry is left out when an exclusion matches its path and no `+` line
does.  Unlike a bare `find`, the directories above an entry that stays are
always kept, so an archive never holds a file without its directory.

Matching is pure and on bytes paths, so non-UTF-8 names work: the lists'
bytes that are not UTF-8 come through `listfiles` as surrogate escapes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import XcatdError
from ..listfiles import ListFiles


class ExlistError(XcatdError):
    """A list that cannot be read or makes no sense; the message names it."""


@dataclass
class Exlist:
    """The combined lines of one or more lists: globs to leave out and to put back."""

    exclude: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)

    def add_line(self, raw: str) -> None:
        line = re.sub(r"\s*#.*", "", raw).strip()
        if not line:
            return
        if line.startswith("+"):
            self.include.append(_normal(line[1:].strip()))
        else:
            self.exclude.append(_normal(line.removeprefix("-").strip()))


def _normal(pattern: str) -> str:
    # An absolute path means the same path in the image (find would never
    # match it, which is surely not what the writer wanted).
    return "." + pattern if pattern.startswith("/") else pattern


def read_lists(paths: Iterable[str | Path]) -> Exlist:
    """Several list files, combined in order (an osimage's comma-separated `exlist`)."""
    exlist = Exlist()
    for path in paths:
        for line in ListFiles(ExlistError, "exlist").lines(Path(path)):
            exlist.add_line(line.text)
    return exlist


# -- matching ---------------------------------------------------------------


def glob_regex(pattern: bytes) -> bytes:
    """A glob as find's -path reads it (fnmatch without flags): `*` and `?`
    match any byte including `/`, `[...]` is a class (`!` or `^` negates),
    a backslash makes the next character plain."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        i += 1
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i < n:
            out.append(re.escape(pattern[i : i + 1]))
            i += 1
        elif c == b"[":
            j = i
            if j < n and pattern[j : j + 1] in (b"!", b"^"):
                j += 1
            if j < n and pattern[j : j + 1] == b"]":
                j += 1
            while j < n and pattern[j : j + 1] != b"]":
                j += 1
            if j >= n:  # no closing bracket: a plain '['
                out.append(b"\\[")
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in (b"!", b"^")
            if negate:
                body = body[1:]
            body = body.replace(b"\\", b"\\\\")
            if body.startswith(b"^"):
                body = b"\\" + body
            out.append(b"[" + (b"^" if negate else b"") + body + b"]")
        else:
            out.append(re.escape(c))
    return b"".join(out)


def _literal_prefix(pattern: bytes) -> bytes:
    """The part of a glob before its first special character."""
    match = re.search(rb"[*?\[\\]", pattern)
    return pattern if match is None else pattern[: match.start()]


class Selector:
    """Decides, path by path, what the packed image keeps."""

    def __init__(self, exlist: Exlist | None = None) -> None:
        exlist = exlist or Exlist()
        excludes = [os.fsencode(p) for p in exlist.exclude]
        includes = [os.fsencode(p) for p in exlist.include]
        self._exclude = _compile(excludes)
        self._include = _compile(includes)
        # Exclusions ending in '*' also match everything below what they match.
        self._subtree = _compile([p for p in excludes if p.endswith(b"*")])
        self._include_prefixes = [_literal_prefix(p) for p in includes]

    def keeps(self, path: bytes) -> bool:
        """`path` as find prints it: b'.' or b'./usr/bin/ls'."""
        if self._exclude is None or not self._exclude.fullmatch(path):
            return True
        return self._include is not None and self._include.fullmatch(path) is not None

    def drops_below(self, path: bytes) -> bool:
        """True when nothing under the directory `path` can be kept, so the walk
        need not go in: an exclusion ending in `*` covers all of it and no `+`
        line could match anything there."""
        if self._subtree is None or not self._subtree.fullmatch(path):
            return False
        below = path + b"/"
        return not any(
            prefix.startswith(below) or below.startswith(prefix)
            for prefix in self._include_prefixes
        )


def _compile(patterns: list[bytes]) -> re.Pattern[bytes] | None:
    if not patterns:
        return None
    for pattern in patterns:  # name the bad one: the combined error would not
        try:
            re.compile(glob_regex(pattern))
        except re.error as exc:
            shown = pattern.decode(errors="replace")
            raise ExlistError(f"exlist pattern '{shown}' is not a valid glob: {exc}") from None
    return re.compile(b"|".join(b"(?:" + glob_regex(p) + b")" for p in patterns), re.DOTALL)
