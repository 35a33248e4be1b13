"""The cluster database: SQLite in WAL mode, through sqlite-utils.

The daemon owns it.  From the event loop it is reached only through
`Store.run`, which hands the work to a worker thread, so the loop never waits
on the disk; writes are serialised in-process, so concurrent requests queue
instead of meeting "database is locked".  Local administration commands
(`xcatd revoke`) open the same file; SQLite's busy timeout covers them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils
import trio

from .schema import ensure_schema

T = TypeVar("T")


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
        return await trio.to_thread.run_sync(work, self.db, limiter=self._limiter)

    def close(self) -> None:
        self.db.conn.close()
