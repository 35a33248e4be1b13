"""makenetworks: network objects from the management node's own interfaces.

    makenetworks [-V|--verbose] [-d|--display]
    makenetworks -h | -v

As xCAT's (networks.pm, Linux): one network per IPv4 network of an
interface that is up, named `<net>-<mask>` with the dots as underscores
(`10_0_0_0-255_255_255_0`); `mgtifname` is the interface, `gateway` the
default route's gateway when it is on that network, else `<xcatmaster>`
(the management node's own address there), and `tftpserver` `<xcatmaster>`
(`-d` shows the address).  Loopback, link-local and multicast networks are
left out.  An object of the same name is never overwritten (xCAT's
warning); one of another name for the same net and mask is left as it is.
`-d` prints the stanzas, for `mkdef -z`, and writes nothing.  The MTU xCAT
also records has no attribute here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import trio

from ..boot.hostnet import HostNetwork, HostNetworkError, default_gateways, host_networks
from ..call import Call
from ..store import objects
from ..store.objects import Definition, DefinitionError
from ..store.objtypes import NETWORK
from .registry import CommandParser, command

XCATMASTER = "<xcatmaster>"  # xCAT's word for "the management node's address on it"
USAGE = (  # xCAT's words (networks.pm makenetworks_usage), blank lines included
    "\nUsage: makenetworks - Gather cluster network information and add it to the xCAT "
    "database.\n\n"
    "  makenetworks [-h|--help ]\n\n"
    "  makenetworks [-v|--version]\n\n"
    "  makenetworks [-V|--verbose] [-d|--display]\n"
)
EQUIVALENT = "# Note: An equivalent xCAT network definition already exists.\n"
STANZA_ORDER = ("net", "mask", "gateway", "mgtifname", "tftpserver")  # xCAT's order in -d


@command(
    "makenetworks",
    "Gather cluster network information and add it to the xCAT database.",
    add_help=False,
)
def makenetworks_options(parser: CommandParser) -> None:
    parser.add_argument("-h", "-?", "--help", dest="help", action="store_true", help="usage")
    parser.add_argument("-v", "--version", action="store_true", help="the version")
    parser.add_argument("-V", "--verbose", action="store_true", help="say what was defined")
    parser.add_argument("-d", "--display", action="store_true", help="print stanzas, write none")


@makenetworks_options.runs
async def makenetworks(call: Call) -> None:
    options = call.options
    if options.help:
        await call.info(USAGE)
        return
    if options.version:
        await call.info(f"makenetworks - Version {call.context.version}")
        return
    try:
        found = await trio.to_thread.run_sync(gathered)
    except HostNetworkError as exc:
        await call.error(f"Could not get network information: {exc}")
        return
    if not found:
        await call.warning(
            "no interface of this host is on a network nodes can use (only loopback or "
            "link-local addresses): define one with mkdef -t network"
        )
        return
    present = await call.context.store.run(lambda db: objects.load(db, NETWORK))
    if options.display:
        for network in found:
            await call.info(network.stanza(call.context.config.hostname, present))
        return
    await _define(call, found)


@dataclass(frozen=True)
class Found:
    """A network of this host's, as makenetworks defines it."""

    host: HostNetwork
    gateway: str

    @property
    def net(self) -> str:
        return str(self.host.network.network_address)

    @property
    def mask(self) -> str:
        return str(self.host.network.netmask)

    @property
    def name(self) -> str:
        return f"{self.net.replace('.', '_')}-{self.mask.replace('.', '_')}"

    def values(self) -> dict[str, str]:
        return {
            "net": self.net,
            "mask": self.mask,
            "gateway": self.gateway,
            "mgtifname": self.host.interface,
            "tftpserver": XCATMASTER,
        }

    def equivalent(self, present: dict[str, dict[str, str]]) -> str | None:
        """The name of an existing object for this network (this name first)."""
        if self.name in present:
            return self.name
        return next((n for n, v in present.items() if _network_of(v) == self.host.network), None)

    def stanza(self, hostname: str, present: dict[str, dict[str, str]]) -> str:
        """xCAT's -d stanza: tftpserver shows this host's address."""
        values = {**self.values(), "tftpserver": str(self.host.address.ip)}
        lines = [f"\n#From {hostname}.", f"{self.name}:", "    objtype=network"]
        lines += [f"    {name}={values[name]}" for name in STANZA_ORDER]
        if self.equivalent(present):
            lines.append(EQUIVALENT)
        return "\n".join(lines)


def gathered() -> list[Found]:
    """This host's networks nodes can be on, one per network (the first
    interface on it); blocking."""
    gateways = default_gateways()
    found: dict[ipaddress.IPv4Network, Found] = {}
    for host in host_networks():
        if host.serves_nodes and host.network not in found:
            gateway = next((str(g) for g in gateways if g in host.network), XCATMASTER)
            found[host.network] = Found(host, gateway)
    return list(found.values())


def _network_of(values: dict[str, str]) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(f"{values.get('net')}/{values.get('mask')}", strict=False)
    except ValueError:
        return None


async def _define(call: Call, found: list[Found]) -> None:
    """Each network that has no object yet, in one transaction."""

    def work(db) -> tuple[list[Found], dict[str, str]]:
        present = objects.load(db, NETWORK)
        kept = {f.name: other for f in found if (other := f.equivalent(present))}
        new = [f for f in found if f.name not in kept]
        objects.create(db, [Definition(NETWORK, f.name, f.values()) for f in new], replace=False)
        return new, kept

    try:
        new, kept = await call.context.store.run(work)
    except DefinitionError as exc:  # a value this host reported that the schema refuses
        for problem in exc.problems:
            await call.error(problem)
        return
    for network in found:
        other = kept.get(network.name)
        if other == network.name:  # xCAT's words
            await call.warning(
                f"The network entry '{other}' already exists in xCAT networks table. "
                f"Cannot create a definition for '{other}'"
            )
        elif other and call.options.verbose:
            await call.info(f"{network.name}: the network object {other} defines it already")
    if call.options.verbose:
        for network in new:
            described = " ".join(f"{k}={v}" for k, v in network.values().items())
            await call.info(f"Defined network {network.name}: {described}")
