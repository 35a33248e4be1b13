"""The one family of xcatd's errors: what it cannot do, in the lines a user sees.

Every module's errors derive from `XcatdError`, so the code at a boundary (a
command's answer in commands/common.py, a request's refusal in dispatch.py,
`xcatd` on the command line in cli.py) catches this one class and prints its
lines, whichever module raised it; anything else that reaches a boundary is
an internal error, logged with its traceback.  Exceptions used only to
carry control inside one module (an answer found early, a help text) are not
errors and stay outside the family.
"""

from __future__ import annotations

from collections.abc import Sequence


class XcatdError(Exception):
    """What went wrong, and what to do, in `lines` (mostly one): the error
    lines a user reads.  `warnings` go before them (things skipped on the
    way, which xCAT warns of whatever else fails).  Made from a single
    message, as most are, `str()` is that message."""

    def __init__(self, *lines: object, warnings: Sequence[str] = ()) -> None:
        super().__init__(*lines)
        self.warnings = warnings

    @property
    def lines(self) -> list[str]:
        return [str(line) for line in self.args]

    def __str__(self) -> str:
        return "\n".join(self.lines)
