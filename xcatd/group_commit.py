"""Group commit: what arrives while one write is under way is written together, next.

A thousand nodes booting at once report within seconds of each other, and
what keeps their reports writes one thing at a time (the store's one
connection, a file rewritten whole).  In a queue, each report would wait
for a write of its own behind all the others; instead, the items that
arrive while a write runs form the next batch, written once by the first of
them to get its turn, and each caller returns when its own item is written,
or raises what writing it raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class _Batch(Generic[T]):
    def __init__(self) -> None:
        self.items: list[T] = []  # in arrival order
        self.written = False
        self.error: Exception | None = None


class GroupCommit(Generic[T]):
    """Items written by `write(items)`, as many together as arrive while one write runs."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._open: _Batch[T] = _Batch()
        self._writing = trio.Lock()  # fair: turns come in arrival order

    async def add(self, item: T) -> None:
        """Return once `item` is written (raise what writing it raised)."""
        batch = self._open
        batch.items.append(item)
        async with self._writing:
            if not batch.written:
                self._open = _Batch()  # items from now on go to the next one
                try:
                    await self._write(batch.items)
                except Exception as exc:  # every item of the batch is answered with it
                    batch.error = exc
                finally:
                    batch.written = True
        if batch.error is not None:
            raise batch.error
