"""Network namespaces, bridges and tap devices, made with iproute2's `ip`.

A namespace holds everything a lab (or a test network) makes: its bridges,
the taps of its machines, the addresses of its servers and BMCs.  Deleting
the namespace removes all of them at once, and nothing on the host's own
interfaces is ever touched.  A namespace lives on, invisible, while any
process is still in it: stop them first (`pids`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import XcatdError

NAMESPACES = Path("/run/netns")  # where `ip netns add` names them


class NetnsError(XcatdError, RuntimeError):
    """`ip` refused: its own words."""


def ip(*args: str) -> str:
    """`ip ARGS`; what it printed.  NetnsError with its message if it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def prefix(namespace: str) -> list[str]:
    """Put in front of a command line to run it inside `namespace`."""
    return ["ip", "netns", "exec", namespace]


def exists(namespace: str) -> bool:
    return (NAMESPACES / namespace).exists()


def add(namespace: str) -> None:
    """A new namespace with its loopback up."""
    ip("netns", "add", namespace)
    ip("-n", namespace, "link", "set", "lo", "up")


def delete(namespace: str) -> None:
    ip("netns", "delete", namespace)


def pids(namespace: str) -> list[int]:
    """The processes in `namespace`."""
    return [int(pid) for pid in ip("netns", "pids", namespace).split()]


def add_bridge(namespace: str, bridge: str, *addresses: str) -> None:
    """A bridge in `namespace`, forwarding at once (no STP, no forward
    delay), with `addresses` (IPv4 or IPv6 with their prefixes) on it."""
    ip("-n", namespace, "link", "add", bridge, "type", "bridge",
       "stp_state", "0", "forward_delay", "0")  # fmt: skip
    for address in addresses:
        nodad = ["nodad"] if ":" in address else []  # usable at once
        ip("-n", namespace, "addr", "add", address, "dev", bridge, *nodad)
    ip("-n", namespace, "link", "set", bridge, "up")


def add_tap(namespace: str, tap: str, bridge: str) -> None:
    """A tap device on `bridge`, for one virtual machine's NIC (QEMU opens
    it by name from inside the namespace)."""
    ip("-n", namespace, "tuntap", "add", "dev", tap, "mode", "tap")
    ip("-n", namespace, "link", "set", tap, "master", bridge, "up")
