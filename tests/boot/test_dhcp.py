"""What makedhcp writes for dnsmasq and ISC dhcpd, checked by the servers' own
parsers.  (That dnsmasq really answers this way: tests/test_makedhcp.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xcatd.boot.dhcp import (
    HOST_FILES,
    Host,
    Network,
    boot_choice,
    dhcpd_conf,
    dnsmasq_conf,
    dnsmasq_opts,
)
from xcatd.boot.netboot import is_hostname

HTTP = "http://10.0.0.1:80/tftpboot"
NETWORK = Network("cluster", "10.0.0.0", "255.255.255.0", "10.0.0.254",
                  ("10.0.0.100", "10.0.0.199"), ("10.0.0.1", "10.0.0.2"), "10.0.0.3",
                  "eth1")  # fmt: skip


def host(node: str, netboot: str = "xnba", arch: str = "x86_64", last: int = 5) -> Host:
    return Host(node, f"52:54:00:00:00:{last:02x}", f"10.0.0.{last}", "10.0.0.1",
                boot_choice(netboot, arch, node, HTTP))  # fmt: skip


def lines(name: str, *hosts: Host) -> list[str]:
    (host_file,) = [f for f in HOST_FILES if f.name == name]
    return host_file.updated("", {h.node: h for h in hosts}).splitlines()[1:]


def test_dnsmasq_knows_each_node_by_mac_with_its_name():
    assert lines("dnsmasq-hosts", host("cn1"), host("cn2", "pxe", last=6)) == [
        "52:54:00:00:00:05,10.0.0.5,cn1",
        "52:54:00:00:00:06,10.0.0.6,cn2",
    ]
    assert is_hostname("cn-01") and not is_hostname("odd_name") and not is_hostname("a.b")


def test_dnsmasq_answers_by_client_kind_and_ipxe_completes_the_script_url():
    opts = dnsmasq_opts([NETWORK], "cluster", 8080, Path("/tftpboot")).splitlines()
    script = "http://${next-server}:8080/tftpboot/xcat/xnba/nodes/${hostname}"
    assert opts[1:5] == [
        "option:domain-name,cluster",
        "tag:net-cluster,option:router,10.0.0.254",
        "tag:net-cluster,option:dns-server,10.0.0.1,10.0.0.2",
        "tag:net-cluster,option:server-ip-address,10.0.0.3",
    ]
    assert [line for line in opts if not line.startswith("#")][4:] == [
        f"tag:known,tag:ipxe,tag:efi,option:bootfile-name,{script}.uefi",
        f"tag:known,tag:ipxe,tag:!efi,option:bootfile-name,{script}",
        "tag:known,tag:!ipxe,tag:efi,tag:!efi-aarch64,option:bootfile-name,xcat/xnba.efi",
        "tag:known,tag:!ipxe,tag:efi-aarch64,option:bootfile-name,boot/grub2/grub2.aarch64",
        "tag:known,tag:!ipxe,tag:ofw,option:bootfile-name,boot/grub2/grub2.ppc",
        "tag:known,tag:!ipxe,tag:!efi,tag:!ofw,option:bootfile-name,xcat/xnba.kpxe",
    ]


def test_isc_host_declarations_choose_by_user_class_and_client_architecture():
    assert lines("dhcpd.hosts", host("cn1")) == [
        "host cn1 { hardware ethernet 52:54:00:00:00:05; fixed-address 10.0.0.5; "
        'next-server 10.0.0.1; option host-name "cn1"; '
        'if exists user-class and option user-class = "iPXE" { '
        "if option client-architecture = 00:07 or option client-architecture = 00:09 "
        f'{{ filename "{HTTP}/xcat/xnba/nodes/cn1.uefi"; }} '
        f'else {{ filename "{HTTP}/xcat/xnba/nodes/cn1"; }} }} else {{ '
        "if option client-architecture = 00:07 or option client-architecture = 00:09 "
        '{ filename "xcat/xnba.efi"; } else { filename "xcat/xnba.kpxe"; } } }'
    ]


def test_isc_hosts_of_other_loaders_get_their_program_or_config_file():
    assert lines("dhcpd.hosts", host("g1", "grub2", "aarch64"))[0].endswith(
        'filename "boot/grub2/grub2.aarch64"; }'
    )
    assert lines("dhcpd.hosts", host("x1", "pxe"))[0].endswith('filename "pxelinux.0"; }')
    assert lines("dhcpd.hosts", host("p1", "petitboot", "ppc64le"))[0].endswith(
        f'option conf-file "{HTTP}/petitboot/p1"; }}'
    )


def test_an_update_replaces_only_the_lines_of_the_nodes_it_names():
    for host_file in HOST_FILES:
        before = host_file.updated("", {"cn1": host("cn1"), "cn2": host("cn2", last=6)})
        changed = host_file.updated(before, {"cn1": host("cn1", "pxe"), "cn3": None})
        assert changed.startswith("# ")
        kept = [line for line in changed.splitlines() if host_file.owner(line) == "cn2"]
        assert kept == [line for line in before.splitlines() if host_file.owner(line) == "cn2"]
        removed = host_file.updated(changed, {"cn1": None})
        assert {host_file.owner(line) for line in removed.splitlines()[1:]} == {"cn2"}
        assert host_file.updated(removed, {"cn1": None}) == removed


def write_everything(directory: Path) -> None:
    (directory / "dnsmasq.conf").write_text(dnsmasq_conf(directory, [NETWORK]))
    (directory / "dnsmasq-opts").write_text(
        dnsmasq_opts([NETWORK], "cluster", 80, Path("/tftpboot"))
    )
    (directory / "dhcpd.conf").write_text(dhcpd_conf(directory, [NETWORK], "cluster"))
    hosts = [host("cn1"), host("cn2", "grub2", last=6), host("p1", "petitboot", "ppc64le", 7)]
    for host_file in HOST_FILES:
        (directory / host_file.name).write_text(host_file.updated("", {h.node: h for h in hosts}))


def test_dnsmasq_serves_only_the_networks_interfaces_each_named_once(tmp_path):
    networks = [NETWORK, Network("bmc", "10.1.0.0", "255.255.0.0", interface="eth1"),
                Network("relayed", "10.2.0.0", "255.255.0.0")]  # fmt: skip
    conf = dnsmasq_conf(tmp_path, networks).splitlines()
    assert [line for line in conf if line.startswith("interface=")] == ["interface=eth1"]
    assert "dhcp-range=set:net-relayed,10.2.0.0,static,255.255.0.0" in conf


def test_dnsmasq_accepts_the_configuration(tmp_path):
    write_everything(tmp_path)
    conf = (tmp_path / "dnsmasq.conf").read_text()
    assert "\ninterface=eth1\n" in conf
    assert "dhcp-range=set:net-cluster,10.0.0.0,static,255.255.255.0\n" in conf
    assert "dhcp-range=set:net-cluster,10.0.0.100,10.0.0.199,255.255.255.0\n" in conf
    assert f"dhcp-hostsfile={tmp_path}/dnsmasq-hosts\n" in conf
    assert "enable-tftp" not in conf
    checked = subprocess.run(["dnsmasq", "--test", f"--conf-file={tmp_path}/dnsmasq.conf"],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "syntax check OK" in checked.stderr


@pytest.mark.skipif(shutil.which("dhcpd") is None, reason="isc-dhcp-server is not installed")
def test_isc_dhcpd_accepts_the_configuration(tmp_path):
    write_everything(tmp_path)
    checked = subprocess.run(["dhcpd", "-4", "-t", "-cf", str(tmp_path / "dhcpd.conf")],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
