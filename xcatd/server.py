"""Connections: TLS, frames in and out, one task per request.

Each connection owns a nursery.  One task reads frames and starts a task per
request, each inside its own cancel scope so a `cancel` frame stops exactly
that request; one task writes every outgoing frame, so requests never
interleave bytes.  A client that goes away cancels its requests.  A protocol
violation is answered with an error frame, then the connection is closed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import TYPE_CHECKING

import trio
from xcat_protocol.errors import ProtocolError
from xcat_protocol.framing import FrameDecoder, encode_frame
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

from .dispatch import serve_request

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

TLS_HANDSHAKE_RECORD = 0x16
NOT_TLS_REPLY = b"Error: xcatd speaks TLS on this port; use the xCAT client commands\n"
MAX_REQUESTS_PER_CONNECTION = 64
OUTGOING_QUEUE = 256
RECEIVE_SIZE = 65536
INPUT_QUEUE = 64  # stdin frames waiting for their request to read them


async def handle_connection(daemon: Daemon, stream: trio.SocketStream) -> None:
    """Serve one accepted TCP connection until either side ends it."""
    address = _address(stream)
    daemon.connections += 1
    try:
        if daemon.connections > daemon.config.max_connections:
            log.warning("refusing %s: %d connections open", address, daemon.connections - 1)
            return
        tls = await _accept_tls(daemon, stream, address)
        if tls is not None and not await Session(daemon, tls, address).run():
            await _linger(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.debug("connection from %s ended: %s", address, exc)
    finally:
        daemon.connections -= 1
        await trio.aclose_forcefully(stream)


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
    daemon: Daemon, stream: trio.SocketStream, address: str
) -> trio.SSLStream | None:
    """The TLS stream once the handshake is done, or None (already answered)."""
    with trio.move_on_after(daemon.config.handshake_timeout):
        # Peek before TLS so that someone typing at the port is told why
        # nothing happens, instead of seeing a silent close.
        first = await stream.socket.recv(1, socket.MSG_PEEK)
        if not first:
            return None
        if first[0] != TLS_HANDSHAKE_RECORD:
            log.info("%s sent plain text instead of TLS", address)
            await stream.send_all(NOT_TLS_REPLY)
            await _linger(stream)
            return None
        tls = trio.SSLStream(stream, daemon.ssl_context, server_side=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            log.info("TLS handshake with %s failed: %s", address, exc.__cause__ or exc)
            return None
        return tls
    log.info("TLS handshake with %s timed out", address)
    return None


class Session:
    """A connection past its TLS handshake: frames, requests, their output."""

    def __init__(self, daemon: Daemon, tls: trio.SSLStream, address: str) -> None:
        self.daemon = daemon
        self.tls = tls
        self.address = address
        self.peer_der: bytes | None = tls.getpeercert(binary_form=True)
        self.running: dict[int, trio.CancelScope] = {}
        self._inputs: dict[int, trio.MemorySendChannel[bytes]] = {}
        self._outgoing, self._to_write = trio.open_memory_channel[ServerMessage](OUTGOING_QUEUE)
        self._requests: trio.Nursery | None = None
        self._reading = trio.CancelScope()

    async def run(self) -> bool:
        """Serve requests until the client leaves; False after a protocol violation."""
        violated = False
        async with trio.open_nursery() as connection:
            connection.start_soon(self._write_frames)
            try:
                await self.send(Hello(self.daemon.config.hostname, self.daemon.version))
                async with trio.open_nursery() as requests:
                    self._requests = requests
                    try:
                        with self._reading, self.daemon.track_session(self):
                            await self._read_frames()
                    except ProtocolError as exc:
                        log.info("protocol error from %s: %s", self.address, exc)
                        violated = True
                        await self.send(ErrorFrame(str(exc)))
                    # End of input, or a violation: whatever still runs is cancelled.
                    requests.cancel_scope.cancel()
            finally:
                self._outgoing.close()
        return not violated

    def stop_reading(self) -> None:
        """Take no more input: what runs is cancelled, what was written is sent."""
        self._reading.cancel()

    async def send(self, message: ServerMessage) -> None:
        """Queue a frame; never fails, even once the client has gone."""
        with contextlib.suppress(trio.ClosedResourceError):
            await self._outgoing.send(message)

    async def _read_frames(self) -> None:
        decoder = FrameDecoder(self.daemon.config.max_frame)
        while data := await self.tls.receive_some(RECEIVE_SIZE):
            for raw in decoder.messages(data):
                message = parse_client_message(raw)
                if isinstance(message, Request):
                    await self._start(message)
                elif isinstance(message, Cancel) and (scope := self.running.get(message.id)):
                    scope.cancel()
                elif isinstance(message, StdinData) and message.id in self._inputs:
                    await self._deliver(message)

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
                    self.peer_der,
                    self.address,
                    self.send,
                    scope,
                    input_frames,
                )
            finally:
                del self.running[request.id]
                self._inputs.pop(request.id).close()

    async def _write_frames(self) -> None:
        """Write queued frames, several per TLS write when they pile up."""
        broken = False
        async with self._to_write:
            async for message in self._to_write:
                if broken:
                    continue  # keep draining so senders never block on a dead client
                frames = [encode_frame(message.to_wire())]
                while len(frames) < 64:
                    try:
                        frames.append(encode_frame(self._to_write.receive_nowait().to_wire()))
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    await self.tls.send_all(b"".join(frames))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    broken = True
                    if self._requests is not None:
                        self._requests.cancel_scope.cancel()


def _address(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
