"""xCAT's port-3002 line protocol, for node scripts written for xCAT.

A node connects, sends one line such as `installstatus booted`, and gets one
line back (`ok`, or `error: <why>`).  The node is the one defined with the
connection's source address (the line names no node, unlike the HTTP
endpoint's `node=`).
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..accepting import serve_listeners
from .room import Room
from .status import ReportRefused, StatusReports

log = logging.getLogger(__name__)

MAX_LINE = 1024
LINE_TIMEOUT = 10.0  # seconds a node gets to send its line
# More at once are closed unanswered, so that a flood cannot exhaust us and
# one address cannot take every node's room (a node sends one line at a time).
MAX_CONNECTIONS = 1024
MAX_CONNECTIONS_PER_ADDRESS = 8


async def serve_status_port(
    reports: StatusReports,
    host: str,
    port: int,
    room: Room | None = None,
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on `host:port` until cancelled; `task_status` gets the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])
    room = room or Room(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS)
    await serve_listeners(partial(_answer, reports, room), listeners)


async def _answer(reports: StatusReports, room: Room, stream: trio.SocketStream) -> None:
    """One node's line, answered; whatever the node does, the listener lives on."""
    async with stream:
        try:
            peer = stream.socket.getpeername()[0]
        except OSError:  # reset before it was accepted
            return
        if room.refusal(peer):
            return
        with room.held(peer):
            try:
                with trio.move_on_after(LINE_TIMEOUT):
                    line = await _read_line(stream)
                    reply = await _handle(reports, peer, line) if line is not None else None
                    if reply is not None:
                        await stream.send_all(reply.encode() + b"\n")
            except (OSError, trio.BrokenResourceError):
                pass  # the node went away
            except Exception:  # a bug or the store failing: log it, keep serving
                log.exception("status line from a node failed")


async def _read_line(stream: trio.SocketStream) -> bytes | None:
    """The node's line (the end of its input ends one too); None when it runs past MAX_LINE."""
    received = b""
    while b"\n" not in received and len(received) <= MAX_LINE:
        chunk = await stream.receive_some(MAX_LINE)
        if not chunk:
            break
        received += chunk
    line = received.split(b"\n", 1)[0]
    return None if len(line) > MAX_LINE else line


class BadLine(ReportRefused):
    """A line that is not `installstatus <state>`."""


def reported_state(line: bytes) -> str:
    """The state an `installstatus <state>` line reports; BadLine for any other line."""
    command, _, state = line.decode("utf-8", "replace").strip().partition(" ")
    if command != "installstatus" or not state.strip():
        raise BadLine("expected 'installstatus <state>'")
    return state.strip()


async def _handle(reports: StatusReports, peer: str, line: bytes) -> str:
    """The answer to one line: `ok`, or `error: <why>`."""
    try:
        await reports.report(peer, reported_state(line))
    except ReportRefused as exc:
        return f"error: {exc}"
    return "ok"
