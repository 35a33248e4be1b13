"""updatenodestat: set the nodes' status, as xCAT's does.

    updatenodestat <noderange> <status>

The status is one of the node states booting nodes report (netbooting,
booted, failed, ...), and `statustime` is stamped.  Service nodes pass on
their nodes' reports with it, so that `nodestat` and `lsdef` on the
management node show them; a service node's certificate reaches only the
nodes it serves (Call.nodes).  Nothing is printed, as in xCAT.
"""

from __future__ import annotations

from ..boot.status import STATES, write_status
from ..call import Call
from .common import CommandRefused, Produced, expand_noderange, respond
from .registry import CommandParser, command


@command("updatenodestat", "Set the status of nodes (service nodes relay their nodes' reports).")
def updatenodestat_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument("status", help=f"one of {', '.join(sorted(STATES))}")


@updatenodestat_options.runs
async def updatenodestat(call: Call) -> None:
    state = call.options.status
    if state not in STATES:
        await call.error(f"unknown status {state!r}: use one of {', '.join(sorted(STATES))}")
        return

    def work(db) -> Produced:
        names = expand_noderange(call, call.options.noderange, call.nodes(db))
        if not names:
            raise CommandRefused("no nodes in the noderange")
        write_status(db, names, state)
        return Produced([])

    await respond(call, work)
