"""makedhcp: the DHCP server's view of the cluster's nodes.

    makedhcp -n              the servers' settings anew, from the network objects
    makedhcp -a              an entry for every node that has a MAC
    makedhcp <noderange>     entries for these nodes (added or replaced)
    makedhcp -d <noderange>  these nodes' entries removed, and their boot links by MAC or IP
    makedhcp -a -d           every node's entry removed
    makedhcp -q <noderange>  these nodes' entries, as the DHCP server has them
    ... -l                   on this host only, not carried to the nodes' service nodes

As xCAT's, but for dnsmasq first (and ISC dhcpd's format beside it), in
one directory, <etc>/dhcp (see xcatd/boot/dhcp.py for the files).  -n
leaves the DHCP service running on the interfaces of the networks (each
network's mgtifname when this host has that interface, else this host's
interface on it; never loopback): it restarts the daemon's dnsmasq or
xcatd-dhcp.service (see xcatd/boot/dnsmasq.py), unless xcatd.toml says serve_dhcp = false, for a
site whose own DHCP server reads these files.  After any other change the
dnsmasq running with that dnsmasq.conf is sent SIGHUP, which makes it read
the host entries again.  nodeset writes its nodes' entries with the same
code (xcatd/boot/dhcphosts.py).  A service node's daemon runs -n itself as
it starts, when the definitions it takes hold networks (servicenode/restore.py).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio

from ..boot.dhcp import (
    HOST_FILES,
    Host,
    Network,
    dhcpd_conf,
    dnsmasq_conf,
    dnsmasq_entries,
    dnsmasq_opts,
    served_on,
)
from ..boot.dhcphosts import DhcpFilesError, host_entry, locked, write_entries
from ..boot.dnsmasq import DhcpServiceError, reload_dnsmasq
from ..boot.files import Links, write_atomic
from ..boot.hostnet import (
    HostNetwork,
    HostNetworkError,
    address_on,
    host_networks,
    interface_names,
    is_interface_name,
)
from ..boot.loaders import LINK_DIRECTORIES, config_paths
from ..boot.netboot import (
    NODE_ATTRIBUTES,
    Addresses,
    BootServers,
    NodeError,
    facing_address,
    is_hostname,
    is_server_name,
)
from ..call import Call
from ..errors import XcatdError
from ..hierarchy import Split, alongside, split
from ..servicenode import serving
from ..store import objects
from ..store.noderange import NoderangeError
from ..store.objtypes import NETWORK
from ..store.regex_values import RegexValueError
from .bootsettings import settings
from .common import expand_noderange, verbose_option
from .registry import CommandParser, Usage, UsageError, command

Values = Mapping[str, str]


# xCAT's (dhcp.pm $usage), with the forms xcatd has; xCAT's makedhcp has no -v.
USAGE = Usage(
    "Usage: makedhcp -n\n\tmakedhcp -a\n\tmakedhcp -a -d\n\tmakedhcp -d noderange\n"
    "\tmakedhcp <noderange>\n\tmakedhcp -q\n\tmakedhcp [-h|--help]",
    version=False,
    bare_rc=1,
)


@command("makedhcp", "Write the DHCP server's network and node entries.", usage=USAGE)
def makedhcp_options(parser: CommandParser) -> None:
    parser.add_argument(
        "-n", "--new", action="store_true", help="the servers' settings anew, from the networks"
    )
    parser.add_argument("-a", "--all", action="store_true", help="every node with a MAC")
    parser.add_argument("-d", "--delete", action="store_true", help="remove these nodes")
    parser.add_argument("-q", "--query", action="store_true", help="these nodes' entries")
    parser.add_argument(
        "-l", "--localonly", action="store_true", help="this host only, not its service nodes"
    )
    # xCAT's -s hands statements to ISC dhcpd over OMAPI, which xcatd does not drive.
    parser.add_argument("-s", dest="statements", help="not supported")
    verbose_option(parser)
    parser.add_argument("noderange", nargs="?", help="the nodes")


@makedhcp_options.runs
async def makedhcp(call: Call) -> None:
    options = call.options
    if not (options.new or options.all or options.noderange):
        raise UsageError(f"give -n, -a or a noderange\n{USAGE.text}")
    if options.delete and not (options.all or options.noderange):
        raise UsageError("-d removes the nodes of a noderange: makedhcp -d <noderange>")
    if options.all and options.noderange:
        raise UsageError("-a takes every node with a MAC: give no noderange with it")
    if options.query and not options.noderange:
        raise UsageError("-q shows the entries of a noderange: makedhcp -q <noderange>")
    if options.statements is not None:
        raise UsageError(
            "-s hands statements to ISC dhcpd over OMAPI, which xcatd does not drive: its "
            "DHCP entries come from the nodes' attributes (chdef), written by makedhcp"
        )
    try:
        await serving.definitions(call)  # on a service node: the MN's
        read, split = await call.context.store.run(lambda db: _read(db, call))
    except (NoderangeError, RegexValueError, serving.ServingError) as exc:
        await call.error(str(exc))
        return
    # The service nodes' own DHCP service and entries, on them.
    await alongside(call, split, lambda: _here(call, read))


async def _here(call: Call, read: _Read) -> None:
    """This host's DHCP settings and the entries of the nodes it serves."""
    options = call.options
    directory = call.context.layout.dhcp
    if options.new and not await _write_settings(call, directory, read):
        return
    if options.query:
        await _query(call, directory, read)
    elif options.delete:
        await _delete(call, directory, read)
    elif options.all or options.noderange:
        await _add(call, directory, read)


@dataclass
class _Read:
    """What makedhcp reads from the store in one go."""

    site: Values
    networks: dict[str, dict[str, str]]
    nodes: dict[str, dict[str, str]]  # node -> its boot attributes


def _read(db, call: Call) -> tuple[_Read, Split]:
    """What this host writes, and the nodes each service node's makedhcp
    handles (with -n: every service node, which sets up its own service)."""
    options = call.options
    networks = objects.load(db, NETWORK)
    nodes = call.nodes(db)
    if options.all and options.delete:  # every entry: those of nodes removed too
        names = [*nodes.all_nodes(), *_entered(call.context.layout.dhcp)]
        names = list(dict.fromkeys(names))
    elif options.all:
        names = [node for node in nodes.all_nodes() if nodes.attribute(node, "mac")]
    elif options.noderange:
        # Entries of nodes already removed can still be deleted.
        names = expand_noderange(call, options.noderange, nodes, verify=not options.delete)
    else:
        names = []
    by_server = Split(local=names) if options.localonly else split(call, nodes, names)
    if options.new or (options.all and options.delete):
        by_server.add_servers_of(split(call, nodes, nodes.all_nodes()))
    names = by_server.local
    known = set(nodes.groups_of)
    values = {
        name: {a: v for a in NODE_ATTRIBUTES if name in known and (v := nodes.attribute(name, a))}
        for name in names
    }
    return _Read(objects.site(db), networks, values), by_server


# -- makedhcp -n ------------------------------------------------------------------------


class NetworkError(XcatdError):
    pass


async def _write_settings(call: Call, directory: Path, read: _Read) -> bool:
    if not read.networks:
        await call.error(
            "no network objects are defined: run makenetworks to define the networks of "
            "this host's interfaces, or mkdef -t network -o <name> net=<address> "
            "mask=<netmask> [dynamicrange=<first>-<last>] [gateway=<address>]"
        )
        return False

    boot = settings(call, read.site)

    def write() -> list[Network]:
        here = Here(host_networks(), interface_names())
        me = {call.context.config.hostname, *(str(each.address.ip) for each in here.networks)}
        networks = [
            _network(name, read.networks[name], read.site, here, me)
            for name in sorted(read.networks)
        ]
        domain = read.site.get("domain")
        if domain and not is_server_name(domain):
            raise NetworkError(f"site.domain {domain!r} is not a domain name")
        written = {
            "dnsmasq.conf": dnsmasq_conf(directory, networks),
            "dnsmasq-opts": dnsmasq_opts(networks, domain, boot.http_port, boot.tftpdir),
            "dhcpd.conf": dhcpd_conf(directory, networks, domain),
        }
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name, text in written.items():
            write_atomic(directory / name, text.encode())
        with locked(directory):
            for host_file in HOST_FILES:  # dhcpd.conf includes one; dnsmasq wants the other
                path = directory / host_file.name
                if not path.exists():
                    write_atomic(path, host_file.updated("", {}).encode())
        return networks

    try:
        networks = await trio.to_thread.run_sync(write)
    except (NetworkError, HostNetworkError) as exc:
        await call.error(str(exc))
        return False
    except OSError as exc:
        await call.error(f"cannot write the DHCP settings in {directory}: {exc}")
        return False
    await call.info(
        f"Wrote {directory}/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for {len(networks)} "
        f"network(s): {', '.join(n.name for n in networks)}"
    )
    return await _serve(call, directory, networks)


async def _serve(call: Call, directory: Path, networks: list[Network]) -> bool:
    """Leave the DHCP service running with the new settings (xCAT restarts
    dhcpd after -n), or say why none runs."""
    service = call.context.dhcp
    interfaces = served_on(networks)
    try:
        if not call.context.config.serve_dhcp:
            await service.stop()  # its own, started before the switch was turned off
            return await _left_to_the_site(call, directory)
        if not interfaces:
            await service.stop()
            await call.warning(
                f"no interface of this host is on {', '.join(n.name for n in networks)}: no "
                "DHCP service runs here (set the network's mgtifname to serve it)"
            )
            return True
        pid = await service.restart()
    except DhcpServiceError as exc:
        await call.error(f"the DHCP service did not start: {exc}")
        return False
    await call.info(f"The DHCP service runs: dnsmasq (pid {pid}) on {', '.join(interfaces)}")
    return True


async def _left_to_the_site(call: Call, directory: Path) -> bool:
    """serve_dhcp = false: the site's own dnsmasq, if one runs with these files,
    reads the entries again."""
    pid = await trio.to_thread.run_sync(reload_dnsmasq, directory)
    await call.info(
        f"serve_dhcp = false in {call.context.layout.config_file}: xcatd runs no DHCP service"
    )
    await call.info(reloading(directory, pid))
    if pid is not None:
        await call.info("It reads the networks' dhcp-ranges only when it starts: restart it")
    return True


@dataclass(frozen=True)
class Here:
    """This host's networks (up, with an IPv4 address) and all its interfaces' names."""

    networks: list[HostNetwork]
    interfaces: set[str]


def _network(name: str, values: Values, site: Values, here: Here, me: set[str]) -> Network:
    """A network object for the DHCP server; `<xcatmaster>` (xCAT's word for
    "the management node") becomes this server's address on that network.
    Its dynamic range is served only by its `dhcpserver` when one is named
    (`me`: this host's name and addresses), as xCAT's makedhcp does: with
    service nodes, several hosts have an interface on one network, and
    only one of them may lease its free addresses."""
    net, mask = values["net"], values["mask"]
    try:
        network = ipaddress.IPv4Network(f"{net}/{mask}", strict=False)
    except ValueError:
        raise NetworkError(f"network {name}: {net}/{mask} is not an IPv4 network") from None
    local = address_on(network, here.networks)

    def address(given: str, what: str) -> str:
        if given == "<xcatmaster>":
            mine = str(local.address.ip) if local else facing_address(net)
            if mine is None:
                raise NetworkError(f"network {name}: no address of this server is on {net}")
            return mine
        try:
            return str(ipaddress.IPv4Address(given))
        except ValueError:
            raise NetworkError(f"network {name}: {what} '{given}' is not an IPv4 address") from None

    dynamic = None
    server = values.get("dhcpserver")
    if values.get("dynamicrange") and (not server or server in me):
        bounds = values["dynamicrange"].replace(",", "-").split("-")
        if len(bounds) != 2:
            raise NetworkError(f"network {name}: dynamicrange must be <first>-<last>")
        dynamic = (
            address(bounds[0].strip(), "dynamicrange"),
            address(bounds[1].strip(), "dynamicrange"),
        )
    nameservers = values.get("nameservers") or site.get("nameservers") or ""
    tftpserver = values.get("tftpserver")
    return Network(
        name,
        net,
        mask,
        address(values["gateway"], "gateway") if values.get("gateway") else None,
        dynamic,
        tuple(address(ns, "nameserver") for ns in nameservers.split(",") if ns),
        address(tftpserver, "tftpserver") if tftpserver else None,
        dhcp_interface(name, values.get("mgtifname"), local, here),
    )


def dhcp_interface(
    name: str, given: str | None, local: HostNetwork | None, here: Here
) -> str | None:
    """Where the network's DHCP is served: its mgtifname, else this host's
    interface on it; None for a network reached through a relay (xCAT's
    mgtifname `!remote!`) or only over loopback.  A mgtifname this host has
    no interface of is another host's: the management node's, whose
    makenetworks wrote it (br0), read by a service node (eth0 on the same
    network), which serves on its own interface there, found by its address
    as xCAT's makedhcp finds every interface (from the routes)."""
    if given and given.startswith("!"):
        return None
    if given and not is_interface_name(given):
        raise NetworkError(f"network {name}: mgtifname '{given}' is not an interface name")
    if given in here.interfaces:
        loopback = any(h.loopback for h in here.networks if h.interface == given)
        return None if loopback else given
    return local.interface if local and local.serves_nodes else None


# -- makedhcp <noderange> | -a | -d ------------------------------------------------------------


async def _add(call: Call, directory: Path, read: _Read) -> None:
    boot = settings(call, read.site)
    resolve = Addresses()
    choose = BootServers(boot, read.networks, resolve)

    def entries() -> tuple[dict[str, Host], dict[str, str]]:
        made, failed = {}, {}
        for node, values in read.nodes.items():
            try:
                made[node] = host_entry(node, values, boot, resolve, choose)
            except NodeError as exc:
                failed[node] = str(exc)
        return made, failed

    made, failed = await trio.to_thread.run_sync(entries)
    for node, why in failed.items():
        await call.error(why, node=node)
    if made:
        await _report(call, directory, made, "Wrote the entries of")


async def _delete(call: Call, directory: Path, read: _Read) -> None:
    """The nodes' entries, and their boot files' links by MAC or IP address: a
    node later given one of those addresses must not boot their files."""
    tftpdir = os.fspath(settings(call, read.site).tftpdir)

    def remove_links() -> None:
        links = Links(tftpdir, LINK_DIRECTORIES)
        for node in filter(is_hostname, read.nodes):
            for path in config_paths(node):
                links.remove_others(path)

    try:
        await trio.to_thread.run_sync(remove_links)
    except OSError as exc:
        await call.error(f"cannot remove the nodes' boot file links in {tftpdir}: {exc}")
    await _report(call, directory, dict.fromkeys(read.nodes), "Removed the entries of")


async def _report(
    call: Call, directory: Path, changes: Mapping[str, Host | None], done: str
) -> None:
    try:
        written = await write_entries(directory, changes)
    except DhcpFilesError as exc:
        await call.error(str(exc))
        return
    await call.info(f"{done} {len(changes)} node(s) in {directory}")
    if not written.configured:
        await call.warning(written.unconfigured)
    failure = call.context.dhcp.failure if call.context.config.serve_dhcp else None
    if written.dnsmasq is None and written.configured and failure:
        await call.warning(
            f"the DHCP service is not running ({failure}): it reads the entries when it "
            "starts; makedhcp -n starts it again"
        )
    else:
        await call.info(reloading(directory, written.dnsmasq))


async def _query(call: Call, directory: Path, read: _Read) -> None:
    """xCAT's `<node>: ip-address = <ip>, hardware-address = <mac>` for each
    node that has an entry, as the DHCP server reads them."""
    entered = await trio.to_thread.run_sync(_entered, directory)
    for node in read.nodes:
        if node in entered:
            mac, ip = entered[node]
            await call.info(f"ip-address = {ip}, hardware-address = {mac}", node=node)


def _entered(directory: Path) -> dict[str, tuple[str, str]]:
    """The nodes that have an entry: node -> (mac, ip)."""
    try:
        return dnsmasq_entries((directory / HOST_FILES[0].name).read_text())
    except FileNotFoundError:
        return {}


# -- the entries ------------------------------------------------------------------


def reloading(directory: Path, pid: int | None) -> str:
    if pid is None:
        return f"no dnsmasq runs with {directory}/dnsmasq.conf: it reads the entries when started"
    return f"dnsmasq (pid {pid}) is reading the entries again"
