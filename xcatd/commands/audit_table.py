"""The audit trail as xCAT's auditlog table, for tabdump and tabprune.

The daemon's audit table (audit.py) holds what xCAT's auditlog holds, under
its own names: recid is its id, audittime its time (shown in local time, as
xCAT's database writes it), userid its user, clientname its peer, status
Allowed/Denied/Refused.  xCAT's clienttype and comments have no counterpart
and read empty.  eventlog has no source here: it reads empty and prunes
nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterator

from ..store import tables as schema
from ..store.tables import Row

_COLUMNS = "id, time, user, peer, command, noderange, args, status"


def rows(db, latest: int | None = None, where: str = "", parameters: tuple = ()) -> Iterator[Row]:
    """The audit records as auditlog rows, oldest first; `latest`: only the
    records after the newest id less that many (tabdump -n)."""
    clauses = [where] if where else []
    if latest is not None:
        clauses.append("id > (select max(id) from audit) - ?")
        parameters = (*parameters, latest)
    query = f"select {_COLUMNS} from audit" + (f" where {' and '.join(clauses)}" if clauses else "")
    for record in db.execute(query + " order by id", parameters):
        yield Row(None, str(record[0]), _cells(*record))  # type: ignore[arg-type]


def _cells(recid, time, user, peer, command, noderange, args, status) -> dict[str, str | None]:
    return {
        "recid": str(recid),
        "audittime": _local(time),
        "userid": user,
        "clientname": peer,
        "clienttype": None,
        "command": command,
        "noderange": noderange or None,
        "args": " ".join(json.loads(args or "[]")) or None,
        "status": (status or "").capitalize() or None,
        "comments": None,
        "disable": None,
    }


def _local(iso: str) -> str:
    """An ISO 8601 UTC time as xCAT's audittime: YYYY-MM-DD HH:MM:SS, local."""
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def prune(db, options: argparse.Namespace) -> list[str]:
    """tabprune auditlog: the records chosen deleted; with -V, their CSV
    first; xCAT's note when there is nothing to prune."""
    low, high = db.execute("select min(id), max(id) from audit").fetchone()
    where = ""
    parameters: tuple[object, ...] = ()
    if options.all:
        where = "1"
    elif options.recid is not None:
        where, parameters = "id < ?", (_integer(options.recid),)
    elif options.days is not None:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=options.days)
        where, parameters = "time < ?", (cutoff.isoformat(timespec="milliseconds"),)
    elif low is None:
        return ["Nothing to prune from auditlog."]
    elif options.number is not None:
        where, parameters = "id < ?", (low + options.number,)
    else:
        where, parameters = "id < ?", (low + int((high - low + 1) * options.percent / 100),)
    table = schema.table("auditlog")
    shown = (
        list(schema.csv_lines(table, rows(db, None, where, parameters))) if options.verbose else []
    )
    with db.atomic():
        db.execute(f"delete from audit where {where}", parameters)
    return shown


def prune_events(options: argparse.Namespace) -> list[str]:
    """tabprune eventlog: there are no events here."""
    if options.number is not None or options.percent is not None:
        return ["Nothing to prune from eventlog."]
    return list(schema.csv_lines(schema.table("eventlog"), [])) if options.verbose else []


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise schema.TableError(f"-i takes a record id (a number), not '{text}'") from None
