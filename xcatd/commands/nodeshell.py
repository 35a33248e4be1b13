"""What xdsh, xdcp and psh share: their common options, the ssh options
that reach the nodes with no password and no prompt, and a program run
for each node at once, its lines coming back as `<node>: <line>`.

Each node's program (ssh, scp, rsync) runs on this host as root, with
root's key and the cluster's SSH certificate for it (xcatd/sshca.py: the
nodes trust the cluster's CA, so no password and no known_hosts prompt).
At most `-f` (64) nodes at once.  A node's lines are held until it is
done (as they come with `stream`), its standard error on the user's.
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from subprocess import PIPE

import trio

from ..call import Call
from ..store.nodes import Nodes
from .registry import CommandParser, UsageError
from .secrets import may_read_secrets

FANOUT = 64  # xCAT's default
CONNECT_TIMEOUT = 10  # seconds for ssh to reach a node


class CommandLineParser(CommandParser):
    """Options end where the command's words begin, as xCAT's (POSIX order):
    in `xdsh n1 -l root ls -l`, the first -l is xdsh's and the second the
    command's; in `xdcp n1 -R dir /tmp`, every option comes before the files."""

    def parse_intermixed_args(self, args=None, namespace=None) -> argparse.Namespace:  # type: ignore[override]
        options: list[str] = []
        words: list[str] = []
        in_image = False  # -i: no noderange, the first word begins the command
        pending = list(args or [])
        while pending:
            arg = pending.pop(0)
            if words and (len(words) > 1 or in_image):
                words.append(arg)  # the command has begun: all of it is the command's
            elif arg.startswith("-") and arg != "-":
                action = self._option_string_actions.get(arg.split("=", 1)[0])
                in_image = in_image or (action is not None and action.dest == "rootimg")
                if action is not None and action.nargs != 0 and "=" not in arg and pending:
                    # Its value joined to it: `-o "-p 2222"` is -o's, not an option.
                    value = pending.pop(0)
                    arg = f"{arg}={value}" if arg.startswith("--") else f"{arg}{value}"
                options.append(arg)
            else:
                words.append(arg)
        return super().parse_args([*options, "--", *words], namespace)


def add_fanout_options(parser: CommandParser) -> None:
    """-f, -l and -t, which xdsh, xdcp and psh all take."""
    parser.add_argument("-f", "--fanout", type=int, default=FANOUT, help="nodes at once (64)")
    parser.add_argument("-l", "--user", default="root", help="the user on the nodes (root)")
    parser.add_argument("-t", "--timeout", type=float, help="seconds a node may take")


def add_command_words(parser: CommandParser) -> None:
    """The noderange, then the command (xdsh, psh)."""
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument("words", nargs="*", metavar="command", help="the command")


def command_line(call: Call) -> str:
    """The command's words as ssh and xCAT join them, for the node's shell to
    read: `xdsh n1 "ps -ef | grep sshd"` is one pipeline."""
    if not call.options.words:
        cmd = call.body.cmd
        raise UsageError(f"give the command to run on the nodes: {cmd} <noderange> <command>")
    return " ".join(call.options.words)


def check_fanout_options(options: argparse.Namespace) -> None:
    if options.fanout < 1:
        raise UsageError("-f takes the number of nodes at once: 1 or more")
    if options.timeout is not None and not options.timeout > 0:
        raise UsageError("-t takes the seconds a node may take: more than 0")


def split_node_options(text: str) -> list[str]:
    """-o's options for the program that reaches the nodes, as words."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"-o {text!r}: {exc} (give the options as one word)") from None


async def refused_as_root(call: Call, given: str | None) -> bool:
    """Whether an option that runs as root on this host (`given`: -i, -o,
    ...; ssh options can run local commands) is refused: only for whom the
    policy lets change the tables.  The refusal is said."""
    if not given or may_read_secrets(call):
        return False
    where = call.context.config.hostname
    await call.error(f"{call.body.cmd} {given} runs as root on {where}: only administrators "
                     "(those the policy lets run chtab) may use it")  # fmt: skip
    return True


def address(nodes: Nodes, node: str) -> str:
    """Where ssh reaches the node: its ip, else its name."""
    return nodes.attribute(node, "ip") or node


def ssh_options(call: Call) -> list[str]:
    """The options ssh (or scp) reaches a node with: root's key and its
    certificate, the cluster's known_hosts, never a prompt; and root's
    ssh config when it has one (a node's Port, ProxyJump, ...), which is
    the layout's under `xcatd --root` (ssh itself reads /root/.ssh/config)."""
    keys = call.context.layout.user_ssh
    config = keys / "config"
    return [
        *(["-F", str(config)] if config.is_file() else []),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-i", str(keys / "id_ed25519"),
        "-o", f"UserKnownHostsFile={keys / 'known_hosts'}",
    ]  # fmt: skip


async def report(call: Call, node: str, outcome: Outcome, timed_out: bool) -> None:
    """xCAT's words (DSHCLI.pm) for a node whose program failed, and its rc
    with xdsh's -z."""
    if timed_out:
        await call.error(f"no answer within {call.options.timeout:g} s (-t): ended", node=node)
        return
    if getattr(call.options, "exit_status", False):
        await call.info(f"Remote_command_rc = {outcome.rc}", node=node)
    if outcome.rc:  # ssh's own failure (255), or the command's status, which ssh passes on
        await call.error(f" {node} remote shell had exit code {outcome.rc}.")


def ssh_argv(call: Call, host: str, remote: str, extra: list[str]) -> list[str]:
    """ssh running `remote` at `host` as -l's user, with `extra` options."""
    return ["ssh", *ssh_options(call), *extra, "-l", call.options.user, "--", host, remote]


# A node's lines are held until it is done, up to this many bytes: past
# them they go as they come (a command that prints without end must not
# fill the daemon's memory); and a line is cut at LINE_LIMIT.
HELD_LIMIT = 1 << 20
LINE_LIMIT = 1 << 16


@dataclass
class Outcome:
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (stderr?, line), held
    held: int = 0  # bytes
    streaming: bool = False  # its lines go to the user as they come
    rc: int | None = None


@dataclass(frozen=True)
class Fanout:
    """How the programs of a request run: how many at once, for how long,
    and whether their lines go as they come or are not shown."""

    fanout: int
    timeout: float | None
    stream: bool = False
    silent: bool = False


# What a command says of a node once its program is done (None: it ended at -t).
Report = Callable[[str, Outcome, bool], Awaitable[None]]


async def run_on_nodes(
    call: Call, how: Fanout, argvs: dict[str, list[str]], report: Report
) -> None:
    """Each node's argv at once (at most `how.fanout`), then `report`."""
    limiter = trio.CapacityLimiter(how.fanout)
    async with trio.open_nursery() as nursery:
        for node, argv in argvs.items():
            nursery.start_soon(_run_one, call, how, limiter, node, argv, report)


async def _run_one(
    call: Call,
    how: Fanout,
    limiter: trio.CapacityLimiter,
    node: str,
    argv: list[str],
    report: Report,
) -> None:
    async with limiter:
        outcome = Outcome(streaming=how.stream)
        with trio.move_on_after(how.timeout or math.inf) as waited:
            await run_process(call, how, argv, node, outcome)
    await _flush(call, how, node, outcome)
    await report(node, outcome, waited.cancelled_caught)


async def run_process(
    call: Call, how: Fanout, argv: list[str], node: str | None, outcome: Outcome
) -> None:
    """Run argv, its standard output and error read line by line."""
    run = partial(trio.run_process, argv, stdin=b"", stdout=PIPE, stderr=PIPE, check=False)
    async with trio.open_nursery() as nursery:
        process = await nursery.start(run)
        nursery.start_soon(_read, call, how, process.stdout, node, False, outcome)
        nursery.start_soon(_read, call, how, process.stderr, node, True, outcome)
    outcome.rc = process.returncode


async def _read(
    call: Call,
    how: Fanout,
    stream: trio.abc.ReceiveStream,
    node: str | None,
    is_error: bool,
    outcome: Outcome,
) -> None:
    pending = b""
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        while len(pending) > LINE_LIMIT:
            lines.append(pending[:LINE_LIMIT])
            pending = pending[LINE_LIMIT:]
        for line in lines:
            await _keep(call, how, node, line.decode(errors="replace"), is_error, outcome)
    if pending:
        await _keep(call, how, node, pending.decode(errors="replace"), is_error, outcome)


async def _keep(
    call: Call, how: Fanout, node: str | None, line: str, is_error: bool, outcome: Outcome
) -> None:
    """The line to the user now, or held until the node is done."""
    if outcome.streaming:
        await _line(call, how, node, line, is_error)
        return
    outcome.lines.append((is_error, line))
    outcome.held += len(line)
    if outcome.held > HELD_LIMIT:
        await _flush(call, how, node, outcome)
        outcome.streaming = True


async def _flush(call: Call, how: Fanout, node: str | None, outcome: Outcome) -> None:
    """The lines held, to the user."""
    for is_error, line in outcome.lines:
        await _line(call, how, node, line, is_error)
    outcome.lines.clear()
    outcome.held = 0


async def _line(call: Call, how: Fanout, node: str | None, line: str, is_error: bool) -> None:
    """A node's line, on the user's stdout or stderr (nothing when silent)."""
    if how.silent:
        return
    if is_error:
        await call.stderr(line, node=node)
    else:
        await call.data(line, node=node)
