"""From a received request to its `done`: the steps every request goes through.

decode the body → authenticate (certificate, signature, replay) → find the
command → policy → read streamed input → parse its options → run → audit.  Each refusal is one
`Error:` line and rc 1 for the sender, and a row in the audit table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from xcat_protocol.errors import ProtocolError
from xcat_protocol.messages import Done, Output, Request, RequestBody

from .audit import AuditRecord
from .auth import AuthError
from .call import Call, Send
from .commands import REGISTRY, HelpRequested, UsageError

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

CANCELLED_RC = 130  # what a shell reports for Ctrl-C, which is how users cancel
MAX_STREAMED_INPUT = 1 << 30


class Refused(Exception):
    """The request stops here with one error line and rc 1."""

    def __init__(self, text: str, status: str = "refused") -> None:
        super().__init__(text)
        self.status = status


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
    peer_der: bytes | None,
    peer_address: str,
    send: Send,
    scope: trio.CancelScope,
    input_frames: trio.MemoryReceiveChannel[bytes],
) -> None:
    """Run one request to its end, always answering `done` and always auditing."""
    started_wall = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    trail = Trail(peer_address)
    try:
        with scope:
            trail.rc = await _serve(daemon, request, peer_der, send, input_frames, trail)
        if scope.cancelled_caught:
            trail.rc = CANCELLED_RC
    except Refused as refusal:
        trail.status = refusal.status
        trail.rc = 1
        await send(Output(request.id, "error", text=str(refusal)))
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
    peer_der: bytes | None,
    send: Send,
    input_frames: trio.MemoryReceiveChannel[bytes],
    trail: Trail,
) -> int:
    try:
        body = RequestBody.decode(request.body)
    except ProtocolError as exc:
        raise Refused(f"malformed request: {exc}") from None
    trail.command, trail.args, trail.noderange = body.cmd, tuple(body.args), body.noderange
    try:
        caller = daemon.auth.authenticate(request, body, peer_der, time.time())
    except AuthError as exc:
        raise Refused(str(exc)) from None
    trail.user = caller.name
    if caller.relayed:
        trail.relay = caller.peer.name
    command = REGISTRY.get(body.cmd)
    if command is None or command.run is None:
        raise Refused(f"Unknown command {body.cmd}")
    if not daemon.policy.allows(caller.name, caller.signer.role, body.cmd):
        raise Refused("Permission denied for request", status="denied")
    trail.status = "allowed"
    stdin = (
        body.stdin
        if body.stdin_sha256 is None
        else await _streamed(input_frames, body.stdin_sha256)
    )
    try:
        options = command.parse(body.args)
        trail.noderange = trail.noderange or getattr(options, "noderange", None)
        call = Call(request.id, caller, body, options, daemon, send, stdin)
        await command.run(call)
    except HelpRequested as help_text:
        await send(Output(request.id, "info", text=str(help_text)))
        return 0
    except UsageError as exc:
        raise Refused(str(exc), status="allowed") from None
    return call.return_code


async def _streamed(input_frames: trio.MemoryReceiveChannel[bytes], digest: bytes) -> bytes:
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
            raise Refused(f"standard input is over the {MAX_STREAMED_INPUT >> 20} MiB limit")
        hasher.update(chunk)
        chunks.append(chunk)
    if hasher.digest() != digest:
        raise Refused("standard input does not match the digest the request was signed with")
    return b"".join(chunks)
