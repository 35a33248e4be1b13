"""The sendfile pump: a few low-priority threads that copy boot files to sockets.

A boot storm is a thousand downloads at once.  Handed to trio's worker
threads, each piece of a download is a thread at the daemon's own priority
(up to the limiter's count), and on a machine of two cores they then share
the CPU with the event loop: a status report or an administrator's request
waits behind the copying.  The pump is one thread per core instead, each
niced (PUMP_NICE, Linux's per-thread niceness), taking pieces from one
queue: the event loop keeps its priority, the copying uses whatever CPU is
left, and no request of the daemon ever waits for one of its threads.

A piece is os.sendfile into a non-blocking socket until the socket is full
or the piece is sent (sendfile_while_room), so a thread never waits for a
slow client; the connection's task waits for the socket to have room again
on the event loop.  A piece in a thread cannot be abandoned: a cancelled
task waits for its piece, at most one turn's worth, to finish.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import outcome
import trio

PUMP_NICE = 10  # as nice(1) would run it; the event loop stays at 0
PUMP_THREADS = os.cpu_count() or 1

_Job = tuple[Callable[[], int], Callable[[outcome.Outcome], None]]


class Pump:
    """Runs pieces (callables returning the bytes they sent) on the pump's threads."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    async def run(self, piece: Callable[[], int]) -> int:
        """piece() on a pump thread; what it returned, or what it raised."""
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome) -> None:  # on the pump thread
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._jobs.put((piece, deliver))
        # The piece runs to its end whatever happens: a cancel waits for it.
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def _work(self) -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PUMP_NICE)
        while (job := self._jobs.get()) is not None:
            piece, deliver = job
            deliver(outcome.capture(piece))

    def _start(self) -> None:
        for number in range(PUMP_THREADS):
            threading.Thread(target=self._work, name=f"sendfile-pump-{number}", daemon=True).start()

    def _stop(self) -> None:
        for _ in range(PUMP_THREADS):
            self._jobs.put(None)  # each thread ends at the first it takes


@asynccontextmanager
async def open_pump() -> AsyncIterator[Pump]:
    """A pump whose threads live as long as the block."""
    pump = Pump()
    pump._start()
    try:
        yield pump
    finally:
        pump._stop()


def sendfile_while_room(sock_fd: int, fd: int, offset: int, count: int) -> int:
    """Bytes of fd from offset that sendfile put into the non-blocking socket before it
    was full (at most count); 0 when it had no room.  Blocking: for a pump thread."""
    sent = 0
    while sent < count:
        try:
            chunk = os.sendfile(sock_fd, fd, offset + sent, count - sent)
        except BlockingIOError:
            break
        if chunk == 0:  # the file shrank under us: the promised length cannot be kept
            raise trio.BrokenResourceError(f"file ended at byte {offset + sent}")
        sent += chunk
    return sent
