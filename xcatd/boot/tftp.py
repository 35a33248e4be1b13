"""The read-only TFTP server: one UDP socket for requests, one more per transfer.

RFC 1350 has each transfer use a port of its own (its "transfer identifier"),
so the server socket only takes requests; each one gets a task in the
server's nursery with a fresh socket connected to the client, so the kernel
drops datagrams from anyone else and reports a client that has gone
(ICMP port unreachable) as ConnectionRefusedError.  Files are opened and read
in worker threads, a window at a time, so a slow disk never stalls the event
loop.  The protocol itself is the sans-I/O `tftp_protocol`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

import trio

from .served import ServedFile, open_served
from .tftp_protocol import (
    ErrorCode,
    MalformedPacket,
    ReadTransfer,
    Refused,
    Request,
    State,
    parse_packet,
    requested_path,
)

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65536
# Each transfer holds a socket and a window in memory; past this many at once
# new requests are refused instead of starving the daemon of descriptors.
MAX_TRANSFERS = 2000


async def serve_tftp(
    root: Path,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the files under root over TFTP on host:port (UDP) until cancelled.

    `task_status.started()` gets the bound port, so port 0 picks a free one.
    """
    root = root.resolve()
    family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        log.info("TFTP: serving %s on %s port %d", root, host, bound_port)
        async with trio.open_nursery() as transfers:
            task_status.started(bound_port)
            while True:
                datagram, client = await sock.recvfrom(MAX_DATAGRAM)
                refusal = _take_request(datagram, client, root, sock, transfers)
                if refusal is not None:
                    await _send_refusal(sock, client, refusal)


def _take_request(
    datagram: bytes, client: Any, root: Path, sock: trio.socket.SocketType, transfers: trio.Nursery
) -> Refused | None:
    """Start a transfer task for a request; what to answer from here if not."""
    try:
        packet = parse_packet(datagram)
    except MalformedPacket as exc:
        return Refused(ErrorCode.ILLEGAL_OPERATION, str(exc))
    if not isinstance(packet, Request):
        return None  # an ACK or ERROR for no transfer: never answer an ERROR (RFC 1350)
    if len(transfers.child_tasks) >= MAX_TRANSFERS:
        return Refused(ErrorCode.NOT_DEFINED, "server busy: too many transfers; try again")
    local_address = sock.getsockname()[0]
    transfers.start_soon(_serve_request, root, sock.family, local_address, packet, client)
    return None


async def _send_refusal(sock: trio.socket.SocketType, client: Any, refusal: Refused) -> None:
    log.info("TFTP: %s: %s", _peer(client), refusal)
    try:
        await sock.sendto(refusal.datagram, client)
    except OSError as exc:  # a spoofed or unreachable source must not stop the server
        log.debug("TFTP: cannot answer %s: %s", _peer(client), exc)


async def _serve_request(
    root: Path, family: int, local_address: str, request: Request, client: Any
) -> None:
    """Answer one request from a socket of its own, bound beside the server's."""
    peer = _peer(client)
    try:
        with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
            await sock.bind((local_address, 0))
            await sock.connect(client)
            await _answer(sock, root, request, peer)
    except ConnectionRefusedError:
        log.info("TFTP: %s went away during %s", peer, request.filename)
    except OSError as exc:  # one transfer's failure must not end the server
        log.warning("TFTP: sending %s to %s failed: %s", request.filename, peer, exc)


async def _answer(sock: trio.socket.SocketType, root: Path, request: Request, peer: str) -> None:
    """Send the file, or an ERROR saying why not."""
    try:
        opened = await trio.to_thread.run_sync(_open, root, requested_path(request))
    except Refused as refusal:
        log.info("TFTP: %s asked for %s: %s", peer, request.filename, refusal)
        await sock.send(refusal.datagram)
        return
    try:
        transfer = ReadTransfer(request.options, opened.size, trio.current_time())
        await _send_file(sock, opened.fd, transfer)
    finally:
        os.close(opened.fd)
    _log_outcome(transfer, peer, request.filename, opened.size)


async def _send_file(sock: trio.socket.SocketType, fd: int, transfer: ReadTransfer) -> None:
    while not transfer.finished:
        if (wanted := transfer.wanted()) is not None:
            offset, length = wanted
            data = await trio.to_thread.run_sync(os.pread, fd, length, offset)
            transfer.feed(data, trio.current_time())
        for datagram in transfer.datagrams_to_send():
            await sock.send(datagram)
        with trio.move_on_at(transfer.deadline) as waiting:
            datagram = await sock.recv(MAX_DATAGRAM)
        if waiting.cancelled_caught:
            transfer.tick(trio.current_time())
        else:
            transfer.receive(datagram, trio.current_time())


def _open(root: Path, relative: PurePosixPath) -> ServedFile:
    """The file, or Refused with the error TFTP answers."""
    try:
        return open_served((root,), root / relative)
    except FileNotFoundError:
        raise Refused(ErrorCode.FILE_NOT_FOUND, f"{relative}: no such file") from None
    except OSError as exc:
        raise Refused(ErrorCode.ACCESS_VIOLATION, exc.strerror or str(exc)) from None


def _log_outcome(transfer: ReadTransfer, peer: str, filename: str, size: int) -> None:
    if transfer.state is State.DONE:
        log.info("TFTP: sent %s (%d bytes) to %s", filename, size, peer)
    elif transfer.state is State.TIMED_OUT:
        log.info("TFTP: %s stopped answering during %s", peer, filename)
    elif transfer.client_error is not None:
        error = transfer.client_error
        log.info("TFTP: %s ended %s: error %d: %s", peer, filename, error.code, error.message)


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}"
