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

import functools
import ipaddress
import itertools
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
# A tiny guest that prints to the serial console within a second of starting
# when the accelerator works (iPXE as a Linux kernel image, from package ipxe).
PROBE_KERNEL = "/usr/lib/ipxe/ipxe.lkrn"
PROBE_BANNER = "Open Source Network Boot Firmware"
PROBE_TIMEOUT = 4.0
# The bridge also gets an IPv6 prefix that dnsmasq advertises: without a
# router advertisement iPXE waits about 18 s (under TCG) for IPv6
# autoconfiguration before it boots from what DHCPv4 already gave it.
IPV6_PREFIX = "fd77::1/64"
# No default devices (so no VGA): SeaBIOS and iPXE then print on the serial
# port, which is the program's stdout and so its log.
SERIAL_CONSOLE = ("-nodefaults", "-nographic", "-monitor", "none", "-serial", "stdio")
POLL_INTERVAL = 0.1
TAIL_LINES = 40
# Terminal control sequences on a serial console: ANSI escapes (colours,
# screen clears) and iPXE's erase-the-prompt backspaces.
_CONTROL = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[a-z]|\x08 \x08|\r")
_names = itertools.count()


class ProgramError(RuntimeError):
    """A program in the test network exited, or did not print what was awaited."""


def console_text(raw: bytes) -> str:
    """A log or serial console as plain text, without terminal control sequences."""
    return _CONTROL.sub(b"", raw).decode(errors="replace")


class Process:
    """A long-running program in its own process group, its output (stdout
    and stderr) going to a log file that `wait_for` watches."""

    def __init__(self, argv: Sequence[str | Path], log: Path) -> None:
        self.argv = [str(arg) for arg in argv]
        self.log = log
        with log.open("wb") as output:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group to stop, helpers included
            )
        self.started = time.monotonic()

    @property
    def name(self) -> str:
        return self.log.stem

    def text(self) -> str:
        return console_text(self.log.read_bytes())

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for(self, pattern: str, timeout: float) -> float:
        """Wait until the log matches the regular expression `pattern`; the
        seconds since the program started.  ProgramError if it exits or
        `timeout` seconds pass first (`network` then prints the logs' tails)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.popen.poll() is not None  # before reading: output then exit
            if regex.search(self.text()):
                return time.monotonic() - self.started
            if exited:
                self._fail(f"exited with {self.popen.returncode} before printing {pattern!r}")
            if time.monotonic() > deadline:
                self._fail(f"did not print {pattern!r} within {timeout:.0f} s")
            time.sleep(POLL_INTERVAL)

    def _fail(self, what: str) -> None:
        raise ProgramError(f"{self.name} {what} (log: {self.log})")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if the program lingers, and reap it."""
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):  # the whole group has already gone
            os.killpg(self.popen.pid, signum)


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
        return ["ip", "netns", "exec", self.name]

    @property
    def server(self) -> str:
        """The bridge's IPv4 address: where servers in the namespace listen."""
        return str(self.address.ip)

    def host(self, number: int) -> str:
        """The IPv4 address `number` of the bridge's subnet (10 -> 10.77.0.10)."""
        return str(self.address.network[number])

    def tap(self, bridge: str | None = None) -> str:
        """A new tap device on the bridge (or on another `bridge`), for one
        virtual machine's NIC."""
        tap = f"tap{next(self.taps)}"
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "master", bridge or self.bridge, "up")
        return tap

    def another_bridge(self, name: str) -> str:
        """A second bridge in the namespace with no address of its own: a
        network the servers here are not on (a service node's compute
        network), which only the machines given NICs on it share."""
        self.ip("link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.ip("link", "set", name, "up")
        return name

    def ip(self, *args: str) -> None:
        """`ip ARGS` inside the namespace."""
        _ip("-n", self.name, *args)

    @contextmanager
    def machine(self, number: int) -> Iterator[Machine]:
        """Another host on the bridge: a namespace of its own whose eth0 has
        the subnet's address `number`, for a daemon that must not share the
        server's addresses (a service node).  Taken down on leaving: stop
        what runs in it first."""
        machine = Machine(f"{self.name}-m{number}", self.host(number))
        _ip("netns", "add", machine.name)
        try:
            veth = f"veth{number}"
            self.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
                    machine.name)  # fmt: skip
            self.ip("link", "set", veth, "master", self.bridge, "up")
            machine.ip("link", "set", "lo", "up")
            machine.ip("addr", "add", f"{machine.address}/{self.address.network.prefixlen}",
                       "dev", "eth0")  # fmt: skip
            machine.ip("link", "set", "eth0", "up")
            yield machine
        finally:
            _ip("netns", "delete", machine.name)

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

    def boot_vm(
        self,
        mac: str,
        nic: str = "virtio-net-pci",
        memory_mb: int = 2048,
        name: str = "vm",
        bridge: str | None = None,
        more_nics: Sequence[tuple[str, str]] = (),
    ) -> Process:
        """Start a diskless QEMU machine that boots from the network through
        QEMU's own iPXE ROM for `nic` (virtio-net-pci, e1000, ...) on a new
        tap on the bridge (or on `bridge`); `more_nics` are (MAC, bridge) of
        further virtio NICs, which the kernel names eth1, eth2, ... in that
        order (with net.ifnames=0).  Its serial console is its log
        (`workdir/<name>.log`)."""
        nics = [(self.tap(bridge), mac, nic)]
        nics += [(self.tap(on), more, "virtio-net-pci") for more, on in more_nics]
        return self.start(vm_command(nics, memory_mb), f"{name}.log")


def vm_command(nics: Sequence[tuple[str, str, str]], memory_mb: int) -> list[str]:
    """The QEMU command line of a network-booting machine with `nics`, each
    (tap, MAC, NIC model); it boots from the first.

    No `romfile=`: QEMU's default ROM for each NIC model is ipxe-qemu's, and
    only for its default ROM does QEMU patch the PCI IDs to the device's
    (the virtio ROM says 1af4:1041, a transitional virtio-net-pci is
    1af4:1000, and SeaBIOS skips a ROM whose IDs do not match)."""
    return [
        QEMU,
        *("-accel", "kvm" if kvm_works() else "tcg"),
        *("-m", str(memory_mb)),
        *SERIAL_CONSOLE,
        *(
            word
            for n, (tap, mac, nic) in enumerate(nics)
            for word in (
                *("-netdev", f"tap,id=net{n},ifname={tap},script=no,downscript=no"),
                # Only the first NIC's ROM: the machine boots from that one.
                *("-device", f"{nic},netdev=net{n},mac={mac}" + (",romfile=" if n else "")),
            )
        ),
        # Network first instead of after the (absent) disks; exit on reboot
        # so that a guest that panics stops at once instead of booting again.
        *("-boot", "n", "-no-reboot"),
    ]


@functools.cache
def kvm_works() -> bool:
    """Whether a KVM guest really runs here (on some machines /dev/kvm opens
    but guests hang or QEMU aborts); asked once per session."""
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


@dataclass
class Machine:
    """A namespace with one address on a Network's bridge (Network.machine)."""

    name: str
    address: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def ip(self, *args: str) -> None:
        _ip("-n", self.name, *args)


@contextmanager
def network(workdir: Path, address: str = "10.77.0.1/24") -> Iterator[Network]:
    """A new namespace `xcatd-<pid>-<n>` with loopback up and a bridge with
    `address` (and IPV6_PREFIX) on it, forwarding at once (no STP, no forward
    delay); logs go to `workdir`.  Everything is taken down on leaving."""
    net = Network(f"xcatd-{os.getpid()}-{next(_names)}", ipaddress.IPv4Interface(address), workdir)
    _ip("netns", "add", net.name)
    try:
        net.ip("link", "set", "lo", "up")
        net.ip("link", "add", net.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        net.ip("addr", "add", address, "dev", net.bridge)
        net.ip("addr", "add", IPV6_PREFIX, "dev", net.bridge, "nodad")
        net.ip("link", "set", net.bridge, "up")
        yield net
    except BaseException:
        for process in net.processes:
            print(f"--- the end of {process.log}:\n{process.tail()}", flush=True)
        raise
    finally:
        # A namespace lives on, invisible, while any process is still in it.
        for process in reversed(net.processes):
            process.stop()
        _ip("netns", "delete", net.name)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
