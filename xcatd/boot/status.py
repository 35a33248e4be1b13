"""Status reports from booting nodes: which node may say what about itself.

A node reports its state (`netbooting`, `booted`, `failed`, ...) over HTTP
(`POST /xcatd/status`) or, for xCAT's own node scripts, with the line
`installstatus <state>` on port 3002.  A report is accepted only from the IP
address the node is defined with (its effective `ip`: inherited and regular
expression values count), and sets the node's `status` and `statustime` in
xCAT's format.  Reports are advisory: they never change what a node boots,
which is why an unauthenticated address check is enough (DESIGN.md §5).

A thousand nodes booting at once report within seconds of each other, and
the store takes one write at a time (the administrators' requests too): so
reports that arrive while a write is under way are written together in the
next one (group_commit.py), each answered once its own is stored; the host
keys of booted nodes likewise (known_hosts.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils
import trio

from ..errors import XcatdError
from ..group_commit import GroupCommit
from ..known_hosts import KnownHosts, host_key
from ..sshca import SshError
from ..store import Store
from ..store.nodes import Nodes
from ..store.objtypes import NODE
from ..store.regex_values import RegexValueError
from ..store.schema import definitions_stamp
from ..throttle import ThrottledWarning

log = logging.getLogger(__name__)

# xCAT's node states (nodelist.status), as its nodestat and lsdef show them.
STATES = frozenset(
    {
        "defined", "booting", "netbooting", "booted", "discovering", "configuring",
        "installing", "installed", "alive", "standingby", "powering-off", "failed",
        "shell", "bmcready", "unreachable",
    }
)  # fmt: skip

STATUSTIME_FORMAT = "%m-%d-%Y %H:%M:%S"  # xCAT's statustime
INDEX_LIFETIME = 10.0  # seconds an address index is trusted before it is read again


class ReportRefused(XcatdError):
    """A report that is not taken; the text says why in one line."""


class UnknownState(ReportRefused):
    pass


@dataclass
class _AddressIndex:
    node_of: dict[str, str]  # ip -> node
    ip_of: dict[str, str]  # node -> ip
    read_at: float
    stamp: int  # of the definitions it was read from (store/schema.py)


def _read_index(db: sqlite_utils.Database) -> _AddressIndex:
    # The stamp first: a change made while the nodes are read makes the next look read again.
    stamp = definitions_stamp(db)
    nodes = Nodes.load(db)
    ip_of = {node: ip for node in nodes.all_nodes() if (ip := _ip(nodes, node))}
    by_ip = {ip: node for node, ip in ip_of.items()}
    return _AddressIndex(by_ip, ip_of, time.monotonic(), stamp)


def _ip(nodes: Nodes, node: str) -> str | None:
    """The node's address; none when its (regex) value fails for it, so that
    one bad value refuses that node's reports only, never everyone's."""
    try:
        return nodes.attribute(node, "ip")
    except RegexValueError:
        return None


class StatusReports:
    """Takes reports for the daemon; one instance shared by the HTTP and the
    port-3002 listeners.  The address index is read once and re-read when it
    is older than INDEX_LIFETIME or a report does not fit it, so a thousand
    nodes booting at once do not each read every node's address."""

    def __init__(
        self,
        store: Store,
        on_report: Callable[[str, str], None] | None = None,
        known_hosts: KnownHosts | None = None,
    ) -> None:
        self.store = store
        self.on_report = on_report  # a service node passes reports on (servicenode/relay.py)
        self.known_hosts = known_hosts  # where booted nodes' SSH host keys go
        self._index: _AddressIndex | None = None
        self._reading = trio.Lock()
        self._refusals = ThrottledWarning(log)  # anyone can send reports
        self._reports = GroupCommit(self._store_reports)

    async def report(self, peer: str, state: str, node: str | None = None, detail: str = "") -> str:
        """Record `state` for the node at `peer` (or `node`, which must be at
        `peer`); the node's name, or ReportRefused.  `detail` (why a boot failed)
        goes to the log."""
        if state not in STATES:
            raise UnknownState(f"unknown state {state!r}: use one of {', '.join(sorted(STATES))}")
        node = await self._node_at(peer, node)
        await self._reports.add((node, state))
        if self.on_report is not None:
            self.on_report(node, state)
        # %r: the node's own words must not start a line of their own in the log.
        log.log(
            logging.WARNING if state == "failed" else logging.INFO,
            "status: %s is %s%s",
            node,
            state,
            f" ({detail!r})" if detail else "",
        )
        return node

    async def http(self, peer: str, fields: dict[str, str]) -> tuple[int, str]:
        """The HTTP endpoint's handler: form fields `state`, `node`, `detail`,
        and with `booted` the node's SSH host key, `hostkey` (known_hosts.py)."""
        state, hostkey = fields.get("state", ""), fields.get("hostkey")
        try:
            # Checked first: a report is taken whole or not at all.
            key = host_key(hostkey) if hostkey else None
            node = await self.report(
                peer, state, fields.get("node") or None, fields.get("detail", "")
            )
        except SshError as exc:
            return 400, f"hostkey: {exc}"
        except UnknownState as exc:
            return 400, str(exc)
        except ReportRefused as exc:
            return 403, str(exc)
        if key is not None and state == "booted" and self.known_hosts is not None:
            await self.known_hosts.record(node, peer, key)
        return 200, f"{node}: {state}"

    async def _store_reports(self, reports: list[tuple[str, str]]) -> None:
        await self.store.run(lambda db: write_reports(db, reports))

    async def _node_at(self, peer: str, claimed: str | None) -> str:
        index = await self._fresh_index()
        found = _match(index, peer, claimed)
        if found is None:  # perhaps the node was just defined or readdressed
            index = await self._fresh_index(force=True)
            found = _match(index, peer, claimed)
        if found is None:
            what = f"node {claimed!r}" if claimed is not None else "any node"
            self._refusals.warning("status report refused: %s is not the address of %s", peer, what)
            raise ReportRefused(f"{peer} is not the address of {what}")
        return found

    async def _fresh_index(self, force: bool = False) -> _AddressIndex:
        async with self._reading:  # one read serves every report waiting for it
            index = self._index
            if (
                index is None
                or time.monotonic() - index.read_at > INDEX_LIFETIME
                or (force and await self._changed_since(index))
            ):
                index = self._index = await self.store.run(_read_index)
            return index

    async def _changed_since(self, index: _AddressIndex) -> bool:
        """Whether the definitions changed since the index was read: a report
        that does not fit (a node just defined or readdressed) makes it read
        again then only, so reports from wrong addresses never each cost a
        full read."""
        return await self.store.run(definitions_stamp) != index.stamp


def _match(index: _AddressIndex, peer: str, claimed: str | None) -> str | None:
    if claimed is None:
        return index.node_of.get(peer)
    return claimed if index.ip_of.get(claimed) == peer else None


def write_status(db: sqlite_utils.Database, nodes: list[str], state: str) -> None:
    """The nodes' `status`, and `statustime` now, in xCAT's format."""
    write_reports(db, [(node, state) for node in nodes])


def write_reports(db: sqlite_utils.Database, reports: list[tuple[str, str]]) -> None:
    """Each (node, state): the node's `status`, and `statustime` now; in one
    transaction, a node reported twice ending with its last state."""
    stamp = time.strftime(STATUSTIME_FORMAT)
    with db.atomic():
        db.conn.executemany(
            f"update [{NODE.name}] set status = ?, statustime = ? where [{NODE.key}] = ?",
            [[state, stamp, node] for node, state in reports],
        )
