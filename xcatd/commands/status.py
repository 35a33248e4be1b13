"""nodestat: what each node last reported about itself.

Booting nodes report `netbooting`, `booted`, `failed`, ... to the daemon
(xcatd/boot/status.py); nodestat shows those reports as xCAT prints node
states, `<node>: <state>`, and with -t when the state was reported.
"""

from __future__ import annotations

from ..call import Call
from ..store.nodes import Nodes
from .common import Produced, expand_noderange, respond
from .registry import CommandParser, command

NO_REPORT = "unknown"  # a node that has not reported since it was defined


@command("nodestat", "Show the status each node last reported.")
def nodestat_options(parser: CommandParser) -> None:
    parser.add_argument("-t", "--time", action="store_true", help="also when it was reported")
    parser.add_argument("noderange", help="the nodes")


@nodestat_options.runs
async def nodestat(call: Call) -> None:
    options = call.options

    def work(db) -> Produced:
        nodes = Nodes.load(db)
        lines, records = [], []
        for node in expand_noderange(call, options.noderange, nodes):
            status = nodes.attribute(node, "status") or NO_REPORT
            statustime = nodes.attribute(node, "statustime") or ""
            when = f" ({statustime})" if options.time and statustime else ""
            lines.append(f"{node}: {status}{when}")
            records.append({"node": node, "status": status, "statustime": statustime})
        return Produced(lines, records)

    await respond(call, work)
