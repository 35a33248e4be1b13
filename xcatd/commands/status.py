"""nodestat: whether each node answers, which of its services run, and what
it last reported about itself.

As xCAT's nodestat: every node is pinged and the ports of xCAT's services
(sshd, https, pbs, xend, rdp, msrpc) are tried on those that answer
(xcatd/probe.py); then one line per node, sorted by name:

    sn01: sshd         the services that accept connections, comma-separated
    sn02: netbooting   up, no service listening: its deployment state, here
                       what it last reported (xcatd/boot/status.py), else `ping`
    sn03: noping       no answer; with -p, `noping(off)`: its BMC's power state

A node's address is its `ip` attribute, else its own name resolved, as
xCAT's (hosts.ip, else the name).  -t adds the node's last report and
when it came, `sn01: sshd (booted 06-01-2026 10:00:00)` (only the time when
the line shows that report already).  -u saves the outcome in each node's
`status` as xCAT's does: `ping` for a node with services, the line's word
otherwise, with `statustime`; a node's next report replaces it.  -f is
accepted for xCAT's scripts: nodes are always pinged first, as with fping.

The nodes of a service node are probed by it, from the networks it shares
with them (xcatd/hierarchy.py; xCAT's nodestat_internal, sent to each
service node): the management node takes their lines and shows them with
its own, in the same order, and saves -u's outcome for all of them in its
own store — as xCAT's does, and at once: a service node's store is a copy
of the management node's definitions, replaced at its next refresh.  -p asks
the BMCs where rpower would (site.ipmidispatch).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from xcat_protocol.messages import Output

from ..boot.status import STATES, STATUSTIME_FORMAT
from ..call import Call
from ..hierarchy import Split, alongside
from ..hw import actions
from ..hw.target import HardwareError
from ..probe import SERVICES, Answer, probe, resolve
from ..store import objects
from ..store.nodes import Nodes
from ..store.objtypes import NODE
from .common import bmcs_driven_here, divide, read_nodes
from .power import drive, hardware
from .registry import CommandParser, Usage, command

SERVICE_NAMES = frozenset(name for name, _ in SERVICES)
UP = "ping"  # up, no service, nothing reported; also what -u saves for a node with services
DOWN = "noping"
NO_MONSETTING = (
    "-m reads xCAT's monsetting table, which xcatd does not have: nodestat tries "
    f"xCAT's default services ({', '.join(name for name, _ in SERVICES)})"
)


# xCAT's (nodestat.pm usage); no noderange prints it with rc 1.
USAGE = Usage(
    "Usage:\n"
    "  nodestat [noderange] [-m|--usemon] [-p|powerstat] [-f|--usefping] [-u|--updatedb]\n"
    "  nodestat [-h|--help|-v|--version]",
    bare_rc=1,
)


@command(
    "nodestat",
    "Show whether nodes answer, which of their services run, and their state.",
    usage=USAGE,
)
def nodestat_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument(
        "-t", "--time", action="store_true", help="also each node's last report and when"
    )
    parser.add_argument(
        "-u", "--updatedb", action="store_true", help="save the outcome in the nodes' status"
    )
    parser.add_argument(
        "-p", "--powerstat", action="store_true", help="the power state of nodes that do not answer"
    )
    parser.add_argument(
        "-f", "--usefping", action="store_true", help="(xCAT's; nodes are always pinged first)"
    )
    parser.add_argument("-m", "--usemon", action="store_true", help="(xCAT's; not supported)")


@dataclass(frozen=True)
class Facts:
    """What the store says of one node."""

    host: str  # its ip attribute, else its name: what is resolved
    reported: str  # its status: its last report (or what nodestat -u saved)
    reported_at: str  # its statustime


@nodestat_options.runs
async def nodestat(call: Call) -> None:
    """Probe the noderange's nodes, then print (and with -u save) one word
    each: those of service nodes probed there, from their networks."""
    if call.options.usemon:
        await call.error(NO_MONSETTING)
        return
    divided = await divide(call, hardware=False)
    if divided is None:
        return
    facts = await read_nodes(call, _facts, names=[*divided.local, *divided.served])
    if facts is None:
        return
    states: dict[str, str] = {}
    held: dict[str, Output] = {}  # the service nodes' lines, shown with ours

    async def here() -> None:
        states.update(await _probed(call, {n: facts[n] for n in divided.local if n in facts}))

    await alongside(call, divided, here, held=held)
    states.update((node, _state_in(output)) for node, output in held.items() if node in facts)
    if call.options.powerstat:
        await _add_power(call, divided, states)
    if call.options.updatedb and not call.relayed_by_master:  # (the MN saves: see the docstring)
        await _save(call, {node: _saved(state) for node, state in states.items()}, facts)
    for node in sorted(states):
        await _show(call, node, states[node], facts[node])


async def _probed(call: Call, facts: dict[str, Facts]) -> dict[str, str]:
    """These nodes pinged and their ports tried: xCAT's word for each."""
    addresses = await _addresses(call, facts)
    answers = await probe(set(addresses.values()))
    return {node: _state(answers[address], facts[node]) for node, address in addresses.items()}


def _state_in(output: Output) -> str:
    """A service node's word for one of its nodes: its line's record."""
    record = output.data if isinstance(output.data, dict) else {}
    return str(record.get("status") or output.text)


def host_of(nodes: Nodes, node: str) -> str:
    """What is resolved to reach the node: its ip attribute, else its name
    (xCAT's hosts.ip, else the name)."""
    return nodes.attribute(node, "ip") or node


def _facts(nodes: Nodes, node: str) -> Facts:
    return Facts(
        host_of(nodes, node),
        nodes.attribute(node, "status") or "",
        nodes.attribute(node, "statustime") or "",
    )


async def _addresses(call: Call, facts: dict[str, Facts]) -> dict[str, str]:
    """Each node's IP address; one error line for each node that has none."""
    resolved = await resolve(fact.host for fact in facts.values())
    addresses = {}
    for node, fact in facts.items():
        if fact.host in resolved:
            addresses[node] = resolved[fact.host]
        elif fact.host == node:
            await call.error(
                f"no ip attribute, and the name {node} does not resolve: "
                f"set its address with chdef {node} ip=<address>, or add it to /etc/hosts or DNS",
                node=node,
            )
        else:
            await call.error(
                f"its ip {fact.host!r} is not an address: set one with chdef {node} ip=<address>",
                node=node,
            )
    return addresses


def _state(answer: Answer, fact: Facts) -> str:
    """xCAT's word for the node: its services, else its deployment state
    (here: its last report) or `ping` when it answers, else `noping`."""
    if answer.services:
        return ",".join(answer.services)
    if answer.up:
        return fact.reported if fact.reported in STATES else UP
    return DOWN


def _saved(state: str) -> str:
    """What -u saves: xCAT keeps the services apart (appstatus) and `ping`
    in status."""
    return UP if set(state.split(",")) <= SERVICE_NAMES else state


async def _add_power(call: Call, divided: Split, states: dict[str, str]) -> None:
    """-p: `noping(<power>)` for the nodes that did not answer, their BMCs
    asked as rpower stat asks them, where it asks them."""
    asked = await bmcs_driven_here(call, divided)
    silent = [node for node, state in states.items() if state == DOWN and node in asked]
    hardware_of = await read_nodes(call, hardware, names=silent)

    async def report(node: str, outcome: str | HardwareError) -> None:
        if isinstance(outcome, HardwareError):
            await call.error(str(outcome), node=node)
        else:
            states[node] = f"{DOWN}({outcome})"

    await drive(call, hardware_of or {}, functools.partial(actions.power, action="stat"), report)


async def _save(call: Call, saved: dict[str, str], facts: dict[str, Facts]) -> None:
    """-u: each node's new status, stamped, where it changed (as xCAT's)."""
    stamp = time.strftime(STATUSTIME_FORMAT)
    edits = [
        objects.Edit(objects.Definition(NODE, node, {"status": status, "statustime": stamp}))
        for node, status in saved.items()
        if status != facts[node].reported
    ]
    try:
        if edits:
            await call.context.store.run(lambda db: objects.change(db, edits))
    except objects.DefinitionError as exc:  # a node removed meanwhile
        for problem in exc.problems:
            await call.error(problem)


async def _show(call: Call, node: str, state: str, fact: Facts) -> None:
    line = state
    if call.options.time and fact.reported:
        said = " ".join(part for part in (fact.reported, fact.reported_at) if part)
        if state == fact.reported:  # the line shows the report already
            said = fact.reported_at
        line = f"{state} ({said})" if said else state
    record = {
        "node": node,
        "status": state,
        "reported": fact.reported,
        "statustime": fact.reported_at,
    }
    await call.info(line, node=node, data=record)
