"""A service node passes its nodes' status reports on to the management node.

Compute nodes report `netbooting`, `booted`, ... to the service node that
booted them (its status endpoint), which records them and queues them here;
a task of the daemon sends them on as `updatenodestat <nodes> <state>`,
as this service node, so `nodestat` on the management node shows them.
Reports that arrive together go in one request per state.  While the
management node cannot be reached they wait, and are tried again; reports
are advisory, so when too many wait the oldest are dropped (and logged),
never the daemon's memory or its other work.
"""

from __future__ import annotations

import logging

import trio

from ..context import Replicating
from ..link import Link, LinkError
from ..throttle import ThrottledWarning
from .replica import ReplicaError, master_of

log = logging.getLogger(__name__)

WAITING = 10_000  # reports held while the management node is away
RETRY_SECONDS = (1, 2, 5, 10, 30)


class StatusRelay:
    def __init__(self, daemon: Replicating) -> None:
        self.daemon = daemon
        self._waiting: dict[str, str] = {}  # node -> its latest state, oldest first
        self._arrived = trio.Event()
        self._trouble = ThrottledWarning(log)

    def queue(self, node: str, state: str) -> None:
        """Called for each report this node took; never blocks."""
        self._waiting.pop(node, None)  # only the latest state of a node matters
        self._waiting[node] = state
        if len(self._waiting) > WAITING:
            dropped = next(iter(self._waiting))
            del self._waiting[dropped]
            self._trouble.warning("status of %s not passed on: too many reports wait", dropped)
        self._arrived.set()

    async def run(self) -> None:
        """Send what waits, for as long as the daemon runs."""
        failures = 0
        while True:
            await self._arrived.wait()
            self._arrived = trio.Event()
            try:
                await self._send_waiting()
                failures = 0
            except (LinkError, ReplicaError) as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                self._trouble.warning("cannot pass status on (retrying in %d s): %s", delay, exc)
                await trio.sleep(delay)
                self._arrived.set()

    async def _send_waiting(self) -> None:
        master = master_of(self.daemon)
        async with Link.open(master.host, master.port, self.daemon.ca) as link:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                by_state: dict[str, list[str]] = {}
                for node, state in batch.items():
                    by_state.setdefault(state, []).append(node)
                while by_state:
                    state, nodes = next(iter(by_state.items()))
                    try:
                        answer = await link.ask(
                            "updatenodestat", [",".join(nodes), state], self.daemon.config.hostname
                        )
                    except LinkError:
                        self._keep(by_state)
                        raise
                    del by_state[state]
                    if answer.rc != 0:
                        self._trouble.warning(
                            "the management node refused status %s of %s: %s",
                            state, ",".join(nodes), "; ".join(answer.errors),
                        )  # fmt: skip

    def _keep(self, unsent: dict[str, list[str]]) -> None:
        """Reports that could not be sent wait again, unless newer ones came."""
        for state, nodes in unsent.items():
            for node in nodes:
                self._waiting.setdefault(node, state)
