"""rcons: a node's serial console, attached to the user's terminal.

    rcons <node> [-f | -s]

The daemon holds the console (xcatd/console); rcons attaches to it: the
recent history first, then the live output, as `data` records whose `data`
is the console's bytes; the console server's notices (`Enter `^Ec?' for
help`, read-only, lost, ...) as `info` lines.  The user's keystrokes come
as the request's `stdin` frames; empty data (the user typed `^Ec.`) ends the
request.  Any number of rcons watch a console; one of them, the first
unless -s, writes; -f takes write access from whoever has it.  A client
that goes away ends only its own attachment: the console, its log and the
other watchers go on.  The console of a node with a `servicenode` is held
by that service node, which reaches its BMC: the management node carries
rcons (and the keystrokes) there.
"""

from __future__ import annotations

import trio
from xcat_protocol.messages import Output

from ..call import Call
from ..console.server import CONSOLE_ATTRIBUTES, console_target
from ..console.session import ConsoleSession, Watcher
from ..hierarchy import alongside
from ..hw.target import HardwareError
from ..servicenode.serving import bmc_defaults
from ..store.nodes import Nodes
from .common import divide, read_nodes
from .registry import CommandParser, command


@command("rcons", "Attach to a node's serial console (leave with Ctrl-E c .).", interactive=True)
def rcons_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", metavar="node", help="the node")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-f", dest="force", action="store_true",
                      help="take write access from the rcons that has it")  # fmt: skip
    mode.add_argument("-s", dest="spy", action="store_true", help="read-only (spy) mode")


@rcons_options.runs
async def rcons(call: Call) -> None:
    split = await divide(call)
    if split is None:
        return
    if len(split.local) + sum(map(len, split.remote.values())) > 1:
        await call.error("rcons attaches one node's console; wcons opens one for each node")
        return
    # A node of a service node: its BMC is on that service node's networks,
    # which holds the console; the keystrokes go there (hierarchy.py).
    await alongside(call, split, lambda: _attach_here(call, split.local))


async def _attach_here(call: Call, nodes: list[str]) -> None:
    found = await read_nodes(call, _console_attributes, nodes) if nodes else None
    if not found:
        return
    ((node, values),) = found.items()
    defaults = await bmc_defaults(call.context)
    try:
        session = await call.context.consoles.open(node, console_target(values, defaults))
    except HardwareError as exc:
        await call.error(str(exc), node=node)
        return
    options = call.options
    with session.attached(call.caller.name, force=options.force, spy=options.spy) as watcher:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_typing, call, session, watcher, nursery.cancel_scope)
            await _showing(call, node, watcher)
            nursery.cancel_scope.cancel()


def _console_attributes(nodes: Nodes, node: str) -> dict[str, str]:
    return {a: v for a in CONSOLE_ATTRIBUTES if (v := nodes.attribute(node, a))}


async def _showing(call: Call, node: str, watcher: Watcher) -> None:
    """The console's output and notices, until the watcher is closed."""
    async for item in watcher.receive:
        if isinstance(item, bytes):
            await call.send(Output(call.id, "data", node=node, data=item))
        else:
            await call.info(item)


async def _typing(
    call: Call, session: ConsoleSession, watcher: Watcher, done: trio.CancelScope
) -> None:
    """The user's keystrokes, until the user leaves (empty data)."""
    assert call.keystrokes is not None
    async for data in call.keystrokes:
        if not data:
            break
        await session.type(watcher, data)
    done.cancel()
