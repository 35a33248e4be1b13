"""makehosts: the hosts file (/etc/hosts) from the node definitions, as xCAT's.

    makehosts                 a line for every node that has an ip (or otherinterfaces)
    makehosts <noderange>     lines for these nodes (a node without ip: its name resolved)
    makehosts -n [noderange]  the file anew: `127.0.0.1 localhost` and the nodes' lines
    makehosts -d <noderange>  these nodes' lines removed (their NICs' too)
    ... -l                    the long name first (also site.FQDNfirst=1|yes|enable)
    ... -o                    the other names (hostnames) first
    ... -a                    each other name also with the domain
    ... -m <noderange>        IPv6 link-local addresses made from the nodes' MACs

A line is `<ip> <node> <node>.<domain> <hostnames>` (xcatd/hostsfile.py):
the domain is that of the network object the address is on, else
site.domain.  A node's `otherinterfaces` (`-eth1:10.1.0.5`, a name
starting with `-` follows the node's) and its NICs (`nicips.<nic>`, named
`<prefix><node><suffix>`, the suffix `-<nic>` unless
nichostnamesuffixes/nichostnameprefixes say otherwise, `nicaliases` as
other names) get lines too.  The other lines of the file stay; the file
before is kept as hosts.xcatbak beside it, and the new one replaces it
whole (renamed over it).  It runs where it is asked, as xCAT's: the
management node's file (under `--root`, `<root>/etc/hosts`).  On success it
prints nothing, as xCAT's.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ..boot.files import one_writer, write_atomic
from ..boot.netboot import NodeError, boot_mac
from ..call import Call
from ..hostsfile import HostsError, HostsFile, Style, host_line, is_address
from ..store import keyed, objects
from ..store.noderange import NoderangeError
from ..store.objtypes import NETWORK
from ..store.regex_values import RegexValueError, evaluate, is_regex_value
from .common import expand_noderange
from .registry import CommandParser, Usage, UsageError, command

USAGE = Usage(  # xCAT's (hosts.pm)
    "Usage: makehosts <noderange> [-d] [-n] [-l] [-a] [-o] [-m]\n       makehosts -h\n"
    "       makehosts -v",
    bare_runs=True,
)

ATTRIBUTES = (
    "ip", "hostnames", "otherinterfaces", "mac", "nicips", "nichostnamesuffixes",
    "nichostnameprefixes", "nicnetworks", "nicaliases",
)  # fmt: skip
_NO_DOMAIN = (
    "The domain of the xCAT node must be provided in an xCAT network definition or the "
    "xCAT site definition."
)

Values = Mapping[str, str]


@command("makehosts", "Write the hosts file from the node definitions.", usage=USAGE)
def makehosts_options(parser: CommandParser) -> None:
    parser.add_argument("-n", dest="new", action="store_true",
                        help="replace the whole file, losing its other lines")  # fmt: skip
    parser.add_argument("-d", dest="delete", action="store_true",
                        help="remove the nodes' lines")  # fmt: skip
    parser.add_argument("-l", "--longnamefirst", action="store_true",
                        help="the long name (FQDN) before the short one")  # fmt: skip
    parser.add_argument("-o", "--othernamesfirst", action="store_true",
                        help="the other names (hostnames) before the node's")  # fmt: skip
    parser.add_argument("-a", "--adddomaintohostnames", action="store_true",
                        help="each other name also with the domain")  # fmt: skip
    parser.add_argument("-m", "--mactolinklocal", action="store_true",
                        help="IPv6 link-local addresses from the nodes' MACs")  # fmt: skip
    parser.add_argument("noderange", nargs="?", help="the nodes (default: every node with an ip)")


@makehosts_options.runs
async def makehosts(call: Call) -> None:
    options = call.options
    if options.delete and not options.noderange:
        raise UsageError("-d removes the lines of a noderange's nodes: makehosts -d <noderange>")
    if options.mactolinklocal and not options.noderange:
        raise UsageError("-m makes the lines of a noderange's nodes: makehosts -m <noderange>")
    try:
        read = await call.context.store.run(lambda db: _read(db, call))
    except (NoderangeError, RegexValueError) as exc:
        await call.error(str(exc))
        return
    hosts = call.context.layout.hosts
    try:
        notes = await trio.to_thread.run_sync(_update, hosts, call.context.layout.state, read)
    except (OSError, UnicodeDecodeError) as exc:
        await call.error(f"cannot write {hosts}: {exc}")
        return
    for warning in notes.warnings:
        await call.warning(warning)
    for error in notes.errors:
        await call.error(error)


@dataclass
class _Read:
    """What makehosts reads from the store in one go, and what it was asked."""

    nodes: dict[str, dict[str, str]]  # node -> ATTRIBUTES, in the noderange's order
    networks: list[tuple[str, ipaddress.IPv4Network, str]]  # name, net, domain: smallest first
    site_domain: str
    style: Style
    new: bool
    delete: bool
    linklocal: bool
    resolve: bool  # a node given by name without an ip is looked up (xCAT: with a noderange)


def _read(db, call: Call) -> _Read:
    options = call.options
    nodes = call.nodes(db)
    if options.noderange:
        names = expand_noderange(call, options.noderange, nodes)
    else:  # xCAT's: the nodes the hosts table has
        names = [
            node
            for node in nodes.all_nodes()
            if nodes.attribute(node, "ip") or nodes.attribute(node, "otherinterfaces")
        ]
    values = {n: {a: v for a in ATTRIBUTES if (v := nodes.attribute(n, a))} for n in names}
    site = objects.site(db)
    first = site.get("FQDNfirst", "").lower() in ("1", "yes", "enable")
    return _Read(
        nodes=values,
        networks=_networks(objects.load(db, NETWORK)),
        site_domain=site.get("domain", ""),
        style=Style(
            long_first=options.longnamefirst or first,
            others_first=options.othernamesfirst,
            add_domain=options.adddomaintohostnames,
        ),
        new=options.new,
        delete=options.delete,
        linklocal=options.mactolinklocal,
        resolve=bool(options.noderange),
    )


def _networks(networks: Mapping[str, Values]) -> list[tuple[str, ipaddress.IPv4Network, str]]:
    """The network objects that parse, the most specific first: an address's
    domain is that of the smallest network it is on."""
    parsed = []
    for name, values in networks.items():
        try:
            net = ipaddress.IPv4Network(f"{values.get('net')}/{values.get('mask')}", strict=False)
        except ValueError:
            continue  # makedhcp -n names it
        parsed.append((name, net, values.get("domain", "")))
    return sorted(parsed, key=lambda each: -each[1].prefixlen)


@dataclass
class _Notes:
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _update(path: Path, state: Path, read: _Read) -> _Notes:
    """In a worker thread: the file read, edited and written whole, one
    makehosts at a time (xCAT's lock), the file before kept as hosts.xcatbak."""
    state.mkdir(parents=True, exist_ok=True)
    with one_writer(state / "makehosts.lock"):
        try:
            before = path.read_text()
        except FileNotFoundError:
            before = None
        if before is not None:
            write_atomic(path.with_name(f"{path.name}.xcatbak"), before.encode())
        lines = ["127.0.0.1 localhost"] if read.new or before is None else before.splitlines()
        hosts = HostsFile(lines)
        notes = _Editor(hosts, read).run()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, hosts.text().encode())
    return notes


class _Editor:
    """The nodes' lines put into (or taken out of) the file, as xCAT's makehosts does."""

    def __init__(self, hosts: HostsFile, read: _Read) -> None:
        self.hosts = hosts
        self.read = read
        self.notes = _Notes()

    def run(self) -> _Notes:
        for node, values in self.read.nodes.items():
            if self.read.linklocal:
                self._linklocal(node, values)
            else:
                self._node(node, values)
        for node, values in self.read.nodes.items():
            self._nics(node, values)
        return self.notes

    def _domain(self, ip: str | None) -> tuple[str, str | None]:
        """The domain of the network `ip` is on (and that network's name), else site.domain."""
        try:
            address = ipaddress.IPv4Address(ip or "")
        except ValueError:  # no address, or IPv6: the network objects are IPv4
            return self.read.site_domain, None
        for name, net, domain in self.read.networks:
            if address in net:
                return domain or self.read.site_domain, name
        return self.read.site_domain, None

    def _put(self, name: str, ip: str, domain: str, othernames: str, shown: str = "") -> None:
        try:
            line = host_line(ip, shown or name, domain, othernames, self.read.style)
        except HostsError as exc:
            self.notes.errors.append(str(exc))
            return
        self.hosts.put(name, ip, line)

    def _node(self, node: str, values: Values) -> None:
        ip = values.get("ip") or (_resolved(node) if self.read.resolve else None)
        interfaces = _other_interfaces(node, values.get("otherinterfaces", ""))
        if self.read.delete:
            self.hosts.remove(node, ip)
            for name, address in interfaces:
                self.hosts.remove(name, address)
            return
        domain = self._domain(ip)[0]
        if not domain:
            self.notes.warnings.append(
                f"No domain can be determined for node '{node}'. {_NO_DOMAIN}"
            )
            return
        if ip and is_address(ip):
            self._put(node, ip, domain, values.get("hostnames", ""))
        elif not self.read.resolve:
            self.notes.errors.append(f"Invalid IP Addr '{ip}' for node '{node}'.")
        elif not ip:
            self.notes.warnings.append(f"Ignoring node '{node}', it can not be resolved.")
        else:
            self.notes.warnings.append(
                f"Ignoring node '{node}', its ip address '{ip}' is not valid."
            )
        for name, address in interfaces:
            self._put(name, address, self._domain(address)[0] or domain, "")

    def _linklocal(self, node: str, values: Values) -> None:
        """-m: the node's line with the IPv6 link-local address of its MAC
        (found, as xCAT's, by the node's name too: it takes its IPv4 line's place)."""
        if not values.get("mac"):
            return
        try:
            address = link_local(boot_mac(values))
        except NodeError as exc:
            self.notes.errors.append(f"{node}: {exc}")
            return
        if self.read.delete:
            self.hosts.remove(node, address)
        elif not self.read.site_domain:
            self.notes.warnings.append(
                f"No domain can be determined for node '{node}'. {_NO_DOMAIN}"
            )
        else:
            self._put(node, address, self.read.site_domain, node)

    def _nics(self, node: str, values: Values) -> None:
        """A line for each address of each NIC in nicips (xCAT's donics)."""
        short = node.split(".")[0]
        column = {a: keyed.entries(values.get(a)) for a in ATTRIBUTES if a.startswith("nic")}
        for nic, listed in column["nicips"].items():
            addresses = _each(node, listed)
            suffixes = _each(node, column["nichostnamesuffixes"].get(nic, ""))
            prefixes = _each(node, column["nichostnameprefixes"].get(nic, ""))
            networks = _each(node, column["nicnetworks"].get(nic, ""))
            aliases = _each(node, column["nicaliases"].get(nic, ""))
            for index, address in enumerate(addresses):
                suffix, prefix = _nth(suffixes, index), _nth(prefixes, index)
                why = _naming_problem(node, nic, suffix, prefix)
                if address and why:
                    self.notes.errors.append(why)
                elif address:
                    name = f"{prefix}{short}{suffix or ('' if prefix else f'-{nic}')}"
                    self._nic(name, address, _nth(networks, index), _nth(aliases, index))

    def _nic(self, name: str, ip: str, network: str, aliases: str) -> None:
        if self.read.delete:
            self.hosts.remove(name, ip)
            return
        domain, on = self._domain(ip)
        if on is None and network:  # the network nicnetworks names
            named = next((d for n, _, d in self.read.networks if n == network), "")
            domain = named or domain
        if not domain:
            self.notes.warnings.append(
                f"No domain can be determined for the NIC IP value of '{ip}'. The network "
                "domains must be provided in an xCAT network definition or the xCAT site "
                "definition."
            )
            return
        # An address already in the file keeps its line's name; the NIC's aliases join it.
        self._put(name, ip, domain, aliases, self.hosts.first_name(ip, name) or "")


def _resolved(node: str) -> str | None:
    """The node's address by the host's resolver (xCAT's getipaddr)."""
    try:
        return socket.gethostbyname(node)
    except OSError:
        return None


def _other_interfaces(node: str, value: str) -> list[tuple[str, str]]:
    """otherinterfaces' `name:ip` (or `name!ip`) pairs with an address; a
    name starting with `-` follows the node's name."""
    pairs = []
    for pair in value.split(","):
        name, _, ip = pair.partition("!" if "!" in pair else ":")
        if ip and is_address(ip):
            pairs.append((f"{node}{name}" if name.startswith("-") else name, ip))
    return pairs


def _each(node: str, value: str) -> list[str]:
    """A NIC's `a|b` values; a regular expression (`|node(\\d+)|10.1.0.($1+0)|`)
    evaluated for the node first."""
    if is_regex_value(value):
        value = evaluate(value, node) or ""
    return value.split("|") if value else []


def _nth(values: list[str], index: int) -> str:
    return values[index] if index < len(values) else ""


def _naming_problem(node: str, nic: str, suffix: str, prefix: str) -> str | None:
    """xCAT's error for a NIC's host name that would hold a dot."""
    if not suffix and not prefix and "." in nic:
        return (
            f"{node}: since '{nic}' contains dot, nics.nichostnamesuffixes.{nic} should be "
            f"configured without dot for '{nic}' interface."
        )
    for value, column in ((suffix, "nichostnamesuffixes"), (prefix, "nichostnameprefixes")):
        if "." in value:
            return f"{node}: the value '{value}' of nics.{column}.{nic} should not contain dot."
    return None


def link_local(mac: str) -> str:
    """The IPv6 link-local address of a MAC (modified EUI-64)."""
    octets = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))
