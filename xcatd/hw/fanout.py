"""Many nodes at once: each node's job in a worker thread, at most
`Limits.sessions` BMC sessions at a time over every request of the daemon
(xCAT's ipmimaxp), each attempt bounded by `Limits.timeout` seconds, a node
that does not answer tried again once, and each node's outcome reported as
soon as it is known, so a slow or dead BMC never delays the others.

An attempt that times out is abandoned: its thread goes on until pyghmi gives
up by itself (at most about a minute), still counted against the threads cap
but no longer against the sessions.  Jobs for one BMC run one at a time: its
session is shared (pyghmi keeps one per BMC and user) and each job logs out.
Whatever a job raises ends as that node's error line, never the request's.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import trio

from . import actions
from .actions import Operation
from .target import HardwareError, NoAnswer, Target

THREADS_PER_SESSION = 4  # room for abandoned attempts beside the running ones
# pyghmi's one I/O thread serves a few hundred sessions at once: 300 went
# well here, 512 stalled every one of them.
MAX_SESSIONS = 256

log = logging.getLogger(__name__)

Report = Callable[[str, str | HardwareError], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    sessions: int  # BMC sessions at once, over all requests
    timeout: float  # seconds for one attempt at one node
    tries: int = 2


@dataclass(frozen=True)
class Job:
    """One node's work: log in to its BMC, do `operation`, log out (blocking)."""

    target: Target
    operation: Operation

    def __call__(self) -> str:
        return actions.run(self.target, self.operation)


async def run_each(jobs: Mapping[str, Job], limits: Limits, report: Report) -> None:
    """Run every node's job; `report(node, text or HardwareError)` once for each."""
    sessions, threads = _limiters()
    sessions.total_tokens = min(max(1, limits.sessions), MAX_SESSIONS)
    threads.total_tokens = sessions.total_tokens * THREADS_PER_SESSION
    async with trio.open_nursery() as nursery:
        for node, job in jobs.items():
            nursery.start_soon(_node, node, job, limits, report)


async def _node(node: str, job: Job, limits: Limits, report: Report) -> None:
    outcome: str | HardwareError
    try:
        outcome = await _tries(job, limits)
    except HardwareError as exc:
        outcome = exc
    except Exception as exc:  # a bug, or an error pyghmi never said it raises
        log.exception("%s: hardware control failed", node)
        outcome = HardwareError(f"BMC {job.target}: unexpected {type(exc).__name__}: {exc}")
    await report(node, outcome)


async def _tries(job: Job, limits: Limits) -> str:
    failure = None
    for _ in range(limits.tries):
        try:
            return await _attempt(job, limits.timeout)
        except NoAnswer as exc:
            failure = exc
    raise NoAnswer(f"{failure} ({limits.tries} tries)")


async def _attempt(job: Job, timeout: float) -> str:
    sessions, threads = _limiters()
    async with _bmc_lock(job.target), sessions:
        with trio.move_on_after(timeout):
            return await trio.to_thread.run_sync(job, abandon_on_cancel=True, limiter=threads)
    raise NoAnswer(f"no answer from BMC {job.target}")


@functools.cache
def _limiters() -> tuple[trio.CapacityLimiter, trio.CapacityLimiter]:
    """The daemon's BMC sessions and worker threads (sized by `run_each`)."""
    return trio.CapacityLimiter(1), trio.CapacityLimiter(1)


_locks: weakref.WeakValueDictionary[tuple[str, int], trio.Lock] = weakref.WeakValueDictionary()


def _bmc_lock(target: Target) -> trio.Lock:
    key = (target.address, target.port)
    lock = _locks.get(key)
    if lock is None:
        _locks[key] = lock = trio.Lock()
    return lock
