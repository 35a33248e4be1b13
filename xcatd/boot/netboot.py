"""What a node's network boot is made of: its boot MAC and IP address, the
servers it boots from, the packed osimage and the kernel command line.

nodeset (boot files) and makedhcp (DHCP answers) both build on this, so a
node's servers are worked out one way.  Anything that stops one node is a
`NodeError`, printed as `<node>: Error: ...` while the other nodes go on.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..images.bootunits import is_service_node
from ..images.build import incomplete
from ..layout import Layout
from ..store.attributes import mac_address
from .http import STATUS_PATH
from .loaders import DEFAULT, LOADERS, Loader, reserved

# The node attributes the boot path reads (effective values: groups and
# regular expressions count).
NODE_ATTRIBUTES = (
    "mac", "ip", "netboot", "arch", "serialport", "serialspeed", "serialflow",
    "xcatmaster", "tftpserver", "nfsserver", "provmethod", "os", "profile",
)  # fmt: skip
DISKLESS = ("netboot", "statelite")
KERNEL = "kernel"
INITRD = "initrd-stateless.gz"

Values = Mapping[str, str]
Facing = Callable[[str], "str | None"]


class NodeError(Exception):
    """Why one node cannot be set up."""


@dataclass(frozen=True)
class Settings:
    """Cluster-wide values the boot path needs, from the site object, else the daemon."""

    tftpdir: Path
    installdir: Path
    http_port: int
    xcatd_port: int
    dhcp: bool  # site.dhcpsetup: nodeset writes DHCP entries

    @classmethod
    def of(cls, site: Values, layout: Layout, config: Config) -> Settings:
        """`site` values win over the daemon's own layout and configuration."""
        return cls(
            tftpdir=Path(site.get("tftpdir") or layout.tftpdir),
            installdir=Path(site.get("installdir") or layout.installdir),
            http_port=int(site.get("httpport") or config.http_port),
            xcatd_port=int(site.get("xcatdport") or config.port),
            dhcp=site.get("dhcpsetup", "y") not in ("n", "no", "0"),
        )

    def http_url(self, host: str, path: str | Path) -> str:
        """The daemon's HTTP server serves files at their absolute paths (xCAT's way)."""
        return f"http://{host}:{self.http_port}{path}"

    def served(self, path: Path) -> bool:
        """Whether the daemon's HTTP server serves `path` (under installdir or tftpdir)."""
        return path.is_relative_to(self.installdir) or path.is_relative_to(self.tftpdir)


# -- names, addresses and servers ---------------------------------------------------

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# What may stand for a server in a URL, a DHCP statement or a GRUB2 command:
# an IPv4 address or a DNS name, nothing any of them would read as syntax.
_SERVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
# What a kernel command line cannot hold to be carried into iPXE, GRUB2,
# pxelinux and petitboot files alike: their quotes, expansions and command
# separators.
_CMDLINE_UNSAFE = re.compile(r"[\"'`;$\\{}|&<>\x00-\x1f\x7f]")


def is_hostname(name: str) -> bool:
    """Whether DHCP can carry `name` as a host name (one DNS label)."""
    return _HOSTNAME.fullmatch(name) is not None


def check_node_name(node: str) -> None:
    """NodeError unless `node` can name the node's boot files and DHCP entry:
    checked before any path is made of it."""
    if why := reserved(node):
        raise NodeError(why)
    if not is_hostname(node):
        raise NodeError(
            "not a DHCP host name (letters, digits and '-'), which dnsmasq's answers need"
        )


def is_server_name(name: str) -> bool:
    """Whether `name` can stand for a server (or a domain) in the files written."""
    return _SERVER.fullmatch(name) is not None


def check_server_name(what: str, name: str) -> str:
    """`name`, when it can stand for a server; else NodeError naming `what`."""
    if not is_server_name(name):
        raise NodeError(f"{what} {name!r} is not an IP address or host name")
    return name


def boot_mac(values: Values) -> str:
    """The MAC the node boots from: the first of its `mac` list that is its own
    (xCAT's `mac!othername` entries belong to other host names).  Each is
    checked as the store checks MACs: a regular expression's value was not."""
    own = []
    for entry in (values.get("mac") or "").split("|"):
        if not entry:
            continue
        address, bang, _ = entry.partition("!")
        mac = mac_address(address)
        if mac is None:
            raise NodeError(f"mac {address!r} is not a MAC address like 52:54:00:12:34:56")
        if not bang:
            own.append(mac)
    if not own:
        raise NodeError("no MAC address: set one with chdef <node> mac=<mac>")
    return own[0]


def boot_ip(values: Values) -> str:
    ip = values.get("ip")
    if not ip:
        raise NodeError("no IP address: set one with chdef <node> ip=<address>")
    octets = ip.split(".")
    # Cheaper than ipaddress, which counts at 10,000 nodes.
    if len(octets) != 4 or not all(o.isascii() and o.isdigit() and int(o) < 256 for o in octets):
        raise NodeError(f"{ip} is not an IPv4 address: network boot needs one")
    return ip


def facing_address(ip: str) -> str | None:
    """This host's address on the route toward `ip` (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((ip, 9))
        except OSError:
            return None
        return probe.getsockname()[0]


class Addresses:
    """Servers' IPv4 addresses, for servers given by name (DHCP wants addresses);
    each name is looked up once per request, not once per node."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def __call__(self, server: str) -> str:
        if server not in self._known:
            try:
                self._known[server] = socket.gethostbyname(server)
            except OSError:
                self._known[server] = None
        address = self._known[server]
        if address is None:
            raise NodeError(f"cannot resolve the server name {server}")
        return address


def loader_for(values: Values, arch: str) -> Loader:
    """The node's boot loader (netboot, xnba when unset), if `arch` can run it."""
    name = values.get("netboot") or DEFAULT
    loader = LOADERS.get(name)
    if loader is None:
        raise NodeError(f"netboot={name} is not supported: use one of {', '.join(LOADERS)}")
    if arch not in loader.arches:
        usable = [other.name for other in LOADERS.values() if arch in other.arches]
        raise NodeError(
            f"netboot={name} cannot boot {arch}: use {' or '.join(usable) or 'nothing known'}"
        )
    return loader


@dataclass(frozen=True)
class Servers:
    """Who serves a node, as the node reaches them."""

    xcatmaster: str  # its xcatd (XCAT=, the status URL)
    tftp: str  # TFTP server, DHCP next-server
    image: str  # HTTP server of its kernel, initrd and image (xCAT's imgsrv)


def servers(values: Values, ip: str, facing: Facing = facing_address) -> Servers:
    """nfsserver, else tftpserver, else xcatmaster, else this host's address facing the node."""
    given = {
        what: check_server_name(what, name)
        for what in ("xcatmaster", "tftpserver", "nfsserver")
        if (name := values.get(what))
    }
    xcatmaster = given.get("xcatmaster")
    tftp = given.get("tftpserver") or xcatmaster
    image = given.get("nfsserver") or tftp
    if not (xcatmaster and tftp and image):
        here = facing(ip)
        if here is None:
            raise NodeError(f"no address of this server reaches {ip}: set xcatmaster")
        xcatmaster, tftp, image = xcatmaster or here, tftp or here, image or here
    return Servers(xcatmaster, tftp, image)


# -- the osimage ------------------------------------------------------------------


@dataclass(frozen=True)
class PackedImage:
    """An osimage ready to boot: packed, with its kernel and stateless initrd."""

    name: str
    osvers: str
    osarch: str
    profile: str
    packfile: Path
    addkcmdline: str

    @property
    def rootimgdir(self) -> Path:
        return self.packfile.parent

    @property
    def enrolls(self) -> bool:
        """Whether the image is a service node's (xcatd in it), which enrolls
        for its certificate when it boots."""
        return is_service_node(self.rootimgdir / "rootimg")

    @property
    def state(self) -> str:
        return f"netboot {self.osvers}-{self.osarch}-{self.profile}"

    @property
    def boot_files(self) -> tuple[Path, Path]:
        return self.rootimgdir / KERNEL, self.rootimgdir / INITRD


def packed_image(name: str, values: Values | None) -> PackedImage:
    """The osimage `name` (its stored `values`) checked on disk, or NodeError."""
    if values is None:
        raise NodeError(f"Cannot find image '{name}' from the osimage table.")
    if values.get("provmethod") not in DISKLESS:
        raise NodeError(
            f"osimage '{name}' is not a diskless image (provmethod={values.get('provmethod', '')})"
        )
    missing = [key for key in ("osvers", "osarch", "profile") if not values.get(key)]
    if missing:
        raise NodeError(f"osimage '{name}' has no {', '.join(missing)}")
    addkcmdline = values.get("addkcmdline", "")
    if _CMDLINE_UNSAFE.search(addkcmdline):
        raise NodeError(
            f"osimage '{name}': addkcmdline {addkcmdline!r} has characters boot loaders "
            "read as syntax (quotes, ;, $, `, \\, {, }, |, &, <, >, control characters)"
        )
    packfile = Path(values["packfile"]) if values.get("packfile") else None
    if packfile is None or not packfile.is_file():
        raise NodeError(f"osimage '{name}' is not packed: run packimage {name}")
    if incomplete(packfile.parent):
        raise NodeError(
            f"osimage '{name}' is not packed: its last genimage did not finish; "
            f"run genimage {name}, then packimage {name}"
        )
    image = PackedImage(
        name, values["osvers"], values["osarch"], values["profile"], packfile, addkcmdline
    )
    for path in image.boot_files:
        if not path.is_file():
            raise NodeError(f"osimage '{name}' has no {path}: run genimage {name}")
    return image


# -- the kernel command line ---------------------------------------------------------


def kernel_command_line(
    node: str,
    values: Values,
    mac: str,
    image: PackedImage,
    servers: Servers,
    settings: Settings,
    ca_fingerprint: str,
) -> str:
    """What the stateless initrd reads: where the image is, which xcatd to
    talk to and the fingerprint of the cluster CA it must be certified by
    (public: it lets a service node enroll with no secret in its image), who
    the node is, where to report its state; then the console and the image's
    own additions."""
    words = [
        f"imgurl={settings.http_url(servers.image, image.packfile)}",
        f"XCAT={servers.xcatmaster}:{settings.xcatd_port}",
        f"XCATCA=sha256:{ca_fingerprint}",
        f"NODE={node}",
        "FC=0",
        f"BOOTIF={mac}",
        f"XCATSTATUS={settings.http_url(servers.xcatmaster, STATUS_PATH)}",
        *console_arguments(values),
    ]
    if image.addkcmdline:
        words.append(image.addkcmdline)
    return " ".join(words)


def console_arguments(values: Values) -> list[str]:
    """console=tty0 console=ttyS<port>,<speed>[n8r] when the node has a serial console."""
    port = values.get("serialport")
    if not port:
        return []
    speed = values.get("serialspeed")
    if not speed:
        raise NodeError("serialport is set but serialspeed is not: set both, or neither")
    if not (port.isdigit() and speed.isdigit()):  # a regular expression's value is unchecked
        raise NodeError(f"serialport {port!r} and serialspeed {speed!r} must be numbers")
    flow = "n8r" if values.get("serialflow") == "hard" else ""  # RTS/CTS, as xCAT writes it
    return ["console=tty0", f"console=ttyS{port},{speed}{flow}"]
