"""What a command may use of the daemon that runs it: the `Context`.

A command gets the daemon's settings, store, CA and services through this
narrow, typed view (`Call.context`), never the daemon itself, so that
commands do not import the daemon (which imports the server, which imports
the commands) and a test can run a command on a context of its own: a real
store in a directory of the test's, and no daemon.  The daemon is one
(mypy checks it where dispatch.py makes a `Call`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

from .auth import Authenticator
from .boot.dnsmasq import DhcpService
from .ca import CertificateAuthority
from .config import Config
from .console.server import ConsoleServer
from .layout import Layout
from .policy import Policy
from .store import Store
from .store.nodes import ServedNodes

if TYPE_CHECKING:
    from .servicenode.replica import Copy


class Replicating(Protocol):
    """What taking the definitions needs of the daemon: its settings (where
    the management node is), its CA, store, installdir and revocation list,
    and the copy it took last."""

    @property
    def config(self) -> Config: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def ca(self) -> CertificateAuthority: ...

    @property
    def store(self) -> Store: ...

    @property
    def auth(self) -> Authenticator:
        """Whose certificates are revoked: the list it takes from the MN (trust.py)."""
        ...

    definitions: Copy | None


class Context(Replicating, Protocol):
    """The store, layout, config and CA (as taking a management node's
    definitions needs them, replica.py), and what else commands use."""

    @property
    def version(self) -> str:
        """xcatd's release, as `lsxcatd -v` and each command's -v print it."""
        ...

    @property
    def role(self) -> str:
        """master (a management node) or servicenode."""
        ...

    @property
    def started(self) -> float:
        """When the daemon started, in seconds since the epoch (lsxcatd)."""
        ...

    @property
    def connections(self) -> int:
        """Client connections open now (lsxcatd)."""
        ...

    @property
    def consoles(self) -> ConsoleServer:
        """The console sessions rcons attaches to."""
        ...

    @property
    def dhcp(self) -> DhcpService:
        """The DHCP service makedhcp writes for and restarts."""
        ...

    @property
    def served(self) -> ServedNodes:
        """Which nodes each service node serves (what its certificate sees)."""
        ...

    @property
    def policy(self) -> Policy:
        """The rules in force: who may read secrets is who may run chtab."""
        ...

    async def reload_policy(self) -> None:
        """Read the policy table again, after a command changed it."""
        ...

    async def hold_consoles(self, only: Collection[str] | None = None) -> dict[str, str]:
        """Hold the consoles the definitions give this daemon, as at its start
        (a service node, after it took new definitions and passwd rows), or
        only those of these nodes, the others as they are; why a node's
        console cannot be held, by node."""
        ...
