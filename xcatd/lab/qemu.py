"""QEMU machines that boot from the network, and the probe that tells
whether KVM guests really run here (on some machines /dev/kvm opens but
guests hang or QEMU aborts: then TCG)."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .chassis_control import QEMU, nic_arguments
from .process import Process, ProgramError

# A tiny guest that prints to the serial console within a second of starting
# when the accelerator works (iPXE as a Linux kernel image, from package ipxe).
PROBE_KERNEL = "/usr/lib/ipxe/ipxe.lkrn"
PROBE_BANNER = "Open Source Network Boot Firmware"
PROBE_TIMEOUT = 4.0
# No default devices (so no VGA): SeaBIOS and iPXE then print on the serial
# port, which is the program's stdout and so its log.
SERIAL_CONSOLE = ("-nodefaults", "-nographic", "-monitor", "none", "-serial", "stdio")


def accelerator() -> str:
    return "kvm" if kvm_works() else "tcg"


def vm_command(nics: Sequence[tuple[str, str, str]], memory_mb: int) -> list[str]:
    """The QEMU command line of a network-booting machine with `nics`, each
    (tap, MAC, NIC model), its serial console on stdout; it boots from the
    first NIC, and exits instead of rebooting (a guest that panics stops)."""
    return [
        QEMU,
        *("-accel", accelerator()),
        *("-m", str(memory_mb)),
        *SERIAL_CONSOLE,
        *nic_arguments(nics),
        *("-boot", "n", "-no-reboot"),
    ]


@functools.cache
def kvm_works() -> bool:
    """Whether a KVM guest really runs here; asked once per process."""
    return guest_runs("kvm", PROBE_TIMEOUT)


def guest_runs(accel: str, timeout: float) -> bool:
    """Whether a tiny guest under QEMU accelerator `accel` prints its banner
    on the serial console within `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="xcatd-probe-") as tmp:
        guest = Process(
            [QEMU, "-accel", accel, "-m", "64", *SERIAL_CONSOLE, "-kernel", PROBE_KERNEL],
            Path(tmp) / "probe.log",
        )
        try:
            guest.wait_for(PROBE_BANNER, timeout)
            return True
        except ProgramError:
            return False
        finally:
            guest.stop()
