"""The daemon's consoles, by node, as conserver holds xCAT's: every node's
console that this daemon reaches is opened when it starts (`hold_defined`)
and kept, retried while it cannot be had; SIGHUP reads the definitions
again (nodes added, changed or removed since), as a service node does when
it takes new ones (servicenode/serving.py).  `ConsoleServer.open` gives
rcons the session of a node's console, opening one defined since at its
first use.

A node's console is chosen by its `cons` attribute (xCAT's nodehm.cons;
unset, its `mgt` where `serialport` is set, as in xCAT): `ipmi` is Serial
over LAN with the BMC and credentials rpower uses (hw/target.py);
`cyclades` and `mrv` are a serial port on a terminal server, `termserver`
and `termport`, reached over TCP (tcp.py).  There is no `redfish` console,
in xCAT either.  A session whose target changes is replaced at the next
rcons.  Every session runs in the server's nursery, a task of the
daemon's, so no request's end (or a client killed while attached) ends one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Iterable
from functools import partial
from pathlib import Path

import sqlite_utils
import trio

from ..hierarchy import bmcs_dispatched, server_of
from ..hw.target import Defaults, HardwareError, Target, target_for
from ..store import Store, StoreError, objects
from ..store.nodes import Nodes
from ..store.regex_values import RegexValueError
from .log import ConsoleLog
from .session import ConsoleSession
from .sol import Pump
from .tcp import TERMINAL_SERVERS

CONSOLE_METHODS = ("ipmi", *TERMINAL_SERVERS)  # the values of `cons` xcatd has a console for
CONSOLE_ATTRIBUTES = ("cons", "mgt", "serialport", "termserver", "termport", "bmc", "bmcport",
                      "bmcusername", "bmcpassword")  # fmt: skip
log = logging.getLogger(__name__)
NO_REDFISH = (
    "cons=redfish: there is no Redfish console, in xCAT either (nor in sushy-tools, the Redfish "
    "BMC xcatd is tested against): reach the node's serial console with cons=ipmi (Serial over "
    "LAN)"
)


def console_target(values: dict[str, str], defaults: Defaults) -> Target:
    """Where a node's console is, from its effective attributes and the
    passwd table's `defaults`, or HardwareError saying what to set."""
    method = values.get("cons") or (values.get("mgt") if "serialport" in values else None)
    if not method:
        raise HardwareError("cons is not set: set it with chdef <node> cons=ipmi")
    if method == "redfish":
        raise HardwareError(NO_REDFISH)
    if method not in CONSOLE_METHODS:
        raise HardwareError(
            f"cons={method}: xcatd has no {method} console (it has {', '.join(CONSOLE_METHODS)})"
        )
    if method in TERMINAL_SERVERS:
        return _terminal_server_port(method, values)
    return target_for("", {**values, "power": method}, defaults)


def _terminal_server_port(method: str, values: dict[str, str]) -> Target:
    server, number = values.get("termserver"), values.get("termport", "")
    if not server or not number.isdigit():
        raise HardwareError(
            f"cons={method} needs termserver and termport (a number): set them with chdef "
            "<node> termserver=<terminal server> termport=<its port for the node>"
        )
    base, step = TERMINAL_SERVERS[method]
    port = base + step * int(number)
    if not 0 < port < 65536:
        raise HardwareError(f"termport {number}: {method} port {port} is not a TCP port")
    return Target(method, server, port, "", "")


def held_here(
    db: sqlite_utils.Database, hostname: str, role: str, defaults: Defaults
) -> tuple[dict[str, Target], dict[str, str]]:
    """The consoles this daemon holds: every node with one (its effective
    `cons`, or a `serialport` and a `mgt`) that is reached from here, as
    hardware commands divide nodes (hierarchy.split): on the management node
    those without a service node (all, when site.ipmidispatch says no), on
    a service node those it serves first, unless site.ipmidispatch says the
    management node reaches every BMC (two SOL sessions on one BMC take it
    from each other).  Each with its target (the
    passwd table's `defaults` filling in credentials); and why each other
    such node has none."""
    nodes = Nodes.load(db)
    dispatching = bmcs_dispatched(objects.site(db))
    targets, problems = {}, {}
    for node in nodes.all_nodes():
        try:
            values = {a: v for a in CONSOLE_ATTRIBUTES if (v := nodes.attribute(node, a))}
            server = server_of(nodes, node)
            if role == "master":
                here = not dispatching or server in ("", hostname, node)
            else:
                here = dispatching and server == hostname
            if here and (values.get("cons") or ("serialport" in values and values.get("mgt"))):
                targets[node] = console_target(values, defaults)
        except (HardwareError, RegexValueError) as exc:
            problems[node] = str(exc)
    return targets, problems


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
        HardwareError when it cannot be (the session is then not kept,
        unless the server holds it: see `hold`)."""
        session = self.sessions.get(node)
        if session is not None and session.target != target:
            session.stop()  # its BMC or credentials changed: a new session
            session = None
        if session is None:
            session = self._start(node, target, kept=False)
        await session.opened.wait()
        if session.failure is not None and not session.kept:
            if self.sessions.get(node) is session:
                del self.sessions[node]
            raise session.failure
        return session

    def hold(self, targets: dict[str, Target]) -> None:
        """Hold exactly these nodes' consoles, as conserver holds those of
        its configuration (at the daemon's start, and again at SIGHUP): each
        opened unless it is held with the same target, and tried again for
        as long as it cannot be had; every other session ended."""
        self.release([node for node in self.sessions if node not in targets], "no longer defined")
        self.add(targets)

    def release(self, nodes: Iterable[str], why: str) -> None:
        """End these nodes' sessions, saying `why` in their logs and to their watchers."""
        for node in nodes:
            ended = self.sessions.pop(node, None)
            if ended is not None:
                ended.stop(f"the console of {node} is {why}")

    def add(self, targets: dict[str, Target]) -> None:
        """Hold these nodes' consoles too (the others as they are)."""
        for node, target in targets.items():
            session = self.sessions.get(node)
            if session is not None and session.target == target:
                session.kept = True
                continue
            if session is not None:
                session.stop()
            self._start(node, target, kept=True)

    async def hold_defined(
        self,
        store: Store,
        hostname: str,
        role: str,
        defaults: Callable[[], Awaitable[Defaults]],
        only: Collection[str] | None = None,
    ) -> dict[str, str]:
        """Hold the consoles the definitions give this daemon (`held_here`,
        with the passwd rows `defaults()` gives): exactly those, or with
        `only`, those of these nodes too (makeconservercf <noderange>).  A
        node whose console cannot be had is logged, once per reading; why,
        by node."""
        try:
            held = partial(held_here, hostname=hostname, role=role, defaults=await defaults())
            targets, problems = await store.run(held)
        except (StoreError, sqlite3.Error, HardwareError) as exc:
            log.error("consoles: %s; the consoles held stay as they were", exc)
            return {}
        if only is None:
            self.hold(targets)
        else:
            chosen = set(only)
            targets = {node: target for node, target in targets.items() if node in chosen}
            problems = {node: why for node, why in problems.items() if node in chosen}
            self.add(targets)
        for node, why in problems.items():
            log.warning("console of %s not held: %s", node, why)
        log.info("holding %d consoles%s", len(targets), "" if only is None else " more")
        return problems

    def set_timeout(self, timeout: float) -> None:
        """A new bmc_timeout (SIGHUP): for every later attempt to connect."""
        self.timeout = timeout
        for session in self.sessions.values():
            session.timeout = timeout

    def _start(self, node: str, target: Target, kept: bool) -> ConsoleSession:
        if self._nursery is None:
            raise HardwareError("xcatd is stopping; try again when it is back")
        log_file = ConsoleLog(self.directory / f"{node}.log")
        session = ConsoleSession(node, target, log_file, self._pump, self.timeout, kept)
        self.sessions[node] = session
        self._nursery.start_soon(session.run)
        return session

    def detach_all(self) -> None:
        """End every rcons (the daemon stops); the sessions stay until cancelled."""
        for session in self.sessions.values():
            for watcher in list(session.watchers):
                watcher.put("xcatd is stopping")
                watcher.close()
