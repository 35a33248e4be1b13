"""Simulated BMCs for tests (xcatd lab's, xcatd/lab/bmc.py), on loopback:
one OpenIPMI `ipmi_sim` per BMC, each on its own 127.77.x.y address and
high UDP port, serving IPMI 2.0 (RMCP+) with one administrator, its chassis
a program ipmi_sim runs for every power and boot request (its
`chassis_control`):

- `QEMU_CHASSIS` (xcatd/lab/chassis_control.py, xcatd lab's) owns a real QEMU machine;
- the benchmark's (bench/chassis_state.sh) only keeps the power in a file.

    with bmc_lab(QEMU_CHASSIS) as lab:
        bmc, other = lab.start(2)           # listening when start returns
        cluster.ok("mkdef", "n1", "groups=all", *bmc.attributes())
        bmc.machine.pid()                   # the QEMU process, while powered on

Each simulator runs in a process group of its own, with its chassis program
and the machine that program started; leaving the `with` block ends every
group and waits until every machine is gone, whatever the test did.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xcatd.lab import bmc as simulator
from xcatd.lab.bmc import CHASSIS as QEMU_CHASSIS
from xcatd.lab.bmc import USER
from xcatd.lab.chassis_control import HANG, Machine
from xcatd.lab.process import Process

from .cluster import free_port

__all__ = ["QEMU_CHASSIS", "USER", "Bmc", "BmcLab", "bmc_lab"]
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@dataclass
class Bmc:
    name: str
    address: str
    port: int
    password: str
    directory: Path  # its configuration, logs, and its chassis program's state
    process: Process

    @property
    def machine(self) -> Machine:
        """The chassis: its QEMU machine (with QEMU_CHASSIS), boot override, events."""
        return Machine(self.directory)

    def attributes(self, **changed: str) -> list[str]:
        """The node attributes that point xcatd at this BMC (mkdef/chdef arguments)."""
        values = {"mgt": "ipmi", "bmc": self.address, "bmcport": str(self.port),
                  "bmcusername": USER, "bmcpassword": self.password} | changed  # fmt: skip
        return [f"{key}={value}" for key, value in values.items()]

    def hang(self) -> None:
        """From now on this BMC stops answering at its next power or boot
        change (its chassis program never returns, and ipmi_sim waits for it)."""
        (self.directory / HANG).touch()

    def ipmitool(self, *args: str) -> list[str]:
        return simulator.ipmitool(self.address, self.port, self.password, *args)


class BmcLab:
    def __init__(self, workdir: Path, chassis: Sequence[str]) -> None:
        self.workdir = workdir
        self.chassis = list(chassis)
        self.bmcs: list[Bmc] = []

    def start(self, count: int, password: str = "ipmi-secret", console: bool = False) -> list[Bmc]:
        """`count` more BMCs, each answering when this returns; with `console`,
        each serves Serial over LAN from its machine's serial console."""
        started = [self._start(len(self.bmcs) + i, password, console) for i in range(count)]
        self.bmcs += started
        deadline = time.monotonic() + START_TIMEOUT + count * 0.02
        for bmc in started:
            while not _bound(bmc.address, bmc.port):
                if bmc.process.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{bmc.name} did not start:\n{bmc.process.tail()}")
                time.sleep(0.02)
        return started

    def _start(self, index: int, password: str, console: bool) -> Bmc:
        name = f"bmc{index + 1}"
        directory = self.workdir / name
        address = f"127.77.{index // 250}.{index % 250 + 1}"
        port = free_port(socket.SOCK_DGRAM)
        command = simulator.configure(directory, name, address, port, password, index + 1,
                                      self.chassis, free_port() if console else None)  # fmt: skip
        process = Process(command, directory / "log")
        return Bmc(name, address, port, password, directory, process)

    def restart(self, bmc: Bmc) -> None:
        """Stop a simulator (and its machine) and start it again on the same
        address and port, with its state: a BMC that reboots."""
        bmc.process.stop()
        bmc.process = Process(bmc.process.argv, bmc.process.log)
        deadline = time.monotonic() + START_TIMEOUT
        while not _bound(bmc.address, bmc.port):
            if bmc.process.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{bmc.name} did not start again:\n{bmc.process.tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Every simulator's process group (its chassis program and machine with
        it), then every machine still running, however it got there."""
        for bmc in self.bmcs:
            bmc.process.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for bmc in self.bmcs:
            while (pid := bmc.machine.pid()) is not None:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)


def _bound(address: str, port: int) -> bool:
    """Whether a program is listening on UDP address:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


@contextmanager
def bmc_lab(chassis: Sequence[str]) -> Iterator[BmcLab]:
    """BMCs whose chassis is the program `chassis` (run with the BMC's state
    directory after it), all stopped on leaving.  Their files live in a
    short temporary directory (QMP's socket path must fit in 108 bytes)."""
    workdir = Path(tempfile.mkdtemp(prefix="xcatd-bmcs-"))
    lab = BmcLab(workdir, chassis)
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
