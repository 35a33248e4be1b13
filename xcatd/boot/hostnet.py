"""The IPv4 networks this host is on, as `ip -j` reports them.

makenetworks defines network objects from them and makedhcp -n finds the
interfaces its DHCP service listens on and this host's address on each
network.  Blocking (it runs `ip`): call from a worker thread.  The daemon
runs in the management node's network namespace, so what it sees is what
the nodes reach.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import XcatdError

# A Linux interface name (IFNAMSIZ - 1 characters; no '/', no white space);
# dnsmasq.conf gets it on a line of its own, so nothing else is accepted.
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")


class HostNetworkError(XcatdError):
    """`ip` could not tell this host's networks: one line saying why."""


@dataclass(frozen=True)
class HostNetwork:
    """One IPv4 network on one of this host's interfaces."""

    interface: str
    address: ipaddress.IPv4Interface  # this host's address, with the prefix
    loopback: bool

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.address.network

    @property
    def serves_nodes(self) -> bool:
        """Whether nodes can be on it: not loopback, link-local or a host route
        (xCAT leaves out 127.0.0.0, 169.254.0.0 and multicast in the same way)."""
        network = self.network
        return not (
            self.loopback
            or network.is_loopback
            or network.is_link_local
            or network.is_multicast
            or network.prefixlen == 32
        )


def host_networks() -> list[HostNetwork]:
    """Every IPv4 address of every interface that is up, in `ip`'s order."""
    found = []
    for link in _ip_json("-4", "address", "show"):
        flags = link.get("flags", [])
        if "UP" not in flags:
            continue
        for address in link.get("addr_info", []):
            if address.get("family") != "inet" or "local" not in address:
                continue
            found.append(
                HostNetwork(
                    link["ifname"],
                    ipaddress.IPv4Interface(f"{address['local']}/{address['prefixlen']}"),
                    "LOOPBACK" in flags,
                )
            )
    return found


def default_gateways() -> list[ipaddress.IPv4Address]:
    """The gateways of this host's IPv4 default routes."""
    return [
        ipaddress.IPv4Address(route["gateway"])
        for route in _ip_json("-4", "route", "show", "default")
        if "gateway" in route
    ]


def address_on(
    network: ipaddress.IPv4Network, networks: Iterable[HostNetwork]
) -> HostNetwork | None:
    """This host's (first) address on `network`, if it has one there."""
    return next((each for each in networks if each.address.ip in network), None)


def interface_names() -> set[str]:
    """The names of this host's interfaces, up or down, with or without an address."""
    return {name for _, name in socket.if_nameindex()}


def is_interface_name(name: str) -> bool:
    return _INTERFACE_NAME.fullmatch(name) is not None


def _ip_json(*args: str) -> list[dict]:
    try:
        listing = subprocess.run(
            ["ip", "-j", *args], capture_output=True, check=True, text=True, timeout=30
        )
        return json.loads(listing.stdout or "[]")
    except FileNotFoundError:
        raise HostNetworkError("the 'ip' command (iproute2) is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise HostNetworkError(f"ip {' '.join(args)}: {exc.stderr.strip()}") from None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise HostNetworkError(f"ip {' '.join(args)}: {exc}") from None
