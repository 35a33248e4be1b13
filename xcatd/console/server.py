"""The daemon's consoles, by node: `ConsoleServer.open` gives the session
of a node's console, opening it at its first use and keeping it after.

A node's console is chosen by its `cons` attribute (xCAT's nodehm.cons);
`ipmi` is Serial over LAN with the BMC and credentials rpower uses
(hw/target.py).  A session whose BMC or credentials change is replaced at
the next rcons.  Every session runs in the server's nursery, a task of the
daemon's, so no request's end (or a client killed while attached) ends one.
"""

from __future__ import annotations

from pathlib import Path

import trio

from ..hw.target import Defaults, HardwareError, Target, target_for
from .log import ConsoleLog
from .session import ConsoleSession
from .sol import Pump

CONSOLE_METHODS = ("ipmi",)  # the values of `cons` xcatd has a console for
CONSOLE_ATTRIBUTES = ("cons", "bmc", "bmcport", "bmcusername", "bmcpassword")


def console_target(values: dict[str, str], defaults: Defaults) -> Target:
    """The BMC of a node's console, from its effective attributes and the
    passwd table's `defaults`, or HardwareError saying what to set."""
    method = values.get("cons")
    if not method:
        raise HardwareError("cons is not set: set it with chdef <node> cons=ipmi")
    if method not in CONSOLE_METHODS:
        raise HardwareError(
            f"cons={method}: xcatd has no {method} console (it has {', '.join(CONSOLE_METHODS)})"
        )
    return target_for("", {**values, "power": method}, defaults)


class ConsoleServer:
    def __init__(self, directory: Path, timeout: float) -> None:
        self.directory = directory  # <logdir>/consoles
        self.timeout = timeout  # seconds for a BMC to open a console
        self.sessions: dict[str, ConsoleSession] = {}
        self._nursery: trio.Nursery | None = None
        self._pump = Pump()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Hold the sessions until cancelled (the daemon stops)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._pump.stop()

    async def open(self, node: str, target: Target) -> ConsoleSession:
        """The node's console session, once its first connection is made;
        HardwareError when it cannot be (the session is then not kept)."""
        session = self.sessions.get(node)
        if session is not None and session.target != target:
            session.stop()  # its BMC or credentials changed: a new session
            session = None
        if session is None:
            if self._nursery is None:
                raise HardwareError("xcatd is stopping; try again when it is back")
            log_file = ConsoleLog(self.directory / f"{node}.log")
            session = ConsoleSession(node, target, log_file, self._pump, self.timeout)
            self.sessions[node] = session
            self._nursery.start_soon(session.run)
        await session.opened.wait()
        if session.failure is not None:
            if self.sessions.get(node) is session:
                del self.sessions[node]
            raise session.failure
        return session

    def detach_all(self) -> None:
        """End every rcons (the daemon stops); the sessions stay until cancelled."""
        for session in self.sessions.values():
            for watcher in list(session.watchers):
                watcher.put("xcatd is stopping")
                watcher.close()
