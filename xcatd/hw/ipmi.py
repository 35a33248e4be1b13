"""The IPMI 2.0 (RMCP+) driver, through pyghmi.

pyghmi is blocking (one I/O thread of its own; callers wait on events), so
a session is opened and used in a worker thread only.  Power is read and set
with the chassis commands xCAT sends (Get Chassis Status, Chassis Control),
not pyghmi's set_power, whose meaning of reset and boot differs from xCAT's;
the boot device with pyghmi's set_bootdev and Get System Boot Options.

Credentials go to pyghmi as bytes: pyghmi keeps one session per BMC and user
and finds it again by comparing its stored (bytes) credentials with those
given; given as str they never match, and a second session with the same
credentials waits forever for a login that already happened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.command import Command
from pyghmi.ipmi.private.session import Session

from .target import HardwareError, NoAnswer, Target

# Chassis Control (netfn 0, command 2) values, as xCAT's ipmi plugin sends them.
CHASSIS_CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "softoff": 5}
# rsetboot's devices in pyghmi's names.
BOOT_DEVICES = {"net": "network", "hd": "hd", "cd": "optical", "def": "default"}
# Get System Boot Options, boot flags: the device selector (bits 5-2) by name.
BOOT_SELECTORS = {0: "default", 1: "net", 2: "hd", 5: "cd", 6: "setup", 15: "floppy"}
BOOT_FLAGS_VALID = 0x80
# What pyghmi says when a BMC does not answer, or stopped answering.
_NO_ANSWER = ("", "timeout", "Session no longer connected", "Session failed to initialize")

# pyghmi makes the lock that guards its sockets and its I/O thread when its
# first session starts, unguarded: threads starting the first sessions at
# once can each make one and start an I/O thread each; a caller is woken by
# the I/O thread it waits on, so an answer the other one reads reaches it only
# at its timeout.  (pyghmi leaves this lock for its caller to set.)  Made
# here, by this module's one import, before any session.
if Session.socketchecking is None:
    Session.socketchecking = threading.Lock()


LOGIN_ATTEMPTS = 4  # see IpmiDriver._login


class IpmiDriver:
    """A logged-in session with one BMC (see `Driver`)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        with self._translated():
            self._command = self._login()

    def _login(self) -> Command:
        target = self.target
        credentials = (target.username.encode(), target.password.encode())
        for _ in range(LOGIN_ATTEMPTS - 1):
            try:
                return Command(target.address, *credentials, port=target.port)
            except AttributeError:
                # pyghmi 1.6 can report a failed login before it has stored
                # why ('Session' object has no attribute 'errormsg'), more
                # often on a loaded machine; that session is gone, and
                # logging in again tells why.
                continue
        return Command(target.address, *credentials, port=target.port)

    def power_state(self) -> str:
        status = self._raw(netfn=0, command=1)
        return "on" if status[0] & 1 else "off"

    def power(self, action: str) -> None:
        self._raw(netfn=0, command=2, data=(CHASSIS_CONTROL[action],))

    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        with self._translated():
            self._command.set_bootdev(BOOT_DEVICES[device], persist=persistent, uefiboot=uefi)

    def boot_device(self) -> str:
        parameter = self._raw(netfn=0, command=9, data=(5, 0, 0))  # boot flags
        if len(parameter) < 4 or not parameter[2] & BOOT_FLAGS_VALID:
            return "none"
        selector = (parameter[3] >> 2) & 0xF
        return BOOT_SELECTORS.get(selector, f"device {selector}")

    def close(self) -> None:
        with suppress(Exception):  # a session that cannot log out is gone anyway
            self._command.ipmi_session.logout()

    def _raw(self, netfn: int, command: int, data: tuple[int, ...] = ()) -> bytes:
        with self._translated():
            response = self._command.xraw_command(netfn=netfn, command=command, data=data)
        return bytes(response["data"])

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """pyghmi's exceptions as one line naming the BMC and what to check."""
        try:
            yield
        except socket.gaierror as exc:
            address = self.target.address
            raise HardwareError(f"cannot resolve BMC {address}: {exc.strerror}") from None
        except IpmiException as exc:
            raise explained(exc, self.target) from None
        except OSError as exc:
            raise HardwareError(f"BMC {self.target}: {exc.strerror or exc}") from None


def explained(exc: IpmiException, target: Target) -> HardwareError:
    text = str(exc.args[0]) if exc.args and exc.args[0] else ""
    if text in _NO_ANSWER:
        return NoAnswer(f"no answer from BMC {target}")
    if text == "Incorrect password provided":
        return HardwareError(
            f"BMC {target} refused the password of user '{target.username}': check "
            f"{target.password_from}"
        )
    if text.startswith("Unauthorized name"):
        return HardwareError(
            f"BMC {target} has no user '{target.username}': check {target.user_from}"
        )
    return HardwareError(f"BMC {target}: {text}")
