"""DHCP server configuration for network boot: dnsmasq first, ISC dhcpd as well.

makedhcp writes one directory (/etc/xcat/dhcp in production):

    dnsmasq.conf   dnsmasq's settings, the client kinds it tells apart and a
                   dhcp-range per network                      (makedhcp -n)
    dnsmasq-opts   its dhcp-optsfile: each network's options and the boot
                   file of each client kind                    (makedhcp -n)
    dnsmasq-hosts  its dhcp-hostsfile: `<mac>,<ip>,<node>` per node
    dhcpd.conf     ISC dhcpd's settings and a subnet per network, which
                   includes ...                                (makedhcp -n)
    dhcpd.hosts    ... one `host <node> { ... }` line per node

dnsmasq reads the opts and hosts files again on SIGHUP, so new nodes (and
most of -n) never need a restart.  Its answers depend on who asks, never on
the node: iPXE (option 175, user class "iPXE") gets the URL of the node's
own script, `.../xcat/xnba/nodes/${hostname}`, which iPXE completes with
the host name DHCP gave it; x86 firmware gets iPXE, 64-bit ARM UEFI and
PowerPC Open Firmware get GRUB2, which finds the node's config by MAC.
Per-node tags are what dnsmasq would need to answer per node, and
dnsmasq 2.90 (Debian 12) crashes when SIGHUP re-reads a hosts file with
tags once one of them has been answered; so nodes booting pxelinux or
GRUB2 on x86 reach them through an iPXE script (see loaders.py).  Each
kind's rule carries tags that exclude the others, so no rule depends on the
order dnsmasq keeps them in.  ISC dhcpd has no such limit: each host line
chooses its node's own files, as xCAT writes them.

Pure: text in, text out; makedhcp does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .binaries import IPXE_BIOS, IPXE_UEFI, PXELINUX
from .loaders import IPXE_SCRIPTS, PETITBOOT_CONFIGS, grub2_program

# DHCP option 93 (client architecture, RFC 4578) values of UEFI firmware.
UEFI_CLIENT_ARCHES = {"x86_64": (7, 9), "aarch64": (11,)}
OPEN_FIRMWARE = 12  # PowerPC Open Firmware, which runs GRUB2

# -- what a node loads, by who asks (ISC dhcpd's host lines) ---------------------------


@dataclass(frozen=True)
class BootChoice:
    """The file a node loads, by who asks: iPXE or the firmware's PXE, BIOS or UEFI."""

    ipxe_bios: str
    ipxe_uefi: str
    pxe_bios: str
    pxe_uefi: str
    arch: str
    conffile: str | None = None  # petitboot reads its config from option 209

    @property
    def single(self) -> str | None:
        """The one file every kind of client gets, if it is one."""
        files = {self.ipxe_bios, self.ipxe_uefi, self.pxe_bios, self.pxe_uefi}
        return files.pop() if len(files) == 1 else None

    @property
    def uefi_codes(self) -> tuple[int, ...]:
        return UEFI_CLIENT_ARCHES.get(self.arch, ())


def boot_choice(netboot: str, arch: str, node: str, http: str) -> BootChoice:
    """What each client kind of a node with this boot loader loads; `http` is
    tftpdir's URL on the node's image server."""
    if netboot == "xnba":
        script = f"{http}/{IPXE_SCRIPTS}/{node}"
        return BootChoice(script, f"{script}.uefi", IPXE_BIOS.path, IPXE_UEFI.path, arch)
    if netboot == "petitboot":
        return BootChoice("", "", "", "", arch, f"{http}/{PETITBOOT_CONFIGS}/{node}")
    program = grub2_program(arch) if netboot == "grub2" else PXELINUX.path
    return BootChoice(program, program, program, program, arch)


@dataclass(frozen=True)
class Host:
    """One node's DHCP entry."""

    node: str  # also its host name, which dnsmasq's answers rely on
    mac: str
    ip: str
    next_server: str  # the IP address of its TFTP server
    boot: BootChoice


def dnsmasq_host(host: Host) -> list[str]:
    return [f"{host.mac},{host.ip},{host.node}"]


def _dnsmasq_owner(line: str) -> str | None:
    fields = line.split(",")
    return fields[2] if len(fields) > 2 else None


def dnsmasq_entries(text: str) -> dict[str, tuple[str, str]]:
    """The entries of a dnsmasq host file as dnsmasq_host wrote them: node -> (mac, ip)."""
    entries = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) == 3 and not line.startswith("#"):
            mac, ip, node = fields
            entries[node] = (mac, ip)
    return entries


def dhcpd_host(host: Host) -> list[str]:
    boot = host.boot
    statements = [
        f"hardware ethernet {host.mac};",
        f"fixed-address {host.ip};",
        f"next-server {host.next_server};",
        f'option host-name "{host.node}";',
    ]
    if boot.conffile:
        statements.append(f'option conf-file "{boot.conffile}";')
    if boot.single is not None:
        if boot.single:
            statements.append(f'filename "{boot.single}";')
    else:
        statements.append(
            'if exists user-class and option user-class = "iPXE" { '
            + _by_firmware(boot.uefi_codes, boot.ipxe_uefi, boot.ipxe_bios)
            + " } else { "
            + _by_firmware(boot.uefi_codes, boot.pxe_uefi, boot.pxe_bios)
            + " }"
        )
    return [f"host {host.node} {{ {' '.join(statements)} }}"]


def _by_firmware(uefi_codes: tuple[int, ...], uefi: str, bios: str) -> str:
    if not uefi_codes:
        return f'filename "{bios}";'
    test = " or ".join(f"option client-architecture = 00:{code:02x}" for code in uefi_codes)
    return f'if {test} {{ filename "{uefi}"; }} else {{ filename "{bios}"; }}'


def _dhcpd_owner(line: str) -> str | None:
    words = line.split(maxsplit=2)
    return words[1] if len(words) > 1 and words[0] == "host" else None


# -- the host files and their updates ------------------------------------------------------


@dataclass(frozen=True)
class HostFile:
    """A file of per-node lines: how a node's lines are made and recognised."""

    name: str
    header: str
    lines: Callable[[Host], list[str]]
    owner: Callable[[str], str | None]

    def updated(self, text: str, changes: Mapping[str, Host | None]) -> str:
        """`text` with the lines of every node in `changes` replaced by its new
        entry (None: removed); other nodes' lines stay as they were."""
        kept = [
            line
            for line in text.splitlines()
            if line and not line.startswith("#") and self.owner(line) not in changes
        ]
        added = [line for host in changes.values() if host for line in self.lines(host)]
        return self.header + "".join(f"{line}\n" for line in kept + added)


HOST_FILES = (
    HostFile(
        "dnsmasq-hosts",
        "# dnsmasq dhcp-hostsfile, kept by makedhcp: <mac>,<ip>,<node>\n",
        dnsmasq_host,
        _dnsmasq_owner,
    ),
    HostFile(
        "dhcpd.hosts",
        "# ISC dhcpd host declarations, kept by makedhcp; included by dhcpd.conf\n",
        dhcpd_host,
        _dhcpd_owner,
    ),
)


# -- the servers' own settings (makedhcp -n) ---------------------------------------


@dataclass(frozen=True)
class Network:
    """A network object as the DHCP server needs it (addresses already resolved)."""

    name: str
    net: str
    mask: str
    gateway: str | None = None
    dynamic: tuple[str, str] | None = None  # first and last address given to anyone
    nameservers: tuple[str, ...] = ()
    tftpserver: str | None = None  # next-server; else the DHCP server itself
    interface: str | None = None  # this host's interface on it, where DHCP is served

    @property
    def tag(self) -> str:
        return f"net-{self.name}"


def served_on(networks: Iterable[Network]) -> list[str]:
    """The interfaces DHCP is served on, each once, in the networks' order."""
    return list(dict.fromkeys(n.interface for n in networks if n.interface))


def dnsmasq_conf(directory: Path, networks: Iterable[Network]) -> str:
    """dnsmasq's settings: on the networks' interfaces only, a dhcp-range each."""
    networks = list(networks)  # read twice
    lines = [
        "# dnsmasq for network boot, written by makedhcp -n, which (re)starts the",
        "# DHCP service: xcatd-dhcp.service, or dnsmasq run by xcatd, as",
        f"#   dnsmasq --conf-file={directory}/dnsmasq.conf --keep-in-foreground --bind-dynamic",
        "# makedhcp sends it SIGHUP after changing dnsmasq-hosts or dnsmasq-opts;",
        "# this file (the interfaces, the dhcp-ranges) is read only at start.",
        "# DNS is off (port=0); TFTP and HTTP are xcatd's.",
        "port=0",
        *(f"interface={name}" for name in served_on(networks)),
        "dhcp-authoritative",
        f"pid-file={directory}/dnsmasq.pid",
        f"dhcp-leasefile={directory}/dnsmasq.leases",
        f"dhcp-hostsfile={directory}/dnsmasq-hosts",
        f"dhcp-optsfile={directory}/dnsmasq-opts",
        "# Who asks: iPXE, UEFI firmware (option 93), PowerPC Open Firmware.",
        "dhcp-match=set:ipxe,175",
        "dhcp-userclass=set:ipxe,iPXE",
        *(
            f"dhcp-match=set:{tag},option:client-arch,{code}"
            for tag, code in (("efi", 7), ("efi", 9), ("efi", 11), ("efi-aarch64", 11))
        ),
        f"dhcp-match=set:ofw,option:client-arch,{OPEN_FIRMWARE}",
    ]
    for network in networks:
        lines.append(f"dhcp-range=set:{network.tag},{network.net},static,{network.mask}")
        if network.dynamic:
            first, last = network.dynamic
            lines.append(f"dhcp-range=set:{network.tag},{first},{last},{network.mask}")
    return "\n".join(lines) + "\n"


def dnsmasq_opts(
    networks: Iterable[Network], domain: str | None, http_port: int, tftpdir: Path
) -> str:
    """Each network's options, and what each kind of client loads (known nodes only)."""
    script = f"http://${{next-server}}:{http_port}{tftpdir}/{IPXE_SCRIPTS}/${{hostname}}"
    lines = ["# dnsmasq dhcp-optsfile, written by makedhcp -n"]
    if domain:
        lines.append(f"option:domain-name,{domain}")
    for network in networks:
        tag = f"tag:{network.tag}"
        if network.gateway:
            lines.append(f"{tag},option:router,{network.gateway}")
        if network.nameservers:
            lines.append(f"{tag},option:dns-server,{','.join(network.nameservers)}")
        if network.tftpserver:
            lines.append(f"{tag},option:server-ip-address,{network.tftpserver}")
    boot = "option:bootfile-name"
    lines += [
        "# iPXE runs the node's script; iPXE fills in ${next-server} and ${hostname}.",
        f"tag:known,tag:ipxe,tag:efi,{boot},{script}.uefi",
        f"tag:known,tag:ipxe,tag:!efi,{boot},{script}",
        "# Firmware: iPXE on x86, GRUB2 (which finds the node's config by MAC) elsewhere.",
        f"tag:known,tag:!ipxe,tag:efi,tag:!efi-aarch64,{boot},{IPXE_UEFI.path}",
        f"tag:known,tag:!ipxe,tag:efi-aarch64,{boot},{grub2_program('aarch64')}",
        f"tag:known,tag:!ipxe,tag:ofw,{boot},{grub2_program('ppc64')}",
        f"tag:known,tag:!ipxe,tag:!efi,tag:!ofw,{boot},{IPXE_BIOS.path}",
    ]
    return "\n".join(lines) + "\n"


def dhcpd_conf(directory: Path, networks: Iterable[Network], domain: str | None) -> str:
    lines = [
        "# ISC dhcpd for network boot, written by makedhcp -n; host entries are in dhcpd.hosts.",
        "authoritative;",
        "ddns-update-style none;",
        "option client-architecture code 93 = unsigned integer 16;",
        "option conf-file code 209 = text;",
    ]
    if domain:
        lines.append(f'option domain-name "{domain}";')
    for network in networks:
        lines.append(f"subnet {network.net} netmask {network.mask} {{")
        if network.gateway:
            lines.append(f"    option routers {network.gateway};")
        if network.nameservers:
            lines.append(f"    option domain-name-servers {', '.join(network.nameservers)};")
        if network.tftpserver:
            lines.append(f"    next-server {network.tftpserver};")
        if network.dynamic:
            lines.append(f"    range {network.dynamic[0]} {network.dynamic[1]};")
        lines.append("}")
    lines.append(f'include "{directory}/dhcpd.hosts";')
    return "\n".join(lines) + "\n"
