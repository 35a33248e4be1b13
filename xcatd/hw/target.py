"""Where a node's hardware is controlled, what can go wrong with one node,
and what every driver offers.

A node's target comes from its effective (possibly inherited) attributes:
the method is `power`, else `mgt` (xCAT's nodehm), the BMC is `bmc` (port
`bmcport`, else the method's: 623 for IPMI, 443 for Redfish), the
credentials `bmcusername` and `bmcpassword`.  There is no `passwd` table
here: credentials shared by many nodes go on one of their groups
(`chdef -t group ipmi bmcusername=... bmcpassword=...`), and a node without
them is refused rather than tried with a vendor's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# The node attributes a target is made from.
HW_ATTRIBUTES = ("mgt", "power", "bmc", "bmcport", "bmcusername", "bmcpassword")
# The methods xcatd has a driver for, and their BMCs' usual ports.
PORTS = {"ipmi": 623, "redfish": 443}
METHODS = tuple(PORTS)


class HardwareError(Exception):
    """Why one node's hardware could not be controlled: the one line its
    administrator reads after `<node>: Error: `."""


class NoAnswer(HardwareError):
    """The BMC did not answer (in time): worth another try."""


@dataclass(frozen=True)
class Target:
    method: str
    address: str
    port: int
    username: str
    password: str = field(repr=False)  # never in a log line or a traceback

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


class Driver(Protocol):
    """One logged-in session with a node's BMC.  Every method blocks (worker
    threads only) and raises HardwareError."""

    def power_state(self) -> str:
        """on or off."""
        ...

    def power(self, action: str) -> None:
        """on, off, cycle, reset or softoff, at once, without waiting for its effect."""
        ...

    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        """The next boot device: net, hd, cd, or def (the firmware's own order)."""
        ...

    def boot_device(self) -> str:
        """The boot override in force: net, hd, cd, setup, floppy, default, or
        none when there is none."""
        ...

    def close(self) -> None:
        """Log out; never raises."""
        ...


def target_for(node: str, values: dict[str, str]) -> Target:
    """The target of a node with these effective attributes, or HardwareError
    saying what to set."""
    attribute = "power" if values.get("power") else "mgt"
    method = values.get(attribute)
    if not method:
        raise HardwareError("mgt is not set: set it with chdef <node> mgt=ipmi")
    if method not in METHODS:
        raise HardwareError(
            f"{attribute}={method}: xcatd has no {method} hardware control "
            f"(it has {', '.join(METHODS)})"
        )
    address = values.get("bmc")
    if not address:
        raise HardwareError("no BMC: set one with chdef <node> bmc=<address>")
    missing = [a for a in ("bmcusername", "bmcpassword") if not values.get(a)]
    if missing:
        raise HardwareError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set "
            "them on the node or one of its groups (chdef <group> bmcusername=<user> "
            "bmcpassword=<password>)"
        )
    port = _port(values, PORTS[method])
    return Target(method, address, port, values["bmcusername"], values["bmcpassword"])


def _port(values: dict[str, str], default: int) -> int:
    text = values.get("bmcport") or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise HardwareError(f"bmcport '{text}' is not a port number")
    return int(text)
