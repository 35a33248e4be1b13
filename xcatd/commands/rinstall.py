"""rinstall: begin provisioning nodes, as xCAT's does — nodeset, then the
next boot from the network and rpower boot for the nodes nodeset set up.

    rinstall <noderange> [boot | osimage[=<imagename>]] [-c] [-u] [-V]

As xCAT's: `Provision node(s): <nodes>`, then quiet unless something fails:
each node that cannot be set up or powered gets its `<node>: Error: ...`
line and the others go on, and xCAT's `Failed to run '<command>' against
the following nodes: ...` sums up each step's failures; a node whose
nodeset failed is not powered.  -V shows each step (`Run command: ...`)
and every node's lines.  The boot device and the power go through one
session with each BMC (rsetboot net, -u in UEFI mode, then rpower boot: on,
or a reset of a machine that is on).  -c opens the node's console once it
is done (the client runs rcons, as xCAT's does): one node only.

Nodes of service nodes: the request is carried to each service node,
which sets up its nodes there (nodeset's own dispatch) and powers those
whose BMCs it drives (site.ipmidispatch, as rpower); with ipmidispatch=n
the management node powers them, those its service node set up.  Each
node is powered once, by one daemon.  xCAT's genesis actions (shell,
runcmd=, runimage=) are refused: xcatd has no genesis image.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from xcat_protocol.messages import Output, ServerMessage

from ..call import Call
from ..hierarchy import Split
from ..hw import actions
from ..hw.target import HardwareError
from ..store.noderange import natural_key
from .common import bmcs_driven_here, divide, expand_noderange, read_nodes, verbose_option
from .nodeset import Action, parse_action, set_boot
from .power import drive, hardware
from .registry import CommandParser, Usage, UsageError, command

# xCAT's (rinstall.pm), with the actions xcatd has; no noderange: rc 1.
USAGE = Usage(
    "Usage:\n"
    "   rinstall <noderange> [boot] [-c|--console] [-u|--uefimode] [-V|--verbose]\n"
    "   rinstall <noderange> [osimage[=<imagename>]] [--noupdateinitrd] [--ignorekernelchk] "
    "[-c|--console] [-u|--uefimode] [-V|--verbose]\n"
    "   rinstall [-h|--help|-v|--version]",
    bare_rc=1,
)
ONE_CONSOLE = (
    "rinstall -c/--console can only be run against one node! "
    "Please run wcons <noderange> after rinstall for multiple nodes."
)


@command("rinstall", "Begin OS provisioning of nodes: nodeset, then boot them.", usage=USAGE)
def rinstall_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument(
        "action", nargs="?", default="osimage", help="boot | osimage[=<imagename>] (the default)"
    )
    parser.add_argument("-c", "--console", action="store_true", help="then open its console")
    parser.add_argument("-u", "--uefimode", action="store_true", help="boot in UEFI mode")
    parser.add_argument(
        "--noupdateinitrd", action="store_true", help="keep the kernel and initrd copied before"
    )
    parser.add_argument(
        "--ignorekernelchk", action="store_true", help="accepted: no drivers are injected here"
    )
    verbose_option(parser)


@rinstall_options.runs
async def rinstall(call: Call) -> None:
    action = _action(call)
    if call.relayed_by_master:  # the management node's part: the nodes of this one
        chosen = functools.partial(expand_noderange, call, call.options.noderange)
        states = await set_boot(call, action, chosen)
        await _boot(call, await bmcs_driven_here(call, Split(local=list(states))), states)
        return
    divided = await divide(call, hardware=False)
    if divided is None:
        return
    names = divided.local
    if divided.remote:  # one list again, in the noderange's (natural) order
        names = sorted([*divided.local, *divided.served], key=natural_key)
    if not names:
        await call.error("No available nodes for provision.")
        return
    if call.options.console and len(names) > 1:
        await call.error(ONE_CONSOLE)
        return
    await call.info(f"Provision node(s): {' '.join(names)}")
    await _verbose(call, "nodeset", names, call.options.action, *_nodeset_flags(call))
    states = await set_boot(_steps_shown(call), action, lambda nodes: names)
    failed = [node for node in names if node not in states]
    if len(names) == 1 and failed:
        await call.error(f"Failed to run 'nodeset' against the node: {names[0]}")
    else:
        await _failed(call, "nodeset", failed)
    await _boot(call, await bmcs_driven_here(call, divided), states)


def _action(call: Call) -> Action:
    """What nodeset sets the nodes to: boot, or an osimage (the default)."""
    action = parse_action(call.options.action, "rinstall")
    if action.kind not in ("osimage", "boot"):
        raise UsageError(
            f"Invalid option {call.options.action}: rinstall takes boot or osimage[=<imagename>]"
        )
    return replace(action, keep_boot_files=call.options.noupdateinitrd)


def _nodeset_flags(call: Call) -> list[str]:
    options = call.options
    flags = [
        ("--noupdateinitrd", options.noupdateinitrd),
        ("--ignorekernelchk", options.ignorekernelchk),
    ]
    return [flag for flag, given in flags if given]


def _steps_shown(call: Call) -> Call:
    """The call nodeset runs under: its lines for the nodes it set up (and
    those of the service nodes running the request) reach the user only
    with -V, as xCAT's rinstall shows its steps' output; errors and
    warnings always.  A service node sends everything: the management
    node's rinstall reads what its nodes boot there, and shows it or not."""
    if call.options.verbose or call.relayed_by_master:
        return call

    async def send(message: ServerMessage) -> None:
        if isinstance(message, Output) and message.kind in ("info", "data"):
            return
        if isinstance(message, Output) and message.kind == "error":
            call.errors += 1  # counted on the copy that said it, which is dropped
        await call.send(message)

    return replace(call, send=send)


async def _boot(call: Call, driven: set[str], states: dict[str, str]) -> None:
    """rsetboot net and rpower boot, in one session with each BMC, for the
    nodes set up whose BMCs this daemon drives."""
    names = [node for node in states if node in driven]
    if not names:
        return
    rsetboot = ["net", "-u"] if call.options.uefimode else ["net"]
    await _verbose(call, "rsetboot", names, *rsetboot)
    await _verbose(call, "rpower", names, "boot")
    booted: set[str] = set()

    async def report(node: str, outcome: str | HardwareError) -> None:
        if isinstance(outcome, HardwareError):
            await call.error(str(outcome), node=node)
            return
        booted.add(node)
        if call.options.verbose:  # data, not info: not a line of what the node boots
            await call.data(outcome, node=node, data={"node": node, "power": outcome})

    nodes = await read_nodes(call, hardware, names=names)
    operation = functools.partial(actions.boot_from_network, uefi=call.options.uefimode)
    await drive(call, nodes or {}, operation, report)
    await _failed(call, "rpower", [node for node in names if node not in booted])


async def _verbose(call: Call, step: str, nodes: list[str], *args: str) -> None:
    """-V: xCAT's `Run command: <step> <nodes> <args>`."""
    if call.options.verbose:
        await call.info(f"Run command: {step} {' '.join(nodes)} {' '.join(args)}")


async def _failed(call: Call, step: str, nodes: list[str]) -> None:
    """xCAT's summary of a step's failures, after each node's own error."""
    if nodes:
        await call.error(f"Failed to run '{step}' against the following nodes: {' '.join(nodes)}")
