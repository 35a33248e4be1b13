"""Simulated BMCs: one OpenIPMI `ipmi_sim` per BMC, serving IPMI 2.0
(RMCP+) on one address and UDP port with one administrator, its chassis a
program ipmi_sim runs for every power and boot request (its
`chassis_control`: CHASSIS, which owns a real QEMU machine), and Serial
over LAN from the machine's serial console when it has one.

Everything of one BMC lives in its directory: lan.conf, the emulation
file, ipmi_sim's state, and the chassis program's (the machine's QMP
socket, pid file, boot override; the QMP socket's path must fit in 108
bytes, so keep the directory's path short)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import chassis_control
from .chassis_control import SERIAL

# The chassis program, run with only the standard library: ipmi_sim waits for it.
CHASSIS = (sys.executable, "-I", "-S", chassis_control.__file__)
USER = "admin"
IPMI_SIM = "ipmi_sim"
# ipmi_sim's emulated BMC: one management controller, no sensors.
EMULATION = """\
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""


def configure(
    directory: Path,
    name: str,
    address: str,
    port: int,
    password: str,
    guid: int,
    chassis: Sequence[str] = CHASSIS,
    serial_port: int | None = None,
) -> list[str]:
    """Write a BMC's files into `directory` (made here); the command line
    that runs it.  With `serial_port`, its machine's serial console is a
    telnet server on 127.0.0.1:`serial_port`, which the BMC serves as SOL."""
    (directory / "ipmi-state").mkdir(parents=True)
    sol = ""
    if serial_port is not None:
        (directory / SERIAL).write_text(f"{serial_port}\n")
        sol = f'  sol "telnet:127.0.0.1:{serial_port}" 115200\n'
    program = " ".join([*chassis, str(directory)])
    (directory / "lan.conf").write_text(
        f'name "{name}"\n'
        "set_working_mc 0x20\n"
        "  startlan 1\n"
        f"    addr {address} {port}\n"
        "    priv_limit admin\n"
        "    allowed_auths_admin none md2 md5 straight\n"
        f"    guid {guid:032x}\n"
        "  endlan\n"
        f'  chassis_control "{program}"\n'
        f"{sol}"
        f'  user 2 true "{USER}" "{password}" admin 10 none md2 md5 straight\n'
    )
    (directory / "emu").write_text(EMULATION)
    return [IPMI_SIM, "-n", "-c", str(directory / "lan.conf"), "-f", str(directory / "emu"),
            "-s", str(directory / "ipmi-state")]  # fmt: skip


def listening(prefix: Sequence[str], port: int, address: str = "") -> bool:
    """Whether something listens on UDP `port` (of `address`, if given) in
    the namespace `prefix` enters."""
    where = f"src {address}:{port}" if address else f"sport = :{port}"
    found = subprocess.run([*prefix, "ss", "-Hlun", where], capture_output=True, text=True)
    return bool(found.stdout.strip())


def ipmitool(address: str, port: int, password: str, *args: str) -> list[str]:
    """ipmitool's command line for a BMC (-C 3: ipmi_sim answers no cipher
    suite query, which costs 10 s a call otherwise)."""
    return ["ipmitool", "-I", "lanplus", "-C", "3", "-H", address, "-p", str(port),
            "-U", USER, "-P", password, *args]  # fmt: skip
