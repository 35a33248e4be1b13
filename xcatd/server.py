"""Connections: TLS, frames in and out, one task per request.

Each connection owns a nursery.  One task reads frames and starts a task per
request, each inside its own cancel scope so a `cancel` frame stops exactly
that request; one task writes every outgoing frame, so requests never
interleave bytes.  A client that goes away cancels its requests.  A protocol
violation is answered with an error frame, then the connection is closed.

`handle_connection` is the boundary between one peer and the daemon: nothing
that happens on a connection ends more than that connection.  A peer that
leaves, resets or stalls is routine; anything else is logged with its
traceback, and the daemon goes on serving.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from typing import TYPE_CHECKING

import trio
from xcat_protocol.errors import ProtocolError
from xcat_protocol.framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from xcat_protocol.messages import (
    Cancel,
    Done,
    ErrorFrame,
    Hello,
    Output,
    Request,
    ServerMessage,
    StdinData,
    parse_client_message,
)

from .admission import Slot
from .auth import AuthError
from .dispatch import Peer, serve_request
from .errors import XcatdError
from .store.schema import definitions_stamp
from .throttle import ThrottledWarning

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

TLS_HANDSHAKE_RECORD = 0x16
NOT_TLS_REPLY = b"Error: xcatd speaks TLS on this port; use the xCAT client commands\n"
MAX_REQUESTS_PER_CONNECTION = 64
OUTGOING_QUEUE = 256
RECEIVE_SIZE = 65536
INPUT_QUEUE = 64  # stdin frames waiting for their request to read them
# How a peer leaving shows itself: trio's stream errors, or the socket's own
# (a reset seen by a raw socket call before TLS).
CONNECTION_ENDED = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
# What peers do wrong, which any stranger can repeat as fast as the network allows.
PEER_TROUBLE = ThrottledWarning(log)


async def handle_connection(daemon: Daemon, stream: trio.SocketStream) -> None:
    """Serve one accepted TCP connection until either side ends it."""
    host, address = _peer(stream)
    try:
        with daemon.admission.slot(host) as slot:
            if slot is not None:
                await _serve_connection(daemon, stream, host, address, slot)
    except* CONNECTION_ENDED as ended:
        log.debug("connection from %s ended: %s", address, ended.exceptions[0])
    except* XcatdError as failed:
        # Trouble of the daemon's own, such as its store's (for the greeting):
        # its one line says enough.
        why = "; ".join(str(exc) for exc in failed.exceptions)
        log.error("connection from %s failed: %s; xcatd goes on serving the others", address, why)
    except* Exception:
        log.exception("connection from %s failed; xcatd goes on serving the others", address)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_connection(
    daemon: Daemon, stream: trio.SocketStream, host: str, address: str, slot: Slot
) -> None:
    tls = await _accept_tls(daemon, stream, address, slot)
    if tls is None:
        return
    peer = Peer(host, address, tls.getpeercert(binary_form=True))
    if not slot.handshake_done(peer.certificate is not None):
        return
    if not await Session(daemon, tls, peer).run():
        await _linger(stream)


async def _linger(stream: trio.SocketStream) -> None:
    """Close after a protocol violation so that the error frame arrives.

    Closing a socket with unread input makes the kernel send a reset, which
    can destroy our last frame before the client reads it; so say we are done
    writing, then discard what the client still sends, for a moment.
    """
    try:
        stream.socket.shutdown(socket.SHUT_WR)
        with trio.move_on_after(1):
            while await stream.socket.recv(RECEIVE_SIZE):
                pass
    except OSError:
        pass


async def _accept_tls(
    daemon: Daemon, stream: trio.SocketStream, address: str, slot: Slot
) -> trio.SSLStream | None:
    """The TLS stream once the handshake is done, or None (already answered).
    The handshake timeout counts from the connection, waiting for a turn included."""
    with trio.move_on_after(daemon.config.handshake_timeout):
        async with slot.handshaking() as admitted:
            if not admitted:
                return None
            return await _handshake(daemon, stream, address)
    PEER_TROUBLE.warning("TLS handshake with %s timed out", address)
    return None


async def _handshake(
    daemon: Daemon, stream: trio.SocketStream, address: str
) -> trio.SSLStream | None:
    # Peek before TLS so that someone typing at the port is told why
    # nothing happens, instead of seeing a silent close.
    first = await stream.socket.recv(1, socket.MSG_PEEK)
    if not first:
        return None
    if first[0] != TLS_HANDSHAKE_RECORD:
        PEER_TROUBLE.warning("%s sent plain text instead of TLS", address)
        await stream.send_all(NOT_TLS_REPLY)
        await _linger(stream)
        return None
    tls = trio.SSLStream(stream, daemon.ssl_context, server_side=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        PEER_TROUBLE.warning("TLS handshake with %s failed: %s", address, exc.__cause__ or exc)
        return None
    return tls


class Session:
    """A connection past its TLS handshake: frames, requests, their output."""

    def __init__(self, daemon: Daemon, tls: trio.SSLStream, peer: Peer) -> None:
        self.daemon = daemon
        self.tls = tls
        self.peer = peer
        self.address = peer.address
        # A peer without a certificate gets no longer than a handshake to be idle.
        config = daemon.config
        certified = peer.certificate is not None
        self._idle_limit = config.idle_timeout if certified else config.handshake_timeout
        self.running: dict[int, trio.CancelScope] = {}
        self._inputs: dict[int, trio.MemorySendChannel[bytes]] = {}
        self._outgoing, self._to_write = trio.open_memory_channel[ServerMessage](OUTGOING_QUEUE)
        self._requests: trio.Nursery | None = None
        self._reading = trio.CancelScope()
        self._decoder = FrameDecoder(config.max_frame)
        self._waiting = trio.CancelScope()  # the current wait for input, with its deadline
        self._last_input = trio.current_time()
        self._frame_started: float | None = None  # when the incomplete frame's first byte came

    async def run(self) -> bool:
        """Serve requests until the client leaves; False after a protocol violation."""
        violated = False
        async with trio.open_nursery() as connection:
            connection.start_soon(self._write_frames)
            try:
                await self.send(await self._hello())
                async with trio.open_nursery() as requests:
                    self._requests = requests
                    try:
                        with self._reading, self.daemon.track_session(self):
                            await self._read_frames()
                    except ProtocolError as exc:
                        PEER_TROUBLE.warning("protocol error from %s: %s", self.address, exc)
                        violated = True
                        await self.send(ErrorFrame(str(exc)))
                    # End of input, or a violation: whatever still runs is cancelled.
                    requests.cancel_scope.cancel()
            finally:
                self._outgoing.close()
        return not violated

    async def _hello(self) -> Hello:
        """The greeting; to a service node, with the stamps of the definitions
        and of the revocation list, each of which it takes again only when
        that changed (servicenode/replica.py, servicenode/trust.py)."""
        hello = Hello(self.daemon.config.hostname, self.daemon.version)
        if self.peer.certificate is None:
            return hello
        try:
            role = self.daemon.auth.identity(self.peer.certificate).role
        except AuthError:
            return hello  # its requests are refused, each saying why
        if role != "servicenode":
            return hello
        return hello._replace(
            stamp=await self.daemon.store.run(definitions_stamp),
            crl=self.daemon.auth.revocations.stamp,
        )

    def stop_reading(self) -> None:
        """Take no more input: what runs is cancelled, what was written is sent."""
        self._reading.cancel()

    async def send(self, message: ServerMessage) -> None:
        """Queue a frame; never fails, even once the client has gone."""
        with contextlib.suppress(trio.ClosedResourceError):
            await self._outgoing.send(message)

    async def _read_frames(self) -> None:
        while data := await self._receive():
            now = trio.current_time()
            self._last_input = now
            for raw in self._decoder.messages(data):
                self._frame_started = None
                message = parse_client_message(raw)
                if isinstance(message, Request):
                    await self._start(message)
                elif isinstance(message, Cancel) and (scope := self.running.get(message.id)):
                    scope.cancel()
                elif isinstance(message, StdinData) and message.id in self._inputs:
                    await self._deliver(message)
            if self._decoder.pending and self._frame_started is None:
                self._frame_started = now

    async def _receive(self) -> bytes | bytearray:
        """The next bytes from the client; empty when it has gone, or has
        stalled past its deadline (which is logged)."""
        self._waiting = trio.CancelScope(deadline=self._deadline())
        with self._waiting:
            try:
                return await self.tls.receive_some(RECEIVE_SIZE)
            except trio.BrokenResourceError as exc:
                log.debug("%s went away: %s", self.address, exc.__cause__ or exc)
                return b""
        PEER_TROUBLE.warning("closing the connection from %s: %s", self.address, self._stall())
        return b""

    def _deadline(self) -> float:
        """Until when input may be awaited: a frame once begun must arrive
        whole within frame_timeout (a trickle does not extend it); a
        connection with nothing running may stay silent for its idle limit;
        one with requests running waits for as long as they run."""
        if self._frame_started is not None:
            return self._frame_started + self.daemon.config.frame_timeout
        if self.running:
            return math.inf
        return self._last_input + self._idle_limit

    def _stall(self) -> str:
        if self._frame_started is not None:
            return f"a frame did not arrive whole within {self.daemon.config.frame_timeout:.0f} s"
        return f"idle for {self._idle_limit:.0f} s"

    async def _deliver(self, message: StdinData) -> None:
        """Hand input to its request.  A request that reads slowly holds up this
        connection's reading (as TCP would), never the daemon's other clients."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inputs[message.id].send(message.data)

    async def _start(self, request: Request) -> None:
        if request.id in self.running:
            raise ProtocolError(f"request id {request.id} is already in use on this connection")
        refusal = self._refusal()
        if refusal:
            await self.send(Output(request.id, "error", text=refusal))
            await self.send(Done(request.id, 1))
            return
        assert self._requests is not None
        self.running[request.id] = scope = trio.CancelScope()
        self._inputs[request.id], receive = trio.open_memory_channel[bytes](INPUT_QUEUE)
        self._requests.start_soon(self._serve, request, scope, receive)

    def _refusal(self) -> str | None:
        if self.daemon.stopping:
            return "xcatd is shutting down; try again when it is back"
        if len(self.running) >= MAX_REQUESTS_PER_CONNECTION:
            return (
                f"too many requests at once on one connection (limit {MAX_REQUESTS_PER_CONNECTION})"
            )
        return None

    async def _serve(
        self,
        request: Request,
        scope: trio.CancelScope,
        input_frames: trio.MemoryReceiveChannel[bytes],
    ) -> None:
        with self.daemon.track_request():
            try:
                await serve_request(
                    self.daemon,
                    request,
                    self.peer,
                    self.send,
                    scope,
                    input_frames,
                )
            finally:
                del self.running[request.id]
                self._inputs.pop(request.id).close()
                self._waiting.deadline = self._deadline()  # the idle time starts now

    async def _write_frames(self) -> None:
        """Write queued frames, several per TLS write when they pile up."""
        broken = False
        async with self._to_write:
            async for message in self._to_write:
                if broken:
                    continue  # keep draining so senders never block on a dead client
                frames = [_encoded(message)]
                while len(frames) < 64:
                    try:
                        frames.append(_encoded(self._to_write.receive_nowait()))
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                broken = not await self._write(b"".join(frames))
                if broken and self._requests is not None:
                    self._requests.cancel_scope.cancel()

    async def _write(self, data: bytes) -> bool:
        """Send; False when the client is gone, or has not taken the data
        within frame_timeout (a client that stops reading must not hold its
        requests and their memory for ever)."""
        with trio.move_on_after(self.daemon.config.frame_timeout):
            try:
                await self.tls.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            return True
        PEER_TROUBLE.warning("closing the connection from %s: it reads no replies", self.address)
        return False


def _encoded(message: ServerMessage) -> bytes:
    """The frame of a message, or in its place an error the client can read:
    a frame over the client's limit could never be read, and would leave the
    client waiting for a `done` that it cannot receive."""
    try:
        frame = encode_frame(message.to_wire())
    except (TypeError, ValueError, OverflowError) as exc:
        problem = f"a reply could not be encoded ({exc})"
    else:
        if len(frame) <= DEFAULT_MAX_FRAME:
            return frame
        problem = f"a reply of {len(frame)} bytes is over the {DEFAULT_MAX_FRAME}-byte frame limit"
    log.error("request %s: %s; sent an error instead", getattr(message, "id", "-"), problem)
    text = f"{problem} and was not sent; see the xcatd log"
    return encode_frame(Output(getattr(message, "id", 0), "error", text=text).to_wire())


def _peer(stream: trio.SocketStream) -> tuple[str, str]:
    """The peer's host, and its address as logs and the audit show it."""
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:  # reset before we looked
        return "unknown", "unknown"
    return host, f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
