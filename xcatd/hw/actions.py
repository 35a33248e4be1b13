"""rpower, rsetboot and rnetboot on one node, as xCAT's ipmi plugin does
them, over any driver.  Each returns the text xCAT prints after `<node>: `,
and runs in a worker thread (drivers block).
"""

from __future__ import annotations

from collections.abc import Callable

from .target import Driver, Target

Operation = Callable[[Driver], str]

POWER_ACTIONS = ("on", "off", "stat", "state", "status", "reset", "boot", "cycle", "softoff")
READS = ("stat", "state", "status")  # xCAT's three words for reading the power
BOOT_DEVICES = ("net", "hd", "cd", "def", "default", "stat")
# The power state in which a power action has nothing to do.
NOTHING_TO_DO = {"on": "on", "off": "off", "softoff": "off", "reset": "off"}
# A boot override in xCAT's words (rsetboot's answers).
BOOT_TEXT = {
    "net": "Network",
    "hd": "Hard Drive",
    "cd": "CD/DVD",
    "default": "BIOS default",
    "setup": "BIOS Setup",
    "floppy": "Floppy",
    "none": "boot override inactive",
}
NETBOOTED = "Success"  # what rnetboot prints for a node it booted, as xCAT's does


def run(target: Target, operation: Operation) -> str:
    """Log in to the target's BMC, do `operation`, log out."""
    driver = _connect(target)
    try:
        return operation(driver)
    finally:
        driver.close()


def _connect(target: Target) -> Driver:
    # Each imported by the first session of its kind rather than at every
    # daemon start: importing pyghmi takes 0.14 s, sushy 0.3 s.
    if target.method == "redfish":
        from .redfish import RedfishDriver

        return RedfishDriver(target)
    from .ipmi import IpmiDriver

    return IpmiDriver(target)


def power(driver: Driver, action: str) -> str:
    """xCAT's rpower: stat, state and status read the power; on of a machine that is
    on, and off, softoff or reset of one that is off, send nothing and print
    its state; boot is on for a machine that is off and reset for one that is
    on; cycle is always sent.  The answer is what the BMC accepted, not yet
    its effect."""
    state = driver.power_state()
    if action in READS:
        return state
    if action == "boot":
        action = "reset" if state == "on" else "on"
    if NOTHING_TO_DO.get(action) == state:
        return state
    driver.power(action)
    return action


def set_boot(driver: Driver, device: str, persistent: bool, uefi: bool) -> str:
    """xCAT's rsetboot: stat reads the override in force; any other device
    becomes the next boot's (every boot's with `persistent`), and the answer
    is that override as xCAT's read-back names it (def: none in force)."""
    if device == "stat":
        found = driver.boot_device()
        return BOOT_TEXT.get(found, found)
    device = "def" if device == "default" else device
    driver.set_boot(device, persistent, uefi)
    return BOOT_TEXT["none" if device == "def" else device]


def boot_from_network(driver: Driver, uefi: bool = False) -> str:
    """rinstall's rsetboot net (UEFI with `uefi`) then rpower boot (on, or a
    reset when the machine is on), in one session; what rpower boot did."""
    driver.set_boot("net", persistent=False, uefi=uefi)
    return power(driver, "boot")


def netboot(driver: Driver) -> str:
    """rnetboot: the next boot from the network, then rpower boot."""
    boot_from_network(driver)
    return NETBOOTED
