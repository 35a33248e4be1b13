"""The cluster's DHCP service: the dnsmasq that serves makedhcp's files.

makedhcp -n leaves it running, as xCAT's leaves dhcpd running:

- where systemd runs (it is PID 1), the directory is the system's
  /etc/xcat/dhcp and xcatd-dhcp.service (xcatd/share/systemd/) is installed, that unit
  runs it: makedhcp -n enables and restarts it (`SystemdUnit`);
- elsewhere the daemon runs it itself (`Supervisor`), a task in the
  daemon's nursery: started by makedhcp -n, or when the daemon starts with
  a dnsmasq.conf that names interfaces; started again when it dies (after
  1 s, doubling up to a minute while it keeps dying at once); stopped
  (SIGTERM, then SIGKILL after 5 s) when the daemon stops, so no dnsmasq
  outlives it.  A daemon killed outright (SIGKILL) leaves its dnsmasq
  running; the next daemon ends it before starting its own (the process
  carries XCATD_DHCP=<directory> in its environment).

Both run the same command line: in the foreground, logging to stderr (the
daemon's log, or the journal), `--bind-dynamic` so that a second dnsmasq
bound to other interfaces can run beside it, on the interfaces dnsmasq.conf
names; dnsmasq.conf without an `interface=` line is never started, since
dnsmasq would then answer on every interface.  dnsmasq drops its
privileges to `nobody`, who must read the files again on SIGHUP; where it
cannot (a cluster under a private directory), it keeps root.

dnsmasq reads its dhcp-hostsfile and dhcp-optsfile again on SIGHUP
(`reload_dnsmasq`), its dnsmasq.conf (the dhcp-ranges, the interfaces) only
when it starts.  Only a process whose program is dnsmasq and whose command
line names that dnsmasq.conf is ever signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ..errors import XcatdError
from ..programs import run_program

log = logging.getLogger(__name__)

UNIT = "xcatd-dhcp.service"
SYSTEM_DIRECTORY = Path("/etc/xcat/dhcp")  # the dnsmasq.conf the unit runs with
PROGRAM = "/usr/sbin/dnsmasq"
MARK = "XCATD_DHCP"  # in the environment of the dnsmasq a daemon runs: its directory
STARTED = ": started, version "  # dnsmasq logs it once its sockets are bound
START_TIMEOUT = 10.0  # seconds for dnsmasq to bind its sockets
STOP_TIMEOUT = 5.0  # seconds from SIGTERM to SIGKILL
RESTART_DELAYS = (1.0, 60.0)  # the first wait before a restart, and the longest
STEADY = 60.0  # a dnsmasq that ran this long starts again after the first delay


class DhcpServiceError(XcatdError):
    """The DHCP service could not be started or stopped: one line saying why."""


# -- the command line and the files --------------------------------------------------


def dnsmasq_arguments(directory: Path) -> list[str]:
    """What dnsmasq runs with, under the daemon and in xcatd-dhcp.service."""
    return [
        f"--conf-file={directory}/dnsmasq.conf",
        "--keep-in-foreground",
        "--bind-dynamic",
        "--log-facility=-",
    ]


def dnsmasq_command(directory: Path) -> list[str]:
    keeps_root = [] if readable_by_anyone(directory) else ["--user=root"]
    return [PROGRAM, *dnsmasq_arguments(directory), *keeps_root]


def readable_by_anyone(directory: Path) -> bool:
    """Whether `nobody` can reach the files (makedhcp writes them 0644): every
    directory above them searchable by others."""
    try:
        return all(p.stat().st_mode & stat.S_IXOTH for p in (directory, *directory.parents))
    except OSError:
        return False


def served_interfaces(directory: Path) -> list[str]:
    """The interfaces the dnsmasq.conf makedhcp -n wrote names (none: no conf)."""
    try:
        lines = (directory / "dnsmasq.conf").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [line.partition("=")[2] for line in lines if line.startswith("interface=")]


def check_conf(directory: Path) -> str | None:
    """What dnsmasq says is wrong with dnsmasq.conf (its own words), or None."""
    try:
        checked = subprocess.run(
            [PROGRAM, "--test", f"--conf-file={directory}/dnsmasq.conf"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {PROGRAM}: {exc}"
    if checked.returncode == 0:
        return None
    return _last_words(checked.stderr.splitlines())


def _last_words(lines: list[str]) -> str:
    """dnsmasq's last message (`dnsmasq: failed to ...`), its own words."""
    said = [line.strip() for line in lines if line.strip()]
    return said[-1] if said else "dnsmasq exited without a message"


# -- reloading -------------------------------------------------------------------------


def reload_dnsmasq(directory: Path) -> int | None:
    """SIGHUP to the dnsmasq that runs with this directory's dnsmasq.conf; its
    pid, or None when none runs."""
    pid = running_dnsmasq(directory)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:  # it stopped in between
            return None
    return pid


def running_dnsmasq(directory: Path) -> int | None:
    """The pid of the dnsmasq using this directory's dnsmasq.conf: from its pid
    file, else (dnsmasq --no-daemon writes none) from the process table."""
    conf = str(directory / "dnsmasq.conf")
    try:
        recorded = [int((directory / "dnsmasq.pid").read_text())]
    except (OSError, ValueError):
        recorded = []
    return next((pid for pid in (*recorded, *_pids()) if _is_dnsmasq_of(pid, conf)), None)


def dnsmasqs_of(directory: Path) -> list[int]:
    """Every dnsmasq running with this directory's dnsmasq.conf."""
    conf = str(directory / "dnsmasq.conf")
    return [pid for pid in _pids() if _is_dnsmasq_of(pid, conf)]


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _is_dnsmasq_of(pid: int, conf: str) -> bool:
    words = _proc_words(pid, "cmdline")
    named = any(word == conf or word.endswith(f"={conf}") for word in words)
    return bool(words) and os.path.basename(words[0]) == "dnsmasq" and named


def _proc_words(pid: int, name: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _stop_leftovers(directory: Path) -> list[int]:
    """End the dnsmasq a daemon killed outright left running for `directory`
    (blocking: waits up to STOP_TIMEOUT for each); the pids ended."""
    ended = []
    for pid in dnsmasqs_of(directory):
        if f"{MARK}={directory}" in _proc_words(pid, "environ"):
            with contextlib.suppress(OSError):  # gone already, or not ours to end
                os.kill(pid, signal.SIGTERM)
                ended.append(pid)
    for pid in ended:
        _wait_gone(pid)
    return ended


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


# -- the service -------------------------------------------------------------------------


@dataclass
class Start:
    """One start of dnsmasq: its pid once its sockets are bound, or why not."""

    done: trio.Event = field(default_factory=trio.Event)
    pid: int | None = None
    failure: str | None = None

    def ready(self, pid: int) -> None:
        if not self.done.is_set():
            self.pid = pid
            self.done.set()

    def fail(self, why: str) -> None:
        if not self.done.is_set():
            self.failure = why
            self.done.set()


class Supervisor:
    """The dnsmasq this daemon runs itself, in its nursery (see the module's text)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid: int | None = None  # of the dnsmasq serving now
        self.failure: str | None = None  # why the last one ended or did not start
        self._wanted = False
        self._next: Start | None = None  # the start a restart() waits for
        self._scope: trio.CancelScope | None = None  # ends the running dnsmasq
        self._exited = trio.Event()  # set while no dnsmasq runs
        self._exited.set()
        self._wake = trio.Event()
        self._restarting = trio.Lock()  # one restart at a time: each waits for its own start

    async def run(self, *, at_once: bool, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Keep dnsmasq running while it is wanted (from now if `at_once`), until
        cancelled: the daemon stops, and so does its dnsmasq."""
        ended = await trio.to_thread.run_sync(_stop_leftovers, self.directory)
        if ended:
            log.warning("DHCP: ended dnsmasq %s, left by a daemon that did not stop", ended)
        self._wanted = self._wanted or at_once  # a makedhcp -n may have come first
        task_status.started()
        delay = RESTART_DELAYS[0]
        while True:
            self._wake = trio.Event()
            if not self._wanted:
                await self._wake.wait()
                continue
            start, self._next = self._next or Start(), None
            began = trio.current_time()
            with trio.CancelScope() as self._scope:
                await self._run_once(start)
            self._scope = None
            if self._next is not None or not self._wanted:  # restarted or stopped on purpose
                continue
            if trio.current_time() - began > STEADY:
                delay = RESTART_DELAYS[0]
            log.warning("DHCP: %s; starting it again in %.0f s", self.failure, delay)
            with trio.move_on_after(delay):
                await self._wake.wait()
            delay = min(delay * 2, RESTART_DELAYS[1])

    async def restart(self) -> Start:
        """Start dnsmasq afresh (it reads dnsmasq.conf only when it starts); the
        start, done or not after START_TIMEOUT."""
        async with self._restarting:
            self._wanted = True
            start = self._next = Start()
            self._end_current()
            with trio.move_on_after(STOP_TIMEOUT + START_TIMEOUT):
                await start.done.wait()
            return start

    async def stop(self) -> None:
        """No dnsmasq from now on; returns once the running one has exited."""
        self._wanted = False
        self._end_current()
        await self._exited.wait()

    def _end_current(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        self._wake.set()

    async def _run_once(self, start: Start) -> None:
        """One dnsmasq, from its start to its exit (or until cancelled, which stops it)."""
        self._exited = trio.Event()
        try:
            process = await trio.lowlevel.open_process(
                dnsmasq_command(self.directory),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, MARK: str(self.directory)},
            )
        except OSError as exc:
            self.failure = f"cannot run {PROGRAM}: {exc.strerror}"
            start.fail(self.failure)
            self._exited.set()
            return
        try:
            await self._watch(process, start)
        finally:
            self.pid = None
            self._exited.set()

    async def _watch(self, process: trio.Process, start: Start) -> None:
        """Its lines into the daemon's log; ready at "started"; ended (and
        why, if it ended on its own) when it exits or this is cancelled."""
        said: list[str] = []
        try:
            assert process.stderr is not None
            async for line in _lines(process.stderr):
                log.info("%s", line)
                said = [line]
                if STARTED in line:
                    self.pid, self.failure = process.pid, None
                    start.ready(process.pid)
            await process.wait()
        finally:
            on_its_own = process.returncode is not None
            with trio.CancelScope(shield=True):
                await _end(process)
            self.failure = _why_it_ended(start, said, process.returncode) if on_its_own else None
            start.fail(self.failure or "stopped before it had started")


def _why_it_ended(start: Start, said: list[str], returncode: int | None) -> str:
    """dnsmasq's own words when it did not start; how it ended when it had."""
    if not start.done.is_set():
        return _last_words(said)
    if returncode is not None and returncode < 0:
        return f"dnsmasq (pid {start.pid}) was killed by signal {-returncode}"
    return f"dnsmasq (pid {start.pid}) exited with status {returncode}"


class SystemdUnit:
    """xcatd-dhcp.service runs dnsmasq; makedhcp -n enables and restarts it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.failure: str | None = None

    async def restart(self) -> Start:
        start = Start()
        try:
            await _run("systemctl", "enable", UNIT)
            await _run("systemctl", "restart", UNIT)
            with trio.move_on_after(START_TIMEOUT):
                while not start.done.is_set():
                    await trio.sleep(0.1)
                    await self._check(start)
        except DhcpServiceError as exc:
            start.fail(str(exc))
        start.fail(f"{UNIT} did not start within {START_TIMEOUT:.0f} s")
        self.failure = start.failure
        return start

    async def stop(self) -> None:
        await _run("systemctl", "disable", "--now", UNIT)

    async def _check(self, start: Start) -> None:
        """Ready once dnsmasq has written its pid file (after binding its
        sockets); failed once systemd gave up on it or waits to restart it."""
        asked = ("-p", "ActiveState", "-p", "SubState", "-p", "MainPID")
        shown = await _run("systemctl", "show", *asked, UNIT)
        state = dict(line.partition("=")[::2] for line in shown.splitlines())
        pid = int(state.get("MainPID") or 0)
        with contextlib.suppress(OSError, ValueError):
            if pid and int((self.directory / "dnsmasq.pid").read_text()) == pid:
                start.ready(pid)
        if state.get("ActiveState") == "failed" or state.get("SubState") == "auto-restart":
            journal = await _run("journalctl", "-u", UNIT, "-n", "20", "-o", "cat")
            start.fail(
                _last_words([ln for ln in journal.splitlines() if ln.startswith("dnsmasq:")])
            )

    @staticmethod
    def manages(directory: Path) -> bool:
        """Whether systemd runs (PID 1) and the unit is installed for this
        directory (blocking: asks systemctl)."""
        if directory != SYSTEM_DIRECTORY or not Path("/run/systemd/system").is_dir():
            return False
        try:
            shown = subprocess.run(
                ["systemctl", "show", "-p", "LoadState", "--value", UNIT],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return False
        return shown.stdout.strip() == "loaded"


async def _run(*command: str) -> str:
    """A short command's output; DhcpServiceError with its last line when it fails."""
    return await run_program(*command, error=DhcpServiceError)


class DhcpService:
    """The DHCP service of this host, whoever runs it: the daemon owns one
    and runs `run` in its nursery; makedhcp restarts or stops it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.supervisor = Supervisor(directory)
        self.runner: Supervisor | SystemdUnit = self.supervisor

    async def run(self, *, serve: bool, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """`serve`: this host runs the DHCP service (xcatd.toml serve_dhcp)."""
        if await trio.to_thread.run_sync(SystemdUnit.manages, self.directory):
            self.runner = SystemdUnit(self.directory)
            log.info("DHCP: %s runs dnsmasq", UNIT)
            task_status.started()
            return
        at_once = serve and bool(served_interfaces(self.directory))
        await self.supervisor.run(at_once=at_once, task_status=task_status)

    @property
    def failure(self) -> str | None:
        """Why the service is not running, if it is known."""
        return self.runner.failure

    async def restart(self) -> int:
        """(Re)start it with dnsmasq.conf as it is now; the pid serving, or
        DhcpServiceError with dnsmasq's own words."""
        if why := await trio.to_thread.run_sync(check_conf, self.directory):
            raise DhcpServiceError(why)
        start = await self.runner.restart()
        if start.pid is None:
            raise DhcpServiceError(
                start.failure or f"dnsmasq did not start within {START_TIMEOUT:.0f} s"
            )
        return start.pid

    async def stop(self) -> None:
        await self.runner.stop()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    """The lines a process writes, as they come."""
    pending = b""
    async for chunk in stream:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace").rstrip()
    if pending:
        yield pending.decode(errors="replace").rstrip()


async def _end(process: trio.Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited after STOP_TIMEOUT; reaped."""
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(STOP_TIMEOUT):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.stderr is not None:
        await process.stderr.aclose()
