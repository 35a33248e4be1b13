"""A service node serves its nodes again as soon as its daemon starts.

A stateless service node's root is in memory: a reboot (a power outage, a
new image) loses its copy of the definitions, its tftpdir's boot files and
its DHCP settings and entries.  Its nodes, which may boot at the same time,
must not wait for an administrator's next nodeset or makedhcp to get an
answer from it.  xCAT's service node sets itself up as its xcatd starts
(AAsn.pm): `makedhcp -n`, then the nodes' entries, then `nodeset <nodes>
enact`, which writes each node's boot files again as its recorded state
says.  So does this one, in a task of the daemon's own, once the daemon
serves (READY=1 and the relayed requests never wait for it):

1. It takes the management node's definitions (replica.py; the consoles of
   its nodes are held then, as for any new definitions), trying again
   while the management node cannot be reached or refuses — the service
   node may come up first — after 1 s, then twice as long each time, up to
   a minute; one log line per failed attempt.
2. With network objects among them, `makedhcp -n` as the management
   node's carries it here: its DHCP settings written for its own
   interfaces, and its DHCP service started (commands/makedhcp.py).
3. `nodeset <its nodes> enact` (commands/nodeset.py `enact`): the nodes
   whose first servicenode it is, in a recorded netboot, statelite or
   install state, set to the osimage their provmethod names (the image
   NFS-mounted or copied first, as for a carried nodeset); in boot or
   offline, set so; in no state, or another, left alone.  Their DHCP
   entries come with them (unless site.dhcpsetup=n), as from any nodeset;
   a node never set up (no state) gets none, where xCAT's `makedhcp -a`
   gives every node with a MAC one: it has no boot file to be sent to.

Both run as the commands do, as this node itself, for this node only: its
own files and its own copy of the definitions, where the states come out as
recorded.  Nothing is sent to the management node, whose records stay as
they are.  It ends with one line: `restored the boot files of N nodes (M
failed: <node>: <why>; ...)`.  A request carried here later takes the
definitions again if they changed, as before; one carried here while this
runs works beside it (each file is written whole).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from xcat_protocol.messages import Output, RequestBody, ServerMessage

from ..auth import AuthError, Caller
from ..call import Call, Send
from ..commands import makedhcp, nodeset
from ..commands.registry import REGISTRY
from ..errors import XcatdError
from ..link import LinkError
from ..store.objtypes import NETWORK
from .replica import Copy, ReplicaError
from .serving import take_definitions

if TYPE_CHECKING:
    from ..daemon import Daemon

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 60.0)  # the first wait before trying again, and the longest
SHOWN_FAILURES = 3  # nodes whose failure the log line spells out
RESTORED = "restored the boot files of"  # the log line that says it is done


async def restore(daemon: Daemon) -> None:
    """The definitions taken, then the DHCP service and the nodes' boot
    files and entries set up again; what is done, in the log.  A failure
    (a bug included) is logged: the daemon serves on, and the next request
    carried here sets up its nodes."""
    try:
        copy = await _definitions(daemon)
        said = _Said()
        if copy.objects[NETWORK]:
            await makedhcp.makedhcp(_own_call(daemon, "makedhcp", ["-n"], said.makedhcp))
        call = _own_call(daemon, "nodeset", ["all", "enact"], said.nodeset)
        said.restored = len(await nodeset.enact(call, copy))
    except (XcatdError, OSError) as exc:
        log.error("cannot set up this service node's nodes again: %s", exc)
        return
    except Exception:
        log.exception("setting up this service node's nodes again failed")
        return
    for line in said.lines():
        log.info("%s", line)


async def _definitions(daemon: Daemon) -> Copy:
    """The management node's definitions, asked for until it gives them."""
    delay, longest = RETRY_DELAYS
    while True:
        try:
            return await take_definitions(daemon)
        except (ReplicaError, LinkError) as exc:
            log.warning("cannot take the definitions yet (again in %.0f s): %s", delay, exc)
        await trio.sleep(delay)
        delay = min(delay * 2, longest)


def _own_call(daemon: Daemon, command: str, args: list[str], send: Send) -> Call:
    """`command args` as this daemon runs it for itself: as this node, whose
    certificate sees the nodes it serves, with its output to `send`."""
    cert = x509.load_pem_x509_certificate(daemon.ca.server_cert_file.read_bytes())
    try:
        me = daemon.auth.identity(cert.public_bytes(Encoding.DER))
    except AuthError as exc:
        raise ReplicaError(f"this node's certificate: {exc}") from None
    body = RequestBody(command, args, me.name, int(time.time()), b"")
    return Call(0, Caller(me, me), body, REGISTRY[command].parse(args), daemon, send)


class _Said:
    """What the commands said: makedhcp's lines (its files, its DHCP
    service); how many nodes were set up, those that failed and why, and
    nodeset's other lines (a warning, the DHCP entries' files)."""

    def __init__(self) -> None:
        self.dhcp: list[str] = []
        self.restored = 0
        self.failed: dict[str, str] = {}
        self.notes: list[str] = []

    async def makedhcp(self, message: ServerMessage) -> None:
        if isinstance(message, Output) and message.text:
            self.dhcp.append(message.text)

    async def nodeset(self, message: ServerMessage) -> None:
        # (Its `<node>: <state>` lines are what enact returns.)
        if not isinstance(message, Output) or not message.text or message.kind == "info":
            return
        if message.node:
            self.failed[message.node] = message.text
        else:
            self.notes.append(message.text)

    def lines(self) -> list[str]:
        shown = list(self.failed.items())[:SHOWN_FAILURES]
        failed = "; ".join(f"{node}: {why}" for node, why in shown)
        failed += "; ..." if len(self.failed) > SHOWN_FAILURES else ""
        line = f"{RESTORED} {self.restored} nodes"
        line += f" ({len(self.failed)} failed: {failed})" if self.failed else ""
        dhcp = [f"makedhcp -n: {'; '.join(self.dhcp)}"] if self.dhcp else []
        return [*dhcp, "; ".join([line, *self.notes])]
