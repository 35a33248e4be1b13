"""makedhcp as an administrator uses it, through the real client against a real
daemon, and the DHCP service it leaves running.

The files: a daemon on this host, whose interfaces are on none of the test's
networks, so no DHCP service starts.  The service: a daemon (and every
command) in a network namespace the test makes, joined by a veth pair to a
second namespace from which a DHCP client asks as each kind of firmware
would (tests/boot/dhcp_client.py); there makenetworks defines the network,
makedhcp -n starts dnsmasq under the daemon, and what dnsmasq answers is
checked through every change, its death, the daemon's stop and start.
Here PID 1 is not systemd, so the daemon runs dnsmasq itself; a test
cluster's own directory never uses xcatd-dhcp.service anyway."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xcatd.boot.dnsmasq import SYSTEM_DIRECTORY, UNIT, dnsmasq_arguments, dnsmasqs_of
from xcatd.boot.hostnet import HostNetwork
from xcatd.commands.makedhcp import Here, NetworkError, dhcp_interface
from xcatd.images.shipped import SHARE

from .cluster import Cluster
from .test_nodeset import make_image
from .waiting import wait_for

REPOSITORY = Path(__file__).resolve().parents[1]


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
    assert mn.outcome("makedhcp", "-n") == (
        0,
        f"Wrote {directory}/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for 1 network(s): boot\n",
        "Warning: no interface of this host is on boot: no DHCP service runs here (set the "
        "network's mgtifname to serve it)\n",
    )
    assert not dnsmasqs_of(directory)
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


def test_a_dynamic_range_is_leased_only_by_the_networks_dhcpserver(mn):
    """With service nodes, several hosts are on one network: the one its
    dhcpserver names leases its free addresses, the others answer only
    their own nodes (xCAT's makedhcp)."""

    def ranges() -> list[str]:
        mn.ok("makedhcp", "-n")
        dnsmasq = (dhcp_dir(mn) / "dnsmasq.conf").read_text().splitlines()
        return [line for line in dnsmasq if line.startswith("dhcp-range=set:net-boot,")]

    static = "dhcp-range=set:net-boot,10.77.0.0,static,255.255.255.0"
    try:
        mn.ok("chdef", "-t", "network", "-o", "boot", "dhcpserver=sn1")
        assert ranges() == [static]
        mn.ok("chdef", "-t", "network", "-o", "boot", f"dhcpserver={mn.hostname}")
        assert ranges() == [static, "dhcp-range=set:net-boot,10.77.0.200,10.77.0.250,255.255.255.0"]
    finally:
        mn.ok("chdef", "-t", "network", "-o", "boot", "dhcpserver=")


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


def test_q_shows_the_entries_as_xcat_does_and_a_d_removes_every_one(mn):
    define(mn, "mq1", 41)
    define(mn, "mq2", 42)
    mn.ok("makedhcp", "mq1,mq2")
    # xCAT's makedhcp.8: `node01: ip-address = 91.214.34.156, hardware-address = 00:00:c9:c6:6c:42`
    assert mn.ok("makedhcp", "-q", "mq1,mq2") == (
        "mq1: ip-address = 10.77.0.41, hardware-address = 52:54:00:77:00:29\n"
        "mq2: ip-address = 10.77.0.42, hardware-address = 52:54:00:77:00:2a\n"
    )
    mn.ok("makedhcp", "-d", "mq2")
    assert mn.ok("makedhcp", "-q", "mq2") == ""  # no entry: nothing to say, as xCAT's
    mn.ok("rmdef", "mq1")  # its entry stays until makedhcp -d; -a -d takes it too
    assert mn.ok("makedhcp", "-a", "-d").startswith("Removed the entries of ")
    for name in ("dnsmasq-hosts", "dhcpd.hosts"):
        assert entries(mn, name) == [], name


def test_s_is_refused_saying_what_gives_the_entries_instead(mn):
    define(mn, "ms1", 43)
    assert mn.outcome("makedhcp", "ms1", "-s", 'option root-path "x";') == (
        1,
        "",
        "Error: -s hands statements to ISC dhcpd over OMAPI, which xcatd does not drive: its "
        "DHCP entries come from the nodes' attributes (chdef), written by makedhcp\n",
    )


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


def test_with_nothing_set_up_each_command_says_what_to_run(cluster):
    cluster.ok("mkdef", "lone1", "groups=all", "mac=52:54:00:77:01:01", "ip=127.0.77.1")
    directory = dhcp_dir(cluster)
    assert cluster.outcome("makedhcp", "lone1") == (
        0,
        f"Wrote the entries of 1 node(s) in {directory}\n"
        f"no dnsmasq runs with {directory}/dnsmasq.conf: it reads the entries when started\n",
        f"Warning: the DHCP service is not set up ({directory}/dnsmasq.conf does not exist "
        "yet): run makedhcp -n, after makenetworks if no network object is defined\n",
    )
    assert cluster.outcome("makedhcp", "-n") == (
        1,
        "",
        "Error: no network objects are defined: run makenetworks to define the networks of "
        "this host's interfaces, or mkdef -t network -o <name> net=<address> "
        "mask=<netmask> [dynamicrange=<first>-<last>] [gateway=<address>]\n",
    )


def test_the_shipped_unit_runs_dnsmasq_as_the_daemon_does():
    unit = SHARE / "systemd" / UNIT
    lines = unit.read_text().splitlines()
    (command,) = [line.removeprefix("ExecStart=") for line in lines if "ExecStart=" in line]
    assert command.split() == ["/usr/sbin/dnsmasq", *dnsmasq_arguments(SYSTEM_DIRECTORY)]
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True)  # fmt: skip
    assert verified.returncode == 0, verified.stderr


# -- the DHCP service --------------------------------------------------------------------


@dataclass
class Wire:
    """Two network namespaces joined by a veth pair: the management node's side
    (10.77.0.1/24, loopback up) and the nodes' side, with no address."""

    server: str
    nodes: str
    server_if: str
    nodes_if: str

    def ask(
        self, mac: str, *, ipxe: bool = False, arch: int | None = None, timeout: float = 5
    ) -> dict | None:
        """The OFFER a DHCPDISCOVER from `mac` gets on the nodes' side, or None."""
        prefix = ["ip", "netns", "exec", self.nodes]
        return dhcp_offer(prefix, self.nodes_if, mac, ipxe=ipxe, arch=arch, timeout=timeout)


def dhcp_offer(
    prefix: list[str],
    interface: str,
    mac: str,
    *,
    ipxe: bool = False,
    arch: int | None = None,
    timeout: float = 5,
) -> dict | None:
    """The OFFER a DHCPDISCOVER from `mac` out of `interface` gets, or None;
    run with `prefix` (inside the interface's network namespace)."""
    client = [sys.executable, "-m", "tests.boot.dhcp_client", "--timeout", str(timeout)]
    command = [*prefix, *client, "--interface", interface, "--mac", mac]
    command += ["--ipxe"] if ipxe else []
    command += ["--arch", str(arch)] if arch is not None else []
    asked = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 25,
                           cwd=REPOSITORY)  # fmt: skip
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
            ip("-n", wire.server, "link", "set", "lo", "up")
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


@pytest.fixture
def served(wire: Wire, tmp_path: Path) -> Iterator[Cluster]:
    """The management node in the server's namespace, listening on its address
    there: its daemon, and every command the test runs, see only that
    namespace's interfaces."""
    prefix = ["ip", "netns", "exec", wire.server]
    cluster = Cluster(tmp_path / "mn", address="10.77.0.1", prefix=prefix)
    assert cluster.init().returncode == 0
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.process and cluster.process.poll() is None:
            cluster.stop()
        for pid in dnsmasqs_of(dhcp_dir(cluster)):  # only if a test failed: none is left
            os.kill(pid, signal.SIGKILL)


NETWORK = "10_77_0_0-255_255_255_0"  # what makenetworks names the wire's network
ANSWER = {"address": "10.77.0.51", "next_server": "10.77.0.1", "hostname": "rd1"}


def serving(cluster: Cluster, interface: str) -> int:
    """makenetworks, then makedhcp -n; the pid of the dnsmasq it started."""
    cluster.ok("makenetworks")
    directory = dhcp_dir(cluster)
    wrote, runs = cluster.ok("makedhcp", "-n").splitlines()
    assert wrote == (
        f"Wrote {directory}/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for 1 network(s): {NETWORK}"
    )
    started = re.fullmatch(rf"The DHCP service runs: dnsmasq \(pid (\d+)\) on {interface}", runs)
    assert started, runs
    return int(started[1])


def reads(cluster: Cluster) -> int:
    """How often dnsmasq has read its dhcp-optsfile (at start and on each SIGHUP),
    from its lines in the daemon's log."""
    return cluster.logs().count(f"read {dhcp_dir(cluster)}/dnsmasq-opts\n")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def reloaded(cluster: Cluster, before: int, *command: str) -> str:
    """Run a makedhcp that changes the entries; what it printed, once dnsmasq
    has read them again."""
    out = cluster.ok(*command)
    wait_for(lambda: reads(cluster) > before, "dnsmasq reading the entries again", 30)
    return out


def test_makenetworks_then_makedhcp_n_leaves_dnsmasq_answering_under_the_daemon(served, wire):
    assert "run makenetworks" in served.outcome("makedhcp", "-n")[2]
    pid = serving(served, wire.server_if)
    assert dnsmasqs_of(dhcp_dir(served)) == [pid]
    assert parent_of(pid) == served.process.pid  # the daemon's own child
    assert f"interface={wire.server_if}\n" in (dhcp_dir(served) / "dnsmasq.conf").read_text()
    define(served, "rd1", 51)
    out = reloaded(served, reads(served), "makedhcp", "rd1")
    assert out.splitlines()[1] == f"dnsmasq (pid {pid}) is reading the entries again"
    assert wire.ask("52:54:00:77:00:33") == {**ANSWER, "bootfile": "xcat/xnba.kpxe"}
    # Removed: no dynamic range on this network, so no answer at all.
    reloaded(served, reads(served), "makedhcp", "-d", "rd1")
    assert wire.ask("52:54:00:77:00:33", timeout=3) is None


def test_dnsmasq_answers_each_kind_of_firmware_and_n_restarts_it_with_new_ranges(served, wire):
    pid = serving(served, wire.server_if)
    define(served, "rd1", 51)
    reloaded(served, reads(served), "makedhcp", "rd1")
    # iPXE fills in ${next-server} and ${hostname}: http://10.77.0.1:<port>/.../nodes/rd1
    script = (
        f"http://${{next-server}}:{served.http_port}{served.root}/tftpboot/xcat/xnba/nodes/"
        "${hostname}"
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
    assert list(answers.values()) == [ANSWER] * 4
    # -a: a node added while it runs is answered after SIGHUP.
    define(served, "rd2", 52, "netboot=pxe")
    out = reloaded(served, reads(served), "makedhcp", "-a")
    assert out.splitlines()[1] == f"dnsmasq (pid {pid}) is reading the entries again"
    assert wire.ask("52:54:00:77:00:34") == {
        "address": "10.77.0.52",
        "next_server": "10.77.0.1",
        "hostname": "rd2",
        "bootfile": "xcat/xnba.kpxe",  # iPXE first; its script chains pxelinux
    }
    # A dynamic range needs a new start: -n restarts dnsmasq, which then offers it.
    served.ok("chdef", "-t", "network", "-o", NETWORK, "dynamicrange=10.77.0.200-10.77.0.250")
    again = served.ok("makedhcp", "-n").splitlines()[1]
    assert again.startswith("The DHCP service runs: dnsmasq (pid ") and str(pid) not in again
    reloaded(served, 0, "makedhcp", "-d", "rd1")
    gone = wire.ask(mac)
    assert gone is not None and gone["address"].startswith("10.77.0.2")
    assert (gone["hostname"], gone["bootfile"]) == (None, None)
    assert " at line " not in served.logs()  # how dnsmasq reports a bad entry


def test_a_mgtifname_this_host_lacks_serves_on_its_own_interface_on_the_network(served, wire):
    """A service node reads the management node's network objects, whose
    mgtifname (br0) names the MN's interface: it serves on its own there."""
    served.ok("makenetworks")
    served.ok("chdef", "-t", "network", "-o", NETWORK, "mgtifname=br0")
    runs = served.ok("makedhcp", "-n").splitlines()[1]
    assert re.fullmatch(rf"The DHCP service runs: dnsmasq \(pid \d+\) on {wire.server_if}", runs)
    define(served, "rd1", 51)
    reloaded(served, reads(served), "makedhcp", "rd1")
    assert wire.ask("52:54:00:77:00:33") == {**ANSWER, "bootfile": "xcat/xnba.kpxe"}


def test_the_served_interface_is_the_mgtifname_this_host_has_else_its_own_on_the_network():
    lo = HostNetwork("lo", ipaddress.IPv4Interface("127.0.0.1/8"), loopback=True)
    eth0 = HostNetwork("eth0", ipaddress.IPv4Interface("172.30.0.11/24"), loopback=False)
    sn = Here([lo, eth0], {"lo", "eth0", "eth1"})  # eth1: down, or without an address
    assert dhcp_interface("mgmt", "br0", eth0, sn) == "eth0"  # the MN's name
    assert dhcp_interface("mgmt", None, eth0, sn) == "eth0"
    assert dhcp_interface("mgmt", "eth1", eth0, sn) == "eth1"  # its own, as given
    assert dhcp_interface("mgmt", "lo", eth0, sn) is None
    assert dhcp_interface("other", "br0", None, sn) is None  # not on it: nothing to serve
    assert dhcp_interface("relayed", "!remote!br0", None, sn) is None
    with pytest.raises(NetworkError, match="mgtifname 'br 0' is not an interface name"):
        dhcp_interface("mgmt", "br 0", eth0, sn)


def test_nodesets_entries_reach_the_running_dnsmasq(served, wire):
    serving(served, wire.server_if)
    make_image(served, "svc")
    define(served, "ns1", 61)
    before = reads(served)
    assert served.ok("nodeset", "ns1", "osimage=svc") == "ns1: netboot debian12-x86_64-service\n"
    wait_for(lambda: reads(served) > before, "dnsmasq reading nodeset's entries", 30)
    assert wire.ask("52:54:00:77:00:3d")["address"] == "10.77.0.61"


def test_dnsmasq_that_dies_is_started_again_and_none_outlives_the_daemon(served, wire):
    directory = dhcp_dir(served)
    pid = serving(served, wire.server_if)
    define(served, "rd1", 51)
    reloaded(served, reads(served), "makedhcp", "rd1")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: dnsmasqs_of(directory) not in ([], [pid]), "dnsmasq started again", 30)
    assert f"DHCP: dnsmasq (pid {pid}) was killed by signal 9; starting it again" in (served.logs())
    assert wire.ask("52:54:00:77:00:33") == {**ANSWER, "bootfile": "xcat/xnba.kpxe"}
    assert served.stop() == 0
    assert dnsmasqs_of(directory) == []
    # The next daemon starts it with the settings makedhcp -n left.
    served.start()
    wait_for(lambda: dnsmasqs_of(directory), "dnsmasq started with the daemon", 30)
    assert parent_of(dnsmasqs_of(directory)[0]) == served.process.pid
    assert wire.ask("52:54:00:77:00:33", timeout=10) == {**ANSWER, "bootfile": "xcat/xnba.kpxe"}


def test_the_dnsmasq_of_a_daemon_killed_outright_is_ended_by_the_next(served, wire):
    directory = dhcp_dir(served)
    pid = serving(served, wire.server_if)
    assert served.stop(signal.SIGKILL) == -signal.SIGKILL
    assert dnsmasqs_of(directory) == [pid]  # nothing could stop it
    served.start()
    wait_for(lambda: dnsmasqs_of(directory) not in ([], [pid]), "a dnsmasq of the new daemon", 30)
    assert f"DHCP: ended dnsmasq [{pid}], left by a daemon that did not stop" in served.logs()
    assert parent_of(dnsmasqs_of(directory)[0]) == served.process.pid


def test_a_busy_port_67_is_one_line_and_n_starts_dnsmasq_once_it_is_free(served, wire):
    holder = subprocess.Popen(
        ["ip", "netns", "exec", wire.server, sys.executable, "-c",
         "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
         "s.bind(('0.0.0.0', 67)); print('bound', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "bound\n"
        served.ok("makenetworks")
        rc, out, err = served.outcome("makedhcp", "-n")
        assert out.startswith(f"Wrote {dhcp_dir(served)}/dnsmasq.conf")
        assert (rc, err) == (
            1,
            "Error: the DHCP service did not start: dnsmasq: failed to bind DHCP server "
            "socket: Address already in use\n",
        )
        define(served, "rd1", 51)
        assert served.outcome("makedhcp", "rd1")[2] == (
            "Warning: the DHCP service is not running (dnsmasq: failed to bind DHCP server "
            "socket: Address already in use): it reads the entries when it starts; "
            "makedhcp -n starts it again\n"
        )
    finally:
        holder.kill()
        holder.wait()
    assert served.ok("makedhcp", "-n").splitlines()[1].startswith("The DHCP service runs")
    assert wire.ask("52:54:00:77:00:33") == {**ANSWER, "bootfile": "xcat/xnba.kpxe"}


def test_serve_dhcp_false_leaves_dhcp_to_the_site(served, wire):
    directory = dhcp_dir(served)
    serving(served, wire.server_if)
    config = served.root / "etc/xcat/xcatd.toml"
    config.write_text(config.read_text().replace("serve_dhcp = true", "serve_dhcp = false"))
    served.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded settings" in served.logs(), "reload", 30)
    assert served.ok("makedhcp", "-n").splitlines()[1:] == [
        f"serve_dhcp = false in {config}: xcatd runs no DHCP service",
        f"no dnsmasq runs with {directory}/dnsmasq.conf: it reads the entries when started",
    ]
    assert dnsmasqs_of(directory) == []  # its own is stopped
    assert wire.ask("52:54:00:77:00:33", timeout=3) is None


def test_h_and_no_arguments_print_xcats_usage_which_has_no_v(cluster):
    # dhcp.pm: the usage on stdout, rc 0 for -h and 1 for no arguments; -v
    # is a bad option there.
    usage = (
        "Usage: makedhcp -n\n\tmakedhcp -a\n\tmakedhcp -a -d\n\tmakedhcp -d noderange\n"
        "\tmakedhcp <noderange>\n\tmakedhcp -q\n\tmakedhcp [-h|--help]\n"
    )
    assert cluster.outcome("makedhcp", "-h") == (0, usage, "")
    assert cluster.outcome("makedhcp") == (1, usage, "")
    assert cluster.outcome("makedhcp", "-v") == (
        1, "", f"Error: unrecognized arguments: -v\n{usage}"
    )  # fmt: skip
