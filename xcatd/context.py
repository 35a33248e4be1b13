"""What a command may use of the daemon that runs it: the `Context`.

A command gets the daemon's settings, store, CA and services through this
narrow, typed view (`Call.context`), never the daemon itself, so that
commands do not import the daemon (which imports the server, which imports
the commands) and a test can run a command on a context of its own: a real
store in a directory of the test's, and no daemon.  The daemon is one
(mypy checks it where dispatch.py makes a `Call`).
"""

from __future__ import annotations

from typing import Protocol

from .boot.dnsmasq import DhcpService
from .console.server import ConsoleServer
from .policy import Policy
from .servicenode.replica import Replicating


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
    def policy(self) -> Policy:
        """The rules in force: who may read secrets is who may run chtab."""
        ...

    async def reload_policy(self) -> None:
        """Read the policy table again, after a command changed it."""
        ...
