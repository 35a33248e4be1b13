"""pping: whether each node answers a ping, `<node>: ping` or `<node>: noping`.

    pping [-i|--interface <interfaces>] [-f|--use_fping] <noderange>

As xCAT's, which front-ends fping or nmap on the management node: every
node is pinged at once from this daemon (xcatd/probe.py, nodestat's ICMP
echo; where this host may not send echo requests, a connection attempt to
ports 80, 443 and 22, as nmap --unprivileged), the nodes of service nodes
too — xCAT's pping never goes through them.  A node's address is its ip
attribute, else its name resolved; a name that does not resolve is
`noping`, as fping's `address not found`.  With -i, each interface in
turn: the host `<node>-<interface>` (xCAT's convention, a `-hf<n>` suffix
of the node's name dropped first), resolved.  -f is accepted: the echo
requests are fping's already.
"""

from __future__ import annotations

import re

from ..call import Call
from ..probe import answering, resolve
from .common import read_nodes, send_node_lines
from .registry import CommandParser, Usage, command
from .status import DOWN, UP, host_of

# xCAT's (xCAT-client/bin/pping); no noderange prints it with rc 1.
USAGE = Usage(
    "Usage: pping [-i|--interface interfaces][-f|--use_fping] noderange\n"
    "       pping -h|--help\n"
    "       pping -v|--version",
    bare_rc=1,
)
HF_SUFFIX = re.compile(r"-hf\d$")  # dropped before `-<interface>`, as xCAT's pping does


@command("pping", "Ping nodes in parallel: ping or noping for each.", usage=USAGE)
def pping_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument(
        "-i", "--interface", help="comma-separated interfaces: ping <node>-<interface> instead"
    )
    parser.add_argument(
        "-f", "--use_fping", action="store_true", help="(xCAT's; the pings are fping's already)"
    )


@pping_options.runs
async def pping(call: Call) -> None:
    hosts = await read_nodes(call, host_of)
    if hosts is None:
        return
    interfaces = call.options.interface.split(",") if call.options.interface else [""]
    for interface in interfaces:
        if interface:  # by name only: <node>-<interface> is a host name
            named = (f"{HF_SUFFIX.sub('', node)}-{interface}" for node in hosts)
            await _ping(call, {name: name for name in named})
        else:
            await _ping(call, hosts)


async def _ping(call: Call, hosts: dict[str, str]) -> None:
    """`<name>: ping|noping` for each name, pinged at its host's address."""
    addresses = await resolve(hosts.values())
    up = await answering(set(addresses.values()))
    said = {name: UP if addresses.get(host) in up else DOWN for name, host in hosts.items()}
    await send_node_lines(call, said, "status")
