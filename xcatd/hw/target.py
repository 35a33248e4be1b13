"""Where a node's hardware is controlled, what can go wrong with one node,
and what every driver offers.

A node's target comes from its effective (possibly inherited) attributes:
the method is `power`, else `mgt` (xCAT's nodehm), the BMC is `bmc` (port
`bmcport`, else the method's: 623 for IPMI, 443 for Redfish), the
credentials `bmcusername` and `bmcpassword`, else the passwd table's row
of the method (`chtab key=ipmi passwd.username=... passwd.password=...`),
as xCAT picks them: for IPMI the node's pair when it sets either
(PasswordUtils.pm getIPMIAuth), for Redfish each of the two on its own
(AGENT.pm parse_node_info).  A node with neither is refused rather than
tried with a vendor's default (xCAT's USERID/PASSW0RD).  A service node
reads the management node's passwd rows, which it keeps in memory
(servicenode/serving.py `bmc_defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import sqlite_utils

from ..errors import XcatdError
from ..store import objects
from ..store.objtypes import PASSWD

# The node attributes a target is made from.
HW_ATTRIBUTES = ("mgt", "power", "bmc", "bmcport", "bmcusername", "bmcpassword")
# The methods xcatd has a driver for, and their BMCs' usual ports.
PORTS = {"ipmi": 623, "redfish": 443}
METHODS = tuple(PORTS)


class HardwareError(XcatdError):
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
    # Where the credentials were found, for the line saying what to check.
    user_from: str = field(default="bmcusername", compare=False)
    password_from: str = field(default="bmcpassword", compare=False)

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


# The passwd table's rows by key (ipmi, redfish), each its username and password.
Defaults = Mapping[str, Mapping[str, str]]
# A passwd row is in force while its `disable` is unset or says no (xCAT's
# Table.pm reads only rows whose disable is NULL, 0 or no).
ENABLED = ("", "0", "no", "n")


def passwd_defaults(db: sqlite_utils.Database) -> Defaults:
    """The passwd table's rows in force for the methods xcatd drives."""
    rows = objects.load(db, PASSWD, METHODS, columns=["username", "password", "disable"])
    return {key: row for key, row in rows.items() if row.get("disable", "").lower() in ENABLED}


def passwd_keys(values: Mapping[str, str | None]) -> set[str]:
    """The passwd rows a node with these effective attributes is driven
    with, as xCAT's plugins read them whatever the node's own credentials
    (PasswordUtils.pm reads key=ipmi for every IPMI node): those of its
    power method (`power`, else `mgt`) and of its console (`cons`), among
    the methods xcatd drives."""
    named = (values.get("power") or values.get("mgt"), values.get("cons"))
    return {method for method in named if method in METHODS}


def target_for(node: str, values: dict[str, str], defaults: Defaults) -> Target:
    """The target of a node with these effective attributes, its credentials
    falling back to the passwd table's `defaults`, or HardwareError saying
    what to set."""
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
    port = _port(values, PORTS[method])
    (username, user_from), (password, password_from) = _credentials(method, values, defaults)
    return Target(method, address, port, username, password, user_from, password_from)


CREDENTIALS = (("bmcusername", "username"), ("bmcpassword", "password"))


def _credentials(method: str, values: dict[str, str], defaults: Defaults) -> list[tuple[str, str]]:
    """The user name and the password, each with where it was found."""
    row = defaults.get(method, {})
    own = method == "ipmi" and any(values.get(a) for a, _ in CREDENTIALS)
    found = []
    for attribute, column in CREDENTIALS:
        if values.get(attribute) or own:
            found.append((values.get(attribute, ""), attribute))
        else:
            found.append((row.get(column, ""), f"passwd.{column} (key={method})"))
    missing = [
        attribute
        for (attribute, _), (value, _) in zip(CREDENTIALS, found, strict=True)
        if not value
    ]
    if missing:
        raise HardwareError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set "
            "them on the node or one of its groups (chdef <group> bmcusername=<user> "
            f"bmcpassword=<password>), or the defaults (chtab key={method} "
            "passwd.username=<user> passwd.password=<password>)"
        )
    return found


def _port(values: dict[str, str], default: int) -> int:
    text = values.get("bmcport") or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise HardwareError(f"bmcport '{text}' is not a port number")
    return int(text)
