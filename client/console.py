"""rcons in the user's terminal: the console of a node, typed into.

Until the daemon has attached us to the console the terminal is left as it
is, so a refusal prints as any command's does.  Then the terminal goes raw
(every key, Ctrl-C included, goes to the node) and comes back as it was on
every way out: the escape sequence, the daemon closing, an exception, or
SIGTERM / SIGHUP / SIGINT sent to this process.  Only SIGKILL leaves it raw
(`reset` or `stty sane` mends it).

The escape sequence is xCAT's (conserver's): Ctrl-E c, then `.` to leave or
`?` for help; Ctrl-E followed by anything else is sent as typed.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from xcat_protocol.messages import Done, Output, StdinData

from .connection import Connection
from .errors import ClientError

ESCAPE = b"\x05"  # Ctrl-E
HELP = "^Ec. leave   ^Ec? this help   (keystrokes go to the node; -f takes write access)"
LEAVE_WAIT = 2.0  # seconds for the daemon to end the request after we leave
READ_SIZE = 4096


class Escape:
    """Watches keystrokes for Ctrl-E c <command>, across reads."""

    def __init__(self) -> None:
        self.state = 0  # 0: typing, 1: after Ctrl-E, 2: after Ctrl-E c

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """What the keystrokes mean, in order: ("send", bytes), ("help", b"")
        or ("leave", b"")."""
        actions: list[tuple[str, bytes]] = []
        typed = bytearray()
        for byte in data:
            key = bytes((byte,))
            if self.state == 0:
                if key == ESCAPE:
                    self.state = 1
                else:
                    typed += key
            elif self.state == 1:
                self.state = 2 if key == b"c" else 0
                if key != b"c":
                    typed += ESCAPE + key
            else:
                self.state = 0
                if key in (b".", b"?"):
                    if typed:
                        actions.append(("send", bytes(typed)))
                        typed.clear()
                    actions.append(("leave" if key == b"." else "help", b""))
                    if key == b".":
                        return actions
        if typed:
            actions.append(("send", bytes(typed)))
        return actions


def attach(connection: Connection, args: list[str], **fields: Any) -> int:
    """Run rcons with `args`; its return code."""
    request_id = connection.request("rcons", args, **fields)
    while True:
        message = connection.receive()
        if isinstance(message, Done) and message.id == request_id:
            return message.rc  # refused before attaching
        if isinstance(message, Output):
            if message.kind == "error":
                label = f"{message.node}: " if message.node else ""
                print(f"{label}Error: {message.text}", file=sys.stderr)
                continue
            break  # attached: the first notice, or output
    with RawTerminal(sys.stdin.fileno()):
        _show(message)
        return _interact(connection, request_id)


def _interact(connection: Connection, request_id: int) -> int:
    keyboard = sys.stdin.fileno()
    escape = Escape()
    typing = True
    while True:
        watched = [connection.sock, keyboard] if typing else [connection.sock]
        ready = [connection.sock] if connection.buffered() else select.select(watched, [], [])[0]
        if connection.sock in ready:
            message = connection.receive()
            if isinstance(message, Done) and message.id == request_id:
                return message.rc
            if isinstance(message, Output):
                _show(message)
        if typing and keyboard in ready:
            data = _read(keyboard)
            typing = bool(data)  # piped input may end; the console is still shown
            for action, typed in escape.feed(data):
                if action == "send":
                    connection.send(StdinData(request_id, typed))
                elif action == "help":
                    _notice(HELP)
                else:
                    return _leave(connection, request_id)


def _leave(connection: Connection, request_id: int) -> int:
    """Tell the daemon we are done, and give it a moment to say so too."""
    _notice("disconnect")
    connection.send(StdinData(request_id, b""))
    connection.sock.settimeout(LEAVE_WAIT)
    try:
        while True:
            message = connection.receive()
            if isinstance(message, Done) and message.id == request_id:
                return 0
    except ClientError:  # the daemon is gone or slow: we have left anyway
        return 0


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, READ_SIZE)
    except OSError:  # the terminal went away (EIO on a hung-up pty)
        return b""


def _show(message: Output) -> None:
    if message.kind == "data" and isinstance(message.data, bytes):
        _write(1, message.data)
    elif message.kind in ("error", "warning"):
        _write(2, f"\r\n{message.kind.capitalize()}: {message.text}\r\n".encode())
    elif message.text is not None:
        _notice(message.text)


def _notice(text: str) -> None:
    """The console server's (or our) words, on a line of their own, in [ ]."""
    _write(1, f"\r\n[{text}]\r\n".encode())


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RawTerminal:
    """The terminal raw inside the block, as it was after it, whatever ends
    it; SIGTERM, SIGHUP and SIGINT end the block instead of the process."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None
        self.handlers: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self) -> None:
        for signum in self.SIGNALS:
            self.handlers[signum] = signal.signal(signum, _exit_on_signal)
        if os.isatty(self.fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
