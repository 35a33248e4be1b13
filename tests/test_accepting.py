"""Connections waiting in the kernel's backlog are all taken when the listener
wakes, not one per pass of a busy event loop (xcatd/accepting.py)."""

from __future__ import annotations

import contextlib
import socket
import struct

import trio

from xcatd.accepting import serve_listeners

WAITING = 50


async def test_every_waiting_connection_is_taken_in_one_pass_of_the_scheduler() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    address = listeners[0].socket.getsockname()
    # Connected before the server runs: the kernel completes them into its backlog.
    clients = [socket.create_connection(address) for _ in range(WAITING)]
    passes = 0
    handled_at: list[int] = []

    async def count_passes() -> None:  # one more at every pass of the scheduler
        nonlocal passes
        while True:
            passes += 1
            await trio.lowlevel.checkpoint()

    async def handler(stream: trio.SocketStream) -> None:
        handled_at.append(passes)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(count_passes)
            nursery.start_soon(serve_listeners, handler, listeners)
            with trio.fail_after(10):
                while len(handled_at) < WAITING:
                    await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()
    finally:
        for client in clients:
            client.close()
    # trio.serve_listeners takes one connection per pass: the last would start ~50 passes in.
    assert max(handled_at) - min(handled_at) <= 1


async def test_a_connection_reset_while_waiting_costs_only_itself() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    address = listeners[0].socket.getsockname()
    reset = socket.create_connection(address)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()  # RST before the server has taken it
    answered: list[bytes] = []

    async def handler(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # the reset one, if handed over
            await stream.send_all(b"hello\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_listeners, handler, listeners)
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            answered.append(await stream.receive_some(100))
        nursery.cancel_scope.cancel()
    assert answered == [b"hello\n"]
