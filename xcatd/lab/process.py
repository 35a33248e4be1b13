"""Long-running programs of a lab (or of a test network): each in a process
group of its own, its output in a log file that `wait_for` watches, and
stopped group and all (a BMC's chassis program and machine with it).

Plain synchronous subprocess code: the lab and the tests drive separate
programs and wait for what they print."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from ..errors import XcatdError

POLL_INTERVAL = 0.1
TAIL_LINES = 40
# Terminal control sequences on a serial console: ANSI escapes (colours,
# screen clears) and iPXE's erase-the-prompt backspaces.
_CONTROL = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[a-z]|\x08 \x08|\r")


class ProgramError(XcatdError, RuntimeError):
    """A program exited, or did not print what was awaited."""


def console_text(raw: bytes) -> str:
    """A log or serial console as plain text, without terminal control sequences."""
    return _CONTROL.sub(b"", raw).decode(errors="replace")


class Process:
    """A long-running program in its own process group, its output (stdout
    and stderr) going to a log file that `wait_for` watches; `pass_fds` are
    file descriptors it inherits (a listening socket)."""

    def __init__(self, argv: Sequence[str | Path], log: Path, pass_fds: Sequence[int] = ()) -> None:
        self.argv = [str(arg) for arg in argv]
        self.log = log
        with log.open("wb") as output:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group to stop, helpers included
                pass_fds=pass_fds,
            )
        self.started = time.monotonic()

    @property
    def name(self) -> str:
        return self.log.stem

    def text(self) -> str:
        return console_text(self.log.read_bytes())

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for(self, pattern: str, timeout: float) -> float:
        """Wait until the log matches the regular expression `pattern`; the
        seconds since the program started.  ProgramError if it exits or
        `timeout` seconds pass first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.popen.poll() is not None  # before reading: output then exit
            if regex.search(self.text()):
                return time.monotonic() - self.started
            if exited:
                self._fail(f"exited with {self.popen.returncode} before printing {pattern!r}")
            if time.monotonic() > deadline:
                self._fail(f"did not print {pattern!r} within {timeout:.0f} s")
            time.sleep(POLL_INTERVAL)

    def _fail(self, what: str) -> None:
        raise ProgramError(f"{self.name} {what} (log: {self.log})")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if the program lingers, and reap it."""
        stop_group(self.popen.pid, timeout, self.popen.wait)


def stop_group(pid: int, timeout: float, wait=None) -> None:
    """SIGTERM the process group `pid` leads, then SIGKILL it if its leader
    is still there after `timeout` seconds.  `wait(timeout)` reaps a child
    of ours; without it (a process of an earlier run) /proc is watched."""
    _signal_group(pid, signal.SIGTERM)
    wait = wait or (lambda seconds: _gone(pid, seconds))
    try:
        wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(pid, signal.SIGKILL)
        wait(None)


def _gone(pid: int, timeout: float | None) -> None:
    """Until process `pid` no longer runs (a zombie has stopped running)."""
    start = time.monotonic()
    while running(pid):
        if timeout is not None and time.monotonic() - start > timeout:
            raise subprocess.TimeoutExpired(str(pid), timeout)
        time.sleep(0.05)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), which tells it
    from a later process given the same number; None if there is none."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _signal_group(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):  # the whole group has already gone
        os.killpg(pid, signum)
