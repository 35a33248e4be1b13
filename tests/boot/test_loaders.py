"""The boot loaders' per-node files, the kernel command line, and the boot
programs taken from the host's packages."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from xcatd.boot import binaries
from xcatd.boot.hostnet import HostNetwork, HostNetworkError
from xcatd.boot.loaders import LOADERS, Boot, BootFile, Kernel, hex_ip, state_of
from xcatd.boot.netboot import (
    BootServers,
    NodeError,
    PackedImage,
    Servers,
    Settings,
    StaticInterfaces,
    boot_mac,
    kernel_command_line,
    loader_for,
)

KERNEL = Kernel(
    "xcat/osimage/img/kernel", "xcat/osimage/img/initrd-stateless.gz", "imgurl=x NODE=cn1"
)
NETBOOT = Boot("cn1", "52:54:00:AB:00:01", "10.0.0.5", "x86_64",
               "netboot debian12-x86_64-service", KERNEL, "http://10.0.0.1:80/tftpboot",
               "10.0.0.2")  # fmt: skip
LEAVE = replace(NETBOOT, state="boot", kernel=None)


def files(netboot: str, boot: Boot) -> list[BootFile]:
    return LOADERS[netboot].files(boot)


def test_ipxe_scripts_fetch_kernel_and_initrd_over_http_and_uefi_names_the_initrd():
    plain, uefi = files("xnba", NETBOOT)
    assert plain == BootFile("xcat/xnba/nodes/cn1", """\
#!ipxe
#netboot debian12-x86_64-service
imgfetch -n kernel http://10.0.0.1:80/tftpboot/xcat/osimage/img/kernel
imgload kernel
imgargs kernel imgurl=x NODE=cn1
imgfetch -n initrd http://10.0.0.1:80/tftpboot/xcat/osimage/img/initrd-stateless.gz
imgexec kernel
""")  # fmt: skip
    assert uefi.path == "xcat/xnba/nodes/cn1.uefi"
    assert "imgargs kernel imgurl=x NODE=cn1 initrd=initrd\n" in uefi.text


def test_leaving_the_network_boot_is_exit_in_both_ipxe_scripts():
    assert [f.text for f in files("xnba", LEAVE)] == ["#!ipxe\n#boot\nexit\n"] * 2


def test_grub2_config_loads_over_tftp_and_is_linked_by_mac_and_hex_ip():
    config, by_mac, by_ip, *_ = files("grub2", NETBOOT)
    assert config == BootFile("boot/grub2/cn1", """\
#netboot debian12-x86_64-service
set timeout=5
set default="xCAT OS Deployment"
menuentry "xCAT OS Deployment" {
    insmod http
    insmod tftp
    set root=tftp,10.0.0.2
    echo Loading Install kernel ...
    linux /xcat/osimage/img/kernel imgurl=x NODE=cn1
    echo Loading initial ramdisk ...
    initrd /xcat/osimage/img/initrd-stateless.gz
}
""")  # fmt: skip
    assert by_mac == BootFile("boot/grub2/grub.cfg-01-52-54-00-ab-00-01", link="cn1")
    assert by_ip == BootFile("boot/grub2/grub.cfg-0A000005", link="cn1")
    assert files("grub2", LEAVE)[0].text == "#boot\nexit\n"


def test_pxelinux_config_names_tftp_paths_and_is_linked_by_upper_case_hex_ip():
    config, by_ip, *_ = files("pxe", NETBOOT)
    assert config == BootFile("pxelinux.cfg/cn1", """\
#netboot debian12-x86_64-service
DEFAULT xCAT
LABEL xCAT
 KERNEL xcat/osimage/img/kernel
 APPEND initrd=xcat/osimage/img/initrd-stateless.gz imgurl=x NODE=cn1
""")  # fmt: skip
    assert by_ip == BootFile("pxelinux.cfg/0A000005", link="cn1")
    assert files("pxe", LEAVE)[0].text == "#boot\nDEFAULT xCAT\nLABEL xCAT\n LOCALBOOT 0\n"


def test_petitboot_config_uses_http_and_is_linked_by_lower_case_hex_ip_in_the_root():
    config, by_ip = files("petitboot", NETBOOT)
    assert config == BootFile("petitboot/cn1", """\
#netboot debian12-x86_64-service
default xCAT
label xCAT
\tkernel http://10.0.0.1:80/tftpboot/xcat/osimage/img/kernel
\tinitrd http://10.0.0.1:80/tftpboot/xcat/osimage/img/initrd-stateless.gz
\tappend "imgurl=x NODE=cn1"
""")  # fmt: skip
    assert by_ip == BootFile("0a000005", link="petitboot/cn1")
    assert files("petitboot", LEAVE)[0].text == "#boot\n"


def test_on_x86_ipxe_scripts_chain_pxelinux_and_grub2_for_the_firmware_that_runs_them():
    *_, bios, uefi = files("pxe", NETBOOT)
    assert (bios.path, uefi.path) == ("xcat/xnba/nodes/cn1", "xcat/xnba/nodes/cn1.uefi")
    assert bios.text == (
        "#!ipxe\n#netboot debian12-x86_64-service\n"
        "set 209:string pxelinux.cfg/cn1\n"
        "set 210:string tftp://10.0.0.2/\n"
        "chain tftp://10.0.0.2/pxelinux.0\n"
    )
    assert uefi.text.endswith("echo netboot=pxe cannot boot UEFI firmware\nexit\n")
    *_, bios, uefi = files("grub2", NETBOOT)
    assert uefi.text.endswith("\nchain tftp://10.0.0.2/boot/grub2/grub2.x86_64\n")
    assert bios.text.endswith("echo netboot=grub2 cannot boot BIOS firmware\nexit\n")
    assert [f.text for f in files("grub2", LEAVE)[3:]] == ["#!ipxe\n#boot\nexit\n"] * 2
    # No iPXE on other architectures: GRUB2 is loaded by the firmware itself.
    assert len(files("grub2", replace(NETBOOT, arch="aarch64"))) == 3


@pytest.mark.parametrize("netboot", sorted(LOADERS))
def test_every_file_says_the_state_it_was_written_for(netboot):
    assert state_of(files(netboot, NETBOOT)[0].text) == "netboot debian12-x86_64-service"
    assert LOADERS[netboot].config_path("cn1") == files(netboot, NETBOOT)[0].path


def test_hex_ip_is_what_pxelinux_looks_for():
    assert hex_ip("192.168.0.1") == "C0A80001"


# -- which loader, which servers, which command line ---------------------------


def test_a_loader_the_architecture_cannot_run_is_refused_with_the_ones_it_can():
    assert loader_for({}, "x86_64").name == "xnba"
    with pytest.raises(NodeError, match="netboot=pxe cannot boot ppc64le: use grub2 or petitboot"):
        loader_for({"netboot": "pxe"}, "ppc64le")
    with pytest.raises(NodeError, match="netboot=yaboot is not supported"):
        loader_for({"netboot": "yaboot"}, "ppc64")


def test_the_boot_mac_is_the_nodes_own_of_its_list():
    assert boot_mac({"mac": "52:54:00:00:00:01!othername|52:54:00:00:00:02"}) == (
        "52:54:00:00:00:02"
    )
    with pytest.raises(NodeError, match="no MAC address"):
        boot_mac({})
    # As the store keeps MACs, also those a regular expression made.
    assert boot_mac({"mac": "52-54-00-AB-00-01"}) == "52:54:00:ab:00:01"
    with pytest.raises(NodeError, match=r"mac '\.\./x' is not a MAC address"):
        boot_mac({"mac": "52:54:00:00:00:01!other|../x"})


# A management node's interfaces, as `ip -j address` gives them.
MN_INTERFACES = [
    HostNetwork("lo", ipaddress.IPv4Interface("127.0.0.1/8"), loopback=True),
    HostNetwork("eth0", ipaddress.IPv4Interface("192.0.2.2/24"), loopback=False),
    HostNetwork("eth1", ipaddress.IPv4Interface("10.20.0.1/16"), loopback=False),
]
NETWORKS = {  # the network objects
    "wide": {"net": "192.0.0.0", "mask": "255.255.0.0"},  # more than eth0's own /24
    "rack5": {"net": "10.20.5.0", "mask": "255.255.255.0"},  # inside eth1's /16
    "remote": {"net": "10.99.0.0", "mask": "255.255.0.0"},  # behind a router
    "broken": {"net": "10.99.0.0", "mask": "not a mask"},
}
CONFIG = Path("/etc/xcat/xcatd.toml")


def boot_servers(*, listen=("0.0.0.0",), master="", networks=NETWORKS, **served) -> BootServers:
    settings = Settings(Path("/tftpboot"), Path("/install"), 80, 3001, True, master=master,
                        listen=listen, config_file=CONFIG, **served)  # fmt: skip
    return BootServers(settings, networks, interfaces=lambda: MN_INTERFACES)


def test_given_servers_fall_back_from_nfsserver_to_tftpserver_to_xcatmaster():
    choose = boot_servers()
    sn1 = "10.20.0.254"  # a service node: not this host
    assert choose.servers("cn1", {"xcatmaster": sn1}, "10.20.5.7") == Servers(sn1, sn1, sn1)
    given = {"xcatmaster": sn1, "tftpserver": "10.20.0.253", "nfsserver": "10.20.0.252"}
    assert choose.servers("cn1", given, "10.20.5.7") == Servers(sn1, "10.20.0.253", "10.20.0.252")
    for bad in ("sn1 ", "-sn1", "sn1;reboot", "sn1/x", 'sn1"', "[::1]"):
        with pytest.raises(NodeError, match=r"^tftpserver .* is not an IP address or host name$"):
            choose.servers("cn1", {"xcatmaster": sn1, "tftpserver": bad}, "10.20.5.7")


def test_boot_servers_are_xcatmaster_else_this_hosts_address_on_the_nodes_network():
    choose = boot_servers(master="10.99.0.254")
    # On an interface's own network (xCAT's my_ip_facing), loopback too.
    assert choose.servers("cn1", {}, "192.0.2.50") == Servers(*["192.0.2.2"] * 3)
    assert choose.servers("cn1", {}, "127.0.4.1") == Servers(*["127.0.0.1"] * 3)
    # The network object 'wide' says 192.0.9.9 is on eth0's network.
    assert choose.servers("cn1", {}, "192.0.9.9") == Servers(*["192.0.2.2"] * 3)
    # rack5 holds no address of this host; eth1's network holds the node.
    assert choose.servers("cn1", {}, "10.20.5.7") == Servers(*["10.20.0.1"] * 3)
    # No interface on 'remote': site.master, as xCAT's Template.pm falls back.
    assert choose.servers("cn1", {}, "10.99.0.5") == Servers(*["10.99.0.254"] * 3)
    # The node's own xcatmaster wins, also another host's (a service node's);
    # tftpserver and nfsserver take their roles.
    given = {"xcatmaster": "10.20.0.254", "nfsserver": "10.20.0.252"}
    assert choose.servers("cn1", given, "10.20.5.7") == Servers(
        "10.20.0.254", "10.20.0.254", "10.20.0.252"
    )
    # Without the network object, 192.0.9.9 is on no network of this host.
    alone = boot_servers(master="10.99.0.254", networks={})
    assert alone.servers("cn1", {}, "192.0.9.9") == Servers(*["10.99.0.254"] * 3)


def test_a_node_no_interface_reaches_needs_xcatmaster_or_site_master():
    choose = boot_servers()
    for ip, where in [("10.99.0.5", "network remote (10.99.0.0/16)"),
                      ("198.51.100.7", "the network")]:  # fmt: skip
        with pytest.raises(NodeError) as refused:
            choose.servers("cn1", {}, ip)
        assert str(refused.value) == (
            f"no interface of this host is on {where} of its ip {ip}, and site.master is not "
            "set: give the node an xcatmaster (chdef cn1 xcatmaster=<address>) or set "
            "site.master (chdef -t site clustersite master=<address>)"
        )
    assert choose.servers("cn1", {"xcatmaster": "10.99.0.254"}, "10.99.0.5").xcatmaster == (
        "10.99.0.254"
    )


def test_an_address_of_this_host_xcatd_does_not_listen_on_is_refused():
    choose = boot_servers(listen=("127.0.0.1", "::1"), master="192.0.2.2")
    with pytest.raises(NodeError) as refused:
        choose.servers("cn1", {}, "192.0.2.50")
    assert str(refused.value) == (
        "xcatd does not listen on 192.0.2.2, this host's address on network wide "
        "(192.0.0.0/16): "
        "listen is 127.0.0.1, ::1 in /etc/xcat/xcatd.toml; add 192.0.2.2 there and restart "
        "xcatd, or name an address it listens on: chdef cn1 xcatmaster=<address>"
    )
    with pytest.raises(NodeError, match=r"^xcatd does not listen on 192\.0\.2\.2, site\.master: .*"
                       r"on: chdef -t site clustersite master=<address>$"):  # fmt: skip
        choose.servers("cn1", {}, "10.99.0.5")
    own_tftp = {"xcatmaster": "127.0.0.1", "tftpserver": "10.20.0.1"}
    with pytest.raises(NodeError, match=r"^xcatd does not listen on 10\.20\.0\.1, its "
                       r"tftpserver: .* on: chdef cn1 tftpserver=<address>$"):  # fmt: skip
        choose.servers("cn1", own_tftp, "127.0.0.9")
    # The image comes from the TFTP server, over xcatd's HTTP: refused as well,
    # unless other servers serve TFTP and HTTP (serve_tftp, serve_http = false).
    with pytest.raises(NodeError, match=r"^xcatd does not listen on 10\.20\.0\.1, its tftp"):
        boot_servers(listen=("127.0.0.1",), serves_tftp=False).servers("cn1", own_tftp, "127.0.0.9")
    others = boot_servers(listen=("127.0.0.1",), serves_tftp=False, serves_http=False)
    assert others.servers("cn1", own_tftp, "127.0.0.9") == Servers(
        "127.0.0.1", "10.20.0.1", "10.20.0.1"
    )
    # Listened on, or another host's: served.
    assert choose.servers("cn1", {}, "127.0.8.8") == Servers(*["127.0.0.1"] * 3)
    assert choose.servers("cn1", {"xcatmaster": "10.20.0.254"}, "10.20.5.7").image == (
        "10.20.0.254"
    )
    assert boot_servers(listen=("0.0.0.0",)).servers("cn1", {}, "192.0.2.50").tftp == "192.0.2.2"


def test_a_loopback_or_unresolvable_server_is_refused_for_a_node_off_loopback():
    choose = boot_servers(master="localhost")
    with pytest.raises(NodeError) as refused:
        choose.servers("cn1", {}, "10.99.0.5")
    assert str(refused.value) == (
        "localhost, site.master, is a loopback address, which the node at 10.99.0.5 cannot "
        "reach: chdef -t site clustersite master=<address>"
    )
    with pytest.raises(NodeError) as refused:
        choose.servers("cn1", {"xcatmaster": "mn1.invalid"}, "10.99.0.5")
    assert str(refused.value) == (
        "cannot resolve mn1.invalid, its xcatmaster, to an IPv4 address: "
        "chdef cn1 xcatmaster=<address>"
    )


def test_when_this_hosts_interfaces_cannot_be_read_each_node_that_needs_them_says_why():
    def no_ip() -> list[HostNetwork]:
        raise HostNetworkError("the 'ip' command (iproute2) is not installed")

    settings = Settings(Path("/tftpboot"), Path("/install"), 80, 3001, True)
    choose = BootServers(settings, NETWORKS, interfaces=no_ip)
    for _ in range(2):  # read once, said for each node
        with pytest.raises(NodeError, match=r"^cannot tell this host's addresses: the 'ip' "):
            choose.servers("cn1", {}, "10.20.5.7")
    assert choose.servers("cn1", {"xcatmaster": "10.20.0.1"}, "10.20.5.7").tftp == "10.20.0.1"


def test_the_kernel_command_line_holds_what_the_stateless_initrd_reads():
    settings = Settings(Path("/tftpboot"), Path("/install"), 8080, 3001, True)
    image = PackedImage("img", "debian12", "x86_64", "service",
                        Path("/install/netboot/debian12/x86_64/service/rootimg.cpio.zst"),
                        "quiet rd.debug")  # fmt: skip
    values = {"serialport": "1", "serialspeed": "115200", "serialflow": "hard"}
    line = kernel_command_line("cn1", values, "52:54:00:00:00:01", image,
                               Servers("10.0.0.1", "10.0.0.2", "10.0.0.3"), settings,
                               "5e" * 32, ["ip=10.78.0.1:::255.255.255.0::eth1:none"])  # fmt: skip
    assert line.split() == [
        "imgurl=http://10.0.0.3:8080/install/netboot/debian12/x86_64/service/rootimg.cpio.zst",
        "XCAT=10.0.0.1:3001",
        "XCATCA=sha256:" + "5e" * 32,
        "NODE=cn1",
        "FC=0",
        "BOOTIF=52:54:00:00:00:01",
        "XCATSTATUS=http://10.0.0.1:8080/xcatd/status",
        "console=tty0",
        "console=ttyS1,115200n8r",
        "ip=10.78.0.1:::255.255.255.0::eth1:none",
        "quiet",
        "rd.debug",
    ]
    with pytest.raises(NodeError, match="serialport is set but serialspeed is not"):
        kernel_command_line("cn1", {"serialport": "0"}, "m", image,
                            Servers("a", "b", "c"), settings, "5e" * 32, [])  # fmt: skip


NETWORKS = {
    "boot": {"net": "10.77.0.0", "mask": "255.255.0.0"},
    "compute": {"net": "10.78.0.0", "mask": "255.255.255.0"},
    "ib": {"net": "10.90.0.0", "mask": "255.255.254.0"},
}


def test_a_nodes_other_interfaces_are_configured_by_its_initrd():
    """nicips.<nic> (xCAT's nics table) become dracut's ip= for each NIC but
    the one the node boots from, with the netmask of the network it is on."""
    interfaces = StaticInterfaces(NETWORKS)
    values = {
        "ip": "10.77.0.11",
        "nicips": "eth0!10.77.0.11,eth1!10.78.0.1,ib0!10.90.1.1|10.91.0.1",
        "nicnetworks": "ib0!ib",
    }
    assert interfaces.arguments("sn1", values) == [
        "ip=10.78.0.1:::255.255.255.0::eth1:none",
        "ip=10.90.1.1:::255.255.254.0::ib0:none",
    ]
    assert interfaces.arguments("cn1", {"ip": "10.78.0.5"}) == []


@pytest.mark.parametrize(
    "values, error",
    [
        ({"nicips": "eth1!10.99.0.1"},
         "nicips.eth1 10.99.0.1 is on no network object: define it (mkdef -t network) "
         "or name it with chdef sn1 nicnetworks.eth1=<network>"),
        ({"nicips": "eth1!10.78.0.1", "nicnetworks": "eth1!nosuch"},
         "nicnetworks.eth1 is 'nosuch', which is not a network object: define it "
         "(mkdef -t network -o nosuch net=<address> mask=<netmask>)"),
        ({"nicips": "eth1!fd00::1"}, "nicips.eth1 'fd00::1' is not an IPv4 address"),
    ],
)  # fmt: skip
def test_other_interfaces_that_cannot_be_configured_are_refused(values, error):
    with pytest.raises(NodeError) as refused:
        StaticInterfaces(NETWORKS).arguments("sn1", values)
    assert str(refused.value) == error


# -- the boot programs --------------------------------------------------------------


def test_boot_programs_come_from_the_host_packages_once(tmp_path):
    tftpdir = tmp_path / "tftpboot"
    binaries.provide(tftpdir, "pxe", "x86_64")
    pxelinux = tftpdir / "pxelinux.0"
    assert pxelinux.read_bytes() == Path("/usr/lib/PXELINUX/pxelinux.0").read_bytes()
    assert (tftpdir / "ldlinux.c32").is_file()
    pxelinux.write_bytes(b"the administrator's own build")
    binaries.provide(tftpdir, "pxe", "x86_64")
    assert pxelinux.read_bytes() == b"the administrator's own build"


def test_a_grub2_network_image_is_made_for_uefi(tmp_path):
    binaries.provide(tmp_path, "grub2", "x86_64")
    assert (tmp_path / "boot/grub2/grub2.x86_64").read_bytes()[:2] == b"MZ"  # a PE program


def test_a_package_missing_on_the_host_is_named(tmp_path):
    empty_host = tmp_path / "host"
    with pytest.raises(NodeError) as missing:
        binaries.provide(tmp_path / "tftpboot", "xnba", "x86_64", host=empty_host)
    assert str(missing.value) == (
        f"xcat/xnba.kpxe is not in {tmp_path}/tftpboot and "
        f"{empty_host}/usr/lib/ipxe/undionly.kpxe is missing: install the Debian package ipxe"
    )
    with pytest.raises(NodeError, match="install the Debian package grub-efi-arm64-bin"):
        binaries.provide(tmp_path / "tftpboot", "grub2", "aarch64", host=empty_host)


def test_grub_mkimage_missing_names_its_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without grub-common
    with pytest.raises(NodeError) as missing:
        binaries.provide(tmp_path / "tftpboot", "grub2", "x86_64")
    assert str(missing.value) == (
        f"boot/grub2/grub2.x86_64 is not in {tmp_path}/tftpboot and grub-mkimage is missing: "
        "install the Debian package grub-common"
    )


def test_a_program_that_cannot_be_put_in_place_is_one_line(tmp_path):
    (tmp_path / "xcat").write_text("a file where a directory should be")
    with pytest.raises(NodeError) as failed:
        binaries.provide(tmp_path, "xnba", "x86_64")
    assert str(failed.value) == (
        f"cannot put xcat/xnba.kpxe into {tmp_path}: [Errno 17] File exists: '{tmp_path}/xcat'"
    )
