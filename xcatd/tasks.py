"""Running one piece of work with a helper task beside it.

A nursery wraps whatever its body raises in an ExceptionGroup, so the
callers' plain `except SomeError` would catch nothing (DESIGN.md: that once
ended the whole daemon).  `with_helper` keeps the work's own exception as
it is: the helper is cancelled when the work ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def with_helper(work: Callable[[], Awaitable[T]], helper: Callable[[], Awaitable[None]]) -> T:
    """`await work()` while `helper()` runs beside it; what the work returns,
    or its exception, unwrapped.  The helper's own failures are the
    nursery's (a group), as they are bugs."""
    failure: Exception | None = None
    result: list[T] = []  # a list: T itself may be None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(helper)
        try:
            result.append(await work())
        except Exception as exc:  # raised below, not out of the nursery (as a group)
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result[0]
