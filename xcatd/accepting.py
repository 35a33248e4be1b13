"""Serving TCP listeners, taking every waiting connection at once.

trio.serve_listeners accepts one connection per pass of the scheduler (each
accept is a checkpoint).  In a boot storm a pass is long, a thousand
transfers' tasks, so connections the kernel had already completed waited in
its backlog a pass each before anyone read them: a node's status report,
connected in milliseconds, was answered 13 s later at N = 1,000
(bench.bootstorm), and an administrator's command waited likewise.  Here a
listener that wakes takes whatever is waiting, up to ACCEPT_BATCH, before
it yields.  Each connection is a task of the handlers' nursery, closed when
its handler returns, as with trio.serve_listeners.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import trio

from .throttle import ThrottledWarning

log = logging.getLogger(__name__)
# Out of descriptors, a listener tries again every CAPACITY_PAUSE: one line now and then says so.
_out_of_capacity = ThrottledWarning(log)

Handler = Callable[[trio.SocketStream], Awaitable[object]]

ACCEPT_BATCH = 256  # connections taken per wake-up: others' turns come between batches
CAPACITY_PAUSE = 0.1  # seconds to wait when the process or machine is out of descriptors
# The machine cannot take another connection now: wait, then accept again.
_OUT_OF_CAPACITY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
# This one connection went wrong before it was taken (reset, refused by a
# firewall, its network gone): the next one is unaffected.
_GONE_NAMES = ("ECONNABORTED", "EPROTO", "EPERM", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN",
               "ENONET", "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH")  # fmt: skip
_CONNECTION_GONE = {getattr(errno, name) for name in _GONE_NAMES if hasattr(errno, name)}


async def serve_listeners(
    handler: Handler,
    listeners: list[trio.SocketListener],
    *,
    handler_nursery: trio.Nursery | None = None,
) -> None:
    """Serve until cancelled; the listeners are closed at the end."""
    async with trio.open_nursery() as nursery:
        handlers = handler_nursery or nursery
        for listener in listeners:
            nursery.start_soon(_serve_one, listener, handlers, handler)


async def _serve_one(
    listener: trio.SocketListener, handlers: trio.Nursery, handler: Handler
) -> None:
    async with listener:
        with _plain_socket(listener) as waiting:
            while True:
                await trio.lowlevel.wait_readable(waiting)
                for accepted in _accept_waiting(waiting):
                    if accepted is None:
                        await trio.sleep(CAPACITY_PAUSE)
                        break
                    stream = trio.SocketStream(trio.socket.from_stdlib_socket(accepted))
                    handlers.start_soon(_run_handler, stream, handler)


def _accept_waiting(waiting: socket.socket) -> Iterator[socket.socket | None]:
    """The connections waiting, up to ACCEPT_BATCH; None when out of capacity."""
    for _ in range(ACCEPT_BATCH):
        try:
            accepted, _ = waiting.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in _CONNECTION_GONE:
                continue
            if exc.errno not in _OUT_OF_CAPACITY:
                raise
            _out_of_capacity.warning(
                "accepting connections failed: %s; trying again (raise LimitNOFILE?)", exc.strerror
            )
            yield None
            return
        yield accepted


@contextmanager
def _plain_socket(listener: trio.SocketListener) -> Iterator[socket.socket]:
    """The listening socket as a standard one (a duplicate descriptor, non-blocking
    like the original), whose accept() takes a connection without a checkpoint."""
    plain = socket.socket(fileno=os.dup(listener.socket.fileno()))
    plain.setblocking(False)
    try:
        yield plain
    finally:
        plain.close()


async def _run_handler(stream: trio.SocketStream, handler: Handler) -> None:
    try:
        await handler(stream)
    finally:
        await trio.aclose_forcefully(stream)
