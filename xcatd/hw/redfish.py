"""The Redfish driver, through sushy (OpenStack Ironic's Redfish library).

sushy blocks (requests underneath), so a session is opened and used in a
worker thread only, like pyghmi's.  It authenticates every request with
HTTP basic authentication rather than a Redfish session: an attempt the
fan-out abandons (timed out) then leaves no session behind on the BMC, whose
session slots are few.  HTTPS, the BMC's certificate not verified, as xCAT
does: BMCs carry self-signed certificates.  The node is the BMC's one
ComputerSystem; a BMC listing several (a chassis manager) is refused in a
line naming them.

Power actions are ComputerSystem.Reset types, as xCAT's redfish agent sends
them (on, off, reset) and for what it lacks: softoff a GracefulShutdown,
cycle a PowerCycle where the BMC offers one, else ForceOff then On.  The
boot override is the system's Boot object: net, hd, cd as Pxe, Hdd, Cd, once
(BootSourceOverrideEnabled Once) or with -p Continuous; def turns it off.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sushy
from sushy import exceptions
from sushy.auth import BasicAuth
from urllib3.exceptions import InsecureRequestWarning

from .target import HardwareError, NoAnswer, Target

CONNECT_TIMEOUT = 10  # seconds; the fan-out bounds a whole attempt (bmc_timeout)
READ_TIMEOUT = 30
RESET_TYPES = {
    "on": ("On", "ForceOn"),  # the first the BMC offers
    "off": ("ForceOff",),
    "reset": ("ForceRestart",),
    "softoff": ("GracefulShutdown",),
}
BOOT_TARGETS = {"net": sushy.BootSource.PXE, "hd": sushy.BootSource.HDD, "cd": sushy.BootSource.CD}
BOOT_NAMES = {
    sushy.BootSource.PXE: "net",
    sushy.BootSource.HDD: "hd",
    sushy.BootSource.CD: "cd",
    sushy.BootSource.BIOS_SETUP: "setup",
    sushy.BootSource.FLOPPY: "floppy",
    sushy.BootSource.NONE: "none",
}
POWER_STATES = {sushy.PowerState.ON: "on", sushy.PowerState.OFF: "off"}

# Unverified HTTPS is the decision above, not news for every request.
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


class RedfishDriver:
    """A connection to one BMC's ComputerSystem (see `Driver`)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        host = f"[{target.address}]" if ":" in target.address else target.address
        with self._translated():
            self._root = sushy.Sushy(
                f"https://{host}:{target.port}",
                auth=BasicAuth(target.username, target.password),
                verify=False,
                read_timeout=READ_TIMEOUT,
                connect_timeout=CONNECT_TIMEOUT,
                server_side_retries=0,  # the fan-out retries, within its timeout
            )
            self._system = self._only_system()

    def _only_system(self) -> sushy.resources.system.system.System:
        members = self._root.get_system_collection().members_identities
        if len(members) != 1:
            listed = ", ".join(sorted(members)) or "none"
            raise HardwareError(
                f"BMC {self.target} has {len(members)} computer systems, not one ({listed})"
            )
        return self._root.get_system(members[0])

    def power_state(self) -> str:
        state = self._system.power_state
        return POWER_STATES.get(state, str(state.value if state else "unknown").lower())

    def power(self, action: str) -> None:
        with self._translated():
            if action == "cycle":
                if "PowerCycle" in self._allowed_resets():
                    self._system.reset_system("PowerCycle")
                    return
                self._reset("off")
                action = "on"
            self._reset(action)

    def _reset(self, action: str) -> None:
        allowed = self._allowed_resets()
        wanted = RESET_TYPES[action]
        kind = next((each for each in wanted if each in allowed), None)
        if kind is None:
            raise HardwareError(
                f"BMC {self.target} offers no {' or '.join(wanted)} reset for {action} "
                f"(it offers {', '.join(sorted(allowed))})"
            )
        self._system.reset_system(sushy.ResetType(kind))

    def _allowed_resets(self) -> set[str]:
        return {each.value for each in self._system.get_allowed_reset_system_values()}

    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        with self._translated():
            if device == "def":
                self._system.set_system_boot_options(
                    enabled=sushy.BootSourceOverrideEnabled.DISABLED
                )
                return
            target = BOOT_TARGETS[device]
            allowed = self._system.get_allowed_system_boot_source_values()
            if target not in allowed:
                offered = ", ".join(sorted(each.value for each in allowed))
                raise HardwareError(
                    f"BMC {self.target} cannot boot from {device} ({target.value}; it offers "
                    f"{offered})"
                )
            once = sushy.BootSourceOverrideEnabled.ONCE
            self._system.set_system_boot_options(
                target=target,
                enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS if persistent else once,
                mode=sushy.BootSourceOverrideMode.UEFI if uefi else None,
            )

    def boot_device(self) -> str:
        boot = self._system.boot
        if boot.enabled in (None, sushy.BootSourceOverrideEnabled.DISABLED):
            return "none"
        return BOOT_NAMES.get(boot.target, str(boot.target.value if boot.target else "none"))

    def close(self) -> None:
        with suppress(Exception):  # nothing is held on the BMC; free the connections
            self._root._conn.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """sushy's exceptions as one line naming the BMC and what to check."""
        try:
            yield
        except exceptions.ConnectionError:
            raise NoAnswer(f"no answer from BMC {self.target}") from None
        except exceptions.AccessError:
            raise HardwareError(
                f"BMC {self.target} refused user '{self.target.username}' with its password: "
                f"check {self.target.user_from} and {self.target.password_from}"
            ) from None
        except exceptions.HTTPError as exc:
            said = getattr(exc, "detail", None) or "no explanation"
            raise HardwareError(f"BMC {self.target}: HTTP {exc.status_code}: {said}") from None
        except exceptions.SushyError as exc:
            raise HardwareError(f"BMC {self.target}: {exc}") from None
