"""The boot loaders' per-node files, the kernel command line, and the boot
programs taken from the host's packages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from xcatd.boot import binaries
from xcatd.boot.loaders import LOADERS, Boot, BootFile, Kernel, hex_ip, state_of
from xcatd.boot.netboot import (
    NodeError,
    PackedImage,
    Servers,
    Settings,
    boot_mac,
    kernel_command_line,
    loader_for,
    servers,
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


def test_servers_fall_back_from_nfsserver_to_tftpserver_to_xcatmaster_to_this_host():
    here = {"10.0.0.5": "10.0.0.1"}.get
    assert servers({}, "10.0.0.5", here) == Servers("10.0.0.1", "10.0.0.1", "10.0.0.1")
    assert servers({"xcatmaster": "sn1"}, "10.0.0.5", here) == Servers("sn1", "sn1", "sn1")
    assert servers({"xcatmaster": "sn1", "tftpserver": "t", "nfsserver": "n"}, "x", here) == (
        Servers("sn1", "t", "n")
    )
    with pytest.raises(NodeError, match=r"no address of this server reaches 10\.9\.9\.9"):
        servers({}, "10.9.9.9", here)
    for bad in ("sn1 ", "-sn1", "sn1;reboot", "sn1/x", 'sn1"', "[::1]"):
        with pytest.raises(NodeError, match=r"^tftpserver .* is not an IP address or host name$"):
            servers({"xcatmaster": "sn1", "tftpserver": bad}, "10.0.0.5", here)


def test_the_kernel_command_line_holds_what_the_stateless_initrd_reads():
    settings = Settings(Path("/tftpboot"), Path("/install"), 8080, 3001, True)
    image = PackedImage("img", "debian12", "x86_64", "service",
                        Path("/install/netboot/debian12/x86_64/service/rootimg.cpio.zst"),
                        "quiet rd.debug")  # fmt: skip
    values = {"serialport": "1", "serialspeed": "115200", "serialflow": "hard"}
    line = kernel_command_line("cn1", values, "52:54:00:00:00:01", image,
                               Servers("10.0.0.1", "10.0.0.2", "10.0.0.3"), settings,
                               "5e" * 32)  # fmt: skip
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
        "quiet",
        "rd.debug",
    ]
    with pytest.raises(NodeError, match="serialport is set but serialspeed is not"):
        kernel_command_line("cn1", {"serialport": "0"}, "m", image,
                            Servers("a", "b", "c"), settings, "5e" * 32)  # fmt: skip


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
