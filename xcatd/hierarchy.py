"""Requests for nodes that service nodes serve run on those service nodes
(DESIGN.md §9), as xCAT's hierarchy does.

On the management node a command splits its nodes by the first service
node in each node's `servicenode`; the nodes with none (or served by this
host itself) it handles here, and the user's request goes — exactly as the
user signed it, with the user's certificate — to each service node at
once, whose daemon checks it and runs it as that user for the nodes it
serves.  Their output comes back through here as it is produced (a
command that lists all its nodes in one order, nodestat, holds their nodes'
lines and shows them with its own); a service node that cannot be reached,
or breaks off, costs an error line for each of its nodes that got no
answer, never the other nodes' results.  A service node's part of a
request is the nodes whose first servicenode it is, whatever else it knows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from xcat_protocol.messages import Output

from .link import Link, LinkError
from .store import objects
from .store.nodes import Nodes
from .store.objtypes import NO

if TYPE_CHECKING:
    from .call import Call  # (whose context holds the console server, which uses this)


@dataclass
class Split:
    """A request's nodes: those handled here, and those of each service node."""

    local: list[str] = field(default_factory=list)
    remote: dict[str, list[str]] = field(default_factory=dict)  # service node -> its nodes
    addresses: dict[str, str | None] = field(default_factory=dict)  # service node -> its ip

    @property
    def served(self) -> list[str]:
        """The nodes of every service node."""
        return [node for nodes in self.remote.values() for node in nodes]

    def add_servers_of(self, other: Split) -> None:
        """Every service node of `other` runs the request too, for its own
        settings (makedhcp -n), with no nodes of this request if it has none."""
        for server in other.remote:
            self.remote.setdefault(server, [])
            self.addresses.setdefault(server, other.addresses[server])


def split(call: Call, nodes: Nodes, names: Iterable[str]) -> Split:
    """Who runs the request for each node.  On a service node, and for a
    request the management node did not relay (nothing to pass on), all
    of them are local."""
    result = Split()
    here = call.context.config.hostname
    dispatching = call.context.role == "master" and call.request is not None
    for node in names:
        known = node in nodes.groups_of  # (makedhcp -d names nodes already removed)
        server = server_of(nodes, node) if known else ""
        if not dispatching or not server or server in (here, node):
            result.local.append(node)
            continue
        result.remote.setdefault(server, []).append(node)
        if server not in result.addresses:
            defined = server in nodes.groups_of
            result.addresses[server] = nodes.attribute(server, "ip") if defined else None
    return result


def server_of(nodes: Nodes, node: str) -> str:
    """The service node that runs requests for `node`: the first of its
    `servicenode` (xCAT's pool lists the others for failover), else ''."""
    return (nodes.attribute(node, "servicenode") or "").split(",")[0].strip()


def bmcs_dispatched(site: dict[str, str]) -> bool:
    """Whether service nodes drive their nodes' BMCs (rpower, rcons, nodestat
    -p): site.ipmidispatch, xCAT's switch; no, the management node reaches
    every BMC itself."""
    return site.get("ipmidispatch", "y").lower() not in NO


async def alongside(
    call: Call,
    remote: Split,
    here: Callable[[], Awaitable[None]],
    said: dict[str, str] | None = None,
    held: dict[str, Output] | None = None,
) -> None:
    """`here()` for this daemon's own nodes, while the service nodes of
    `remote` run the request for theirs; into `said`, what each of their
    nodes' `<node>: <text>` lines said; into `held` instead of to the user,
    each of their nodes' own line (`node` set), for a command that shows
    all its nodes together, in its own order (nodestat)."""
    relay = _Relay(said, held)
    async with trio.open_nursery() as nursery:
        if remote.remote:
            nursery.start_soon(_run_remote, call, remote, relay)
        await here()


@dataclass(frozen=True)
class _Relay:
    """What the service nodes' output goes into beside the user (alongside)."""

    said: dict[str, str] | None
    held: dict[str, Output] | None


async def _run_remote(call: Call, remote: Split, relay: _Relay) -> None:
    """The request on every service node of `remote` at once, at the port
    every xcatd of the cluster serves on (site.xcatdport, else this one's)."""
    site = await call.context.store.run(objects.site)
    port = int(site.get("xcatdport") or call.context.config.port)
    if getattr(call.options, "verbose", False):  # the dispatching commands' -V
        for server, nodes in remote.remote.items():
            where = f"{server} ({remote.addresses.get(server) or 'no ip'})"
            named = ",".join(nodes) if nodes else "its own settings"
            await call.info(f"{call.body.cmd} for {named} runs on service node {where}")
    async with trio.open_nursery() as nursery:
        for server, nodes in remote.remote.items():
            address = remote.addresses.get(server)
            nursery.start_soon(_run_on, call, server, address, port, nodes, relay)


async def _run_on(
    call: Call, server: str, address: str | None, port: int, nodes: list[str], relay: _Relay
) -> None:
    answered: set[str] = set()
    served = set(nodes)

    async def forward(output: Output) -> None:
        lines = _lines_of(output, served)
        answered.update(lines)
        if relay.said is not None and output.kind == "info":
            relay.said.update(lines)
        if relay.held is not None and output.kind == "info" and output.node in served:
            relay.held[output.node] = output
            return
        if output.kind == "error":
            call.errors += 1
        # A terminal session's notices are its console's (rcons), not the service node's.
        if call.keystrokes is None:
            output = _attributed(output, served, server)
        await call.send(output._replace(id=call.id))

    if address is None:
        why = f"service node {server} has no ip: chdef {server} ip=<address>"
    else:
        try:
            async with Link.open(address, port, call.context.ca) as link:
                streamed = call.stdin if call.body.stdin_sha256 is not None else None
                answer = await link.relay(
                    call.relayable(), forward, call.keystrokes,
                    call.context.config.dispatch_idle, streamed,
                )  # fmt: skip
        except LinkError as exc:
            why = f"service node {server}: {exc}"
        else:
            if answer.rc != 0 and not call.errors:
                call.rc = answer.rc
            return
    if not nodes:
        await call.error(why)
    for node in nodes:
        if node not in answered:
            await call.error(why, node=node)


def _attributed(output: Output, nodes: set[str], server: str) -> Output:
    """The output with `<server>: ` before each line that is about the
    service node itself rather than one of its `nodes` (`The DHCP service
    runs …`): beside the management node's own lines, it says whose it is."""
    if output.node or not output.text:
        return output
    lines = [
        line if line.partition(": ")[0] in nodes else f"{server}: {line}"
        for line in output.text.splitlines()
    ]
    return output._replace(text="\n".join(lines))


def _lines_of(output: Output, nodes: set[str]) -> dict[str, str]:
    """What an output says of each of these nodes: its text, for its `node`;
    else its `<node>: <text>` lines."""
    if output.node:
        return {output.node: output.text or ""}
    lines = (line.partition(": ") for line in (output.text or "").splitlines())
    return {node: text for node, _, text in lines if node in nodes}
