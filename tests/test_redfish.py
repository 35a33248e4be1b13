"""rpower and rsetboot for `mgt=redfish` nodes, as an administrator uses
them, against a real Redfish BMC: sushy-tools' emulator in front of a real
libvirt/QEMU machine on a test network's bridge (tests/redfish_lab.py).
What the commands print is checked against the machine: libvirt's state of
the domain, its id (new at each start), what it booted: its disk's words on
its serial console, or the DHCP request dnsmasq sees from its MAC.  Then the one-line errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster
from .netboot import Network, Process, network
from .redfish_lab import (
    DISK_BOOTED,
    PASSWORD,
    UEFI_CODE,
    USER,
    RedfishBmc,
    redfish_bmc,
    virsh,
)
from .waiting import wait_for

MAC = "52:54:00:77:00:31"
NETBOOT_LIMIT = 120  # seconds from power-on to the firmware's boot, under TCG
UEFI_CLIENT = "PXEClient:Arch:00007"  # DHCP's vendor class of an x86-64 UEFI PXE client


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Cluster, RedfishBmc, Process]]:
    """A cluster in a test network whose node rf1 is a machine behind a
    Redfish BMC, and dnsmasq on the bridge (its log shows DHCP requests)."""
    with network(tmp_path) as net:
        dhcp = net.dnsmasq(dhcp_conf(net, tmp_path))
        with redfish_bmc(net, tmp_path, MAC) as bmc:
            cluster = Cluster(tmp_path / "mn1", address=net.server, prefix=net.prefix)
            assert cluster.init().returncode == 0
            cluster.start()
            try:
                cluster.ok("mkdef", "rf1", "groups=redfish", f"mac={MAC}", *attributes(bmc))
                yield cluster, bmc, dhcp
            finally:
                cluster.stop()


def dhcp_conf(net: Network, workdir: Path) -> Path:
    conf = workdir / "dnsmasq.conf"
    conf.write_text(f"dhcp-range={net.host(100)},{net.host(200)},1h\n")
    return conf


def attributes(bmc: RedfishBmc, **changed: str) -> list[str]:
    values = {"mgt": "redfish", "bmc": bmc.address, "bmcport": str(bmc.port),
              "bmcusername": USER, "bmcpassword": PASSWORD} | changed  # fmt: skip
    return [f"{name}={value}" for name, value in values.items()]


def asked_dhcp(dhcp: Process) -> int:
    """How many DHCP requests dnsmasq has seen from the machine's MAC."""
    return len(re.findall(rf"DHCPDISCOVER\(\S+\) {MAC}", dhcp.text()))


def test_rpower_drives_the_machine_behind_a_redfish_bmc(lab) -> None:
    cluster, bmc, _ = lab
    assert cluster.ok("rpower", "rf1", "stat") == "rf1: off\n"
    assert bmc.state() == "shut off"

    assert cluster.ok("rpower", "rf1", "on") == "rf1: on\n"
    bmc.wait_state("running")
    started = bmc.domain_id()
    assert cluster.ok("rpower", "rf1", "state") == "rf1: on\n"
    assert cluster.ok("rpower", "rf1", "on") == "rf1: on\n"  # already on: nothing sent
    assert bmc.domain_id() == started

    assert cluster.ok("rpower", "rf1", "reset") == "rf1: reset\n"
    wait_for(lambda: bmc.domain_id() not in ("-", started), "a new start after the reset")
    restarted = bmc.domain_id()
    assert cluster.ok("rpower", "rf1", "cycle") == "rf1: cycle\n"
    wait_for(lambda: bmc.domain_id() not in ("-", restarted), "a new start after the cycle")
    bmc.wait_state("running")
    # The firmware has no ACPI to act on; what the BMC accepted is printed.
    assert cluster.ok("rpower", "rf1", "softoff") == "rf1: softoff\n"

    assert cluster.ok("rpower", "rf1", "off") == "rf1: off\n"
    bmc.wait_state("shut off")
    assert cluster.ok("rpower", "rf1", "off") == "rf1: off\n"
    assert cluster.ok("rpower", "rf1", "reset") == "rf1: off\n"  # nothing to reset
    assert cluster.ok("rpower", "rf1", "boot") == "rf1: on\n"  # boot of an off machine: on
    bmc.wait_state("running")


def test_rsetboot_chooses_what_the_machine_boots_next(lab) -> None:
    cluster, bmc, dhcp = lab
    assert cluster.ok("rsetboot", "rf1", "hd") == "rf1: Hard Drive\n"
    assert cluster.ok("rsetboot", "rf1", "stat") == "rf1: Hard Drive\n"
    cluster.ok("rpower", "rf1", "on")
    wait_for(lambda: DISK_BOOTED in bmc.console_text(), "the disk's boot", timeout=NETBOOT_LIMIT)
    assert asked_dhcp(dhcp) == 0

    assert cluster.ok("rsetboot", "rf1", "net") == "rf1: Network\n"
    assert cluster.ok("rsetboot", "rf1", "stat") == "rf1: Network\n"
    assert cluster.ok("rpower", "rf1", "boot") == "rf1: reset\n"  # boot of a running machine
    wait_for(lambda: asked_dhcp(dhcp), "the machine's DHCP request", timeout=NETBOOT_LIMIT)
    cluster.ok("rpower", "rf1", "off")


def restarted(cluster: Cluster, bmc: RedfishBmc, *command: str) -> str:
    """Run a command that restarts the machine; its output, once the
    machine runs again (a new domain id)."""
    before = bmc.domain_id()
    output = cluster.ok(*command)
    wait_for(lambda: bmc.domain_id() not in ("-", before), f"a new start after {command}")
    return output


def test_rnetboot_boots_from_the_network_and_rsetboot_p_keeps_it(lab) -> None:
    cluster, bmc, dhcp = lab
    cluster.ok("rsetboot", "rf1", "hd")
    cluster.ok("rpower", "rf1", "on")
    wait_for(lambda: DISK_BOOTED in bmc.console_text(), "the disk's boot", timeout=NETBOOT_LIMIT)
    assert asked_dhcp(dhcp) == 0

    # rnetboot of a running machine: the next boot from the network, then a reset.
    assert restarted(cluster, bmc, "rnetboot", "rf1") == "rf1: Success\n"
    wait_for(lambda: asked_dhcp(dhcp), "the machine's DHCP request", timeout=NETBOOT_LIMIT)

    # -p: the network for every boot, not only the next one.
    assert cluster.ok("rsetboot", "rf1", "net", "-p") == "rf1: Network\n"
    for _ in range(2):
        asked = asked_dhcp(dhcp)  # the machine before is gone: later requests are the new one's
        assert restarted(cluster, bmc, "rpower", "rf1", "reset") == "rf1: reset\n"
        wait_for(lambda: asked_dhcp(dhcp) > asked, "a DHCP request", timeout=NETBOOT_LIMIT)  # noqa: B023
    assert cluster.ok("rsetboot", "rf1", "stat") == "rf1: Network\n"

    # rnetboot of a machine that is off: on, from the network.
    cluster.ok("rpower", "rf1", "off")
    bmc.wait_state("shut off")
    cluster.ok("rsetboot", "rf1", "hd")
    asked = asked_dhcp(dhcp)
    assert cluster.ok("rnetboot", "rf1") == "rf1: Success\n"
    bmc.wait_state("running")
    wait_for(lambda: asked_dhcp(dhcp) > asked, "a DHCP request", timeout=NETBOOT_LIMIT)
    cluster.ok("rpower", "rf1", "off")


def test_rsetboot_u_boots_the_machine_in_uefi_mode(lab) -> None:
    cluster, bmc, dhcp = lab
    assert cluster.ok("rsetboot", "rf1", "net", "-u") == "rf1: Network\n"
    assert UEFI_CODE in virsh("dumpxml", bmc.domain)  # the BMC gave the machine OVMF
    cluster.ok("rpower", "rf1", "on")
    # The firmware's DHCP request says what it is: an x86-64 UEFI client (arch 7).
    wait_for(lambda: UEFI_CLIENT in dhcp.text(), "a UEFI PXE request", timeout=NETBOOT_LIMIT)
    wait_for(lambda: asked_dhcp(dhcp), "the machine's DHCP request")  # logged after its class
    assert "PXEClient:Arch:00000" not in dhcp.text()  # never as a BIOS client
    cluster.ok("rpower", "rf1", "off")


def test_each_node_that_cannot_be_controlled_costs_one_line(lab) -> None:
    cluster, bmc, _ = lab
    cluster.ok("mkdef", "rf2", "groups=redfish", *attributes(bmc, bmcpassword="wrong"))
    cluster.ok(
        "mkdef", "rf3", "groups=redfish", *attributes(bmc, bmcport=str(bmc.port + 1))
    )  # nothing there
    result = cluster.run("rpower", "rf1,rf2,rf3", "stat")
    assert result.returncode == 1
    assert result.stdout == "rf1: off\n"
    assert sorted(result.stderr.splitlines()) == [
        f"rf2: Error: BMC {bmc.address}:{bmc.port} refused user '{USER}' with its password: "
        "check bmcusername and bmcpassword",
        f"rf3: Error: no answer from BMC {bmc.address}:{bmc.port + 1} (2 tries)",
    ]
