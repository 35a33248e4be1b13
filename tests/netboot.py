"""A real network for network-boot tests: a private network namespace with a
bridge, tap devices for virtual machines, and the programs a boot needs
(dnsmasq, xcatd, QEMU) running inside it.

Every part is a separate program, so this module is plain synchronous
subprocess code; tests drive the real client the same way.  Example:

    with network(tmp_path) as net:                    # 10.77.0.1/24 on br0
        net.dnsmasq(tmp_path / "dnsmasq.conf")         # DHCP on the bridge
        net.start(["xcatd", "serve", "--root", root], "xcatd.log")
        vm = net.boot_vm("52:54:00:77:00:10")          # virtio-net, iPXE ROM
        seconds = vm.wait_for("harness-ok", timeout=180)  # on its serial console

Programs that talk to servers in the namespace (the real client, curl) run
with `net.prefix` (`ip netns exec <name>`) in front of their command line.
Leaving the `with` block stops every program started in the namespace (whole
process groups) and deletes the namespace, which removes its bridge and taps;
when the block fails, the tail of each program's log is printed first.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from xcatd.lab import netns
from xcatd.lab.process import Process
from xcatd.lab.qemu import vm_command

# The bridge also gets an IPv6 prefix that dnsmasq advertises: without a
# router advertisement iPXE waits about 18 s (under TCG) for IPv6
# autoconfiguration before it boots from what DHCPv4 already gave it.
IPV6_PREFIX = "fd77::1/64"
_names = itertools.count()


@dataclass
class Network:
    """A network namespace holding a bridge with `address` on it."""

    name: str
    address: ipaddress.IPv4Interface
    workdir: Path
    bridge: str = "br0"
    processes: list[Process] = field(default_factory=list)
    taps: Iterator[int] = field(default_factory=itertools.count)

    @property
    def prefix(self) -> list[str]:
        """Put in front of a command line to run it inside the namespace."""
        return netns.prefix(self.name)

    @property
    def server(self) -> str:
        """The bridge's IPv4 address: where servers in the namespace listen."""
        return str(self.address.ip)

    def host(self, number: int) -> str:
        """The IPv4 address `number` of the bridge's subnet (10 -> 10.77.0.10)."""
        return str(self.address.network[number])

    def tap(self) -> str:
        """A new tap device on the bridge, for one virtual machine's NIC."""
        tap = f"tap{next(self.taps)}"
        netns.add_tap(self.name, tap, self.bridge)
        return tap

    def ip(self, *args: str) -> None:
        """`ip ARGS` inside the namespace."""
        netns.ip("-n", self.name, *args)

    def machine(self, number: int) -> AbstractContextManager[Machine]:
        """Another host on the bridge: a namespace of its own whose eth0 has
        the subnet's address `number`, for a daemon that must not share the
        server's addresses (a service node).  Taken down on leaving: stop
        what runs in it first."""
        address = ipaddress.IPv4Interface(f"{self.host(number)}/{self.address.network.prefixlen}")
        return host_on(self.name, self.bridge, f"{self.name}-m{number}", address)

    def start(self, argv: Sequence[str | Path], log_name: str) -> Process:
        """Start a long-running program inside the namespace, logging to
        `workdir/log_name`; it is stopped when the network is taken down."""
        process = Process([*self.prefix, *argv], self.workdir / log_name)
        self.processes.append(process)
        return process

    def dnsmasq(self, conf: Path, timeout: float = 10) -> Process:
        """Real dnsmasq serving DHCP on the bridge only (DNS off) with `conf`,
        started and ready; its log shows every DHCP exchange (--log-dhcp)."""
        process = self.start(
            [
                "dnsmasq",
                "--keep-in-foreground",  # unlike --no-daemon, still writes the pid file
                f"--conf-file={conf}",
                f"--interface={self.bridge}",
                "--bind-interfaces",
                "--port=0",
                "--log-dhcp",
                "--log-facility=-",
                # Kept in the test's directory instead of the system's; a
                # conf that names its own (makedhcp's does) wins, as dnsmasq
                # reads the file after the command line.
                f"--dhcp-leasefile={self.workdir / 'dnsmasq.leases'}",
                f"--pid-file={self.workdir / 'dnsmasq.pid'}",
                # Its usual unprivileged user could not read files under the
                # test's private (0700) temporary directory when it reloads.
                "--user=root",
                "--enable-ra",
                f"--dhcp-range=::,constructor:{self.bridge},ra-only",
            ],
            "dnsmasq.log",
        )
        process.wait_for("DHCP, sockets bound exclusively", timeout)
        return process

    def boot_vm(self, mac: str, nic: str = "virtio-net-pci", memory_mb: int = 2048) -> Process:
        """Start a diskless QEMU machine that boots from the network through
        QEMU's own iPXE ROM for `nic` (virtio-net-pci, e1000, ...) on a new
        tap on the bridge.  Its serial console is its log (`workdir/vm.log`)."""
        return self.start(vm_command([(self.tap(), mac, nic)], memory_mb), "vm.log")


@dataclass
class Machine:
    """A namespace with one address on a Network's bridge (Network.machine)."""

    name: str
    address: str

    @property
    def prefix(self) -> list[str]:
        return netns.prefix(self.name)

    def ip(self, *args: str) -> None:
        netns.ip("-n", self.name, *args)


@contextmanager
def host_on(
    namespace: str, bridge: str, name: str, address: ipaddress.IPv4Interface
) -> Iterator[Machine]:
    """A host on `bridge` of `namespace`: a namespace `name` of its own whose
    eth0 (a veth whose other end is on the bridge) has `address`.  Taken
    down on leaving: stop what runs in it first."""
    machine = Machine(name, str(address.ip))
    netns.add(name)
    try:
        veth = f"veth{address.ip.packed[-1]}"
        netns.ip("-n", namespace, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                 "netns", name)  # fmt: skip
        netns.ip("-n", namespace, "link", "set", veth, "master", bridge, "up")
        machine.ip("addr", "add", str(address), "dev", "eth0")
        machine.ip("link", "set", "eth0", "up")
        yield machine
    finally:
        netns.delete(name)


@contextmanager
def network(workdir: Path, address: str = "10.77.0.1/24") -> Iterator[Network]:
    """A new namespace `xcatd-<pid>-<n>` with loopback up and a bridge with
    `address` (and IPV6_PREFIX) on it, forwarding at once (no STP, no forward
    delay); logs go to `workdir`.  Everything is taken down on leaving."""
    net = Network(f"xcatd-{os.getpid()}-{next(_names)}", ipaddress.IPv4Interface(address), workdir)
    netns.add(net.name)
    try:
        netns.add_bridge(net.name, net.bridge, address, IPV6_PREFIX)
        yield net
    except BaseException:
        for process in net.processes:
            print(f"--- the end of {process.log}:\n{process.tail()}", flush=True)
        raise
    finally:
        # A namespace lives on, invisible, while any process is still in it.
        for process in reversed(net.processes):
            process.stop()
        netns.delete(net.name)
