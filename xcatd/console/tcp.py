"""A serial console reached over TCP: a terminal server's port, xCAT's
`cons=cyclades` and `cons=mrv` (the node's `termserver`, its port from
`termport` as xCAT's makeconservercf has conserver compute it: 7000 +
termport for a Cyclades, 2000 + 100 * termport for an MRV), or any serial
port served that way (QEMU's `-serial telnet:HOST:PORT,server`, a
ser2net), spoken to in telnet as conserver does (telnet.py).

A `Link` like the SOL one: blocking, used from worker threads only, its
output handed to `on_data` on a thread of its own (one reader per link),
so that the session logs it off the event loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import suppress

from ..hw.target import HardwareError, NoAnswer
from .link import Link
from .telnet import Telnet, escaped

log = logging.getLogger(__name__)

# xCAT's terminal-server console methods: conserver's portbase and portinc.
TERMINAL_SERVERS = {"cyclades": (7000, 1), "mrv": (2000, 100)}
READ_SIZE = 4096


class TcpLink(Link):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._socket: socket.socket | None = None
        self._sending = threading.Lock()  # keystrokes and telnet answers, whole

    def open(self, timeout: float, pump=None) -> None:
        """Connect and start reading (see Link)."""
        target = self.target
        try:
            self._socket = socket.create_connection((target.address, target.port), timeout)
        except socket.gaierror as exc:
            raise HardwareError(f"cannot resolve {target.address}: {exc.strerror}") from None
        except TimeoutError:
            said = f"no answer from the console port {target} within {timeout:g} s"
            raise NoAnswer(said) from None
        except OSError as exc:
            raise HardwareError(f"console port {target}: {exc.strerror or exc}") from None
        self._socket.settimeout(None)
        self._open = True
        name = f"console {target}"
        threading.Thread(target=self._read, args=(self._socket,), name=name, daemon=True).start()

    def send(self, data: bytes) -> None:
        """Keystrokes for the node; a broken connection is the reader's to report."""
        self._send(escaped(data))

    def close(self) -> None:
        self._ended()
        if self._socket is not None:
            with suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()

    def _read(self, connection: socket.socket) -> None:
        telnet = Telnet()
        reason = "the console port closed the connection"
        while True:
            try:
                data = connection.recv(READ_SIZE)
            except OSError as exc:
                reason = f"console port {self.target}: {exc.strerror or exc}"
                break
            if not data:
                break
            output, answer = telnet.receive(data)
            if answer:
                self._send(answer)
            if output:
                self._on_data(output)
        if self._ended():
            self._on_lost(reason)

    def _send(self, data: bytes) -> None:
        if self._socket is None:
            return
        with self._sending, suppress(OSError):
            self._socket.sendall(data)
