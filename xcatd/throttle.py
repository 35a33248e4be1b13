"""Warnings that a flood must not turn into a flood of log lines.

A stranger can make the daemon refuse things as fast as the network carries
them (connections, handshakes, status reports); each refusal is worth
knowing about, but one line every few seconds saying how many there were is
enough.
"""

from __future__ import annotations

import logging
import time


class ThrottledWarning:
    """Logs each kind of warning (its message template) at most once every
    `every` seconds, with the number of occurrences since its last line; the
    others are only counted."""

    def __init__(self, log: logging.Logger, every: float = 10.0) -> None:
        self.log = log
        self.every = every
        self._kinds: dict[str, tuple[int, float]] = {}  # template -> (unlogged, logged at)

    def warning(self, message: str, *args: object) -> None:
        unlogged, logged_at = self._kinds.get(message, (0, -self.every))
        unlogged += 1
        now = time.monotonic()
        if now - logged_at >= self.every:
            self.log.warning(f"{message} (%d such since the last line)", *args, unlogged)
            unlogged, logged_at = 0, now
        self._kinds[message] = (unlogged, logged_at)
