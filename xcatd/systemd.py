"""The systemd notification protocol, without libsystemd.

A datagram of `KEY=value` lines to the socket named in NOTIFY_SOCKET (a path,
or an abstract name written with a leading '@').  Outside systemd the
variable is unset and every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket

import trio


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = _watchdog_interval(env)

    def notify(self, *lines: str) -> None:
        if not self.address:
            return
        # A datagram to a local socket does not block; a vanished manager
        # must not take the daemon down with it.
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
            contextlib.suppress(OSError),
        ):
            sock.sendto("\n".join(lines).encode(), self.address)

    async def keep_watchdog_fed(self) -> None:
        """Ping WATCHDOG=1 at half the interval systemd asked for, forever."""
        if self.watchdog_interval is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await trio.sleep(self.watchdog_interval / 2)


def _watchdog_interval(env) -> float | None:
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None
