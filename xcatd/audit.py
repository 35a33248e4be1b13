"""The audit trail: every request, allowed or not, one row in the audit table.

Requests hand their record to `AuditLog.record` and go on; one task owned by
the daemon writes records in batches from a worker thread, so a burst of
requests costs one transaction rather than one each.  On shutdown the task
drains the queue before it ends: nothing is dropped.  A batch the database
cannot take (the disk is full) goes to the daemon's log instead, and the
daemon goes on serving.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
from typing import NamedTuple

import trio

from .store import Store, StoreError

# attr=value arguments whose value must never reach the audit table.
_SECRET = re.compile(r"^([^=]*(?:password|passwd|secret|token|key)[^=]*=)(.*)$", re.IGNORECASE)
BATCH = 1000

log = logging.getLogger(__name__)


def mask_secrets(args: list[str]) -> list[str]:
    return [_SECRET.sub(r"\1******", arg) for arg in args]


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
                batch = [first._asdict()]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._receive.receive_nowait()._asdict())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    await self.store.run(lambda db, rows=batch: _insert(db, rows))
                except (StoreError, sqlite3.Error, OSError) as exc:
                    log.error("audit table not written (%s); the %d records:", exc, len(batch))
                    for row in batch:
                        log.error("audit: %s", json.dumps(row))


def _insert(db, rows: list[dict]) -> None:
    with db.atomic():
        db["audit"].insert_all(rows)
