"""The audit trail: every request, allowed or not, one row in the audit table
and one line in the daemon's log (the journal, under systemd).

Requests hand their record to `AuditLog.record` and go on; one task owned by
the daemon writes records in batches from a worker thread, so a burst of
requests costs one transaction rather than one each.  On shutdown the task
drains the queue before it ends: nothing is dropped.  A batch the database
cannot take (the disk is full) goes to the daemon's log instead, and the
daemon goes on serving.

The log line is xCAT's commands.log and syslog line in one (who, from where,
the command line, how it ended, how long it took), made from the same record
as the row, so the two cannot disagree, and logged by the logger
`xcatd.commands` at INFO:

    Allowed chdef -t node n1 'bmcpassword=******' for root from 127.0.0.1:40312: rc 0, 0.012 s
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shlex
import sqlite3
from functools import partial
from typing import NamedTuple

import trio

from .store import Store, StoreError

# What is secret, defined once: an attribute or a table column whose name
# says it holds a password or key material (bmcpassword, ipmi.password,
# pdu.privkey, an fsp's passwd.HMC, prodkey.key); and a site-style row's
# value (`chtab key=NAME site.value=V`) where the key is so named.  The
# passwd table's own columns other than `password` are not secrets, nor is
# any table's `key` column, which names the row.
_SECRET_WORDS = re.compile(r"password|passwd|secret|authkey|privkey|productkey|tokenid", re.I)
_SECRET_COLUMNS = {"prodkey.key"}
_NOT_SECRET = {f"passwd.{c}" for c in ("key", "username", "cryptmethod", "authdomain",
                                       "comments", "disable")}  # fmt: skip
_OPERATORS = "+,^@!~ "  # nodech's and chtab's `col+=v`, `col,=v`, `col^=v`, ...
_ROW_KEY = re.compile(r"^key=(.*)$", re.DOTALL)
_ROW_VALUE = re.compile(r"^\w+\.value[+,^]?=", re.DOTALL)
MASK = "******"
BATCH = 1000
LOGGED_LINE = 4096  # characters of a command line in the log; the audit row keeps it all
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PAST = {"allowed": "Allowed", "denied": "Denied", "refused": "Refused"}

log = logging.getLogger(__name__)
commands_log = logging.getLogger("xcatd.commands")


def is_secret(name: str) -> bool:
    """Whether `name` (an attribute, `table.column`, or a site-style key)
    holds a secret; see _SECRET_WORDS."""
    name = name.rstrip(_OPERATORS).lower()
    if name in _SECRET_COLUMNS:
        return True
    return name not in _NOT_SECRET and bool(_SECRET_WORDS.search(name))


def mask_secrets(args: list[str]) -> list[str]:
    """The arguments with every secret value replaced by `******`: in
    `name=value`, and where the shell split it (`name= value`, `name =value`,
    `name = value`, which chdef refuses but the audit still records); in a
    table command naming a secret row (`key=NAME`), its `*.value=`."""
    masked = list(args)
    secret_row = any((found := _ROW_KEY.match(arg)) and is_secret(found[1]) for arg in args)
    for index, arg in enumerate(args):
        following = args[index + 1] if index + 1 < len(args) else None
        name, equals, value = arg.partition("=")
        if equals and (is_secret(name) or (secret_row and _ROW_VALUE.match(arg))):
            masked[index] = f"{name}={MASK}"
            if not value and following is not None:
                masked[index + 1] = MASK
        elif not equals and is_secret(arg) and following is not None and following[:1] == "=":
            masked[index + 1] = "=" + MASK if following != "=" else "="
            if following == "=" and index + 2 < len(args):
                masked[index + 2] = MASK
    return masked


class AuditRecord(NamedTuple):
    time: str
    user: str
    peer: str
    command: str
    args: str
    noderange: str | None
    status: str  # allowed | denied | refused
    rc: int
    duration_ms: float

    @classmethod
    def of(
        cls,
        *,
        started: dt.datetime,
        user: str,
        peer: str,
        command: str,
        args: list[str],
        noderange: str | None,
        status: str,
        rc: int,
        duration_ms: float,
    ) -> AuditRecord:
        return cls(
            time=started.isoformat(timespec="milliseconds"),
            user=user,
            peer=peer,
            command=command,
            args=json.dumps(mask_secrets(args)),
            noderange=noderange,
            status=status,
            rc=rc,
            duration_ms=round(duration_ms, 3),
        )


def command_line(command: str, args: list[str]) -> str:
    """The command as a shell would take it again, on one line: control
    characters are shown escaped, so an argument cannot start a log line of
    its own."""
    words = shlex.join([command, *args]) if command else "(no command)"
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), words)


def log_line(record: AuditRecord) -> str:
    """The record as the daemon logs it (see the module's docstring)."""
    line = command_line(record.command, json.loads(record.args))
    if len(line) > LOGGED_LINE:
        line = f"{line[:LOGGED_LINE]}... ({len(line) - LOGGED_LINE} more characters)"
    user = f" for {command_line(record.user, [])}" if record.user else ""
    seconds = record.duration_ms / 1000
    outcome = _PAST.get(record.status, record.status)
    return f"{outcome} {line}{user} from {record.peer}: rc {record.rc}, {seconds:.3f} s"


def log_commands(records: list[AuditRecord]) -> None:
    """One INFO line a command, in the daemon's log (run in a worker thread:
    the log may be a pipe to the journal, which can be slow)."""
    if commands_log.isEnabledFor(logging.INFO):
        for record in records:
            commands_log.info("%s", log_line(record))


class AuditLog:
    def __init__(self, store: Store, buffer: int = 10_000) -> None:
        self.store = store
        self._send, self._receive = trio.open_memory_channel[AuditRecord](buffer)

    async def record(self, record: AuditRecord) -> None:
        await self._send.send(record)

    def close(self) -> None:
        """No more records; `run` returns once the queue is written."""
        self._send.close()

    async def run(self) -> None:
        async with self._receive:
            async for first in self._receive:
                records = [first]
                while len(records) < BATCH:
                    try:
                        records.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await trio.to_thread.run_sync(log_commands, records)
                batch = [record._asdict() for record in records]
                try:
                    await self.store.run(partial(_insert, rows=batch))
                except (StoreError, sqlite3.Error, OSError) as exc:
                    log.error("audit table not written (%s); the %d records:", exc, len(batch))
                    for row in batch:
                        log.error("audit: %s", json.dumps(row))


def _insert(db, rows: list[dict]) -> None:
    with db.atomic():
        db["audit"].insert_all(rows)
