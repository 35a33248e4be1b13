"""The cluster database: SQLite in WAL mode, through sqlite-utils.

The daemon owns it.  From the event loop it is reached only through
`Store.run`, which hands the work to a worker thread, so the loop never waits
on the disk; writes are serialised in-process, so concurrent requests queue
instead of meeting "database is locked".  Each piece of work has one budget
of time for matching users' regular expressions (`patterns`), so no request's
patterns hold the thread for long.  Local administration commands
(`xcatd revoke`) open the same file; SQLite's busy timeout covers them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils
import trio

from ..errors import XcatdError
from .patterns import budget
from .schema import ensure_schema

T = TypeVar("T")

# SQLite's errors that the machine causes, not the request: they are told to
# the user plainly (what happened, what to do) rather than as internal errors.
_MACHINE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN",
                   "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_BUSY")  # fmt: skip


class StoreError(XcatdError):
    """The database could not do the work, for a reason of the machine's
    (a full disk); its transaction was rolled back, so nothing changed."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA foreign_keys=ON")
        self.db = sqlite_utils.Database(connection)
        self._limiter = trio.CapacityLimiter(1)
        ensure_schema(self.db)

    async def run(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `work(db)` in a worker thread, one at a time."""
        try:
            return await trio.to_thread.run_sync(_budgeted, work, self.db, limiter=self._limiter)
        except sqlite3.Error as exc:
            if (getattr(exc, "sqlite_errorname", None) or "").startswith(_MACHINE_ERRORS):
                raise StoreError(
                    f"the cluster database {self.path} could not do it: {exc}; nothing was "
                    "changed (free space or fix the disk, then run it again)"
                ) from exc
            raise

    def close(self) -> None:
        self.db.conn.close()


def _budgeted(work: Callable[[sqlite_utils.Database], T], db: sqlite_utils.Database) -> T:
    """`work(db)` with one matching budget for all its patterns; in the worker
    thread, since that is where the budget (a context variable) is read."""
    with budget():
        return work(db)
