"""The connections a listener is answering, in all and by peer address.

Past either limit a new connection is closed unanswered: a flood cannot
exhaust the listener, and one address cannot take every node's room.
The HTTP server and the port-3002 listener each keep one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Room:
    size: int
    per_address: int
    open: int = 0  # kept apart from `taken`: summing it would cost every accept
    taken: Counter[str] = field(default_factory=Counter)

    def refusal(self, peer: str) -> str | None:
        """Why a connection from `peer` finds no room now (a phrase for the log), or None."""
        if self.open >= self.size:
            return f"{self.open} open"
        if self.taken[peer] >= self.per_address:
            return f"{self.taken[peer]} open from {peer}"
        return None

    @contextmanager
    def held(self, peer: str) -> Iterator[None]:
        """A place for `peer`'s connection for the block (refusal() said there is one)."""
        self.open += 1
        self.taken[peer] += 1
        try:
            yield
        finally:
            self.open -= 1
            self.taken[peer] -= 1
            if not self.taken[peer]:
                del self.taken[peer]  # not one entry for every address ever seen
