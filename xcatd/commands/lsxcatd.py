"""lsxcatd: what this daemon is, as xCAT's lsxcatd prints it."""

from __future__ import annotations

import time

from ..call import Call
from .registry import CommandParser, Usage, command

# xCAT's (tabutils.pm lsxcatd_usage), its -v lsxcatd's own.
OPTIONS = ("-v|--version", "-h|--help", "-d|--database", "-t|--nodetype", "-a|--all")
USAGE = Usage("\n".join(f"       lsxcatd [{o}]" for o in OPTIONS), version=False, bare_rc=1)


@command("lsxcatd", "Show information about the xCAT daemon.", usage=USAGE)
def lsxcatd_options(parser: CommandParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-v", "--version", action="store_true", help="the version")
    group.add_argument("-t", "--nodetype", action="store_true", help="management or service node")
    group.add_argument("-d", "--database", action="store_true", help="the database in use")
    group.add_argument("-a", "--all", action="store_true", help="all of the above, and more")


@lsxcatd_options.runs
async def lsxcatd(call: Call) -> None:
    context = call.context
    options = call.options
    node_type = "Management Node" if context.role == "master" else "Service Node"
    uptime = int(time.time() - context.started)
    facts = {
        "version": context.version,
        "nodetype": "MN" if context.role == "master" else "SN",
        "hostname": context.config.hostname,
        "dbengine": "SQLite",
        "database": str(context.store.path),
        "uptime": uptime,
        "connections": context.connections,
    }
    lines = []
    if options.version or options.all:
        lines.append(f"Version {context.version}")
    if options.nodetype or options.all:
        lines.append(f"This is a {node_type}")
    if options.all:
        lines.append(f"hostname={facts['hostname']}")
    if options.database or options.all:
        lines += [f"cfgloc=SQLite:{facts['database']}", "dbengine=SQLite"]
    if options.all:
        lines += [f"uptime={_duration(uptime)}", f"connections={facts['connections']}"]
    for index, line in enumerate(lines):
        await call.data(line, data=facts if index == 0 else None)


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{seconds:02d}"
