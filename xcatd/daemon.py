"""The daemon: everything `xcatd serve` owns, and its life from start to stop.

One trio nursery holds the listeners, every connection and the signal and
watchdog tasks; a second, outer one holds the audit writer, which outlives
them so the last request is audited too.  SIGTERM (or SIGINT) stops
accepting, lets running requests finish for the grace period, then cancels
what is left; a second SIGTERM cancels at once.  SIGHUP re-reads xcatd.toml
and the policy table, and holds the consoles defined since (console/server.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import trio
from xcat_protocol.tls import server_context

from . import __version__
from .accepting import serve_listeners
from .admission import Admission
from .audit import AuditLog
from .auth import Authenticator
from .boot.dnsmasq import DhcpService
from .boot.http import serve_http
from .boot.netboot import Settings
from .boot.status import StatusReports
from .boot.statusport import serve_status_port
from .boot.tftp import serve_tftp
from .ca import CertificateAuthority
from .config import Config, ConfigError
from .console.server import ConsoleServer
from .dispatch import MAX_INPUT_HELD, InputBudget
from .known_hosts import KnownHosts
from .layout import Layout
from .nodelogs import receiver_problem
from .policy import Policy, PolicyError
from .server import Session, handle_connection
from .servicenode.relay import StatusRelay
from .servicenode.replica import Copy
from .servicenode.restore import restore
from .servicenode.serving import bmc_defaults, mount_installloc
from .servicenode.trust import keep_current
from .store import Store, StoreError, objects
from .store.nodes import ServedNodes
from .systemd import Notifier

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5  # for the last frames to reach their clients on stop


class Daemon:
    def __init__(self, layout: Layout, notifier: Notifier | None = None) -> None:
        self.layout = layout
        self.config = Config.load(layout.config_file)
        self.version = __version__
        self.ca = CertificateAuthority(layout.pki)
        self.ssl_context = server_context(
            self.ca.server_cert_file, self.ca.server_key_file, self.ca.cert_file
        )
        self.started = time.time()
        self.store = Store(layout.database)
        self.auth = Authenticator(
            self.ca.cert, self.ca.crl_file, self.config.replay_window, self.started
        )
        self.policy = Policy(self.store.db["policy"].rows)
        self.audit = AuditLog(self.store)
        # A service node passes its nodes' status reports on to the management node.
        self.relay = StatusRelay(self) if self.role == "servicenode" else None
        # Which nodes each service node serves, for their requests here.
        self.served = ServedNodes()
        # A service node's copy of the management node's definitions, as last taken.
        self.definitions: Copy | None = None
        self.reports = StatusReports(
            self.store, self.relay.queue if self.relay else None, KnownHosts(layout.ssh)
        )
        self.dhcp = DhcpService(layout.dhcp)  # makedhcp's dnsmasq
        self.consoles = ConsoleServer(layout.logdir / "consoles", self.config.bmc_timeout)
        self.notifier = notifier or Notifier()
        self.input_budget = InputBudget(MAX_INPUT_HELD)
        self.admission = Admission(self.config)
        self.stopping = False
        self.sessions: set[Session] = set()  # connections past the TLS handshake
        self._active_requests = 0
        self._changed = trio.Event()  # set whenever a request or a session ends
        self._accepting = trio.CancelScope()

    @property
    def role(self) -> str:
        return self.config.role

    @property
    def connections(self) -> int:
        return self.admission.total

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until stopped; `task_status.started` gets the listening ports."""
        try:
            async with trio.open_nursery() as services:
                services.start_soon(self.audit.run)
                try:
                    async with trio.open_nursery() as front:
                        # Signals are ours before the port opens: a SIGTERM or
                        # SIGHUP right after READY=1 must not meet the default
                        # action, which kills the process.
                        await front.start(self._handle_signals, front.cancel_scope)
                        await front.start(self.consoles.run)
                        front.start_soon(self.hold_consoles)
                        listeners = await self._listen()
                        ports = sorted({each.socket.getsockname()[1] for each in listeners})
                        front.start_soon(self._accept, listeners, front)
                        if self.relay is not None:
                            front.start_soon(self.relay.run)
                            front.start_soon(keep_current, self)
                            await mount_installloc(self)
                        await self._start_boot_services(front)
                        await front.start(partial(self.dhcp.run, serve=self.config.serve_dhcp))
                        front.start_soon(self.notifier.keep_watchdog_fed)
                        log.info("xcatd %s serving on port %s", self.version, ports[0])
                        self.notifier.notify(
                            "READY=1",
                            f"STATUS=serving on port {ports[0]}",
                            f"MAINPID={os.getpid()}",
                        )
                        task_status.started(ports)
                        if self.relay is not None:  # a service node: its nodes set up again
                            front.start_soon(restore, self)
                finally:
                    self.audit.close()
        finally:
            self.store.close()
        log.info("xcatd stopped")

    async def stop(self, front: trio.CancelScope) -> None:
        """Graceful stop: no new connections or requests; running requests get
        the grace period to finish; then every connection's input is closed,
        which cancels what still runs, and what was written is delivered."""
        if self.stopping:
            front.cancel()  # asked twice: stop now
            return
        self.stopping = True
        self.notifier.notify("STOPPING=1")
        self._accepting.cancel()
        self.consoles.detach_all()  # rcons would otherwise wait out the grace period
        log.info(
            "stopping: %d requests running, up to %.0f s to finish",
            self._active_requests,
            self.config.grace_period,
        )
        with trio.move_on_after(self.config.grace_period):
            await self._wait_until(lambda: not self._active_requests)
        for session in list(self.sessions):
            session.stop_reading()
        with trio.move_on_after(FLUSH_SECONDS):
            await self._wait_until(lambda: not self.sessions)
        front.cancel()

    async def reload(self) -> None:
        """SIGHUP: re-read xcatd.toml, the policy and the consoles to hold; a
        bad file keeps the old settings."""
        try:
            config = Config.load(self.layout.config_file)
        except ConfigError as exc:
            log.error("reload: %s; keeping the current settings", exc)
        else:
            if (config.listen, config.port) != (self.config.listen, self.config.port):
                log.warning("reload: listen and port changes apply at the next start")
            self.config = self.admission.config = config
            self.auth.replay.window = config.replay_window
            self.consoles.set_timeout(config.bmc_timeout)
        await self.reload_policy()
        await self.hold_consoles()
        log.info("reloaded settings and %d policy rules", len(self.policy.rules))

    async def hold_consoles(self, only: Collection[str] | None = None) -> dict[str, str]:
        """Open the consoles of the nodes defined now (at start and SIGHUP;
        makeconservercf), or of these nodes; why one cannot be, by node."""
        return await self.consoles.hold_defined(
            self.store, self.config.hostname, self.role, partial(bmc_defaults, self), only
        )

    async def reload_policy(self) -> None:
        """Read the policy table again (SIGHUP, or after chdef -t policy); a table
        that cannot be used keeps the rules in force."""
        try:
            self.policy = Policy(await self.store.run(lambda db: list(db["policy"].rows)))
        except (PolicyError, StoreError, sqlite3.Error) as exc:
            log.error("reload: %s; keeping the current policy", exc)

    @contextmanager
    def track_request(self) -> Iterator[None]:
        self._active_requests += 1
        try:
            yield
        finally:
            self._active_requests -= 1
            self._changed.set()

    @contextmanager
    def track_session(self, session: Session) -> Iterator[None]:
        self.sessions.add(session)
        try:
            yield
        finally:
            self.sessions.discard(session)
            self._changed.set()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed = trio.Event()
            await self._changed.wait()

    async def _listen(self) -> list[trio.SocketListener]:
        listeners: list[trio.SocketListener] = []
        for host in self.config.listen:
            try:
                listeners += await trio.open_tcp_listeners(self.config.port, host=host)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {host}:{self.config.port}: {exc.strerror}"
                ) from None
        return listeners

    async def _start_boot_services(self, nursery: trio.Nursery) -> None:
        """TFTP, HTTP (with the nodes' status endpoint) and the port-3002 status
        lines, on every listen address, each unless switched off.  They serve
        the site's tftpdir and installdir as they are at start."""
        config = self.config
        boot = Settings.of(await self.store.run(objects.site), self.layout, config)
        tftpdir = self._served("tftpdir", boot.tftpdir)
        installdir = self._served("installdir", boot.installdir)
        services = (
            ("TFTP", config.serve_tftp, config.tftp_port, partial(serve_tftp, tftpdir)),
            ("HTTP", config.serve_http, config.http_port,
             partial(serve_http, (installdir, tftpdir), status=self.reports.http)),
            ("status lines", config.serve_status_port, config.status_port,
             partial(serve_status_port, self.reports)),
        )  # fmt: skip
        for host in config.listen:
            for name, on, port, serve in services:
                if not on:
                    continue
                try:
                    await nursery.start(serve, host, port)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot serve {name} on {host}:{port}: {exc.strerror}; free the port, "
                        "or switch the service off in xcatd.toml"
                    ) from None
        served = [f"{name} on port {port}" for name, on, port, _ in services if on]
        log.info("boot services: %s", ", ".join(served) or "all switched off")
        problem = await trio.to_thread.run_sync(receiver_problem, self.layout)
        if problem:
            log.warning("%s", problem)

    def _served(self, name: str, directory: Path) -> Path:
        """A directory the boot services hand out to anyone: never one that
        holds the daemon's keys, database or credentials."""
        root = directory.resolve()
        layout = self.layout
        for private in (layout.etc, layout.state, layout.cred_dir):
            if private.resolve().is_relative_to(root):
                raise ConfigError(
                    f"site {name}={directory} holds {private}: TFTP and HTTP would hand it "
                    f"out; give {name} a directory of its own (chdef -t site {name}=...)"
                )
        return root

    async def _accept(self, listeners: list[trio.SocketListener], nursery: trio.Nursery) -> None:
        try:
            with self._accepting:
                await serve_listeners(
                    partial(handle_connection, self), listeners, handler_nursery=nursery
                )
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def _handle_signals(
        self, front: trio.CancelScope, *, task_status=trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async with trio.open_nursery() as nursery:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        await self.reload()
                    else:
                        nursery.start_soon(self.stop, front)
