"""psh: xCAT's parallel shell, a command run on many nodes at once.

    psh [-i interface] [-f fanout] [-l user] [-t timeout] <noderange> <command>

xdsh without its extras: each node's lines as they come, `<node>: <line>`;
a node whose ssh fails gets xCAT's `<node>: *** ssh exited with error code
N.` and the rc is the number of such nodes.  As xCAT's, it does not go
through service nodes: every node is reached from this host, at its ip
(else its name), or at `<node>-<interface>` with -i (a name that resolves to
the node's address on that interface).  The ssh, its key and certificate are
xdsh's (nodeshell.py), as root unless -l.
"""

from __future__ import annotations

from ..call import Call
from ..store.nodes import Nodes
from .common import read_nodes
from .nodeshell import (
    CommandLineParser,
    Fanout,
    Outcome,
    add_command_words,
    add_fanout_options,
    address,
    check_fanout_options,
    command_line,
    run_on_nodes,
    ssh_argv,
)
from .registry import CommandParser, command


@command(
    "psh",
    "Run a command on nodes in parallel, over SSH: xCAT's parallel shell.",
    parser_class=CommandLineParser,
)
def psh_options(parser: CommandParser) -> None:
    add_fanout_options(parser)
    parser.add_argument("-i", "--interface", help="reach <node>-<interface>")
    add_command_words(parser)


@psh_options.runs
async def psh(call: Call) -> None:
    options = call.options
    check_fanout_options(options)
    remote = command_line(call)
    interface = options.interface

    def reached(nodes: Nodes, node: str) -> str:
        return f"{node}-{interface}" if interface else address(nodes, node)

    addresses = await read_nodes(call, reached)
    if not addresses:
        return
    argvs = {node: ssh_argv(call, host, remote, []) for node, host in addresses.items()}
    failed: list[str] = []

    async def report(node: str, outcome: Outcome, timed_out: bool) -> None:
        if timed_out:
            await call.stderr("timeout exceeded", node=node)
            failed.append(node)
        elif outcome.rc:
            await call.stderr(f"*** ssh exited with error code {outcome.rc}.", node=node)
            failed.append(node)

    await run_on_nodes(call, Fanout(options.fanout, options.timeout, stream=True), argvs, report)
    if failed:
        call.rc = len(failed) % 256 or 1  # xCAT's: the number of nodes that failed
