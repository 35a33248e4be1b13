"""The chassis behind a simulated BMC: OpenIPMI's ipmi_sim runs this program
(its `chassis_control` setting) for every power and boot request, and the
program acts on a real QEMU machine, as a BMC acts on its server.  `xcatd
lab` gives each of its machines one; the power and console tests use it too.

    chassis_control.py STATEDIR get power|boot ...   prints power:1, boot:pxe, ...
    chassis_control.py STATEDIR set power 0|1 | reset 1 | shutdown 1 | boot DEVICE
    chassis_control.py STATEDIR resume       (its own helper: see below)

Power on starts QEMU, no disk, no display, paused at its first instruction.
The machine is STATEDIR/hardware (JSON) when that exists: `accel`,
`memory_mb` and `nics` ([tap, MAC, model], the taps already on their
bridges), a diskless machine that boots from its first NIC, as a lab's
machines are; without it, TCG with 64 MiB and no NIC (nothing needs it to
run).  It stays in ipmi_sim's process group, so stopping the simulator's
group stops the machine too.  When STATEDIR/serial holds a port (the BMC
serves Serial over LAN from it), the machine gets a serial console there (a
telnet server ipmi_sim connects to, its output also in STATEDIR/serial.log),
and a machine without NICs runs GUEST_KERNEL, which prints GUEST_READY and
waits at an `iPXE>` prompt; it stays paused until ipmi_sim has connected to
its serial port (QEMU drops console output while nobody is connected, and
ipmi_sim tries only every 10 s), then runs.  Power off
ends the QEMU process.  Reset and soft-off go to QEMU's QMP socket
(`system_reset`, `system_powerdown`), and the events QEMU answers with
(RESET, POWERDOWN) are appended to STATEDIR/events, one line each.  A boot
device (ipmi_sim says pxe, default (the disk), cdrom, bios or none) is kept
in STATEDIR/bootdev as a one-shot override, as a real BMC keeps it: the next
power-on or reset starts QEMU with `-boot once=<drive>` and consumes it.
Requests are idempotent: ipmi_sim runs a request again when the first
answer was slow.  While STATEDIR/hang exists, every `set` request hangs
until the program is killed: a BMC that stops answering mid-operation.

Standard library only, and run with `python -I -S`: ipmi_sim waits for it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

QEMU = "qemu-system-x86_64"
# ipmi_sim's names of boot devices -> QEMU's `-boot once=` drive letters.
BOOT_DRIVES = {"pxe": "n", "default": "c", "cdrom": "d"}
NO_OVERRIDE = "none"
START_TIMEOUT = 10.0  # for QEMU's QMP socket to answer
STOP_TIMEOUT = 5.0  # for QEMU to exit on SIGTERM before SIGKILL
QMP_TIMEOUT = 2.0  # for each of QEMU's QMP answers
HANG = "hang"  # a file in STATEDIR that makes set requests hang
SERIAL = "serial"  # a file in STATEDIR: the TCP port of the machine's serial console
HARDWARE = "hardware"  # a file in STATEDIR: the machine's accelerator, memory and NICs
# The guest of a machine with a serial console: iPXE as a Linux kernel, its
# command line a script that prints GUEST_READY and opens iPXE's shell.
GUEST_KERNEL = "/usr/lib/ipxe/ipxe.lkrn"
GUEST_READY = "console-guest-ready"
GUEST_PROMPT = "iPXE>"
SOL_CONNECT_TIMEOUT = 30.0  # for ipmi_sim to connect to the serial console


class Machine:
    """The QEMU machine of one BMC, all of its state under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pidfile = directory / "qemu.pid"
        self.qmp = directory / "qmp.sock"
        self.bootdev = directory / "bootdev"
        self.events = directory / "events"
        self.serial = directory / SERIAL
        self.serial_log = directory / "serial.log"
        self.hardware = directory / HARDWARE

    def pid(self) -> int | None:
        """QEMU's process id while it runs (a zombie has stopped running)."""
        try:
            pid = int(self.pidfile.read_text())
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def override(self) -> str:
        return self.bootdev.read_text().strip() if self.bootdev.exists() else NO_OVERRIDE

    def power_on(self) -> None:
        if self.pid() is not None:
            return
        boot = BOOT_DRIVES.get(self.override())
        self.bootdev.unlink(missing_ok=True)  # one-shot: consumed by this boot
        self.qmp.unlink(missing_ok=True)
        hardware = json.loads(self.hardware.read_text()) if self.hardware.exists() else {}
        nics = hardware.get("nics", [])
        command = [
            QEMU, "-accel", hardware.get("accel", "tcg"), "-m", str(hardware.get("memory_mb", 64)),
            "-nodefaults", "-display", "none", "-S",
            "-name", self.directory.name, "-pidfile", str(self.pidfile),
            "-qmp", f"unix:{self.qmp},server=on,wait=off",
            *(("-boot", f"once={boot}") if boot else ()),
            *nic_arguments(nics),
            *self._console(guest=not nics),
        ]  # fmt: skip
        with (self.directory / "qemu.log").open("ab") as log:
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._qmp_answers():
            if time.monotonic() > deadline:
                raise SystemExit(f"QEMU did not start: see {self.directory / 'qemu.log'}")
            time.sleep(0.02)
        if self.serial.exists():
            # Not waited for here: ipmi_sim waits for this program's answer.
            subprocess.Popen([sys.executable, "-I", "-S", __file__, str(self.directory), "resume"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # fmt: skip

    def _console(self, guest: bool) -> list[str]:
        """QEMU's arguments for the serial console and, with `guest`, GUEST_KERNEL."""
        if not self.serial.exists():
            return []
        port = int(self.serial.read_text())
        chardev = (f"socket,id=ser0,host=127.0.0.1,port={port},telnet=on,server=on,"
                   f"wait=off,logfile={self.serial_log},logappend=on")  # fmt: skip
        kernel = ["-kernel", GUEST_KERNEL, "-append", f"echo {GUEST_READY} && shell"]
        return ["-nographic", "-monitor", "none", "-chardev", chardev, "-serial", "chardev:ser0",
                *(kernel if guest else [])]  # fmt: skip

    def resume_when_watched(self) -> None:
        """Run the paused machine once ipmi_sim is connected to its serial
        console (or after SOL_CONNECT_TIMEOUT: a machine must run anyway)."""
        deadline = time.monotonic() + SOL_CONNECT_TIMEOUT
        while time.monotonic() < deadline and not self._serial_connected():
            time.sleep(0.2)
        self._qmp("cont", lambda message: "return" in message)

    def _serial_connected(self) -> bool:
        try:
            devices = self._qmp("query-chardev", lambda message: "return" in message)["return"]
        except (OSError, ValueError, SystemExit):
            return False
        return any(d["label"] == "ser0" and "<->" in d["filename"] for d in devices)

    def power_off(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pid() is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def reset(self) -> None:
        """A hard reset; a boot override makes it a restart with that device."""
        if self.pid() is None:
            return
        if self.override() != NO_OVERRIDE:
            self.power_off()
            self.power_on()
        else:
            self._qmp_event("system_reset", "RESET")

    def soft_off(self) -> None:
        """The ACPI power button: the guest's OS decides what follows."""
        if self.pid() is not None:
            self._qmp_event("system_powerdown", "POWERDOWN")

    def _qmp_answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(self.qmp))
            return True
        except OSError:
            return False

    def status(self) -> str:
        """QEMU's run state as QMP's query-status tells it (prelaunch, running, ...)."""
        return self._qmp("query-status", lambda message: "return" in message)["return"]["status"]

    def _qmp_event(self, command: str, event: str) -> None:
        """Run a QMP command, and record `event` in STATEDIR/events once QEMU
        reports it (as it does when it has done what the command asked)."""
        self._qmp(command, lambda message: message.get("event") == event)
        with self.events.open("a") as events:
            events.write(f"{event}\n")

    def _qmp(self, command: str, until: Callable[[dict], bool]) -> dict:
        """Run a QMP command; the first message after it that `until` accepts."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(QMP_TIMEOUT)
            sock.connect(str(self.qmp))
            stream = sock.makefile("rwb")
            stream.readline()  # the greeting
            _send(stream, "qmp_capabilities")
            while "return" not in json.loads(stream.readline()):
                pass
            _send(stream, command)
            while not until(message := json.loads(stream.readline())):
                if "error" in message:
                    raise SystemExit(f"QMP {command}: {message['error']}")
            return message


def nic_arguments(nics: Sequence[Sequence[str]]) -> list[str]:
    """QEMU's arguments for NICs, each (tap, MAC, NIC model); only the
    first has a boot ROM, so the machine boots from that one.

    No `romfile=` for it: QEMU's default ROM for each NIC model is
    ipxe-qemu's, and only for its default ROM does QEMU patch the PCI IDs to
    the device's (the virtio ROM says 1af4:1041, a transitional
    virtio-net-pci is 1af4:1000, and SeaBIOS skips a ROM whose IDs do not
    match)."""
    return [
        word
        for n, (tap, mac, model) in enumerate(nics)
        for word in (
            *("-netdev", f"tap,id=net{n},ifname={tap},script=no,downscript=no"),
            *("-device", f"{model},netdev=net{n},mac={mac}" + (",romfile=" if n else "")),
        )
    ]


def _send(stream: io.BufferedIOBase, command: str) -> None:
    stream.write(json.dumps({"execute": command}).encode() + b"\n")
    stream.flush()


def get(machine: Machine, what: list[str]) -> None:
    for item in what:
        if item == "power":
            print(f"power:{int(machine.pid() is not None)}")
        elif item == "boot":
            print(f"boot:{machine.override()}")


def set_(machine: Machine, pairs: list[str]) -> None:
    for item, value in zip(pairs[::2], pairs[1::2], strict=True):
        if item == "power":
            machine.power_on() if value == "1" else machine.power_off()
        elif item == "reset" and value == "1":
            machine.reset()
        elif item == "shutdown" and value == "1":
            machine.soft_off()
        elif item == "boot":
            machine.bootdev.write_text(f"{value}\n")


def main(argv: list[str]) -> None:
    directory, verb, *rest = argv
    machine = Machine(Path(directory))
    if verb == "set" and (machine.directory / HANG).exists():
        signal.pause()  # until the simulator's process group is stopped
    if verb == "resume":
        machine.resume_when_watched()
        return
    (get if verb == "get" else set_)(machine, rest)


if __name__ == "__main__":
    main(sys.argv[1:])
