"""makedhcp as an administrator uses it, through the real client against a real
daemon, and what a real dnsmasq then answers: the test starts dnsmasq with
the dnsmasq.conf makedhcp wrote, in a network namespace of its own joined
by a veth pair to a second namespace, from which a DHCP client asks as
each kind of firmware would (tests/boot/dhcp_client.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import Cluster


@pytest.fixture(scope="module")
def mn(shared_cluster: Cluster) -> Cluster:
    """The nodes' network, 10.77.0.0/24, whose server is 10.77.0.1."""
    shared_cluster.ok("mkdef", "-t", "network", "-o", "boot", "net=10.77.0.0",
       "mask=255.255.255.0", "gateway=10.77.0.254", "dynamicrange=10.77.0.200-10.77.0.250",
       "nameservers=10.77.0.1")  # fmt: skip
    return shared_cluster


def dhcp_dir(cluster: Cluster) -> Path:
    return cluster.root / "etc/xcat/dhcp"


def define(cluster: Cluster, node: str, last: int, *extra: str) -> None:
    cluster.ok("mkdef", node, "groups=dhcp", f"mac=52:54:00:77:00:{last:02x}",
       f"ip=10.77.0.{last}", "xcatmaster=10.77.0.1", *extra)  # fmt: skip


def entries(cluster: Cluster, name: str) -> list[str]:
    return (dhcp_dir(cluster) / name).read_text().splitlines()[1:]


# -- the files ------------------------------------------------------------------------


def test_n_writes_both_servers_settings_from_the_network_objects(mn):
    directory = dhcp_dir(mn)
    assert mn.ok("makedhcp", "-n") == (
        f"Wrote {directory}/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for 1 network(s): boot\n"
        f"no dnsmasq runs with {directory}/dnsmasq.conf: it reads the entries when started\n"
    )
    dnsmasq = (directory / "dnsmasq.conf").read_text().splitlines()
    assert [line for line in dnsmasq if "net-boot" in line] == [
        "dhcp-range=set:net-boot,10.77.0.0,static,255.255.255.0",
        "dhcp-range=set:net-boot,10.77.0.200,10.77.0.250,255.255.255.0",
    ]
    assert f"dhcp-optsfile={directory}/dnsmasq-opts" in dnsmasq
    opts = (directory / "dnsmasq-opts").read_text().splitlines()
    assert [line for line in opts if "net-boot" in line] == [
        "tag:net-boot,option:router,10.77.0.254",
        "tag:net-boot,option:dns-server,10.77.0.1",
    ]
    checked = subprocess.run(["dnsmasq", "--test", f"--conf-file={directory}/dnsmasq.conf"],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    dhcpd = (directory / "dhcpd.conf").read_text()
    assert "subnet 10.77.0.0 netmask 255.255.255.0 {\n" in dhcpd
    assert f'include "{directory}/dhcpd.hosts";\n' in dhcpd


def test_noderange_adds_a_adds_every_node_with_a_mac_and_d_removes(mn):
    define(mn, "mk1", 21)
    define(mn, "mk2", 22, "netboot=pxe")
    mn.ok("mkdef", "mk3", "groups=dhcp")  # no MAC: not a DHCP client
    directory = dhcp_dir(mn)
    out = mn.ok("makedhcp", "mk1")
    assert out.splitlines()[0] == f"Wrote the entries of 1 node(s) in {directory}"
    assert "52:54:00:77:00:15,10.77.0.21,mk1" in entries(mn, "dnsmasq-hosts")
    assert not any("mk2" in line for line in entries(mn, "dnsmasq-hosts"))
    mn.ok("makedhcp", "-a")
    assert "52:54:00:77:00:16,10.77.0.22,mk2" in entries(mn, "dnsmasq-hosts")
    assert not any("mk3" in line for line in entries(mn, "dnsmasq-hosts"))
    (isc,) = [line for line in entries(mn, "dhcpd.hosts") if line.startswith("host mk2 {")]
    assert isc.endswith('filename "pxelinux.0"; }')
    assert mn.ok("makedhcp", "-d", "mk1").splitlines()[0] == (
        f"Removed the entries of 1 node(s) in {directory}"
    )
    for name in ("dnsmasq-hosts", "dhcpd.hosts"):
        assert not any("mk1" in line for line in entries(mn, name)), name
        assert any("mk2" in line for line in entries(mn, name)), name


def test_a_node_without_a_mac_is_an_error_and_the_others_are_written(mn):
    define(mn, "nm1", 31)
    mn.ok("mkdef", "nm2", "groups=nomac", "ip=10.77.0.32")
    rc, out, err = mn.outcome("makedhcp", "nm1,nm2")
    assert rc == 1
    assert err == "nm2: Error: no MAC address: set one with chdef <node> mac=<mac>\n"
    mn.ok("mkdef", "nm_3", "groups=nomac", "mac=52:54:00:77:00:21", "ip=10.77.0.33")
    assert mn.outcome("makedhcp", "nm_3")[2] == (
        "nm_3: Error: not a DHCP host name (letters, digits and '-'), "
        "which dnsmasq's answers need\n"
    )
    assert out.startswith(f"Wrote the entries of 1 node(s) in {dhcp_dir(mn)}\n")


def test_isc_dhcpd_accepts_what_makedhcp_wrote(mn):
    if not Path("/usr/sbin/dhcpd").exists():
        pytest.skip("isc-dhcp-server is not installed")
    mn.ok("makedhcp", "-n")
    define(mn, "isc1", 41)
    mn.ok("makedhcp", "isc1")
    checked = subprocess.run(["dhcpd", "-4", "-t", "-cf", str(dhcp_dir(mn) / "dhcpd.conf")],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_a_site_domain_that_would_be_read_as_syntax_is_refused(mn):
    mn.ok("chdef", "-t", "site", "clustersite", 'domain=c"; } evil {')
    try:
        rc, out, err = mn.outcome("makedhcp", "-n")
    finally:
        mn.ok("chdef", "-t", "site", "clustersite", "domain=")
    assert (rc, out) == (1, "")
    assert err == "Error: site.domain 'c\"; } evil {' is not a domain name\n"


def test_n_without_networks_says_how_to_define_one(cluster):
    rc, out, err = cluster.outcome("makedhcp", "-n")
    assert (rc, out) == (1, "")
    assert err == (
        "Error: no network objects are defined: mkdef -t network -o <name> net=<address> "
        "mask=<netmask> [dynamicrange=<first>-<last>] [gateway=<address>]\n"
    )


def test_with_no_dnsmasq_running_makedhcp_says_so(cluster):
    cluster.ok("mkdef", "lone1", "groups=all", "mac=52:54:00:77:01:01", "ip=127.0.77.1")
    directory = dhcp_dir(cluster)
    assert cluster.ok("makedhcp", "lone1") == (
        f"Wrote the entries of 1 node(s) in {directory}\n"
        f"no dnsmasq runs with {directory}/dnsmasq.conf: it reads the entries when started\n"
    )


# -- a real dnsmasq ---------------------------------------------------------------------


@dataclass
class Wire:
    """Two network namespaces joined by a veth pair: the server's side (10.77.0.1)
    and the nodes' side, with no address."""

    server: str
    nodes: str
    server_if: str
    nodes_if: str

    def ask(self, mac: str, *, ipxe: bool = False, arch: int | None = None) -> dict | None:
        client = [sys.executable, "-m", "tests.boot.dhcp_client"]
        command = ["ip", "netns", "exec", self.nodes, *client, "--interface", self.nodes_if]
        command += ["--mac", mac]
        command += ["--ipxe"] if ipxe else []
        command += ["--arch", str(arch)] if arch is not None else []
        asked = subprocess.run(command, capture_output=True, text=True, timeout=30,
                               cwd=Path(__file__).parent.parent)  # fmt: skip
        return json.loads(asked.stdout)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def wire() -> Iterator[Wire]:
    tag = f"{os.getpid() % 100000}"
    wire = Wire(f"xcat-dhcp-s{tag}", f"xcat-dhcp-n{tag}", f"xds{tag}", f"xdn{tag}")
    ip("netns", "add", wire.server)
    try:
        ip("netns", "add", wire.nodes)
        try:
            ip("link", "add", wire.server_if, "type", "veth", "peer", "name", wire.nodes_if)
            ip("link", "set", wire.server_if, "netns", wire.server)
            ip("link", "set", wire.nodes_if, "netns", wire.nodes)
            ip("-n", wire.server, "addr", "add", "10.77.0.1/24", "dev", wire.server_if)
            ip("-n", wire.server, "link", "set", wire.server_if, "up")
            ip("-n", wire.nodes, "link", "set", wire.nodes_if, "up")
            yield wire
        finally:
            ip("netns", "del", wire.nodes)  # takes the veth pair with it
    finally:
        ip("netns", "del", wire.server)


class Dnsmasq:
    """dnsmasq started as the network-boot test starts it, logging to a file."""

    def __init__(self, wire: Wire, directory: Path) -> None:
        self.log = directory.parent / "dnsmasq.log"
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", wire.server, "dnsmasq", f"--conf-file={directory}/dnsmasq.conf",
             "--no-daemon", f"--interface={wire.server_if}", f"--log-facility={self.log}",
             "--log-dhcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.opts = directory / "dnsmasq-opts"
        self.wait_for_reads(1)

    def reads(self) -> int:
        """How often dnsmasq has read its dhcp-optsfile (the last file it reads)."""
        log = self.log.read_text() if self.log.exists() else ""
        return log.count(f"read {self.opts}\n")

    def wait_for_reads(self, count: int) -> None:
        deadline = time.monotonic() + 20
        while self.reads() < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq ({self.process.poll()}) did not read {self.opts}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def dnsmasq(mn: Cluster, wire: Wire) -> Iterator[Dnsmasq]:
    mn.ok("makedhcp", "-n")
    server = Dnsmasq(wire, dhcp_dir(mn))
    try:
        yield server
    finally:
        server.stop()


def test_dnsmasq_answers_each_kind_of_firmware_and_reads_new_entries_on_reload(mn, wire, dnsmasq):
    define(mn, "rd1", 51)
    out = mn.ok("makedhcp", "rd1")
    reloaded = f"dnsmasq (pid {dnsmasq.process.pid}) is reading the entries again"
    assert out.splitlines()[1] == reloaded
    dnsmasq.wait_for_reads(2)
    # iPXE fills in ${next-server} and ${hostname}: http://10.77.0.1:<port>/.../nodes/rd1
    script = (
        f"http://${{next-server}}:{mn.http_port}{mn.root}/tftpboot/xcat/xnba/nodes/${{hostname}}"
    )
    mac = "52:54:00:77:00:33"
    answers = {
        "PXE BIOS": wire.ask(mac),
        "PXE UEFI": wire.ask(mac, arch=7),
        "iPXE BIOS": wire.ask(mac, ipxe=True, arch=0),
        "iPXE UEFI": wire.ask(mac, ipxe=True, arch=9),
    }
    assert {kind: answer.pop("bootfile") for kind, answer in answers.items()} == {
        "PXE BIOS": "xcat/xnba.kpxe",
        "PXE UEFI": "xcat/xnba.efi",
        "iPXE BIOS": script,
        "iPXE UEFI": f"{script}.uefi",
    }
    assert (
        list(answers.values())
        == [{"address": "10.77.0.51", "next_server": "10.77.0.1", "hostname": "rd1"}] * 4
    )
    # A node added while dnsmasq runs: SIGHUP, and it is answered.
    define(mn, "rd2", 52, "netboot=pxe")
    assert mn.ok("makedhcp", "rd2").splitlines()[1] == reloaded
    dnsmasq.wait_for_reads(3)
    assert wire.ask("52:54:00:77:00:34") == {
        "address": "10.77.0.52",
        "next_server": "10.77.0.1",
        "hostname": "rd2",
        "bootfile": "xcat/xnba.kpxe",  # iPXE first; its script chains pxelinux
    }
    # A node removed: only a dynamic address, and nothing to boot.
    assert mn.ok("makedhcp", "-d", "rd1").splitlines()[1] == reloaded
    dnsmasq.wait_for_reads(4)
    gone = wire.ask(mac)
    assert gone is not None and gone["address"] != "10.77.0.51"
    assert (gone["hostname"], gone["bootfile"]) == (None, None)
    # makedhcp -n while it runs: the options are read again, the ranges at its next start.
    assert mn.ok("makedhcp", "-n").splitlines()[1:] == [
        reloaded,
        "It reads the networks' dhcp-ranges only when it starts: restart it",
    ]
    dnsmasq.wait_for_reads(5)
    assert " at line " not in dnsmasq.log.read_text()  # how dnsmasq reports a bad entry
