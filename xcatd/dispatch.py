"""From a received request to its `done`: the steps every request goes through.

decode the body → authenticate (certificate, signature, replay) → find the
command → policy → parse its options → read its streamed input → run → audit.
Each refusal is one `Error:` line and rc 1 for the sender, and a row in the
audit table.  Nothing a request does blocks the event loop for long: a long
command line is parsed in a worker thread, and standard input is bounded per
request and across requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from xcat_protocol import PROTOCOL_VERSION
from xcat_protocol.errors import ProtocolError, VersionMismatch
from xcat_protocol.messages import Done, Output, Request, RequestBody

from .audit import AuditRecord
from .auth import AuthError, Caller
from .call import Call, Send
from .commands import REGISTRY, Command, HelpRequested, UsageError
from .commands.registry import Runner
from .enrollment import ENROLL, EnrollmentRefused, enroll
from .errors import XcatdError
from .store.noderange import NoderangeError, expand
from .store.nodes import Nodes
from .store.regex_values import RegexValueError
from .tasks import with_helper

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

DENIED = "Permission denied for request"  # xCAT's words
CANCELLED_RC = 130  # what a shell reports for Ctrl-C, which is how users cancel
MAX_STREAMED_INPUT = 256 << 20  # one request's (a 100,000-node stanza file is 25 MiB)
MAX_INPUT_HELD = 512 << 20  # all running requests' together
INLINE_PARSE_ARGS = 64  # shorter command lines are parsed on the loop: cheaper than a thread
# How often a service node working on a request its management node carried
# says so (a progress frame), whatever the work: the management node's idle
# limit (dispatch_idle, default 120 s) then catches a silent node, never a
# busy one (taking the definitions, copying an image, 1,000 nodes' files).
HEARTBEAT = 5.0


class RequestRefused(XcatdError):
    """The request stops here with one error line and rc 1."""

    def __init__(self, text: str, status: str = "refused") -> None:
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class Peer:
    """The other end of a connection: its host, its address as logs and the
    audit show it, and the certificate it presented in the TLS handshake."""

    host: str
    address: str
    certificate: bytes | None


@dataclass
class Trail:
    """What the audit row will say, filled in as the request advances."""

    address: str
    user: str = ""
    command: str = ""
    args: tuple[str, ...] = ()
    noderange: str | None = None
    relay: str | None = None  # the peer that handed us someone else's request
    status: str = "refused"
    rc: int = 1

    @property
    def peer(self) -> str:
        return self.address if self.relay is None else f"{self.address} via {self.relay}"


async def serve_request(
    daemon: Daemon,
    request: Request,
    peer: Peer,
    send: Send,
    scope: trio.CancelScope,
    input_frames: trio.MemoryReceiveChannel[bytes],
) -> None:
    """Run one request to its end, always answering `done` and always auditing."""
    started_wall = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    trail = Trail(peer.address)
    try:
        with scope:
            trail.rc = await _serve(daemon, request, peer, send, input_frames, trail)
        if scope.cancelled_caught:
            trail.rc = CANCELLED_RC
    except RequestRefused as refusal:
        trail.status = refusal.status
        trail.rc = 1
        await send(Output(request.id, "error", text=str(refusal)))
    except XcatdError as exc:
        # What the command did not answer itself, such as the store's full
        # disk: the administrator finds it in the log, the sender is told.
        log.error("request %s (%s): %s", request.id, trail.command, exc)
        trail.rc = 1
        for line in exc.lines:
            await send(Output(request.id, "error", text=line))
    except Exception:
        log.exception("request %s (%s) failed", request.id, trail.command)
        trail.rc = 1
        failed = trail.command or "request"
        await send(
            Output(request.id, "error", text=f"internal error in {failed}; see the xcatd log")
        )
    finally:
        # Shielded: a request cancelled because its client went away is still
        # audited, and its `done` is still queued in case the client is there.
        with trio.CancelScope(shield=True):
            await send(Done(request.id, trail.rc))
            await daemon.audit.record(
                AuditRecord.of(
                    started=started_wall,
                    user=trail.user,
                    peer=trail.peer,
                    command=trail.command,
                    args=list(trail.args),
                    noderange=trail.noderange,
                    status=trail.status,
                    rc=trail.rc,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )


async def _serve(
    daemon: Daemon,
    request: Request,
    peer: Peer,
    send: Send,
    input_frames: trio.MemoryReceiveChannel[bytes],
    trail: Trail,
) -> int:
    try:
        body = RequestBody.decode(request.body)
    except VersionMismatch as exc:
        raise RequestRefused(_mismatch(daemon, exc)) from None
    except ProtocolError as exc:
        raise RequestRefused(f"malformed request: {exc}") from None
    trail.command, trail.args, trail.noderange = body.cmd, tuple(body.args), body.noderange
    if body.cmd == ENROLL:
        return await _enroll(daemon, request, body, peer, send, trail)
    try:
        caller = daemon.auth.authenticate(request, body, peer.certificate, time.time())
    except AuthError as exc:
        raise RequestRefused(str(exc)) from None
    trail.user = caller.name
    if caller.relayed:
        trail.relay = caller.peer.name
    command = REGISTRY.get(body.cmd)
    if command is None or command.run is None:
        raise RequestRefused(f"Unknown command {body.cmd}")
    if command.own_service_node and (caller.signer.role != "servicenode" or caller.relayed):
        raise RequestRefused(
            f"{DENIED}: {body.cmd} is answered only to a service node's daemon, signed with its "
            f"own certificate; '{caller.name}' is not one",
            status="denied",
        )
    verdict = daemon.policy.verdict(caller.name, caller.signer.role, body.cmd)
    if verdict is False:
        raise RequestRefused(DENIED, status="denied")
    if verdict is True:
        trail.status = "allowed"
    try:
        options = await _parse(command, body.args)
        trail.noderange = trail.noderange or getattr(options, "noderange", None)
        if verdict is None:  # a rule with a noderange: the nodes decide
            if not await _allowed_for(daemon, caller, body.cmd, trail.noderange):
                raise RequestRefused(DENIED, status="denied")
            trail.status = "allowed"
        with daemon.input_budget.account() as take:
            stdin = await _input(command, body, input_frames, take)
            call = Call(request.id, caller, body, options, daemon, send, stdin, request)
            if command.interactive:
                call.keystrokes = input_frames
            await _run(command.run, call)
    except HelpRequested as help_text:
        await send(Output(request.id, "info", text=str(help_text)))
        return help_text.rc
    except UsageError as exc:
        raise RequestRefused(str(exc), status="allowed") from None
    return call.return_code


async def _run(run: Runner, call: Call) -> None:
    """The command; with a heartbeat beside it when the management node
    carried it here."""
    if not call.relayed_by_master:
        await run(call)
        return

    async def heartbeat() -> None:
        while True:
            await trio.sleep(HEARTBEAT)
            await call.progress("working", 0, None, "")

    await with_helper(lambda: run(call), heartbeat)


def _mismatch(daemon: Daemon, exc: VersionMismatch) -> str:
    """One line for a request of another protocol version: the two versions,
    and which side to upgrade (the client's own check, on our hello, says
    the same; this one is for clients from before it, and for relays)."""
    here = f"xcatd {daemon.version} on {daemon.config.hostname}"
    mismatch = f"this request is of protocol {exc.theirs} and {here} speaks {PROTOCOL_VERSION}"
    if exc.peer_is_newer:
        return f"{mismatch}: upgrade xcatd on {daemon.config.hostname} to the client's release"
    return f"{mismatch}: upgrade the client commands that sent it to xcatd {daemon.version}"


async def _allowed_for(daemon: Daemon, caller: Caller, command: str, noderange: str | None) -> bool:
    """The policy's decision for the request's nodes: a rule with a noderange
    decides only a request whose nodes are all in it."""
    role = caller.signer.role
    if not noderange:
        return daemon.policy.allows(caller.name, role, command, None)

    def decide(db) -> bool:
        nodes = Nodes.load(db)
        wanted = set(expand(noderange, nodes, verify=False, read_files=False))

        def covers(rule_noderange: str) -> bool:
            return wanted <= set(expand(rule_noderange, nodes, verify=False, read_files=False))

        return daemon.policy.allows(caller.name, role, command, covers)

    try:
        return await daemon.store.run(decide)
    except (NoderangeError, RegexValueError):
        return False  # the command itself would say what is wrong with it


async def _enroll(
    daemon: Daemon, request: Request, body: RequestBody, peer: Peer, send: Send, trail: Trail
) -> int:
    """A node without credentials asks for its certificate (enrollment.py)."""
    trail.user = body.args[0] if body.args else ""
    if peer.certificate is not None:
        raise RequestRefused(
            "enroll is for nodes without credentials; this connection has a certificate"
        )
    if daemon.role != "master":
        raise RequestRefused(
            "service nodes enroll with the management node, not with a service node"
        )
    try:
        enrolled = await enroll(daemon, request, body, peer.host)
    except (EnrollmentRefused, AuthError) as exc:
        log.warning("enrollment refused: %s", exc)
        raise RequestRefused(str(exc)) from None
    trail.status = "allowed"
    await send(Output(request.id, "data", text=f"{trail.user}: enrolled", data=enrolled))
    return 0


async def _parse(command: Command, args: list[str]):
    """The options of a command line; a long one in a worker thread, since
    argparse takes time quadratic in the number of arguments."""
    if len(args) <= INLINE_PARSE_ARGS:
        return command.parse(args)
    return await trio.to_thread.run_sync(command.parse, args)


async def _input(
    command: Command,
    body: RequestBody,
    input_frames: trio.MemoryReceiveChannel[bytes],
    take: Callable[[int], None],
) -> bytes | None:
    """What the user piped in, for a command that reads it; for any other
    command it is ignored (the client sends whatever is piped) and streamed
    frames are dropped unread as they arrive.  An interactive command reads
    the frames itself, as they are typed."""
    if command.interactive:
        return None
    if not command.reads_stdin:
        input_frames.close()
        return None
    if body.stdin_sha256 is None:
        return body.stdin
    return await _streamed(input_frames, body.stdin_sha256, take)


async def _streamed(
    input_frames: trio.MemoryReceiveChannel[bytes], digest: bytes, take: Callable[[int], None]
) -> bytes:
    """Standard input too large for the request itself, from its `stdin` frames.

    The frames are not signed one by one; the signed body carries the digest
    of the whole, so a relay cannot alter what the user piped in.
    """
    chunks, size, hasher = [], 0, hashlib.sha256()
    async for chunk in input_frames:
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_STREAMED_INPUT:
            raise RequestRefused(f"standard input is over the {MAX_STREAMED_INPUT >> 20} MiB limit")
        take(len(chunk))
        hasher.update(chunk)
        chunks.append(chunk)
    if hasher.digest() != digest:
        raise RequestRefused("standard input does not match the digest the request was signed with")
    return b"".join(chunks)


class InputBudget:
    """Streamed standard input held by all running requests together, so
    that many large inputs at once cannot exhaust the daemon's memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextmanager
    def account(self) -> Iterator[Callable[[int], None]]:
        """A `take(n)` for one request's input; what it took is given back
        when the request ends."""
        taken = 0

        def take(size: int) -> None:
            nonlocal taken
            if self.held + size > self.limit:
                raise RequestRefused(
                    f"xcatd holds over {self.limit >> 20} MiB of input for running requests; "
                    "try again when they are done"
                )
            self.held += size
            taken += size

        try:
            yield take
        finally:
            self.held -= taken
