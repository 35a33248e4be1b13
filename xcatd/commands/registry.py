"""How a command is declared: its name, its option parser and its body.

A command module writes

    @command("lsxcatd", "show information about the xCAT daemon")
    def lsxcatd_options(parser): parser.add_argument(...)

    @lsxcatd_options.runs
    async def lsxcatd(call: Call) -> None: ...

and nothing else needs to know it exists: the daemon looks commands up here,
the usage text comes from the parser, and the client's console script of the
same name reaches it.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from .. import __version__
from ..call import Call
from ..errors import XcatdError

Runner = Callable[[Call], Awaitable[None]]

REGISTRY: dict[str, Command] = {}


class UsageError(XcatdError):
    """Bad options; the message ends with the command's usage line."""


class HelpRequested(Exception):
    """`-h`: the message is the full help text, printed with rc 0 (or `rc`:
    xCAT prints some usage texts on standard output with rc 1)."""

    def __init__(self, text: str, rc: int = 0) -> None:
        super().__init__(text)
        self.rc = rc


@dataclass(frozen=True)
class Usage:
    """xCAT's usage text of a command, and how xCAT answers with it: for
    -h/--help (rc 0), -v/--version (`version`), a command line with no
    arguments (the usage with rc `bare_rc`, or xCAT's error `bare_error`),
    and after a bad option."""

    text: str
    version: bool = True
    bare_rc: int = 0
    bare_error: str | None = None
    bare_runs: bool = False  # no arguments is a command (makeconservercf: every node)

    def answer(self, args: list[str]) -> None:
        """Raise what xCAT prints before it looks at the options; None: go on."""
        if not args and self.bare_runs:
            return
        if not args and self.bare_error:
            raise UsageError(self.bare_error)
        if not args:
            raise HelpRequested(self.text, self.bare_rc)
        if any(arg in ("-h", "--help", "-?") for arg in args):
            raise HelpRequested(self.text)
        if self.version and any(arg in ("-v", "--version") for arg in args):
            raise HelpRequested(f"Version {__version__}")


class CommandParser(argparse.ArgumentParser):
    """argparse that reports instead of printing and exiting: the text goes
    back to the client that asked, not to the daemon's stderr."""

    xcat_usage: Usage | None = None  # set by command(): shown after an error instead

    def error(self, message: str) -> NoReturn:
        usage = self.xcat_usage.text if self.xcat_usage else self.format_usage().rstrip()
        raise UsageError(f"{message}\n{usage}")

    def print_help(self, file=None) -> None:
        raise HelpRequested(self.format_help().rstrip())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError((message or "").strip() or self.format_usage().rstrip())


@dataclass
class Command:
    name: str
    summary: str
    parser: CommandParser
    run: Runner | None = None
    reads_stdin: bool = False  # input is dropped unread for any other command
    interactive: bool = False  # reads the user's keystrokes as they come (Call.keystrokes)
    usage: Usage | None = None  # xCAT's, answering -h, -v and no arguments
    # Answered only to a service node's daemon, signed with its own certificate
    # (not relayed), whatever the policy lets the caller run: what a service
    # node takes for itself (its SSH certificates, its nodes' BMC credentials).
    own_service_node: bool = False

    def runs(self, function: Runner) -> Runner:
        """Decorator: `function` is the body of this command."""
        self.run = function
        return function

    def parse(self, args: list[str]) -> argparse.Namespace:
        if self.usage is not None:
            self.usage.answer(args)
        # Options may come after positionals, as in `nodels node01 -b groups`.
        return self.parser.parse_intermixed_args(args)


def command(
    name: str,
    summary: str,
    *,
    add_help: bool = True,
    reads_stdin: bool = False,
    interactive: bool = False,
    own_service_node: bool = False,
    parser_class: type[CommandParser] = CommandParser,
    usage: Usage | None = None,
) -> Callable[[Callable], Command]:
    """Declare a command; the decorated function adds its options to the parser.

    Every command takes --json (the client prints structured records); a
    command that gives -h a meaning of its own passes add_help=False; one
    that reads what the user pipes in says so with reads_stdin, one that
    reads keystrokes as they are typed (rcons) with interactive; one that
    only a service node's own daemon may run with own_service_node; one that
    answers bad options itself (as xCAT's def commands do) passes a
    CommandParser subclass as parser_class; one given xCAT's `usage` answers
    -h, -v and an empty command line with it, as xCAT does.
    """

    def declare(add_options: Callable[[CommandParser], None]) -> Command:
        if name in REGISTRY:
            raise RuntimeError(f"command {name} is declared twice")
        parser = parser_class(
            prog=name, description=summary, allow_abbrev=False, add_help=add_help and not usage
        )
        parser.xcat_usage = usage
        parser.add_argument("--json", action="store_true", help="print records as JSON lines")
        add_options(parser)
        REGISTRY[name] = declared = Command(
            name,
            summary,
            parser,
            reads_stdin=reads_stdin,
            interactive=interactive,
            own_service_node=own_service_node,
            usage=usage,
        )
        return declared

    return declare
