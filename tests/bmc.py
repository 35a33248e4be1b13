"""Simulated BMCs on loopback: one OpenIPMI `ipmi_sim` per BMC, each on its
own 127.77.x.y address and high UDP port, serving IPMI 2.0 (RMCP+) with one
administrator, its chassis a program ipmi_sim runs for every power and boot
request (its `chassis_control`):

- `QEMU_CHASSIS` (tests/chassis_control.py) owns a real QEMU machine;
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .chassis_control import HANG, SERIAL, Machine
from .cluster import free_port
from .netboot import Process

QEMU_CHASSIS = (sys.executable, "-I", "-S", str(Path(__file__).with_name("chassis_control.py")))
USER = "admin"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# ipmi_sim's emulated BMC: one management controller, no sensors.
EMULATION = """\
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""


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
        """ipmitool's command line for this BMC (-C 3: ipmi_sim answers no
        cipher suite query, which costs 10 s a call otherwise)."""
        return ["ipmitool", "-I", "lanplus", "-C", "3", "-H", self.address, "-p",
                str(self.port), "-U", USER, "-P", self.password, *args]  # fmt: skip


class BmcLab:
    def __init__(
        self, workdir: Path, chassis: Sequence[str], prefix: Sequence[str] = (), address: str = ""
    ) -> None:
        self.workdir = workdir
        self.chassis = list(chassis)
        self.prefix = list(prefix)  # runs the simulators in a network namespace
        self.address = address  # all of them on this one, else each on its own 127.77.x.y
        self.bmcs: list[Bmc] = []

    def start(self, count: int, password: str = "ipmi-secret", console: bool = False) -> list[Bmc]:
        """`count` more BMCs, each answering when this returns; with `console`,
        each serves Serial over LAN from its machine's serial console."""
        started = [self._start(len(self.bmcs) + i, password, console) for i in range(count)]
        self.bmcs += started
        deadline = time.monotonic() + START_TIMEOUT + count * 0.02
        for bmc in started:
            while not self._bound(bmc):
                if bmc.process.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{bmc.name} did not start:\n{bmc.process.tail()}")
                time.sleep(0.02)
        return started

    def _start(self, index: int, password: str, console: bool) -> Bmc:
        name = f"bmc{index + 1}"
        directory = self.workdir / name
        (directory / "ipmi-state").mkdir(parents=True)
        address = self.address or f"127.77.{index // 250}.{index % 250 + 1}"
        port = free_port(socket.SOCK_DGRAM)
        chassis = " ".join([*self.chassis, str(directory)])
        sol = ""
        if console:
            serial = free_port()
            (directory / SERIAL).write_text(f"{serial}\n")
            sol = f'  sol "telnet:127.0.0.1:{serial}" 115200\n'
        (directory / "lan.conf").write_text(
            f'name "{name}"\n'
            "set_working_mc 0x20\n"
            "  startlan 1\n"
            f"    addr {address} {port}\n"
            "    priv_limit admin\n"
            "    allowed_auths_admin none md2 md5 straight\n"
            f"    guid {index + 1:032x}\n"
            "  endlan\n"
            f'  chassis_control "{chassis}"\n'
            f"{sol}"
            f'  user 2 true "{USER}" "{password}" admin 10 none md2 md5 straight\n'
        )
        (directory / "emu").write_text(EMULATION)
        command = ["ipmi_sim", "-n", "-c", directory / "lan.conf", "-f", directory / "emu",
                   "-s", directory / "ipmi-state"]  # fmt: skip
        process = Process([*self.prefix, *command], directory / "log")
        return Bmc(name, address, port, password, directory, process)

    def restart(self, bmc: Bmc) -> None:
        """Stop a simulator (and its machine) and start it again on the same
        address and port, with its state: a BMC that reboots."""
        bmc.process.stop()
        bmc.process = Process(bmc.process.argv, bmc.process.log)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._bound(bmc):
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

    def _bound(self, bmc: Bmc) -> bool:
        """Whether the BMC's simulator listens (in its namespace, if any)."""
        if not self.prefix:
            return _bound(bmc.address, bmc.port)
        listening = subprocess.run([*self.prefix, "ss", "-Hlun", f"sport = :{bmc.port}"],
                                   capture_output=True, text=True)  # fmt: skip
        return bool(listening.stdout.strip())


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
def bmc_lab(
    chassis: Sequence[str], prefix: Sequence[str] = (), address: str = ""
) -> Iterator[BmcLab]:
    """BMCs whose chassis is the program `chassis` (run with the BMC's state
    directory after it), all stopped on leaving; in a network namespace and
    on its `address` with a `prefix` (Network.prefix).  Their files live in
    a short temporary directory (QMP's socket path must fit in 108 bytes)."""
    workdir = Path(tempfile.mkdtemp(prefix="xcatd-bmcs-"))
    lab = BmcLab(workdir, chassis, prefix, address)
    try:
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
