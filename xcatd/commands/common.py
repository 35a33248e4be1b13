"""What the commands that work in the store share: running that work in the
store's thread, sending what it produced, refusing cleanly, and reading a
noderange as the caller may.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ..admin import ADMIN
from ..call import Call
from ..errors import XcatdError
from ..hierarchy import Split, bmcs_dispatched, server_of, split
from ..servicenode import serving
from ..store import StoreError, objects
from ..store.noderange import NoderangeError, expand, numbering
from ..store.nodes import Nodes
from ..store.regex_values import RegexValueError
from .registry import CommandParser

# Listings go out a batch of lines to a record: few frames, none too large.
LINES_PER_RECORD = 2000
BYTES_PER_RECORD = 1 << 20

T = TypeVar("T")


def verbose_option(parser: CommandParser) -> None:
    """xCAT's -V of the commands that run where the nodes are served: here
    it says which service node each part of the request is sent to."""
    parser.add_argument(
        "-V", "--verbose", action="store_true", help="say where each part of the request runs"
    )


class CommandRefused(XcatdError):
    """The command stops with these error lines and rc 1; nothing was written.
    With `usage`, that text follows on stdout, as xCAT prints its usage after
    an error in the command line."""

    def __init__(self, *lines: str, usage: str | None = None, warnings: Sequence[str] = ()) -> None:
        super().__init__(*lines, warnings=warnings)
        self.usage = usage


async def respond(call: Call, work: Callable[..., Produced]) -> None:
    """Run `work(db)` in the store's thread and send what it produced."""
    produced = await worked(call, work)
    if produced is None:
        return
    for line in produced.warnings:
        await call.warning(line)
    for line in produced.errors:
        await call.error(line)
    await _send(call, produced)
    if produced.policy_changed:
        await call.context.reload_policy()


async def worked(call: Call, work: Callable[..., T]) -> T | None:
    """`work(db)` in the store's thread; None once the command is refused
    (its error lines and usage said)."""
    try:
        return await call.context.store.run(work)
    except StoreError:
        raise  # the machine's trouble, not the command's: dispatch logs it too
    except XcatdError as exc:
        await refuse(call, exc)
        return None


async def refuse(call: Call, exc: XcatdError) -> None:
    """Say why the command stopped: the error's warnings, its error lines,
    then (a command line that was wrong) the command's usage."""
    for line in exc.warnings:
        await call.warning(line)
    for line in exc.lines:
        await call.error(line)
    if isinstance(exc, CommandRefused) and exc.usage:
        await call.info(exc.usage)


@dataclass
class Produced:
    lines: list[str]
    records: list[dict] | None = None  # for --json
    policy_changed: bool = False  # the daemon must read the policy table again
    # Objects the command could not find: said before the output, and rc 1,
    # while the others are still listed or removed, as xCAT does.
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said before the errors


async def _send(call: Call, produced: Produced) -> None:
    if call.options.json and produced.records is not None:
        for record in produced.records:
            await call.data(None, data=record)
        return
    for batch in _batches(produced.lines):
        await call.info("\n".join(batch))


def _batches(lines: list[str]) -> Iterator[list[str]]:
    """The lines in runs of at most LINES_PER_RECORD lines and (unless one
    line alone is longer) BYTES_PER_RECORD characters."""
    batch: list[str] = []
    size = 0
    for line in lines:
        if batch and (len(batch) == LINES_PER_RECORD or size + len(line) > BYTES_PER_RECORD):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        yield batch


def expand_noderange(call: Call, noderange: str, nodes: Nodes, *, verify: bool = True) -> list[str]:
    """The nodes of a noderange, among `nodes` (from `call.nodes`).  Without
    `verify`, names of nodes that do not exist are kept (mkdef, chdef and
    rmdef make or name them) — except for a service node's certificate,
    which may not name a node it does not serve, whether it exists or not."""
    # The daemon reads ^file noderanges as root: only root may ask it to.
    read_files = call.caller.name == ADMIN
    numbered = numbering(call.body.env)  # XCAT_NODE_PREFIX, XCAT_NODE_SUFFIX
    if call.context.role == "servicenode" and call.relayed_by_master:
        # The management node carried the user's whole noderange here, and
        # checked it: this service node's part is the nodes it gave this
        # node (hierarchy.split), not others it knows (itself, the nodes
        # of a pool it is second in), which their own servers answer for.
        wider = expand(
            noderange, nodes, cwd=call.body.cwd, verify=False, read_files=False, **numbered
        )
        here = call.context.config.hostname
        return [
            name for name in wider if name in nodes.groups_of and server_of(nodes, name) == here
        ]
    names = expand(
        noderange, nodes, cwd=call.body.cwd, verify=verify, read_files=read_files, **numbered
    )
    if not verify and call.caller.signer.role == "servicenode":
        unserved = [name for name in names if name not in nodes.groups_of]
        if unserved:
            raise CommandRefused(
                f"Permission denied for request: {call.caller.name} does not serve "
                + ",".join(unserved[:10])
                + (f" (and {len(unserved) - 10} more)" if len(unserved) > 10 else "")
            )
    return names


async def divide(call: Call, *, hardware: bool = True) -> Split | None:
    """The nodes of the call's noderange: those handled here, and those
    each service node handles (hierarchy.py) — for a hardware command
    (rpower, rcons, ...) unless site.ipmidispatch says no; on a service
    node, the management node's definitions taken first.  None after an
    error line."""
    try:
        await serving.definitions(call)

        def work(db) -> Split:
            nodes = call.nodes(db)
            names = expand_noderange(call, call.options.noderange, nodes)
            if hardware and not bmcs_dispatched(objects.site(db)):
                return Split(local=names)
            return split(call, nodes, names)

        return await call.context.store.run(work)
    except (NoderangeError, RegexValueError, serving.ServingError) as exc:
        await call.error(str(exc))
        return None


async def read_nodes(
    call: Call, read: Callable[[Nodes, str], T], names: Sequence[str] | None = None
) -> dict[str, T] | None:
    """`read(nodes, node)` in the store's thread for each node of the call's
    noderange (or of `names`).  A node whose regular-expression value fails
    for it gets an error line and is left out; a bad noderange gets its
    error line and None."""

    def work(db) -> tuple[dict[str, T], dict[str, str]]:
        nodes = call.nodes(db)
        chosen = (
            names if names is not None else expand_noderange(call, call.options.noderange, nodes)
        )
        values, unreadable = {}, {}
        for node in chosen:
            try:
                values[node] = read(nodes, node)
            except RegexValueError as exc:
                unreadable[node] = str(exc)
        return values, unreadable

    try:
        values, unreadable = await call.context.store.run(work)
    except NoderangeError as exc:
        await call.error(str(exc))
        return None
    for node, why in unreadable.items():
        await call.error(why, node=node)
    return values


async def bmcs_driven_here(call: Call, divided: Split) -> set[str]:
    """The nodes whose BMCs this daemon drives, as rpower divides them: its
    own; those of service nodes too when site.ipmidispatch says the
    management node reaches every BMC itself, and then a service node
    drives none."""
    if bmcs_dispatched(await call.context.store.run(objects.site)):
        return set(divided.local)
    if call.relayed_by_master:
        return set()
    return {*divided.local, *divided.served}


async def send_node_lines(call: Call, said: dict[str, str], key: str) -> None:
    """`<node>: <text>` for each node, in batches of lines; with --json one
    record each, {"node": ..., key: text}."""
    if call.options.json:
        for node, text in said.items():
            await call.data(None, data={"node": node, key: text})
        return
    lines = [f"{node}: {text}" for node, text in said.items()]
    for start in range(0, len(lines), LINES_PER_RECORD):
        await call.info("\n".join(lines[start : start + LINES_PER_RECORD]))
