"""What a service node takes of the passwd table with the definitions
(servicenode/replica.py), as xCAT's service nodes read that table: the
user names and passwords the BMCs of its nodes are driven with when a node
names none of its own.

    getpasswd

The rows it gets are those its nodes' drivers read (hw/target.py
`passwd_keys`: `key=ipmi` for IPMI nodes and consoles, `key=redfish` for
Redfish nodes), in force (not disabled), with their username and password
only, and none for a service node with no such node.  Only a service node's
own daemon is answered (`own_service_node`), not a request relayed through
it, nor an administrator (who reads the table with tabdump).  Like every
request it is audited; its line and its audit row name no secret: the
passwords are in its record's data only, and the text masks them.
"""

from __future__ import annotations

import sqlite_utils

from ..audit import MASK
from ..call import Call
from ..hw.target import Defaults, passwd_defaults, passwd_keys
from ..policy import GETPASSWD
from ..store.regex_values import RegexValueError
from .registry import CommandParser, command

COLUMNS = ("username", "password")
# The attributes that say which rows a node is driven with (passwd_keys).
METHOD_ATTRIBUTES = ("power", "mgt", "cons")


@command(
    GETPASSWD,
    "Print the passwd table's rows a service node's nodes are driven with (for itself only).",
    own_service_node=True,
)
def getpasswd_options(parser: CommandParser) -> None:
    pass


@getpasswd_options.runs
async def getpasswd(call: Call) -> None:
    rows = await call.context.store.run(lambda db: needed_rows(db, call))
    shown = [f"key={key} username={row['username']} password={MASK}" for key, row in rows.items()]
    await call.data("\n".join(shown) or "no passwd rows are needed", data={"passwd": rows})


def needed_rows(db: sqlite_utils.Database, call: Call) -> Defaults:
    """The rows in force that the nodes the caller serves are driven with."""
    nodes = call.nodes(db)  # those it serves, and itself (whose BMC the MN drives)
    keys: set[str] = set()
    for node in nodes.all_nodes():
        if node == call.caller.name:
            continue
        try:
            keys |= passwd_keys({a: nodes.attribute(node, a) for a in METHOD_ATTRIBUTES})
        except RegexValueError:
            continue  # the service node says so for the node, from its copy
    rows = passwd_defaults(db)
    return {
        key: {column: rows[key].get(column, "") for column in COLUMNS}
        for key in sorted(keys)
        if key in rows
    }
