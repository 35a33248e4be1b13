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
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from .config import Config
from .throttle import ThrottledWarning

log = logging.getLogger(__name__)


class Slot:
    """One admitted connection; it holds a handshake slot until `handshake_done`."""

    def __init__(self, admission: Admission, host: str) -> None:
        self._admission = admission
        self.host = host
        self.stage: str | None = HANDSHAKING  # the limited share it holds, if any

    def handshake_done(self, certified: bool) -> bool:
        """Move from the handshake share to the peer's next one; False when
        it has no certificate and that share is spent (then close it)."""
        admission = self._admission
        admission.leave(self)
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
        self.enter(slot, HANDSHAKING)
        try:
            yield slot
        finally:
            self.leave(slot)
            self.total -= 1
            self.per_address[host] -= 1
            if not self.per_address[host]:
                del self.per_address[host]

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
        if self.held[HANDSHAKING] >= config.max_handshakes:
            return f"{self.held[HANDSHAKING]} TLS handshakes under way"
        return None

    def note_refusal(self, host: str, reason: str) -> None:
        self._refusals.warning("refusing connections, the latest from %s: %s", host, reason)
