"""Locks on image directories that hold across processes.

copycds, genimage and packimage each take an flock on a file beside what
they write, without waiting: a second one of the same target is refused at
once with the caller's message, whether it comes from this daemon or from
any other process.  The kernel drops the lock when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path, busy: Exception, *, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` for the block, or raise `busy` if another holds it."""
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
