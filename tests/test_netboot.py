"""The whole path, for real: machines boot the packed Debian service image
from the network and report `booted`, with nothing in between but dnsmasq
and xcatd.

The image is the session's (tests/images_debian.py: copycds of the test ISO,
xcatd bundle, genimage through the real client), its cluster running in a
network namespace with a bridge.  Here the administrator packs it, defines
the nodes, runs makedhcp -n (which leaves the daemon's dnsmasq running on
the bridge) and nodeset; QEMU machines with tap devices on the bridge boot:

- sn1 (virtio-net, netboot=xnba): QEMU's iPXE ROM asks dnsmasq, fetches its
  iPXE script, kernel and initrd from xcatd's HTTP server;
- sn2 (e1000, netboot=pxe): iPXE chains pxelinux.0, which loads its
  configuration, the kernel and the initrd from xcatd's TFTP server.

In both, the initrd downloads the image over HTTP, checks it, switches root;
the booted system enrolls with the management node for its certificate
(xcatd-enroll.service: its key made in memory, the CA pinned by the
fingerprint nodeset put on the kernel command line), starts its own xcatd
as a service node with it, and reports `booted`.  All the while their syslog
goes to the management node's rsyslog (run by the test with the drop-in
`xcatd init` wrote), which keeps it in <logdir>/nodes/<node>.log; cn1's
goes through sn1.  Without working KVM (these machines'
case) QEMU emulates (TCG): minutes, not seconds.  Run alone, as root:
`.venv/bin/python -m pytest tests/test_netboot.py -s` (prints the times).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images_debian import BuiltImage
from tests.syslogs import Syslog, receiver
from tests.waiting import wait_for
from xcatd.lab.qemu import kvm_works

MACHINES = {  # node: (MAC, last byte of its address, NIC, netboot)
    "sn1": ("52:54:00:77:00:11", 11, "virtio-net-pci", "xnba"),
    "sn2": ("52:54:00:77:00:12", 12, "e1000", "pxe"),
}
# sn1 serves cn1 on a compute network the management node is not on.
SN1_COMPUTE_NIC = ("52:54:00:78:00:01", "10.78.0.1")  # its eth1
CN1 = ("52:54:00:78:00:21", "10.78.0.21")
COMPUTE = "debian12-x86_64-netboot-compute"
BOOT_LIMIT = 240 if kvm_works() else 1200  # seconds from power-on to `booted`


@pytest.fixture
def mn_syslog(debian_service_image: BuiltImage, tmp_path: Path) -> Iterator[Syslog]:
    """The management node's rsyslog, receiving the nodes' logs as `xcatd init` set it up."""
    image = debian_service_image
    rsyslog_d = image.cluster.root / "etc/rsyslog.d"
    with receiver(image.network.prefix, tmp_path / "mn-syslog", rsyslog_d) as syslog:
        yield syslog


def test_service_nodes_boot_the_packed_image_and_report_booted(
    debian_service_image: BuiltImage, mn_syslog: Syslog, capsys: pytest.CaptureFixture
):
    image = debian_service_image
    cluster, net = image.cluster, image.network
    nodes_logs = cluster.root / "var/log/xcat/nodes"
    phases = Phases()
    cluster.ok("packimage", "-m", "squashfs", "-c", "zstd", image.name, timeout=600)
    # The compute image, from the same media (sn1 boots cn1 with it).
    built = cluster.run("genimage", COMPUTE, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    cluster.ok("packimage", COMPUTE, timeout=600)
    phases.done("compute image built and packed")
    # The management node leases bootnet's free addresses; sn1 serves computenet.
    cluster.ok("mkdef", "-t", "network", "-o", "bootnet", "net=10.77.0.0", "mask=255.255.255.0",
               "dynamicrange=10.77.0.100-10.77.0.200",
               f"dhcpserver={cluster.hostname}")  # fmt: skip
    cluster.ok("mkdef", "-t", "network", "-o", "computenet", "net=10.78.0.0",
               "mask=255.255.255.0")  # fmt: skip
    # The kernel names the NICs eth0, eth1 in order: what nicips.eth1 names.
    cluster.ok("chdef", "-t", "osimage", image.name, "addkcmdline=net.ifnames=0")
    for node, (mac, last, _, netboot) in MACHINES.items():
        cluster.ok("mkdef", node, "groups=service", f"mac={mac}", f"ip={net.host(last)}",
                   f"netboot={netboot}", "serialport=0", "serialspeed=115200")  # fmt: skip
    cluster.ok("chdef", "sn1", f"nicips.eth1={SN1_COMPUTE_NIC[1]}", "nicnetworks.eth1=computenet")
    # makedhcp -n leaves the DHCP service running: the daemon's own dnsmasq.
    settings = cluster.ok("makedhcp", "-n").splitlines()
    assert settings[-1].startswith("The DHCP service runs: dnsmasq (pid ")
    assert settings[-1].endswith(" on br0")
    assert cluster.ok("nodeset", "sn1,sn2", f"osimage={image.name}") == (
        "sn1: netboot debian12-x86_64-service\nsn2: netboot debian12-x86_64-service\n"
    )

    started = time.monotonic()
    compute = net.another_bridge("br-compute")
    machines = {
        node: net.boot_vm(mac, nic=nic, name=node,
                          more_nics=[(SN1_COMPUTE_NIC[0], compute)] if node == "sn1" else [])
        for node, (mac, _, nic, _) in MACHINES.items()
    }  # fmt: skip
    reported = wait_for_reports(cluster, set(MACHINES), started)
    for node, seconds in sorted(reported.items()):
        phases.took(f"{node}: power-on to 'booted'", seconds)

    log = cluster.logs()
    for node, (_, last, _, _) in MACHINES.items():
        assert f"xcatd: root image of {node} ready" in machines[node].text()  # the initrd's word
        assert fetched(log, "HTTP: 200 GET", "rootimg.sfs", net.host(last))
    # sn1's iPXE took kernel and initrd over HTTP; sn2's pxelinux over TFTP.
    assert fetched(log, "HTTP: 200 GET", "initrd-stateless.gz", net.host(11))
    assert fetched(log, "TFTP: sent", "pxelinux.0", net.host(12))
    assert fetched(log, "TFTP: sent", "initrd-stateless.gz", net.host(12))
    shown = cluster.ok("lsdef", "-t", "node", "-o", "sn1", "-i", "status")
    assert "    status=booted\n" in shown
    # Their boot in their logs on the management node, and in its syslog.
    for node in MACHINES:
        assert_boot_logged(nodes_logs / f"{node}.log", node)
        assert kernel_started(mn_syslog.text(), node)

    # Each enrolled once, and its daemon serves with that certificate: root
    # on the management node reaches it.
    assert enrollments(cluster) == [("sn1", "allowed"), ("sn2", "allowed")]
    on_sn1 = {**cluster.env, "XCATHOST": f"{net.host(11)}:3001"}
    served = cluster.run("lsxcatd", "-t", env=on_sn1)
    assert (served.returncode, served.stdout) == (0, "This is a Service Node\n"), served.stderr
    # And root reaches it over SSH: its certificate from `xcatd init`, the
    # node's host certificate from its enrollment; no key or password in the
    # image, no known_hosts prompt.
    shell = ssh_from_mn(cluster, net.host(11), "systemctl", "is-active", "xcatd")
    assert (shell.returncode, shell.stdout) == (0, "active\n"), shell.stderr

    # A compute node of sn1, on sn1's compute network only: the management
    # node's commands for it run on sn1, which answers its DHCP, serves its
    # boot files and image, and relays its report.
    mac, address = CN1
    cluster.ok("mkdef", "cn1", "groups=compute", f"mac={mac}", f"ip={address}",
               "servicenode=sn1", "netboot=xnba", "serialport=0", "serialspeed=115200")  # fmt: skip
    phases.restart()
    dhcp = cluster.ok("makedhcp", "-n")
    # sn1's own DHCP service, on its interfaces on both networks.
    assert re.search(r"^sn1: The DHCP service runs: dnsmasq \(pid \d+\) on eth0, eth1$", dhcp,
                     re.MULTILINE), dhcp  # fmt: skip
    assert cluster.ok("nodeset", "cn1", f"osimage={COMPUTE}", timeout=600) == (
        "cn1: netboot debian12-x86_64-compute\n"
    )
    phases.done("makedhcp -n and nodeset cn1 through sn1 (its copy of the image)")
    started = time.monotonic()
    cn1 = net.boot_vm(mac, name="cn1", bridge=compute)
    phases.took("cn1: power-on to 'booted', served by sn1",
                wait_for_reports(cluster, {"cn1"}, started)["cn1"])  # fmt: skip
    console = cn1.text()
    assert f"xcatd: downloading http://{SN1_COMPUTE_NIC[1]}" in console, console[-3000:]
    assert "xcatd: root image of cn1 ready" in console
    assert "    status=booted\n" in cluster.ok("lsdef", "cn1", "-i", "status")
    # From the MN into sn1, and from sn1 into cn1: sn1's root holds its
    # certificate from enrollment, cn1's host key came with its report.
    hop = ssh_from_mn(cluster, net.host(11), *STRICT_SSH, f"root@{address}", "cat /proc/cmdline")
    assert hop.returncode == 0 and " NODE=cn1 " in hop.stdout, hop.stderr
    # cn1's boot in its log on sn1, and passed on to the management node.
    assert_boot_logged(nodes_logs / "cn1.log", "cn1")
    on_sn1 = ssh_from_mn(cluster, net.host(11), "cat", "/var/log/xcat/nodes/cn1.log")
    assert kernel_started(on_sn1.stdout, "cn1"), on_sn1.stderr
    with capsys.disabled():  # the times belong in CI's output, also when the test passes
        print(phases.report())


class Phases:
    """The times of the test's phases, printed together at its end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.restart()

    def restart(self) -> None:
        self.started = time.monotonic()

    def done(self, what: str) -> None:
        self.took(what, time.monotonic() - self.started)
        self.restart()

    def took(self, what: str, seconds: float) -> None:
        self.lines.append(f"{what}: {seconds:.0f} s")

    def report(self) -> str:
        how = "KVM" if kvm_works() else "TCG emulation"
        return "".join(f"\n{line} ({how})" for line in self.lines)


STRICT_SSH = ("ssh", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
              "-o", "ConnectTimeout=30")  # fmt: skip


def ssh_from_mn(cluster, address: str, *command: str) -> subprocess.CompletedProcess:
    """`command` as root at `address`, from the management node's root: its
    key and certificate from `xcatd init`, the node's host certificate from
    its enrollment; no key or password in the image, no known_hosts prompt."""
    ssh = cluster.root / ".ssh"
    return subprocess.run(
        [*cluster.prefix, *STRICT_SSH, "-i", ssh / "id_ed25519", "-F", "/dev/null",
         "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", f"root@{address}", *command],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def assert_boot_logged(path: Path, node: str) -> None:
    """The node's log holds its boot: the kernel's first line, and systemd's."""

    def shown() -> bool:
        text = path.read_text() if path.exists() else ""
        return kernel_started(text, node) and f" {node} systemd[1]: " in text

    wait_for(shown, lambda: f"{node}'s kernel and systemd lines in {path}", timeout=120)


def kernel_started(log: str, node: str) -> bool:
    """Whether a syslog text has the node kernel's first line (after its time stamp)."""
    return re.search(rf" {node} kernel: (\[ *[0-9.]+\] )?Linux version ", log) is not None


def enrollments(cluster) -> list[tuple[str, str]]:
    with sqlite3.connect(cluster.root / "var/lib/xcat/xcat.sqlite") as db:
        return sorted(
            db.execute("select user, status from audit where command = 'enroll'").fetchall()
        )


def fetched(log: str, served: str, name: str, address: str) -> bool:
    """Whether the daemon's log shows `name` served whole to `address`."""
    pattern = rf"{served} \S*{re.escape(name)} \(\d+ bytes\) to {re.escape(address)}\b"
    return re.search(pattern, log) is not None


def wait_for_reports(cluster, nodes: set[str], started: float) -> dict[str, float]:
    """Seconds from power-on until each node's status became `booted`; a node
    that reports `failed` (or the time limit) fails the test."""
    reported: dict[str, float] = {}
    while set(reported) != nodes:
        assert time.monotonic() - started < BOOT_LIMIT, f"not booted: {nodes - set(reported)}"
        # The reports themselves: nodestat would show `sshd` once sshd is up.
        for line in cluster.ok("nodels", ",".join(sorted(nodes)), "nodelist.status").splitlines():
            node, _, state = line.partition(": ")
            assert state != "failed", f"{node} reported failed:\n{cluster.logs()[-3000:]}"
            if state == "booted" and node not in reported:
                reported[node] = time.monotonic() - started
        time.sleep(2)
    return reported
