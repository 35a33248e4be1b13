"""A node's console log: `<logdir>/consoles/<node>.log`.

Console output arrives in pieces that rarely end with a line; each line is
written with the time its first character arrived, so `tail -f` shows when
the node printed what.  Past `max_bytes` the file is renamed `<node>.log.1`
(the previous `.1` becomes `.2`, and so on up to `keep`) and a new one
begun, so a chatty console cannot fill the disk.

Written from pyghmi's threads (never the event loop): one lock per log.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

MAX_BYTES = 8 << 20
KEEP = 3  # rotated files kept beside the current one


class ConsoleLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()
        self._at_line_start = True

    def output(self, data: bytes) -> None:
        """Console output, each new line stamped with the current time."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S ").encode()
        *lines, rest = data.split(b"\n")
        with self._lock:
            stamped = bytearray()
            for line in lines:
                stamped += (stamp if self._at_line_start else b"") + line + b"\n"
                self._at_line_start = True
            if rest:
                stamped += (stamp if self._at_line_start else b"") + rest
                self._at_line_start = False
            self._append(bytes(stamped))

    def event(self, text: str) -> None:
        """A line of the console server's own (connected, lost, ...), as
        conserver writes `[-- ... --]` lines, on a line of its own."""
        line = f"[-- {text} -- {time.strftime('%Y-%m-%d %H:%M:%S')} --]\n".encode()
        with self._lock:
            self._append(line if self._at_line_start else b"\n" + line)
            self._at_line_start = True

    def _append(self, data: bytes) -> None:
        try:
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            pass  # a full or read-only disk loses the log, never the console

    def _rotate(self) -> None:
        for generation in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{generation}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{generation + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
