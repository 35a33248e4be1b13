"""An administrator's terminal for the console tests: a client command on a
pseudo-terminal of its own (rcons, wcons), what it shows, and keys typed
into it one at a time; and the console log the daemon writes."""

from __future__ import annotations

import os
import pty
import subprocess
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from .cluster import BIN, Cluster
from .waiting import wait_for

HELP = "[Enter `^Ec?' for help]"
LEAVE = b"\x05c."  # Ctrl-E c .
TIMEOUT = 15
KEY_INTERVAL = 0.03  # seconds between keystrokes: a fast typist
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "  # the console log's time of each line


class Terminal:
    """A client command on a pseudo-terminal of its own, as at a user's terminal."""

    def __init__(self, cluster: Cluster, *argv: str, env: dict[str, str] | None = None) -> None:
        self.master, self.slave = pty.openpty()
        self.process = subprocess.Popen(
            [*cluster.prefix, BIN / argv[0], *argv[1:]],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env or cluster.env,
            start_new_session=True,
        )
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self._output += data

    @property
    def output(self) -> str:
        return bytes(self._output).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = TIMEOUT, after: int = 0) -> int:
        """Until `text` shows on the screen after position `after`; where it ends."""
        return wait_for(
            lambda: (found := self.output.find(text, after)) >= 0 and found + len(text),
            lambda: f"{text!r} shown:\n{self.output}",
            timeout,
        )

    def type(self, keys: bytes) -> None:
        """Type, one key at a time as a person does: the guest (iPXE on
        QEMU's serial port) loses characters of a line pasted at once, even
        when QEMU's serial port is reached without any BMC between."""
        for key in keys:
            os.write(self.master, bytes((key,)))
            time.sleep(KEY_INTERVAL)

    def raw(self) -> bool:
        """Whether the terminal is in raw mode (no line editing, no echo)."""
        lflag = termios.tcgetattr(self.slave)[3]
        return not lflag & (termios.ICANON | termios.ECHO)

    def exit_code(self, timeout: float = TIMEOUT) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def rcons(cluster: Cluster, terminals: list[Terminal], *args: str) -> Terminal:
    terminal = Terminal(cluster, "rcons", *args)
    terminals.append(terminal)
    return terminal


def console_log(cluster: Cluster, node: str) -> str:
    return (cluster.root / f"var/log/xcat/consoles/{node}.log").read_text(errors="replace")
