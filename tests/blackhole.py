"""Addresses that never answer, for probing tests and benchmarks: a network
inside a test's namespace (tests/netboot.py) on a tap device that no program
reads, ARP off, so that every packet sent there is dropped, neither
answered nor refused, as by machines that are switched off.  (A blackhole
route would not do: the kernel refuses the send at once.)"""

from __future__ import annotations

from tests.netboot import Network


def silent_network(net: Network, address: str, device: str = "drop0") -> None:
    """`address` (e.g. 10.79.0.1/24) on a new tap `device` in `net`'s
    namespace: every other address of its network is silent."""
    net.ip("tuntap", "add", "dev", device, "mode", "tap")
    net.ip("link", "set", device, "arp", "off", "up")
    net.ip("addr", "add", address, "dev", device)
