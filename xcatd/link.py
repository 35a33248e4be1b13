"""A connection from this daemon to another one, over the same protocol
and TLS as any client: the management node dispatching a request to a
service node, a service node asking the management node for definitions or
passing on its nodes' status.

The daemon's own certificate is the client certificate (the management
node's has role `master`, a service node's `servicenode`), so the other
side knows which daemon it talks to and its policy decides.  A request is
either signed here, as this daemon, or relayed as it was signed by its user
(with the user's certificate in the chain), so the end user's identity
survives the hop.
"""

from __future__ import annotations

import math
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from xcat_protocol import PROTOCOL_VERSION
from xcat_protocol.errors import ProtocolError, VersionMismatch
from xcat_protocol.framing import FrameDecoder, encode_frame
from xcat_protocol.messages import (
    NONCE_SIZE,
    STDIN_CHUNK,
    Done,
    ErrorFrame,
    Hello,
    Output,
    Request,
    RequestBody,
    ServerMessage,
    StdinData,
    parse_server_message,
)
from xcat_protocol.signing import load_signing_key, sign_body

from .ca import CertificateAuthority
from .errors import XcatdError
from .tasks import with_helper

Forward = Callable[[Output], Awaitable[None]]
CONNECT_TIMEOUT = 10.0
RECEIVE_SIZE = 65536


class LinkError(XcatdError):
    """The other daemon cannot be reached, or broke off; the text says which and why."""


# What a failed connect, handshake or greeting raises.
CONNECT_FAILURES = (trio.TooSlowError, OSError, trio.BrokenResourceError, ssl.SSLError, LinkError)


@dataclass
class Answer:
    """What a request printed, as the other daemon sent it, and its rc."""

    outputs: list[Output] = field(default_factory=list)
    rc: int = 1

    @property
    def text(self) -> str:
        """The lines of standard output, as the client would print them."""
        return "\n".join(o.text for o in self.outputs if o.kind in ("info", "data") and o.text)

    @property
    def errors(self) -> list[str]:
        return [o.text or "" for o in self.outputs if o.kind == "error"]


def link_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """TLS 1.3, trusting the cluster CA only, presenting this daemon's certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca.cert_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(ca.server_cert_file, ca.server_key_file)
    return context


class Link:
    """One open connection; requests on it run one after the other."""

    def __init__(self, stream: trio.SSLStream, where: str, key_pem: bytes) -> None:
        self._stream = stream
        self.where = where
        self._key = load_signing_key(key_pem)
        self._decoder = FrameDecoder()
        self._next_id = 1
        self.hello = Hello("", "")  # the other daemon's greeting, once open

    @classmethod
    @asynccontextmanager
    async def open(cls, host: str, port: int, ca: CertificateAuthority) -> AsyncIterator[Link]:
        """A connection past the other daemon's greeting, within CONNECT_TIMEOUT."""
        where = f"{host}:{port}"
        context = link_context(ca)
        stream: trio.SSLStream | None = None
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                tcp = await trio.open_tcp_stream(host, port)
                stream = trio.SSLStream(tcp, context, server_hostname=host)
                await stream.do_handshake()
                link = cls(stream, where, ca.server_key_file.read_bytes())
                greeting = await link._receive()
                if not isinstance(greeting, Hello):
                    raise LinkError(f"xcatd at {where} did not greet as expected")
                link.hello = greeting
        except CONNECT_FAILURES as exc:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            raise _unreachable(where, exc) from None
        try:
            yield link
        finally:
            await trio.aclose_forcefully(stream)

    async def ask(self, cmd: str, args: list[str], user: str) -> Answer:
        """Run a request signed by this daemon; what it printed."""
        body = RequestBody(
            cmd=cmd,
            args=args,
            user=user,
            ts=int(time.time() * 1000),
            nonce=os.urandom(NONCE_SIZE),
        ).encode()
        return await self.relay(Request(0, body, sign_body(self._key, body)))

    async def relay(
        self,
        request: Request,
        forward: Forward | None = None,
        keystrokes: trio.MemoryReceiveChannel[bytes] | None = None,
        idle: float = math.inf,
        streamed: bytes | None = None,
    ) -> Answer:
        """Run a request as it was signed (by this daemon, or by a user it
        relays for); each output is handed to `forward` as it arrives, or
        kept in the answer.  LinkError when the other daemon says nothing
        (no output, no progress) for `idle` seconds.  An interactive
        request's `keystrokes` (rcons) are passed on as they come, until the
        request is done; a console may be quiet for hours: no idle limit.
        `streamed`: the input the user streamed after the request (its body
        carries the digest), passed on after it the same way."""
        request_id = self._next_id
        self._next_id += 1
        await self._send(request._replace(id=request_id).to_wire())
        if streamed is not None:
            view = memoryview(streamed)
            for start in range(0, len(view), STDIN_CHUNK):
                chunk = bytes(view[start : start + STDIN_CHUNK])
                await self._send(StdinData(request_id, chunk).to_wire())
            await self._send(StdinData(request_id, b"").to_wire())
        if keystrokes is None:
            return await self._answer(request_id, forward, idle)
        return await with_helper(
            lambda: self._answer(request_id, forward, math.inf),
            lambda: self._pass_on(request_id, keystrokes),
        )

    async def _answer(self, request_id: int, forward: Forward | None, idle: float) -> Answer:
        answer = Answer()
        while True:
            with trio.move_on_after(idle) as waiting:
                message = await self._receive()
            if waiting.cancelled_caught:  # the link is dropped with it: nothing half-read stays
                raise LinkError(f"xcatd at {self.where} said nothing for {idle:.0f} s")
            if isinstance(message, Output) and message.id == request_id:
                if forward is None:
                    answer.outputs.append(message)
                else:
                    await forward(message)
            elif isinstance(message, Done) and message.id == request_id:
                answer.rc = message.rc
                return answer

    async def _pass_on(self, request_id: int, keystrokes: trio.MemoryReceiveChannel[bytes]) -> None:
        """The user's keystrokes to the other daemon; a lost connection is
        left to `_answer` to report."""
        async for data in keystrokes:
            try:
                await self._send(StdinData(request_id, data).to_wire())
            except LinkError:
                return
            if not data:  # the user is done
                return

    async def _send(self, wire: dict) -> None:
        try:
            await self._stream.send_all(encode_frame(wire))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise LinkError(f"connection to xcatd at {self.where} lost: {_reason(exc)}") from None

    async def _receive(self) -> ServerMessage:
        while (raw := self._next_message()) is None:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                data = b""
                reason = _reason(exc)
            else:
                reason = "it closed the connection"
            if not data:
                raise LinkError(f"connection to xcatd at {self.where} lost: {reason}")
            self._decoder.feed(data)
        try:
            message = parse_server_message(raw)
        except VersionMismatch as exc:
            raise LinkError(self._mismatch(exc)) from None
        except ProtocolError as exc:
            raise LinkError(f"bad reply from xcatd at {self.where}: {exc}") from None
        if isinstance(message, ErrorFrame):
            raise LinkError(f"xcatd at {self.where}: {message.text}")
        return message

    def _mismatch(self, exc: VersionMismatch) -> str:
        """One line: the two daemons' protocol versions, and which to upgrade."""
        release = f" (xcatd {exc.release})" if exc.release else ""
        speaks = f"xcatd at {self.where} speaks protocol {exc.theirs}{release}, this one"
        older = "this one" if exc.peer_is_newer else f"the one at {self.where}"
        return f"{speaks} {PROTOCOL_VERSION}: upgrade {older} to the other's release"

    def _next_message(self) -> dict | None:
        try:
            return self._decoder.next_message()
        except ProtocolError as exc:
            raise LinkError(f"bad reply from xcatd at {self.where}: {exc}") from None


def _unreachable(where: str, exc: BaseException) -> LinkError:
    if isinstance(exc, LinkError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return LinkError(f"cannot reach xcatd at {where}: no answer within {CONNECT_TIMEOUT:.0f} s")
    return LinkError(f"cannot reach xcatd at {where}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """What went wrong, in the system's words: trio wraps a refused connection
    in "all attempts to connect ... failed", with the real errors in a group."""
    cause = exc.__cause__ or exc
    while isinstance(cause, BaseExceptionGroup):
        cause = cause.exceptions[0]
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)
    return str(cause) or type(cause).__name__
