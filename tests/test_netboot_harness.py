"""The network-boot harness on its own: its accelerator probe, and virtual
machines that get a lease from real dnsmasq and fetch boot files from the
daemon's own HTTP and TFTP servers inside a private network namespace."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netboot import Network, network
from xcatd.lab.qemu import guest_runs, kvm_works

MAC = "52:54:00:77:00:10"
MARKER = "harness-ok"
# The daemon's HTTP and TFTP servers on their standard ports, without the rest
# of the daemon: the boot files here are not a cluster's.
SERVE_BOOT_FILES = """
import sys, trio
from pathlib import Path
from xcatd.boot.http import serve_http
from xcatd.boot.tftp import serve_tftp

async def main(root, host):
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_tftp, root, host, 69)
        await nursery.start(serve_http, [root], host, 80)
        print("serving", flush=True)

trio.run(main, Path(sys.argv[1]), sys.argv[2])
"""


def test_the_kvm_probe_tells_a_running_guest_from_one_that_does_not_run() -> None:
    assert guest_runs("tcg", timeout=60)
    assert not guest_runs("no-such-accelerator", timeout=60)  # QEMU refuses to start
    assert not guest_runs("tcg", timeout=0)  # nothing printed in time
    started = time.monotonic()
    verdict = kvm_works()
    print(f"KVM guests run here: {verdict} (probe took {time.monotonic() - started:.1f} s)")


@pytest.fixture
def boot_network(tmp_path: Path) -> Iterator[tuple[Network, Path]]:
    """A test network with the daemon's HTTP and TFTP servers on the bridge,
    serving the (empty) directory it also yields."""
    root = tmp_path / "boot"
    root.mkdir()
    with network(tmp_path) as net:
        servers = net.start([sys.executable, "-c", SERVE_BOOT_FILES, root, net.server], "boot.log")
        servers.wait_for("serving", timeout=30)
        yield net, root


def write_dnsmasq_conf(net: Network, path: Path, *boot: str) -> Path:
    """A minimal makedhcp-like configuration: the VM's fixed address and its boot file."""
    lines = [
        f"dhcp-range={net.host(100)},{net.host(200)},1h",
        f"dhcp-host={MAC},{net.host(10)},vm",
        "dhcp-match=set:ipxe,175",  # iPXE sends option 175
        *(f"dhcp-boot={entry}" for entry in boot),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ipxe_gets_a_lease_from_dnsmasq_and_runs_a_script_over_http(
    boot_network: tuple[Network, Path], tmp_path: Path
) -> None:
    net, root = boot_network
    script = root / "harness.ipxe"
    script.write_text(f"#!ipxe\necho {MARKER}\n")
    url = f"http://{net.server}{script}"  # the daemon serves files by their absolute path
    dnsmasq = net.dnsmasq(write_dnsmasq_conf(net, tmp_path / "dnsmasq.conf", f"tag:ipxe,{url}"))

    vm = net.boot_vm(MAC)
    seconds = vm.wait_for(MARKER, timeout=180)

    print(f"VM start to iPXE script ({'KVM' if kvm_works() else 'TCG'}): {seconds:.1f} s")
    assert f"DHCPACK(br0) {net.host(10)} {MAC}" in dnsmasq.text()
    assert f"net0: {net.host(10)}/" in vm.text()


def test_a_vm_with_another_nic_boots_pxelinux_over_tftp(
    boot_network: tuple[Network, Path], tmp_path: Path
) -> None:
    net, root = boot_network
    shutil.copy("/usr/lib/PXELINUX/pxelinux.0", root)
    shutil.copy("/usr/lib/syslinux/modules/bios/ldlinux.c32", root)
    (root / "pxelinux.cfg").mkdir()
    (root / "pxelinux.cfg" / "default").write_text(f"SAY {MARKER}\nPROMPT 0\n")
    net.dnsmasq(write_dnsmasq_conf(net, tmp_path / "dnsmasq.conf", "pxelinux.0"))

    vm = net.boot_vm(MAC, nic="e1000")
    seconds = vm.wait_for(MARKER, timeout=180)

    print(f"VM start to pxelinux config over TFTP: {seconds:.1f} s")
    assert "PXELINUX" in vm.text()
