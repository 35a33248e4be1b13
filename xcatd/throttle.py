"""Warnings that a flood must not turn into a flood of log lines.

A stranger can make the daemon refuse things as fast as the network carries
them (connections, status reports); each refusal is worth knowing about, but
one line every few seconds saying how many there were is enough.
"""

from __future__ import annotations

import logging
import time


class ThrottledWarning:
    """Logs a warning at most once every `every` seconds, with the number of
    occurrences since the last line; the others are only counted."""

    def __init__(self, log: logging.Logger, every: float = 10.0) -> None:
        self.log = log
        self.every = every
        self._since = 0
        self._last = -every

    def warning(self, message: str, *args: object) -> None:
        self._since += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            self.log.warning(f"{message} (%d such since the last line)", *args, self._since)
            self._since, self._last = 0, now
