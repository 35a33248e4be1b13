"""rcons: a node's serial console, attached to the user's terminal;
makeconservercf: which consoles the daemon holds.

    rcons <node> [-f | -s]
    makeconservercf [-d | -C] [-l] [noderange]

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

xCAT's makeconservercf writes conserver's configuration from the nodes'
definitions; here the daemon is the console server, so it holds the
consoles anew as the definitions now say (all of them, as at its start and
SIGHUP; or those of a noderange, the others as they are), `-d` ends them
(until the next makeconservercf, SIGHUP or start), `-C` ends those of
nodes no longer defined — on this host and on the service nodes that hold
their nodes' consoles, unless `-l`.
"""

from __future__ import annotations

import trio
from xcat_protocol.messages import Output

from ..call import Call
from ..console.server import CONSOLE_ATTRIBUTES, console_target
from ..console.session import ConsoleSession, Watcher
from ..hierarchy import Split, alongside, bmcs_dispatched, split
from ..hw.target import HardwareError
from ..servicenode import serving
from ..servicenode.serving import bmc_defaults
from ..store import objects
from ..store.nodes import Nodes
from ..store.objtypes import NODE
from .common import divide, read_nodes, verbose_option
from .registry import CommandParser, Usage, command


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


# xCAT's (conserver.pm $usage_string), with the options xcatd has.
MAKECONSERVERCF_USAGE = Usage(
    "   makeconservercf [-V|--verbose] [-d|--delete] noderange\n"
    "   makeconservercf [-V|--verbose] [-l|--local] [noderange]\n"
    "   makeconservercf [-V|--verbose] [-C|--cleanup]\n"
    "   makeconservercf [-h|--help|-v|--version]\n"
    "    -l|--local       The consoles are held anew on this host only.\n"
    "                     The default also goes to the service nodes\n"
    "                     that hold their nodes' consoles\n"
    "    -d|--delete      The consoles of the given noderange are let go\n"
    "    -C|--cleanup     To let go the consoles of nodes that do not exist in xCAT db\n"
    "    -h|--help        Display this usage statement.\n"
    "    -V|--verbose     Verbose mode.\n"
    "    -v|--version     Display the version number.",
    bare_runs=True,
)


@command(
    "makeconservercf",
    "Hold the nodes' consoles as their definitions say now (-d: let them go).",
    usage=MAKECONSERVERCF_USAGE,
)
def makeconservercf_options(parser: CommandParser) -> None:
    parser.add_argument("-d", "--delete", action="store_true", help="let these consoles go")
    parser.add_argument(
        "-C", "--cleanup", action="store_true", help="let go those of nodes no longer defined"
    )
    parser.add_argument("-l", "--local", action="store_true", help="this host only")
    verbose_option(parser)
    parser.add_argument("noderange", nargs="?", help="the nodes (default: all)")


@makeconservercf_options.runs
async def makeconservercf(call: Call) -> None:
    options = call.options
    if why := _refused(options):
        await call.error(why)
        return
    if options.noderange:
        divided = await divide(call)  # each console is held where its BMC is reached
    else:
        divided = await _every_server(call)
    if divided is None:
        return
    await alongside(call, divided, lambda: _conserve_here(call, divided.local))


def _refused(options) -> str | None:
    """xCAT's refusals of option combinations (conserver.pm preprocess_request)."""
    if options.local and options.noderange:
        return "Invalid option -l or --local when there are nodes specified."
    if options.cleanup and options.local:
        return "Can not specify -l|--local or -c|--conserver together with -C|--cleanup."
    if options.cleanup and options.noderange:
        return "Can not specify noderange together with -C|--cleanup."
    return None


async def _every_server(call: Call) -> Split | None:
    """No noderange: this host's consoles and, unless -l, those of every
    service node that holds some (each its own, all of them); on a service
    node, the management node's definitions taken first."""
    try:
        await serving.definitions(call)
    except serving.ServingError as exc:
        await call.error(str(exc))
        return None

    def work(db) -> Split:
        nodes = call.nodes(db)
        if call.options.local or not bmcs_dispatched(objects.site(db)):
            return Split()
        everywhere = split(call, nodes, nodes.all_nodes())
        return Split(remote=everywhere.remote, addresses=everywhere.addresses)

    return await call.context.store.run(work)


async def _conserve_here(call: Call, nodes: list[str]) -> None:
    """This host's part: hold, or let go, the consoles."""
    options, consoles = call.options, call.context.consoles
    if options.cleanup:
        held = list(consoles.sessions)
        defined = await call.context.store.run(lambda db: objects.existing(db, NODE, held))
        consoles.release([node for node in held if node not in defined], "no longer defined")
    elif options.delete:
        consoles.release(nodes if options.noderange else list(consoles.sessions), "let go")
    else:
        problems = await call.context.hold_consoles(nodes if options.noderange else None)
        for node, why in problems.items():
            await call.error(why, node=node)
