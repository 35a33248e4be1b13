"""rpower, rsetboot, rnetboot: the nodes' power and next boot device,
through their BMCs (xcatd/hw).

    rpower <noderange> on | off | stat | state | reset | boot | cycle | softoff
    rsetboot <noderange> [net | hd | cd | def | default | stat] [-p] [-u]
    rnetboot <noderange>

One line per node, xCAT's `<node>: on`, `<node>: Network`, `<node>: Success`,
printed as each node answers; a node that cannot be controlled gets its one
`<node>: Error: ...` line and the others go on.  With --json, one record per
node: {"node": ..., "power" | "boot" | "netboot": <the same text>}.
"""

from __future__ import annotations

import functools

from ..call import Call
from ..hierarchy import alongside
from ..hw import actions
from ..hw.actions import BOOT_DEVICES, POWER_ACTIONS, Operation
from ..hw.fanout import Job, Limits, Report, run_each
from ..hw.target import HW_ATTRIBUTES, HardwareError, target_for
from ..servicenode.serving import bmc_defaults
from ..store.nodes import Nodes
from .common import divide, read_nodes, verbose_option
from .registry import CommandParser, Usage, command

# xCAT's usage texts (perl-xCAT/xCAT/Usage.pm), with the actions xcatd has.
RPOWER_USAGE = Usage(
    "Usage:\n    Common:\n"
    f"       rpower <noderange> [{'|'.join(POWER_ACTIONS)}]\n"
    "       rpower [-h|--help|-v|--version]"
)
RSETBOOT_USAGE = Usage(
    f"Usage: rsetboot <noderange> [{'|'.join(BOOT_DEVICES)}] [-u] [-p]\n"
    "       rsetboot [-h|--help|-v|--version]"
)
RNETBOOT_USAGE = Usage("Usage: rnetboot <noderange>\n       rnetboot [-h|--help|-v|--version]")


@command("rpower", "Control the power of nodes through their BMCs.", usage=RPOWER_USAGE)
def rpower_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument("action", choices=POWER_ACTIONS, help=" | ".join(POWER_ACTIONS))
    verbose_option(parser)


@rpower_options.runs
async def rpower(call: Call) -> None:
    await _control(call, "power", functools.partial(actions.power, action=call.options.action))


@command("rsetboot", "Set the device nodes boot from next (once, unless -p).", usage=RSETBOOT_USAGE)
def rsetboot_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument(
        "device", nargs="?", default="stat", choices=BOOT_DEVICES, help=" | ".join(BOOT_DEVICES)
    )
    parser.add_argument("-p", dest="persistent", action="store_true", help="for every boot")
    parser.add_argument("-u", dest="uefi", action="store_true", help="boot in UEFI mode")
    verbose_option(parser)


@rsetboot_options.runs
async def rsetboot(call: Call) -> None:
    options = call.options
    operation = functools.partial(
        actions.set_boot, device=options.device, persistent=options.persistent, uefi=options.uefi
    )
    await _control(call, "boot", operation)


@command(
    "rnetboot",
    "Boot nodes from the network: next boot from the network, then on or reset.",
    usage=RNETBOOT_USAGE,
)
def rnetboot_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    verbose_option(parser)


@rnetboot_options.runs
async def rnetboot(call: Call) -> None:
    await _control(call, "netboot", actions.netboot)


async def _control(call: Call, key: str, operation: Operation) -> None:
    """`operation` on every node of the noderange, its outcome as `key` in
    --json: the nodes of service nodes on them (their BMCs are on their
    networks), the others here."""
    divided = await divide(call)
    if divided is None:
        return

    async def here() -> None:
        nodes = await read_nodes(call, hardware, names=divided.local)
        if nodes:
            await drive(call, nodes, operation, _reporter(call, key))

    await alongside(call, divided, here)


async def drive(
    call: Call, nodes: dict[str, dict[str, str]], operation: Operation, report: Report
) -> None:
    """`operation` on the BMC of each node (its hardware attributes given,
    credentials it lacks from the passwd table: on a service node, the
    management node's) through the daemon's fan-out; one error line for
    each node that cannot be controlled, and `report` for each of the
    others as it answers."""
    defaults = await bmc_defaults(call.context)
    jobs = {}
    for node, values in nodes.items():
        try:
            jobs[node] = Job(target_for(node, values, defaults), operation)
        except HardwareError as exc:
            await call.error(str(exc), node=node)
    config = call.context.config
    await run_each(jobs, Limits(config.bmc_fanout, config.bmc_timeout), report)


def hardware(nodes: Nodes, node: str) -> dict[str, str]:
    """The node's effective hardware attributes (those set)."""
    return {a: v for a in HW_ATTRIBUTES if (v := nodes.attribute(node, a))}


def _reporter(call: Call, key: str) -> Report:
    async def report(node: str, outcome: str | HardwareError) -> None:
        if isinstance(outcome, HardwareError):
            await call.error(str(outcome), node=node)
        elif call.options.json:
            await call.data(None, data={"node": node, key: outcome})
        else:
            await call.info(outcome, node=node)

    return report
