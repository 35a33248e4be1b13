"""Waiting for something another process does: the tests' one deadline poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = 10,
    interval: float = 0.05,
) -> T:
    """Call `condition` until it returns something true, and return that.

    After `timeout` seconds without it, fail with "not within N s: WHAT";
    `what` says what was awaited, and may be a function, called then, to
    show the state it was in (a log's tail).  A condition that can tell the
    wait is hopeless (the process it watches has exited) raises, ending the
    wait at once.
    """
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what() if callable(what) else what}")
        time.sleep(interval)
    return result
