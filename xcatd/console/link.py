"""What a console session holds: a link to the node's serial console (SOL
through its BMC, sol.py, or a TCP port, tcp.py).  Every method blocks
(worker threads only); `on_data(bytes)` gets the console's output and
`on_lost(reason)` is called once when an open link breaks, both on the
link's own threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..hw.target import Target


class Link:
    def __init__(
        self,
        target: Target,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.target = target
        self._on_data = on_data
        self._on_lost = on_lost
        self._open = False  # connected, and its loss not yet reported
        self._state = threading.Lock()  # between open() or close() and the link's threads

    def open(self, timeout: float, pump) -> None:
        """Connect; HardwareError when that fails or takes longer than
        `timeout` seconds.  (`pump` runs pyghmi's SOL sessions.)"""
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        """Keystrokes for the node."""
        raise NotImplementedError

    def close(self) -> None:
        """Disconnect; never raises."""
        raise NotImplementedError

    def _ended(self) -> bool:
        """Mark the link closed; whether it was open (its loss to report)."""
        with self._state:
            was, self._open = self._open, False
        return was
