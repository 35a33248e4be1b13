"""What a node's network boot is made of: its boot MAC and IP address, the
servers it boots from, the packed osimage and the kernel command line.

nodeset (boot files) and makedhcp (DHCP answers) both build on this, so a
node's servers are worked out one way.  Anything that stops one node is a
`NodeError`, printed as `<node>: Error: ...` while the other nodes go on.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from ..config import Config
from ..errors import XcatdError
from ..images.osimage import ImageFiles, OsImage, OsImageError, is_service_node
from ..layout import Layout
from ..store import keyed
from ..store.attributes import mac_address
from .hostnet import HostNetwork, HostNetworkError, host_networks
from .http import STATUS_PATH
from .loaders import DEFAULT, LOADERS, Loader, reserved

# The node attributes the boot path reads (effective values: groups and
# regular expressions count).
NODE_ATTRIBUTES = (
    "mac", "ip", "netboot", "arch", "serialport", "serialspeed", "serialflow",
    "xcatmaster", "tftpserver", "nfsserver", "provmethod", "os", "profile",
    "nicips", "nicnetworks",
)  # fmt: skip
ALL_ADDRESSES = "0.0.0.0"  # in xcatd.toml's listen: every IPv4 address of this host

Values = Mapping[str, str]
_Server = TypeVar("_Server")


class NodeError(XcatdError):
    """Why one node cannot be set up."""


@dataclass(frozen=True)
class Settings:
    """Cluster-wide values the boot path needs, from the site object, else the daemon."""

    tftpdir: Path
    installdir: Path
    http_port: int
    xcatd_port: int
    dhcp: bool  # site.dhcpsetup: nodeset writes DHCP entries
    master: str = ""  # site.master: the management node as nodes reach it
    # Where this daemon serves (xcatd.toml): its boot files must name one of these.
    listen: tuple[str, ...] = (ALL_ADDRESSES,)
    serves_tftp: bool = True
    serves_http: bool = True
    config_file: Path = Path("xcatd.toml")

    @classmethod
    def of(cls, site: Values, layout: Layout, config: Config) -> Settings:
        """`site` values win over the daemon's own layout and configuration."""
        return cls(
            tftpdir=Path(site.get("tftpdir") or layout.tftpdir),
            installdir=Path(site.get("installdir") or layout.installdir),
            http_port=int(site.get("httpport") or config.http_port),
            xcatd_port=int(site.get("xcatdport") or config.port),
            dhcp=site.get("dhcpsetup", "y") not in ("n", "no", "0"),
            master=site.get("master", ""),
            listen=config.listen,
            serves_tftp=config.serve_tftp,
            serves_http=config.serve_http,
            config_file=layout.config_file,
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


def given_servers(values: Values) -> dict[str, str]:
    """The node's own xcatmaster, tftpserver and nfsserver, each checked."""
    return {
        what: check_server_name(what, name)
        for what in ("xcatmaster", "tftpserver", "nfsserver")
        if (name := values.get(what))
    }


def _roles(given: Mapping[str, _Server], xcatmaster: _Server) -> tuple[_Server, _Server, _Server]:
    """xcatmaster, TFTP and image server: nfsserver, else tftpserver, else xcatmaster."""
    tftp = given.get("tftpserver") or xcatmaster
    return xcatmaster, tftp, given.get("nfsserver") or tftp


@dataclass(frozen=True)
class _Net:
    """An IPv4 network as numbers (tested against every node's address) and as
    the administrator reads it."""

    net: int
    mask: int
    text: str

    @classmethod
    def of(cls, network: ipaddress.IPv4Network, text: str) -> _Net:
        return cls(int(network.network_address), int(network.netmask), text)

    def holds(self, number: int) -> bool:
        return number & self.mask == self.net


@dataclass(frozen=True)
class _Chosen:
    """A server address, where it came from and what to set instead: what an
    error refusing it says."""

    address: str
    origin: str
    fix: str


_LOOPBACK = _Net.of(ipaddress.IPv4Network("127.0.0.0/8"), "loopback")


def _number(ip: str) -> int:
    """A dotted IPv4 address as a number (cheaper than ipaddress at 10,000 nodes)."""
    return int.from_bytes(socket.inet_aton(ip), "big")


class BootServers:
    """Who serves each node, chosen as xCAT's nodeset does (Template.pm's
    XCATMASTER, xnba.pm's !myipfn!): the node's xcatmaster; else this host's
    address on the node's network (the network object its ip is in, else
    the interface whose network holds it: xCAT's my_ip_facing); else
    site.master.  tftpserver and nfsserver, when given, take those roles.

    Refused, each with what to set instead: an address of this host that
    the daemon does not serve on (xcatd.toml's listen, 0.0.0.0 meaning all:
    the node would find nobody there), a loopback address for a node off
    loopback, and a node on a network none of this host's interfaces is on
    when site.master is not set.  An address of another host (a service
    node's, say) is that host's to serve.  One per request; this host's
    interfaces are read (blocking: call from a worker thread) when the first
    node needs them."""

    def __init__(
        self,
        settings: Settings,
        networks: Mapping[str, Values],
        resolve: Addresses | None = None,
        interfaces: Callable[[], Sequence[HostNetwork]] = host_networks,
    ) -> None:
        self.settings = settings
        self._networks = _node_networks(networks)
        self._resolve = resolve or Addresses()
        self._interfaces = interfaces
        self._here: list[_Local] | NodeError | None = None
        self._listened: set[int] | None = None  # the listen addresses, once resolved
        self._accepted: set[tuple[str, bool]] = set()  # (server, node on loopback) checked

    def servers(self, node: str, values: Values, ip: str) -> Servers:
        """The node's servers (`ip` checked by boot_ip), or NodeError saying what to set."""
        given = {
            what: _Chosen(name, f"its {what}", f"chdef {node} {what}=<address>")
            for what, name in given_servers(values).items()
        }
        xcatmaster = given.get("xcatmaster") or self._master(node, ip)
        roles = _roles(given, xcatmaster)
        # The daemon itself always answers at xcatmaster; TFTP and HTTP may be
        # left to other servers (xcatd.toml's serve_tftp, serve_http).
        for chosen, served in zip(
            roles, (True, self.settings.serves_tftp, self.settings.serves_http), strict=True
        ):
            if served:
                self._check(ip, chosen)
        return Servers(*(chosen.address for chosen in roles))

    # -- choosing --------------------------------------------------------------

    def _master(self, node: str, ip: str) -> _Chosen:
        number = _number(ip)
        network = next((n for n in self._networks if n.holds(number)), None)
        local = self._local(network, number)
        if local is not None:
            address, where = local
            fix = f"chdef {node} xcatmaster=<address>"
            return _Chosen(address, f"this host's address on {where}", fix)
        if self.settings.master:
            master = check_server_name("site.master", self.settings.master)
            return _Chosen(master, "site.master", "chdef -t site clustersite master=<address>")
        on = network.text if network is not None else "the network"
        raise NodeError(
            f"no interface of this host is on {on} of its ip {ip}, and site.master is not "
            f"set: give the node an xcatmaster (chdef {node} xcatmaster=<address>) or set "
            "site.master (chdef -t site clustersite master=<address>)"
        )

    def _local(self, network: _Net | None, number: int) -> tuple[str, str] | None:
        """This host's address on the network of the node at `number`, and that
        network as said: the node's network object, else the network of one
        of this host's interfaces (xCAT's my_ip_facing)."""
        here = self._host_networks()
        if network is not None:
            for each in here:
                if network.holds(each.number):
                    return each.address, network.text
        for each in here:
            if each.network.holds(number):
                return each.address, each.network.text
        return None

    def _host_networks(self) -> list[_Local]:
        """This host's networks and its address on each, read once."""
        if self._here is None:
            try:
                self._here = [_Local.of(each) for each in self._interfaces()]
            except HostNetworkError as exc:
                self._here = NodeError(f"cannot tell this host's addresses: {exc}")
        if isinstance(self._here, NodeError):
            raise self._here
        return self._here

    # -- checking --------------------------------------------------------------

    def _check(self, ip: str, chosen: _Chosen) -> None:
        on_loopback = _LOOPBACK.holds(_number(ip))
        if (chosen.address, on_loopback) in self._accepted:  # most nodes share their servers
            return
        number = self._address(chosen)
        if _LOOPBACK.holds(number) and not on_loopback:
            raise NodeError(
                f"{chosen.address}, {chosen.origin}, is a loopback address, which the node "
                f"at {ip} cannot reach: {chosen.fix}"
            )
        if not self._served(number):
            settings = self.settings
            raise NodeError(
                f"xcatd does not listen on {chosen.address}, {chosen.origin}: listen is "
                f"{', '.join(settings.listen)} in {settings.config_file}; add "
                f"{chosen.address} there and restart xcatd, or name an address it listens "
                f"on: {chosen.fix}"
            )
        self._accepted.add((chosen.address, on_loopback))

    def _address(self, chosen: _Chosen) -> int:
        try:
            return _number(self._resolve(chosen.address))
        except NodeError:
            raise NodeError(
                f"cannot resolve {chosen.address}, {chosen.origin}, to an IPv4 address: "
                f"{chosen.fix}"
            ) from None

    def _served(self, number: int) -> bool:
        """Whether the daemon listens on `number`, or it is none of this host's
        (another server's to serve)."""
        if ALL_ADDRESSES in self.settings.listen:
            return True
        if self._listened is None:
            self._listened = set()
            for host in self.settings.listen:
                try:
                    self._listened.add(_number(self._resolve(host)))
                except NodeError:  # an IPv6 address, say: none a node boots from here
                    continue
        if number in self._listened:
            return True
        own = _LOOPBACK.holds(number) or any(h.number == number for h in self._host_networks())
        return not own


@dataclass(frozen=True)
class _Local:
    """One of this host's networks and its address there."""

    network: _Net
    address: str
    number: int

    @classmethod
    def of(cls, each: HostNetwork) -> _Local:
        text = f"{each.network} ({each.interface})"
        return cls(_Net.of(each.network, text), str(each.address.ip), int(each.address.ip))


def _node_networks(networks: Mapping[str, Values]) -> list[_Net]:
    """The network objects, the most specific first (a node is on the
    smallest one its address is in).  One that does not parse is left out:
    makedhcp -n names it."""
    parsed = []
    for name, values in networks.items():
        try:
            network = ipaddress.IPv4Network(
                f"{values.get('net')}/{values.get('mask')}", strict=False
            )
        except ValueError:
            continue
        parsed.append((network.prefixlen, _Net.of(network, f"network {name} ({network})")))
    return [net for _, net in sorted(parsed, key=lambda each: -each[0])]


class StaticInterfaces:
    """The node's other interfaces, configured by its initrd: xCAT's
    `nicips.<nic>` (a service node's NIC on its compute network, a node's
    InfiniBand) as dracut's `ip=<address>:::<netmask>::<nic>:none`.  The
    netmask is that of the network `nicnetworks.<nic>` names, else of the
    smallest network object holding the address.  The boot interface is
    left to DHCP (its entry, if any, is the node's own ip); dracut takes one
    address per interface, so a NIC's first address is the one it gets."""

    def __init__(self, networks: Mapping[str, Values]) -> None:
        self._by_name: dict[str, ipaddress.IPv4Network] = {}
        for name, values in networks.items():
            try:
                self._by_name[name] = ipaddress.IPv4Network(
                    f"{values.get('net')}/{values.get('mask')}", strict=False
                )
            except ValueError:
                continue  # makedhcp -n names it
        self._smallest_first = sorted(self._by_name.values(), key=lambda n: -n.prefixlen)

    def arguments(self, node: str, values: Values) -> list[str]:
        addresses = keyed.entries(values.get("nicips"))
        if not addresses:
            return []
        networks = keyed.entries(values.get("nicnetworks"))
        words = []
        for nic, listed in addresses.items():
            first = listed.split("|")[0]
            if first == values.get("ip"):
                continue  # the boot interface: DHCP gives it this address
            try:
                address = ipaddress.IPv4Address(first)
            except ValueError:
                raise NodeError(f"nicips.{nic} '{first}' is not an IPv4 address") from None
            network = self._network(node, nic, address, networks.get(nic))
            words.append(f"ip={address}:::{network.netmask}::{nic}:none")
        return words

    def _network(
        self, node: str, nic: str, address: ipaddress.IPv4Address, named: str | None
    ) -> ipaddress.IPv4Network:
        if named:
            network = self._by_name.get(named)
            if network is None:
                raise NodeError(
                    f"nicnetworks.{nic} is '{named}', which is not a network object: "
                    f"define it (mkdef -t network -o {named} net=<address> mask=<netmask>)"
                )
            return network
        found = next((n for n in self._smallest_first if address in n), None)
        if found is None:
            raise NodeError(
                f"nicips.{nic} {address} is on no network object: define it (mkdef -t "
                f"network) or name it with chdef {node} nicnetworks.{nic}=<network>"
            )
        return found


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
    def files(self) -> ImageFiles:
        """Its files are beside the packed one (as a service node's copy has them)."""
        return ImageFiles(self.packfile.parent)

    @cached_property  # asked for each of its nodes: looked up once
    def enrolls(self) -> bool:
        """Whether the image is a service node's (xcatd in it), which enrolls
        for its certificate when it boots."""
        return is_service_node(self.files.rootimg)

    @property
    def state(self) -> str:
        return f"netboot {self.osvers}-{self.osarch}-{self.profile}"

    @property
    def boot_files(self) -> tuple[Path, Path]:
        return self.files.kernel, self.files.initrd


def packed_image(name: str, image: OsImage | None, *, copied: bool = False) -> PackedImage:
    """The osimage `name` checked on disk, or NodeError.  A service node's
    `copied` image was built and checked on the management node: only its
    packed files are here."""
    if image is None:
        raise NodeError(f"Cannot find image '{name}' from the osimage table.")
    try:
        image.check_diskless()
        image.check_set("osvers", "osarch", "profile")
    except OsImageError as exc:
        raise NodeError(str(exc)) from None
    addkcmdline = image.addkcmdline
    if _CMDLINE_UNSAFE.search(addkcmdline):
        raise NodeError(
            f"osimage '{name}': addkcmdline {addkcmdline!r} has characters boot loaders "
            "read as syntax (quotes, ;, $, `, \\, {, }, |, &, <, >, control characters)"
        )
    packfile = image.packfile
    if packfile is None or not packfile.is_file():
        raise NodeError(f"osimage '{name}' is not packed: run packimage {name}")
    if not copied and ImageFiles(packfile.parent).incomplete():
        raise NodeError(
            f"osimage '{name}' is not packed: its last genimage did not finish; "
            f"run genimage {name}, then packimage {name}"
        )
    packed = PackedImage(name, image.osvers, image.osarch, image.profile, packfile, addkcmdline)
    for path in packed.boot_files:
        if not path.is_file():
            raise NodeError(f"osimage '{name}' has no {path}: run genimage {name}")
    return packed


# -- the kernel command line ---------------------------------------------------------


def kernel_command_line(
    node: str,
    values: Values,
    mac: str,
    image: PackedImage,
    servers: Servers,
    settings: Settings,
    ca_fingerprint: str,
    interfaces: list[str],
) -> str:
    """What the stateless initrd reads: where the image is, which xcatd to
    talk to and the fingerprint of the cluster CA it must be certified by
    (public: it lets a service node enroll with no secret in its image), who
    the node is, where to report its state; then the console and the image's
    own additions; the node's `interfaces` (StaticInterfaces) before them."""
    words = [
        f"imgurl={settings.http_url(servers.image, image.packfile)}",
        f"XCAT={servers.xcatmaster}:{settings.xcatd_port}",
        f"XCATCA=sha256:{ca_fingerprint}",
        f"NODE={node}",
        "FC=0",
        f"BOOTIF={mac}",
        f"XCATSTATUS={settings.http_url(servers.xcatmaster, STATUS_PATH)}",
        *console_arguments(values),
        *interfaces,
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
