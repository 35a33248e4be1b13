"""List files (pkglists, exlists) read as xCAT reads them, includes expanded.

`#INCLUDE:<file>#` may stand anywhere on a line: as xCAT splices the included
text in, the text before it, the included lines, the text after it come out in
that order under the including line's number.  After another `#` (a comment)
it is not read.  A relative name is found beside the including list (a
reader may name another place for one that is not there).  Refused,
where xCAT drops a list or loops: a malformed include, a cycle, MAX_DEPTH.
Text is UTF-8, other bytes stay as surrogate escapes (an exlist's paths may be
in any encoding).  Errors are one line: `file:line: message`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

_INCLUDE = re.compile(r"(?P<before>[^#]*)#INCLUDE:(?P<rest>.*)")  # not in a comment
MAX_DEPTH = 32


class Line(NamedTuple):
    file: Path  # as named: the includer's directory joined with the include's name
    number: int
    text: str  # a whole line, or the part on one side of an include

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


class ListFiles:
    """Reads lists of a `kind` (pkglist, exlist) raising the caller's `error`;
    `files`: every file read, resolved.  `missing`, given the path of a
    relative include that does not exist and its name as written, may name
    another file to read in its place."""

    def __init__(
        self,
        error: type[Exception],
        kind: str,
        missing: Callable[[Path, str], Path | None] | None = None,
    ) -> None:
        self.error = error
        self.kind = kind
        self.missing = missing
        self.files: list[Path] = []

    def lines(self, path: Path, where: str = "", stack: tuple[Path, ...] = ()) -> Iterator[Line]:
        """The lines of the list at `path`; `where` and `stack` are the includer's."""
        resolved, text = self._read(path, f"{where}: " if where else "", stack)
        self.files.append(resolved)
        for number, raw in enumerate(text.splitlines(), 1):
            line = Line(path, number, raw)
            while found := _INCLUDE.match(line.text):
                name, closed, rest = found["rest"].partition("#")
                if not closed or not name.strip():
                    raise self.error(f"{line.where}: malformed include, write #INCLUDE:<file>#")
                yield line._replace(text=found["before"])
                included = self._included(path, name.strip())
                yield from self.lines(included, line.where, (*stack, resolved))
                line = line._replace(text=rest)
            yield line

    def _included(self, includer: Path, name: str) -> Path:
        # Joining an absolute name keeps it as it is.
        path = includer.parent / name
        if self.missing and not Path(name).is_absolute() and not path.exists():
            return self.missing(path, name) or path
        return path

    def _read(self, path: Path, prefix: str, stack: tuple[Path, ...]) -> tuple[Path, str]:
        """`prefix`: the including line's `file:line: `, or nothing at the top."""
        named = f"{self.kind} {path}"
        try:
            resolved = path.resolve(strict=True)
            text = resolved.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise self.error(f"{prefix}{named} does not exist") from None
        except IsADirectoryError:
            raise self.error(f"{prefix}{named} is a directory, not a list file") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            reason = getattr(exc, "strerror", None) or exc
            raise self.error(f"{prefix}cannot read {named}: {reason}") from None
        if resolved in stack:
            chain = " -> ".join(str(p) for p in (*stack, resolved))
            raise self.error(f"{prefix}#INCLUDE# cycle: {chain}")
        if len(stack) >= MAX_DEPTH:
            raise self.error(f"{prefix}#INCLUDE# nested more than {MAX_DEPTH} deep")
        return resolved, text
