"""xdsh: a command run on many nodes at once, over SSH, as xCAT's.

    xdsh <noderange> [-f fanout] [-l user] [-t timeout] [-s] [-z] [-Q] [-o "ssh options"] command
    xdsh -i <image root> command

Each node's command runs through `ssh` from the host that serves the node
(the management node for its own nodes; a service node, which the request
is carried to, for its nodes), as root unless -l, with root's key and the
cluster's SSH certificate for it (xcatd/sshca.py: the nodes trust the
cluster's CA, so no password and no known_hosts prompt).  Whoever the
policy lets run xdsh therefore runs commands as that user on the nodes;
-i and -o, which run as root on this host, only administrators.
Each line a node prints comes back as `<node>: <line>` (its standard error
on the user's standard error), a node's lines together once it is done, or
as they come with -s; a node whose remote shell fails gets xCAT's
` <node> remote shell had exit code N.` error, and -z adds its command's
`Remote_command_rc = N`.  At most `-f` (64) nodes at once.  With -i the
command runs in an image's root directory (chroot) on this host, as the
seed's steps run in the image before packimage.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from subprocess import PIPE

import trio

from ..call import Call
from ..hierarchy import alongside
from ..store.nodes import Nodes
from .common import divide, read_nodes
from .registry import CommandParser, UsageError, command
from .secrets import may_read_secrets

FANOUT = 64  # xCAT's default
CONNECT_TIMEOUT = 10  # seconds for ssh to reach a node


class CommandLineParser(CommandParser):
    """xdsh's options end where its command begins, as xCAT's (POSIX order):
    in `xdsh n1 -l root ls -l`, the first -l is xdsh's and the second the
    command's."""

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


@command(
    "xdsh",
    "Run a command on nodes in parallel, over SSH (or in an image: -i).",
    parser_class=CommandLineParser,
)
def xdsh_options(parser: CommandParser) -> None:
    parser.add_argument("-f", "--fanout", type=int, default=FANOUT, help="nodes at once (64)")
    parser.add_argument("-l", "--user", default="root", help="the user on the nodes (root)")
    parser.add_argument("-t", "--timeout", type=float, help="seconds a node may take")
    parser.add_argument("-s", "--stream", action="store_true", help="lines as they come")
    parser.add_argument("-z", "--exit-status", action="store_true", help="each command's rc")
    parser.add_argument("-Q", "--silent", action="store_true", help="no output, only the rc")
    parser.add_argument("-o", "--node-options", default="", help="options for ssh")
    parser.add_argument("-i", "--rootimg", type=Path, help="an image's root: chroot there")
    # With -i there is no noderange: the first word is the command's.
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument("words", nargs="*", metavar="command", help="the command")


@xdsh_options.runs
async def xdsh(call: Call) -> None:
    options = call.options
    if options.fanout < 1:
        raise UsageError("-f takes the number of nodes at once: 1 or more")
    if options.timeout is not None and not options.timeout > 0:
        raise UsageError("-t takes the seconds a node may take: more than 0")
    try:
        options.ssh_options = shlex.split(options.node_options)
    except ValueError as exc:
        why = f"-o {options.node_options!r}: {exc} (give ssh's options as one word)"
        raise UsageError(why) from None
    # Both run as root on this host (ssh options can run local commands):
    # only for whom the policy lets change the tables.
    given = "-i" if options.rootimg is not None else "-o" if options.node_options else None
    if given and not may_read_secrets(call):
        where = call.context.config.hostname
        await call.error(f"xdsh {given} runs as root on {where}: only administrators (those "
                         "the policy lets run chtab) may use it")  # fmt: skip
        return
    if options.rootimg is not None:
        await _in_image(call, options.rootimg, [options.noderange, *options.words])
        return
    if not options.words:
        raise UsageError("give the command to run on the nodes: xdsh <noderange> <command>")
    divided = await divide(call, hardware=False)
    if divided is None:
        return

    async def here() -> None:
        addresses = await read_nodes(call, _address, names=divided.local)
        if addresses:
            # The words as ssh and xCAT join them, for the node's shell to read:
            # `xdsh n1 "ps -ef | grep sshd"` is one pipeline.
            await _run_all(call, addresses, " ".join(options.words))

    await alongside(call, divided, here)


def _address(nodes: Nodes, node: str) -> str:
    """Where ssh reaches the node: its ip, else its name."""
    return nodes.attribute(node, "ip") or node


# A node's lines are held until it is done, up to this many bytes: past
# them they go as they come (a command that prints without end must not
# fill the daemon's memory); and a line is cut at LINE_LIMIT.
HELD_LIMIT = 1 << 20
LINE_LIMIT = 1 << 16


@dataclass
class _Outcome:
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (stderr?, line), held
    held: int = 0  # bytes
    streaming: bool = False  # its lines go to the user as they come
    rc: int | None = None


async def _run_all(call: Call, addresses: dict[str, str], remote: str) -> None:
    limiter = trio.CapacityLimiter(call.options.fanout)
    async with trio.open_nursery() as nursery:
        for node, address in addresses.items():
            nursery.start_soon(_run_one, call, limiter, node, address, remote)


async def _run_one(
    call: Call, limiter: trio.CapacityLimiter, node: str, address: str, remote: str
) -> None:
    options = call.options
    async with limiter:
        outcome = _Outcome(streaming=options.stream)
        with trio.move_on_after(options.timeout or math.inf) as waited:
            await _ssh(call, node, address, remote, outcome)
    await _flush(call, node, outcome)
    if waited.cancelled_caught:
        await call.error(f"no answer within {options.timeout:g} s (-t): ended", node=node)
        return
    if options.exit_status:
        await call.info(f"Remote_command_rc = {outcome.rc}", node=node)
    if outcome.rc:  # ssh's own failure (255), or the command's status, which ssh passes on
        await call.error(f" {node} remote shell had exit code {outcome.rc}.")


async def _ssh(call: Call, node: str, address: str, remote: str, outcome: _Outcome) -> None:
    """The command at the node through ssh; its lines into `outcome` (or to
    the user as they come, with -s) and its exit status."""
    options = call.options
    keys = call.context.layout.user_ssh
    argv = [
        "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-i", str(keys / "id_ed25519"),
        "-o", f"UserKnownHostsFile={keys / 'known_hosts'}",
        *options.ssh_options, "-l", options.user, "--", address, remote,
    ]  # fmt: skip
    await _run(call, argv, node, outcome)


async def _in_image(call: Call, root: Path, words: list[str]) -> None:
    """-i: the command in the image's root, through its own shell."""
    if not (root / "bin/sh").exists():
        await call.error(f"{root} is not an image's root (no bin/sh): give -i <rootimgdir>/rootimg")
        return
    outcome = _Outcome(streaming=True)
    await _run(call, ["chroot", str(root), "/bin/sh", "-c", " ".join(words)], None, outcome)
    if outcome.rc:
        await call.error(f"the command had exit code {outcome.rc} in {root}")


async def _run(call: Call, argv: list[str], node: str | None, outcome: _Outcome) -> None:
    """Run argv, its standard output and error read line by line."""
    run = partial(trio.run_process, argv, stdin=b"", stdout=PIPE, stderr=PIPE, check=False)
    async with trio.open_nursery() as nursery:
        process = await nursery.start(run)
        nursery.start_soon(_read, call, process.stdout, node, False, outcome)
        nursery.start_soon(_read, call, process.stderr, node, True, outcome)
    outcome.rc = process.returncode


async def _read(
    call: Call, stream: trio.abc.ReceiveStream, node: str | None, is_error: bool, outcome: _Outcome
) -> None:
    pending = b""
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        while len(pending) > LINE_LIMIT:
            lines.append(pending[:LINE_LIMIT])
            pending = pending[LINE_LIMIT:]
        for line in lines:
            await _keep(call, node, line.decode(errors="replace"), is_error, outcome)
    if pending:
        await _keep(call, node, pending.decode(errors="replace"), is_error, outcome)


async def _keep(call: Call, node: str | None, line: str, is_error: bool, outcome: _Outcome) -> None:
    """The line to the user now, or held until the node is done."""
    if outcome.streaming:
        await _line(call, node, line, is_error)
        return
    outcome.lines.append((is_error, line))
    outcome.held += len(line)
    if outcome.held > HELD_LIMIT:
        await _flush(call, node, outcome)
        outcome.streaming = True


async def _flush(call: Call, node: str | None, outcome: _Outcome) -> None:
    """The lines held, to the user."""
    for is_error, line in outcome.lines:
        await _line(call, node, line, is_error)
    outcome.lines.clear()
    outcome.held = 0


async def _line(call: Call, node: str | None, line: str, is_error: bool) -> None:
    """A node's line, on the user's stdout or stderr (nothing with -Q)."""
    if call.options.silent:
        return
    if is_error:
        await call.stderr(line, node=node)
    else:
        await call.data(line, node=node)
