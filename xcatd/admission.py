"""Who gets a connection on the protocol port, so that no stranger can lock
the cluster's administrators out.

Every connection takes a slot from the daemon's total and from its source
address's share; while its TLS handshake runs, one of the handshake slots;
and after it, unless it showed a client certificate, one of the slots for
peers without one.  A stranger without a certificate can therefore hold
only those slots (each for at most the handshake timeout, since such a peer
may stay idle no longer), from one address only that address's share, and
the rest stays free for administrators and service nodes.  A connection that
finds a budget spent is closed at once.

One address's handshakes beyond its turns (max_handshakes_per_address) wait
for one of them to end rather than take a handshake slot: else a single
stranger opening connections and never finishing a handshake would hold
every handshake slot, and lock everyone else out, for as long as it kept
doing so.  Waiting, not refusing, so that an administrator's script that
starts many commands at once from one host still works.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import trio

from .config import Config
from .throttle import ThrottledWarning

log = logging.getLogger(__name__)


class Slot:
    """One admitted connection: a turn at a handshake (`handshaking`), then
    the share its peer's kind has (`handshake_done`)."""

    def __init__(self, admission: Admission, host: str) -> None:
        self._admission = admission
        self.host = host
        self.stage: str | None = None  # the limited share it holds, if any

    @asynccontextmanager
    async def handshaking(self) -> AsyncIterator[bool]:
        """Hold a handshake slot for the block, once this address has a turn
        free (waiting for one if not); yields False when every handshake slot
        is taken (then close the connection)."""
        admission = self._admission
        async with admission.turns(self.host):
            if admission.held[HANDSHAKING] >= admission.config.max_handshakes:
                admission.note_refusal(
                    self.host, f"{admission.held[HANDSHAKING]} TLS handshakes under way"
                )
                yield False
                return
            admission.enter(self, HANDSHAKING)
            try:
                yield True
            finally:
                admission.leave(self)

    def handshake_done(self, certified: bool) -> bool:
        """Take the share of the peer's kind; False when it has no
        certificate and that share is spent (then close it)."""
        admission = self._admission
        if certified:
            return True
        if admission.held[UNAUTHENTICATED] >= admission.config.max_unauthenticated:
            admission.note_refusal(self.host, "too many peers without a client certificate")
            return False
        admission.enter(self, UNAUTHENTICATED)
        return True


HANDSHAKING, UNAUTHENTICATED = "handshaking", "unauthenticated"


class Admission:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.total = 0
        self.per_address: Counter[str] = Counter()
        self.held = {HANDSHAKING: 0, UNAUTHENTICATED: 0}
        self._turns: dict[str, trio.CapacityLimiter] = {}  # by address, while in use
        self._refusals = ThrottledWarning(log)

    @contextmanager
    def slot(self, host: str) -> Iterator[Slot | None]:
        """A slot for a connection from `host` for the duration of the block,
        or None when a budget is spent (the refusal is logged, throttled)."""
        refusal = self._refusal(host)
        if refusal:
            self.note_refusal(host, refusal)
            yield None
            return
        slot = Slot(self, host)
        self.total += 1
        self.per_address[host] += 1
        try:
            yield slot
        finally:
            self.leave(slot)
            self.total -= 1
            self.per_address[host] -= 1
            if not self.per_address[host]:
                del self.per_address[host]

    @asynccontextmanager
    async def turns(self, host: str) -> AsyncIterator[None]:
        """One of `host`'s handshake turns for the block, waited for if none is free."""
        turns = self._turns.get(host)
        if turns is None:
            turns = self._turns[host] = trio.CapacityLimiter(self.config.max_handshakes_per_address)
        try:
            async with turns:
                yield
        finally:
            used = turns.statistics()
            if not used.borrowed_tokens and not used.tasks_waiting:
                del self._turns[host]  # not one entry for every address ever seen

    def enter(self, slot: Slot, stage: str) -> None:
        slot.stage = stage
        self.held[stage] += 1

    def leave(self, slot: Slot) -> None:
        if slot.stage is not None:
            self.held[slot.stage] -= 1
            slot.stage = None

    def _refusal(self, host: str) -> str | None:
        config = self.config
        if self.total >= config.max_connections:
            return f"{self.total} connections open"
        if self.per_address[host] >= config.max_connections_per_address:
            return f"{self.per_address[host]} connections open from this address"
        return None

    def note_refusal(self, host: str, reason: str) -> None:
        self._refusals.warning("refusing connections, the latest from %s: %s", host, reason)
