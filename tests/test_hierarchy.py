"""Service nodes serve their compute nodes: the management node carries a
request for their nodes to them (DESIGN.md §9).

A management node (MN) in a network namespace with a bridge; a service node
(SN) in a namespace of its own on that bridge, enrolled the way a booting
service node enrolls (`xcatd enroll` with the kernel command line nodeset
wrote, from its own address), its daemon started as its image starts it.
Then the administrator, on the MN, runs nodeset for compute nodes, some
served by the SN (`servicenode=sn1`), one by the MN itself.  Where a node's
machine runs (its console), the MN is an `xcatd lab`'s and the SN a host on
its management network.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cluster import BIN, Cluster, free_port
from tests.lab import lab_up
from tests.netboot import Machine, Network, network
from tests.sshnode import reach_at_port, sshd
from tests.terminal import HELP, LEAVE, Terminal
from tests.test_lab import BOOT_TIMEOUT
from tests.test_makedhcp import dhcp_offer
from tests.test_nodeset import make_image
from tests.test_nodestat import LISTENER, STAMP
from tests.test_resilience import configure
from tests.waiting import wait_for
from xcatd.admin import seed_policy
from xcatd.config import Config
from xcatd.lab import bmc as bmc_simulator
from xcatd.lab.chassis_control import GUEST_PROMPT
from xcatd.lab.process import Process
from xcatd.sshca import SshAuthority
from xcatd.store import Store

SERVICE_IMAGE, COMPUTE_IMAGE = "sn-image", "cn-image"
STATE = "netboot debian12-x86_64-service"  # make_image's profile
POWER_FILE_CHASSIS = ("/bin/sh", str(Path(__file__).parents[1] / "bench/chassis_state.sh"))


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    with network(tmp_path / "net", "10.78.0.1/24") as net:
        yield net


@pytest.fixture
def mn(net: Network, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "mn", address=net.server, prefix=net.prefix)
    assert cluster.init().returncode == 0
    cluster.start()
    try:
        yield with_images(cluster)
    finally:
        cluster.stop()


def with_images(cluster: Cluster) -> Cluster:
    """The MN, with a service image and a compute image packed."""
    # The nodes boot from the same ports on the MN and on the SN.
    cluster.ok("chdef", "-t", "site", f"httpport={cluster.http_port}")
    service = make_image(cluster, SERVICE_IMAGE, pack=False)
    (service / "rootimg/opt/xcat/bin").mkdir(parents=True)
    (service / "rootimg/opt/xcat/bin/xcatd").write_text("#!/bin/sh\n")
    cluster.ok("packimage", "-c", "zstd", SERVICE_IMAGE)
    make_image(cluster, COMPUTE_IMAGE)
    return cluster


@pytest.fixture
def sn_host(net: Network) -> Iterator[Machine]:
    with net.machine(2) as machine:
        yield machine


@pytest.fixture
def sn(mn: Cluster, sn_host: Machine, tmp_path: Path) -> Iterator[Cluster]:
    """sn1, enrolled and serving, at 10.78.0.2."""
    with serving(mn, sn_host, tmp_path) as service_node:
        yield service_node


@contextmanager
def serving(
    mn: Cluster, sn_host: Machine, tmp_path: Path, serve_dhcp: bool = False
) -> Iterator[Cluster]:
    """sn1, defined on `mn` at `sn_host`'s address, enrolled and serving there
    (with its own DHCP service when `serve_dhcp`)."""
    mn.ok("mkdef", "sn1", "groups=service", "mac=52:54:00:78:00:02", f"ip={sn_host.address}")
    mn.ok("nodeset", "sn1", f"osimage={SERVICE_IMAGE}")
    service_node = Cluster(tmp_path / "sn1", hostname="sn1", address=sn_host.address,
                           prefix=sn_host.prefix)  # fmt: skip
    for port in ("port", "http_port", "tftp_port", "status_port"):
        setattr(service_node, port, getattr(mn, port))
    config = Config("", role="servicenode", listen=(sn_host.address,), port=mn.port,
                    http_port=mn.http_port, tftp_port=mn.tftp_port, status_port=mn.status_port,
                    serve_dhcp=serve_dhcp)  # fmt: skip
    (service_node.root / "etc/xcat").mkdir(parents=True)
    (service_node.root / "etc/xcat/xcatd.toml").write_text(config.dump())
    cmdline = tmp_path / "sn1.cmdline"
    cmdline.write_text(boot_arguments(mn, "sn1"))
    enrolled = subprocess.run(  # as xcatd-enroll.service runs it, from sn1's address
        [*sn_host.prefix, BIN / "xcatd", "enroll", "--root", str(service_node.root),
         "--cmdline", str(cmdline), "--wait", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    service_node.start_restored()
    try:
        yield service_node
    finally:
        service_node.stop()


def boot_arguments(cluster: Cluster, node: str) -> str:
    script = (cluster.root / "tftpboot/xcat/xnba/nodes" / node).read_text()
    return script.split("imgargs kernel ", 1)[1].split("\n", 1)[0]


def define_compute_nodes(mn: Cluster) -> None:
    mn.ok("mkdef", "-t", "group", "-o", "rack1", "servicenode=sn1")
    for number, groups in ((11, "compute,rack1"), (12, "compute,rack1"), (13, "compute")):
        mn.ok("mkdef", f"cn{number}", f"groups={groups}", f"mac=52:54:00:78:00:{number}",
              f"ip=10.78.0.{number}")  # fmt: skip


def test_nodeset_for_nodes_of_a_service_node_runs_on_it_as_the_user(mn, sn):
    define_compute_nodes(mn)

    result = mn.run("nodeset", "compute", f"osimage={COMPUTE_IMAGE}")

    # (No DHCP server is set up here, on the MN or on sn1: each says so.)
    assert result.returncode == 0, result.stderr + sn.logs()[-3000:]
    assert not [line for line in result.stderr.splitlines() if "DHCP" not in line]
    assert sorted(result.stdout.splitlines()) == [f"cn{n}: {STATE}" for n in (11, 12, 13)]
    # cn11 and cn12 boot from sn1: their boot files are sn1's, naming sn1.
    for node in ("cn11", "cn12"):
        assert not (mn.root / "tftpboot/xcat/xnba/nodes" / node).exists()
        arguments = boot_arguments(sn, node).split()
        assert f"XCAT=10.78.0.2:{mn.port}" in arguments
        assert any(a.startswith(f"imgurl=http://10.78.0.2:{mn.http_port}{sn.root}/install/")
                   for a in arguments)  # fmt: skip
    assert f"XCAT=10.78.0.1:{mn.port}" in boot_arguments(mn, "cn13").split()
    # The MN's definitions say what sn1 set its nodes to, as for its own.
    assert mn.ok("lsdef", "cn11", "-i", "currstate,provmethod,profile") == (
        "Object name: cn11\n    currstate=netboot debian12-x86_64-service\n"
        f"    profile=service\n    provmethod={COMPUTE_IMAGE}\n"
    )
    assert not (sn.root / "tftpboot/xcat/xnba/nodes/cn13").exists()
    # sn1 keeps its own copy of the packed image, whole.
    theirs = mn.root / "install/netboot/debian12/x86_64" / COMPUTE_IMAGE
    ours = sn.root / "install/netboot/debian12/x86_64" / COMPUTE_IMAGE
    for name in ("rootimg.cpio.zst", "rootimg.cpio.zst.sha256", "kernel", "initrd-stateless.gz"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes()
    assert hashlib.sha256((ours / "rootimg.cpio.zst").read_bytes()).hexdigest() in (
        (ours / "rootimg.cpio.zst.sha256").read_text()
    )
    # sn1 ran it as root, who signed it; the MN carried it.
    assert audited(sn, "nodeset") == [("root", "10.78.0.1:* via mn1", 0)]
    # Set to something else, the node is recorded so; set again as it is, it stays so.
    for _ in range(2):
        assert mn.ok("nodeset", "cn11", "offline") == "cn11: offline\n"
        assert mn.ok("lsdef", "cn11", "-i", "currstate") == (
            "Object name: cn11\n    currstate=offline\n"
        )


def test_a_service_node_links_the_kernel_it_copied_and_a_new_image_leaves_the_served_one_whole(
    mn, sn
):
    define_compute_nodes(mn)
    mn.ok("nodeset", "rack1", f"osimage={COMPUTE_IMAGE}")
    # sn1's tftpdir has its copy of the kernel and initrd, not another copy of them.
    ours = sn.root / "install/netboot/debian12/x86_64" / COMPUTE_IMAGE
    served = sn.root / "tftpboot/xcat/osimage" / COMPUTE_IMAGE
    for name in ("kernel", "initrd-stateless.gz"):
        assert (served / name).stat().st_ino == (ours / name).stat().st_ino
        assert (served / name).stat().st_mode & 0o777 == 0o644  # dnsmasq reads it as nobody
    with (served / "kernel").open("rb") as booting:  # a node's download under way
        # The administrator makes a new kernel (genimage puts it in place by a
        # rename) and packs again; the next nodeset brings it to sn1.
        theirs = mn.root / "install/netboot/debian12/x86_64" / COMPUTE_IMAGE
        (theirs / ".kernel.new").write_bytes(b"a newer kernel")
        os.replace(theirs / ".kernel.new", theirs / "kernel")
        (theirs / "rootimg/etc/hostname").write_text("node, packed again\n")
        mn.ok("packimage", "-c", "zstd", COMPUTE_IMAGE)
        mn.ok("nodeset", "rack1", f"osimage={COMPUTE_IMAGE}")

        assert booting.read() == b"a kernel for " + COMPUTE_IMAGE.encode()  # whole, as it was
    assert (served / "kernel").read_bytes() == b"a newer kernel"
    assert (served / "kernel").stat().st_ino == (ours / "kernel").stat().st_ino


def test_rmdef_C_takes_nodes_of_a_service_node_offline_there_then_removes_them(mn, sn):
    define_compute_nodes(mn)
    mn.ok("nodeset", "cn11,cn13", f"osimage={COMPUTE_IMAGE}")

    assert mn.ok("rmdef", "-C", "cn11,cn13") == "2 object definitions have been removed.\n"

    # sn1 took cn11 off the network boot, the MN cn13: neither can boot a removed node.
    offline = "#!ipxe\n#offline\nexit\n"
    assert (sn.root / "tftpboot/xcat/xnba/nodes/cn11").read_text() == offline
    assert (mn.root / "tftpboot/xcat/xnba/nodes/cn13").read_text() == offline
    assert mn.outcome("nodels", "cn11")[0] == 1
    assert audited(sn, "rmdef") == [("root", "10.78.0.1:* via mn1", 0)]


def test_V_says_which_service_node_runs_each_part(mn, sn):
    define_compute_nodes(mn)
    shown = mn.ok("nodeset", "cn11,cn12,cn13", f"osimage={COMPUTE_IMAGE}", "-V")
    assert shown.splitlines()[0] == "nodeset for cn11,cn12 runs on service node sn1 (10.78.0.2)"
    assert sorted(shown.splitlines()[1:]) == [f"cn{n}: {STATE}" for n in (11, 12, 13)]
    assert mn.ok("nodeset", "cn13", "stat", "--verbose") == f"cn13: {STATE}\n"  # all here


def test_a_compute_node_reports_to_its_service_node_and_the_mn_shows_it(mn, sn, net, tmp_path):
    define_compute_nodes(mn)
    mn.ok("nodeset", "cn11", f"osimage={COMPUTE_IMAGE}")
    status_url = next(
        word.partition("=")[2]
        for word in boot_arguments(sn, "cn11").split()
        if word.startswith("XCATSTATUS=")
    )
    assert status_url == f"http://10.78.0.2:{mn.http_port}/xcatd/status"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@cn11",
                    "-f", tmp_path / "host_key"], check=True)  # fmt: skip
    hostkey = (tmp_path / "host_key.pub").read_text().strip()
    with net.machine(11) as cn11:

        def report(*fields: str) -> subprocess.CompletedProcess:
            """What the image's report-boot unit sends, from the node's address."""
            form = [word for field in fields for word in ("--data-urlencode", field)]
            return subprocess.run([*cn11.prefix, "curl", "-sS", *form, status_url],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip

        refused = report("node=cn11", "state=booted", "hostkey=ssh-ed25519 AAAAnotakey")
        assert refused.stdout.startswith("hostkey: 'ssh-ed25519 AAAAnotakey' is not an OpenSSH")
        posted = report("node=cn11", "state=booted", f"hostkey={hostkey}")
    assert (posted.returncode, posted.stdout) == (0, "cn11: booted\n"), posted.stderr
    # sn1 knows cn11's host key now, as this boot made it: ssh asks nothing.
    assert (sn.root / "etc/ssh/ssh_known_hosts2").read_text() == (
        f"cn11,10.78.0.11 {hostkey.rpartition(' ')[0]}\n"
    )
    deadline = time.monotonic() + 20
    while mn.ok("nodels", "cn11", "status") != "cn11: booted\n":
        assert time.monotonic() < deadline, sn.logs()[-2000:]
        time.sleep(0.2)
    assert mn.ok("nodels", "cn12", "status") == "cn12: \n"  # it said nothing


def test_makedhcp_sets_up_each_service_nodes_dhcp_and_its_nodes_entries_there(mn, sn):
    define_compute_nodes(mn)
    mn.ok("mkdef", "-t", "network", "-o", "net78", "net=10.78.0.0", "mask=255.255.255.0")

    settings = mn.run("makedhcp", "-n")
    assert settings.returncode == 0, settings.stderr
    # sn1 wrote its own settings, for its interface on that network; what it
    # says of itself comes with its name, beside the MN's own lines.
    assert "interface=eth0" in (sn.root / "etc/xcat/dhcp/dnsmasq.conf").read_text()
    assert (
        f"sn1: Wrote {sn.root}/etc/xcat/dhcp/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for 1 "
        "network(s): net78\n"
    ) in settings.stdout
    mine = f"Wrote {mn.root}/etc/xcat/dhcp/dnsmasq.conf"
    assert any(line.startswith(mine) for line in settings.stdout.splitlines())

    entries = mn.run("makedhcp", "compute")
    assert entries.returncode == 0, entries.stderr
    assert dhcp_hosts(sn) == {
        "52:54:00:78:00:11,10.78.0.11,cn11", "52:54:00:78:00:12,10.78.0.12,cn12"
    }  # fmt: skip
    assert dhcp_hosts(mn) == {  # sn1's own, from its nodeset; and cn13's
        "52:54:00:78:00:02,10.78.0.2,sn1", "52:54:00:78:00:13,10.78.0.13,cn13"
    }  # fmt: skip

    assert mn.run("makedhcp", "-d", "cn11").returncode == 0
    assert dhcp_hosts(sn) == {"52:54:00:78:00:12,10.78.0.12,cn12"}
    # -q asks where the entries are; -l (xCAT's --localonly) keeps to the MN's own files.
    assert mn.ok("makedhcp", "-q", "cn12") == (
        "cn12: ip-address = 10.78.0.12, hardware-address = 52:54:00:78:00:12\n"
    )
    assert mn.run("makedhcp", "-l", "cn12").returncode == 0
    assert "52:54:00:78:00:12,10.78.0.12,cn12" in dhcp_hosts(mn)
    assert mn.ok("makedhcp", "-q", "-l", "cn12") == (
        "cn12: ip-address = 10.78.0.12, hardware-address = 52:54:00:78:00:12\n"
    )


def test_a_service_node_takes_the_definitions_again_only_when_they_changed(mn, sn):
    define_compute_nodes(mn)
    mn.ok("mkdef", "-t", "network", "-o", "net78", "net=10.78.0.0", "mask=255.255.255.0")

    mn.ok("makedhcp", "cn11")
    mn.ok("makedhcp", "cn11")  # nothing changed: sn1 works from its copy
    mn.ok("chdef", "cn11", "mac=52:54:00:78:01:11")
    mn.ok("makedhcp", "cn11")  # sn1 takes the change
    mn.ok("updatenodestat", "cn11", "booted")  # a status report changes no definition
    mn.ok("makedhcp", "cn11")

    # (The first, at sn1's start: it sets its nodes up again.)
    assert definitions_taken(sn) == ["taken", "taken", "unchanged", "taken", "unchanged"]
    assert "52:54:00:78:01:11,10.78.0.11,cn11" in dhcp_hosts(sn)


def test_a_rebooted_service_node_serves_its_nodes_again_with_no_command(mn, net, sn_host, tmp_path):
    """Its root is in memory: a reboot loses its copy of the definitions, its
    boot files, its DHCP files and its images.  Its daemon's start brings
    them back, from the MN's definitions, with no command run on the MN:
    its dnsmasq answers cn11 again, naming sn1."""
    with serving(mn, sn_host, tmp_path, serve_dhcp=True) as sn, net.machine(11) as cn11:
        define_compute_nodes(mn)
        mn.ok("mkdef", "-t", "network", "-o", "net78", "net=10.78.0.0", "mask=255.255.255.0")
        mn.ok("makedhcp", "-n")
        mn.ok("nodeset", "cn11", f"osimage={COMPUTE_IMAGE}")
        mn.ok("nodeset", "cn12", "boot")
        before = {node: boot_file(sn, node).read_text() for node in ("cn11", "cn12")}
        offered = dhcp_offer(cn11.prefix, "eth0", "52:54:00:78:00:11")
        assert offered == {"address": "10.78.0.11", "next_server": "10.78.0.2",
                           "hostname": "cn11", "bootfile": "xcat/xnba.kpxe"}  # fmt: skip
        recorded = mn.ok("lsdef", "cn11,cn12", "-i", "currstate,provmethod")
        audits = len(mn.audited("nodeset", "id", at_least=3))

        sn.stop()
        reboot(sn)
        assert dhcp_offer(cn11.prefix, "eth0", "52:54:00:78:00:11", timeout=2) is None
        logged = sn.start_restored()

        assert logged.endswith("restored the boot files of 2 nodes"), sn.logs()[-3000:]
        assert {node: boot_file(sn, node).read_text() for node in ("cn11", "cn12")} == before
        assert dhcp_hosts(sn) == {
            "52:54:00:78:00:11,10.78.0.11,cn11", "52:54:00:78:00:12,10.78.0.12,cn12"
        }  # fmt: skip
        assert dhcp_offer(cn11.prefix, "eth0", "52:54:00:78:00:11") == offered
        assert (sn.root / "install/netboot/debian12/x86_64" / COMPUTE_IMAGE / "kernel").is_file()
        assert not boot_file(sn, "cn13").exists()  # the MN's node
        # The MN was asked for its definitions only: its records are as they were.
        assert mn.ok("lsdef", "cn11,cn12", "-i", "currstate,provmethod") == recorded
        assert len(mn.audited("nodeset", "id")) == audits
        # A request carried to it later works as before.
        assert mn.ok("nodeset", "cn11", "offline") == "cn11: offline\n"
        assert boot_file(sn, "cn11").read_text() == "#!ipxe\n#offline\nexit\n"


def test_a_service_node_up_before_its_mn_sets_up_its_nodes_once_the_mn_answers(mn, sn):
    define_compute_nodes(mn)
    mn.ok("nodeset", "cn11", f"osimage={COMPUTE_IMAGE}")
    before = boot_file(sn, "cn11").read_text()
    sn.stop()
    reboot(sn)
    mn.stop()

    logged = len(sn.logs())
    started = time.monotonic()
    sn.start()
    wait_for(lambda: "cannot take the definitions yet" in sn.logs()[logged:],
             lambda: sn.logs()[logged:])  # fmt: skip
    # It serves its port meanwhile: root on the MN's host reaches it.
    through_sn1 = {**mn.env, "XCATHOST": f"{sn.address}:{sn.port}"}
    assert mn.run("lsxcatd", "-t", env=through_sn1).stdout == "This is a Service Node\n"
    assert not boot_file(sn, "cn11").exists()
    mn.start()

    wait_for(lambda: "restored the boot files of 1 nodes" in sn.logs()[logged:],
             lambda: sn.logs()[logged:], timeout=30)  # fmt: skip
    assert boot_file(sn, "cn11").read_text() == before
    # One line per attempt, tried again after 1 s, 2 s, 4 s ...: a few, not a flood.
    failures = sn.logs()[logged:].count("cannot take the definitions yet")
    assert 1 <= failures <= 2 + math.log2(1 + time.monotonic() - started)


def boot_file(cluster: Cluster, node: str) -> Path:
    return cluster.root / "tftpboot/xcat/xnba/nodes" / node


def reboot(sn: Cluster) -> None:
    """What a reboot of a stateless sn1 loses (its root is in memory) of
    what its daemon kept: all but its configuration and credentials, and a
    database with the default policy only, which its enrollment at boot gives
    it again (enroll.py `install`); the directories are there, empty, as its
    image holds them."""
    for lost in ("var/lib/xcat", "tftpboot", "etc/xcat/dhcp", "install"):
        shutil.rmtree(sn.root / lost)
        (sn.root / lost).mkdir()
    store = Store(sn.root / "var/lib/xcat/xcat.sqlite")
    try:
        seed_policy(store)
    finally:
        store.close()


def definitions_taken(sn: Cluster) -> list[str]:
    """What sn1 did with the MN's definitions for each request, by its log."""
    return [
        "unchanged" if line.endswith(": unchanged") else "taken"
        for line in sn.logs().splitlines()
        if "definitions from " in line
    ]


def dhcp_hosts(cluster: Cluster) -> set[str]:
    text = (cluster.root / "etc/xcat/dhcp/dnsmasq-hosts").read_text()
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def test_power_for_nodes_of_a_service_node_runs_on_it(mn, sn):
    """Their BMCs are on the service node's networks: it drives them."""
    define_compute_nodes(mn)
    mn.ok("chdef", "cn11", "mgt=ipmi", "bmc=10.79.0.11", "bmcusername=admin", "bmcpassword=s3cret")

    result = mn.run("rpower", "cn11,cn13", "stat")

    assert result.returncode == 1, result.stderr  # neither BMC answers here
    errors = sorted(line for line in result.stderr.splitlines() if "Error" in line)
    assert errors[0].startswith("cn11: Error: ") and "10.79.0.11" in errors[0], errors
    assert errors[1].startswith("cn13: Error: ")
    assert audited(sn, "rpower") == [("root", "10.78.0.1:* via mn1", 1)]
    assert "s3cret" not in sn.logs()  # the secret reached sn1's copy, never its log
    # xCAT's switch for BMCs the MN reaches itself: then it drives them all.
    mn.ok("chdef", "-t", "site", "ipmidispatch=n")
    assert mn.run("rpower", "cn11", "stat").returncode == 1
    assert audited(sn, "rpower") == [("root", "10.78.0.1:* via mn1", 1)]  # not again
    assert [rc for _, _, rc in audited(mn, "rpower", 2)] == [1, 1]


def test_rinstall_sets_up_and_powers_nodes_of_a_service_node_there_each_once(
    mn, sn, sn_host, tmp_path
):
    """nodeset on sn1 for its node, the power where rpower goes: sn1
    drives the BMC only it reaches; with ipmidispatch=n the MN does."""
    define_compute_nodes(mn)
    with compute_network(sn_host, tmp_path) as bmc:
        mn.ok("chdef", "cn12", *(f"{name}={value}" for name, value in bmc.items()))
        power = tmp_path / "bmc12/power"  # the chassis' state: 1 is on

        result = mn.run("rinstall", "cn12,cn13", f"osimage={COMPUTE_IMAGE}")

        assert result.stdout == "Provision node(s): cn12 cn13\n"
        # cn13, the MN's, has no BMC; cn12 was set up and powered on by sn1.
        assert [line for line in result.stderr.splitlines() if "DHCP" not in line] == [
            "cn13: Error: mgt is not set: set it with chdef <node> mgt=ipmi",
            "Error: Failed to run 'rpower' against the following nodes: cn13",
        ]
        assert boot_arguments(sn, "cn12")  # its boot file is sn1's
        assert power.read_text().strip() == "1"
        assert mn.ok("lsdef", "cn12", "-i", "currstate") == (
            f"Object name: cn12\n    currstate={STATE}\n"
        )
        assert audited(sn, "rinstall") == [("root", "10.78.0.1:* via mn1", 0)]

        # The MN drives every BMC itself: sn1 sets cn12 up, the MN powers
        # it, and cannot reach its BMC; sn1 does not power it too.
        mn.ok("chdef", "-t", "site", "ipmidispatch=n")
        power.write_text("0\n")
        again = mn.run("rinstall", "cn12", "-V")
        assert again.stdout.splitlines()[:3] == [
            "Provision node(s): cn12",
            "Run command: nodeset cn12 osimage",
            "rinstall for cn12 runs on service node sn1 (10.78.0.2)",
        ]
        assert f"cn12: {STATE}" in again.stdout.splitlines()
        assert "Run command: rpower cn12 boot" in again.stdout.splitlines()
        assert [line for line in again.stderr.splitlines() if "DHCP" not in line] == [
            f"cn12: Error: no answer from BMC 10.80.0.112:{bmc['bmcport']} (2 tries)",
            "Error: Failed to run 'rpower' against the following nodes: cn12",
        ]
        assert power.read_text().strip() == "0"  # no one else powered it
        assert audited(sn, "rinstall", 2) == [("root", "10.78.0.1:* via mn1", 0)] * 2


def test_rcons_of_a_node_of_a_service_node_attaches_to_its_console_there(tmp_path):
    """A lab's compute node cn1, served by sn1 on the lab's management
    network: sn1 reaches the node's BMC and holds its console; the MN
    carries rcons there, the output back and the keystrokes on."""
    with lab_up("--service-nodes", "0", "--compute-nodes", "1", "--memory", "256") as lab:
        mn = with_images(lab.cluster())
        with lab.machine(11) as sn_host, serving(mn, sn_host, tmp_path) as sn:
            # xCAT's default, which the lab turns off (its MN reaches every
            # BMC): a service node drives its nodes' BMCs.
            mn.ok("chdef", "-t", "site", "ipmidispatch=y")
            mn.ok("chdef", "cn1", "servicenode=sn1")
            console = Terminal(mn, "rcons", "cn1")
            try:
                console.wait_for(HELP)
                assert mn.ok("rpower", "cn1", "on") == "cn1: on\n"
                prompt = ipxe_shell(console)
                console.type(b"echo ${platform}-typed\r")
                console.wait_for("pcbios-typed", after=prompt)
                console.type(LEAVE)
                assert console.exit_code() == 0
            finally:
                console.close()
            assert "pcbios-typed" in (sn.root / "var/log/xcat/consoles/cn1.log").read_text()
            on_mn = mn.root / "var/log/xcat/consoles/cn1.log"
            assert not on_mn.exists() or "pcbios-typed" not in on_mn.read_text()
            assert audited(sn, "rcons") == [("root", "172.30.0.1:* via mn", 0)]


def ipxe_shell(console: Terminal) -> int:
    """Ctrl-B, pressed until the machine's firmware (iPXE, which asks for
    it for two seconds at each of its banners) opens its shell; where the
    shell's prompt ends on the console."""

    def opened() -> bool:
        console.type(b"\x02")
        return GUEST_PROMPT in console.output

    wait_for(opened, lambda: f"iPXE's shell:\n{console.output}", BOOT_TIMEOUT, interval=0.5)
    return console.wait_for(GUEST_PROMPT)


@contextmanager
def compute_network(sn_host: Machine, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Addresses only sn1 reaches (the MN has no route there): cn11 at
    10.80.0.11, an address of sn1's own namespace with sshd's port open;
    cn12 at 10.80.0.12, where no one answers, and its BMC at 10.80.0.112,
    powered off (a simulator, bench/chassis_state.sh its chassis).  The
    attributes that name that BMC."""
    for address in ("10.80.0.11", "10.80.0.112"):
        sn_host.ip("addr", "add", f"{address}/32", "dev", "lo")
    sshd = Process([*sn_host.prefix, sys.executable, "-c", LISTENER, "10.80.0.11", "22"],
                   tmp_path / "cn11-sshd.log")  # fmt: skip
    port = free_port(socket.SOCK_DGRAM)
    bmc = bmc_simulator.configure(tmp_path / "bmc12", "bmc12", "10.80.0.112", port, "ipmi-pw",
                                  12, POWER_FILE_CHASSIS)  # fmt: skip
    bmc_process = Process([*sn_host.prefix, *bmc], tmp_path / "bmc12/log")
    try:
        sshd.wait_for("listening", 10)
        wait_for(lambda: bmc_simulator.listening(sn_host.prefix, port, "10.80.0.112"),
                 bmc_process.tail, 10)  # fmt: skip
        yield {"mgt": "ipmi", "bmc": "10.80.0.112", "bmcport": str(port),
               "bmcusername": bmc_simulator.USER, "bmcpassword": "ipmi-pw"}  # fmt: skip
    finally:
        bmc_process.stop()
        sshd.stop()


def test_nodestat_probes_the_nodes_of_a_service_node_from_it(mn, sn, sn_host, tmp_path):
    define_compute_nodes(mn)
    mn.ok("chdef", "cn11", "ip=10.80.0.11")
    mn.ok("chdef", "cn12", "ip=10.80.0.12")
    with compute_network(sn_host, tmp_path) as bmc:
        mn.ok("chdef", "cn12", *(f"{name}={value}" for name, value in bmc.items()))
        # The MN's own nodes (sn1, cn13) beside sn1's, in one list by name.
        result = mn.run("nodestat", "compute,sn1")
        assert (result.returncode, result.stderr) == (0, ""), sn.logs()[-2000:]
        assert result.stdout == "cn11: sshd\ncn12: noping\ncn13: noping\nsn1: ping\n"
        # -u: saved where nodestat's lines are read, the MN, as it answers.
        assert mn.ok("nodestat", "cn11,cn12,cn13", "-u") == (
            "cn11: sshd\ncn12: noping\ncn13: noping\n"
        )
        assert re.fullmatch(
            rf"Object name: cn11\n    status=ping\n    statustime={STAMP}\n"  # as xCAT saves sshd
            rf"Object name: cn12\n    status=noping\n    statustime={STAMP}\n"
            rf"Object name: cn13\n    status=noping\n    statustime={STAMP}\n",
            mn.ok("lsdef", "cn11,cn12,cn13", "-i", "status,statustime"),
        )
        assert re.fullmatch(rf"cn11: sshd \(ping {STAMP}\)\n", mn.ok("nodestat", "cn11", "-t"))
        # -p: cn12's BMC, which sn1 reaches; with ipmidispatch=n, the MN
        # asks it itself, as rpower would, and cannot reach it.
        assert mn.ok("nodestat", "cn11,cn12", "-p") == "cn11: sshd\ncn12: noping(off)\n"
        mn.ok("chdef", "-t", "site", "ipmidispatch=n")
        undispatched = mn.run("nodestat", "cn12", "-p")
        assert (undispatched.returncode, undispatched.stdout, undispatched.stderr) == (
            1,
            "cn12: noping\n",
            f"cn12: Error: no answer from BMC 10.80.0.112:{bmc['bmcport']} (2 tries)\n",
        )
    # sn1 ran them all as root, who signed them; the MN carried them.
    assert audited(sn, "nodestat", 5) == [("root", "10.78.0.1:* via mn1", 0)] * 5


def test_a_service_node_that_cannot_be_reached_costs_its_nodes_an_error_line(mn, sn):
    define_compute_nodes(mn)
    sn.stop()

    result = mn.run("nodeset", "compute", f"osimage={COMPUTE_IMAGE}")

    assert result.returncode == 1
    assert result.stdout == f"cn13: {STATE}\n"
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert errors == [
        f"cn1{n}: Error: service node sn1: cannot reach xcatd at 10.78.0.2:{mn.port}: "
        "Connection refused"
        for n in (1, 2)
    ], result.stderr


def test_nodestat_of_a_service_node_that_cannot_be_reached_shows_the_mns_own_nodes(mn, sn):
    define_compute_nodes(mn)
    sn.stop()

    result = mn.run("nodestat", "compute,sn1", "-u")

    assert result.returncode == 1
    assert result.stdout == "cn13: noping\nsn1: ping\n"  # (its machine is up, its xcatd not)
    assert result.stderr.splitlines() == [
        f"cn1{n}: Error: service node sn1: cannot reach xcatd at 10.78.0.2:{mn.port}: "
        "Connection refused"
        for n in (1, 2)
    ]
    # Nothing is known of sn1's nodes: their status stays as it was.
    assert mn.ok("nodels", "cn11,cn12,cn13", "status") == ("cn11: \ncn12: \ncn13: noping\n")


def test_a_service_node_that_hangs_costs_its_nodes_an_error_line_not_the_request(mn, sn):
    """A service node stopped in the middle of a request keeps its
    connection open and says nothing: after dispatch_idle seconds its nodes
    get an error line each, and the MN's own nodes their results."""
    with_silent_bmcs(mn, "cn11,cn13", dispatch_idle=2.0)
    logged = len(sn.logs())
    rpower = subprocess.Popen([*mn.prefix, BIN / "rpower", "cn11,cn13", "stat"], env=mn.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        # sn1 took the definitions and is at its BMC: stop it there.
        deadline = time.monotonic() + 20
        while "definitions from" not in sn.logs()[logged:]:
            assert time.monotonic() < deadline, sn.logs()[-2000:]
            time.sleep(0.05)
        os.kill(sn.process.pid, signal.SIGSTOP)
        _, err = rpower.communicate(timeout=60)
    finally:
        os.kill(sn.process.pid, signal.SIGCONT)
    assert rpower.returncode == 1
    assert f"cn11: Error: service node sn1: xcatd at 10.78.0.2:{mn.port} said nothing for 2 s" in (
        err.splitlines()
    ), err
    assert any(line.startswith("cn13: Error: ") for line in err.splitlines())  # the MN's own


def test_a_service_node_busy_longer_than_the_idle_limit_is_not_taken_for_a_hung_one(mn, sn):
    """sn1 waits for a BMC that never answers (10 s a try, two tries), far
    longer than the MN's dispatch_idle, saying nothing of its own: its
    heartbeat tells the MN it works, so the node gets sn1's answer."""
    with_silent_bmcs(mn, "cn11", dispatch_idle=7.0)

    result = mn.run("rpower", "cn11", "stat")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "cn11: Error: no answer from BMC 10.79.0.11:623 (2 tries)"
    ], result.stderr


def with_silent_bmcs(mn: Cluster, noderange: str, dispatch_idle: float) -> None:
    """The compute nodes defined, those of `noderange` with a BMC address no
    one answers at, and the MN restarted with this dispatch_idle."""
    define_compute_nodes(mn)
    mn.ok("chdef", noderange, "mgt=ipmi", "bmc=10.79.0.11", "bmcusername=admin",
          "bmcpassword=s3cret")  # fmt: skip
    mn.stop()
    configure(mn, dispatch_idle=dispatch_idle)
    mn.start()


def test_a_node_whose_service_node_is_not_defined_is_told_so(mn):
    mn.ok("mkdef", "cn21", "groups=compute", "mac=52:54:00:78:00:21", "ip=10.78.0.21",
          "servicenode=sn9")  # fmt: skip
    result = mn.run("nodeset", "cn21", f"osimage={COMPUTE_IMAGE}")
    assert result.returncode == 1
    assert "cn21: Error: service node sn9 has no ip: chdef sn9 ip=<address>\n" in result.stderr


def audited(cluster: Cluster, command: str, at_least: int = 1) -> list[tuple[str, str, int]]:
    rows = cluster.audited(command, "user, peer, rc", at_least)
    return [(user, _port_hidden(peer), rc) for user, peer, rc in rows]


def _port_hidden(peer: str) -> str:
    address, _, rest = peer.partition(" ")
    return f"{address.rpartition(':')[0]}:* {rest}".strip()


def test_xdcp_to_a_node_of_a_service_node_copies_from_the_service_node(mn, sn, sn_host, tmp_path):
    # cn21 answers over SSH at sn1's own address, in sn1's network namespace:
    # a real sshd trusting the cluster's SSH CA, at a port only sn1's root's
    # ssh config names (from the MN, ssh would knock at port 22 in vain).
    # sn1's root trusts the CA for host keys, as its image's ssh_known_hosts does.
    authority = SshAuthority(mn.root / "etc/xcat/pki")
    known_hosts = f"@cert-authority * {authority.public_file.read_text()}"
    (sn.root / ".ssh/known_hosts").write_text(known_hosts)
    with sshd(tmp_path / "sshd", authority, [sn_host.address], sn_host.prefix) as port:
        reach_at_port(sn.root / ".ssh", [sn_host.address], port)
        mn.ok("mkdef", "cn21", "groups=all", f"ip={sn_host.address}", "servicenode=sn1")
        small, large = tmp_path / "motd", tmp_path / "large"
        small.write_text("via sn1\n")
        large.write_bytes(os.urandom(5 << 20))  # over the request's inline input: streamed
        target = tmp_path / "on-cn21"  # (the namespaces share this host's file system)
        target.mkdir()
        assert mn.ok("xdcp", "cn21", str(small), str(large), str(target)) == ""
        assert (target / "motd").read_text() == "via sn1\n"
        assert (target / "large").read_bytes() == large.read_bytes()
        assert mn.ok("xdsh", "cn21", f"cat {target}/motd") == "cn21: via sn1\n"
