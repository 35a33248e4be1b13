"""xdsh: a command run on many nodes at once, over SSH, as xCAT's.

    xdsh <noderange> [-f fanout] [-l user] [-t timeout] [-s] [-z] [-Q] [-o "ssh options"] command
    xdsh -i <image root> command

Each node's command runs through `ssh` from the host that serves the node
(the management node for its own nodes; a service node, which the request
is carried to, for its nodes), as root unless -l, with root's key and the
cluster's SSH certificate for it (nodeshell.py, shared with xdcp and
psh).  Whoever the policy lets run xdsh therefore runs commands as that
user on the nodes; -i and -o, which run as root on this host, only
administrators.
Each line a node prints comes back as `<node>: <line>` (its standard error
on the user's standard error), a node's lines together once it is done, or
as they come with -s; a node whose remote shell fails gets xCAT's
` <node> remote shell had exit code N.` error, and -z adds its command's
`Remote_command_rc = N`.  At most `-f` (64) nodes at once.  With -i the
command runs in an image's root directory (chroot) on this host, as the
seed's steps run in the image before packimage.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..call import Call
from ..hierarchy import alongside
from .common import divide, read_nodes
from .nodeshell import (
    CommandLineParser,
    Fanout,
    Outcome,
    add_command_words,
    add_fanout_options,
    address,
    check_fanout_options,
    command_line,
    refused_as_root,
    report,
    run_on_nodes,
    run_process,
    split_node_options,
    ssh_argv,
)
from .registry import CommandParser, command


@command(
    "xdsh",
    "Run a command on nodes in parallel, over SSH (or in an image: -i).",
    parser_class=CommandLineParser,
)
def xdsh_options(parser: CommandParser) -> None:
    add_fanout_options(parser)
    parser.add_argument("-s", "--stream", action="store_true", help="lines as they come")
    parser.add_argument("-z", "--exit-status", action="store_true", help="each command's rc")
    parser.add_argument("-Q", "--silent", action="store_true", help="no output, only the rc")
    parser.add_argument("-o", "--node-options", default="", help="options for ssh")
    parser.add_argument("-i", "--rootimg", type=Path, help="an image's root: chroot there")
    # With -i there is no noderange: the first word is the command's.
    add_command_words(parser)


@xdsh_options.runs
async def xdsh(call: Call) -> None:
    options = call.options
    check_fanout_options(options)
    node_options = split_node_options(options.node_options)
    given = "-i" if options.rootimg is not None else "-o" if options.node_options else None
    if await refused_as_root(call, given):
        return
    how = Fanout(options.fanout, options.timeout, options.stream, options.silent)
    if options.rootimg is not None:
        await _in_image(call, how, options.rootimg, [options.noderange, *options.words])
        return
    remote = command_line(call)
    divided = await divide(call, hardware=False)
    if divided is None:
        return

    async def here() -> None:
        addresses = await read_nodes(call, address, names=divided.local)
        if not addresses:
            return
        argvs = {node: ssh_argv(call, ip, remote, node_options) for node, ip in addresses.items()}
        await run_on_nodes(call, how, argvs, partial(report, call))

    await alongside(call, divided, here)


async def _in_image(call: Call, how: Fanout, root: Path, words: list[str]) -> None:
    """-i: the command in the image's root, through its own shell."""
    if not (root / "bin/sh").exists():
        await call.error(f"{root} is not an image's root (no bin/sh): give -i <rootimgdir>/rootimg")
        return
    outcome = Outcome(streaming=True)
    await run_process(
        call, how, ["chroot", str(root), "/bin/sh", "-c", " ".join(words)], None, outcome
    )
    if outcome.rc:
        await call.error(f"the command had exit code {outcome.rc} in {root}")
